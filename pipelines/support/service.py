"""`SupportService`: answers one customer message end to end.

It provisions the customer, keeps the ticket and its turns, runs the routing /
orchestration pipeline with a trace, and returns the reply for the Slack layer to post.
Everything it writes is keyed on the message (turns on its ts, side effects on the
request id), so processing the same message twice writes nothing twice.

While a person has the conversation (its ticket is escalated or claimed, see
`storage.tickets`), the customer's message is recorded and nothing is answered: the
reply comes back `silent`, and the Slack layer posts nothing. A support agent's own
message (a configured agent id, e.g. one that @-mentions the bot) is still answered.

A ticket is its owner's conversation (whoever opened it). Anyone else writing in its
thread never shares it: their message is recorded as a `participant` turn (with its
author), never read as the owner's history and never grounds an id, and, when they
@-mentioned the bot, they are asked to write in a conversation of their own
(`NOT_YOUR_THREAD_TEXT`): nothing is looked up and nothing is done on either account.
"""

from __future__ import annotations

import datetime as dt

from pipelines.config import LLMSettings
from pipelines.knowledge.embeddings import embedder_for
from pipelines.knowledge.retrieval import KnowledgeBase
from pipelines.llm.base import LLM, LLMUnavailable
from pipelines.llm.budget import (
    BudgetExceeded,
    DailyBudget,
    Scope,
    Spender,
    budgeted,
    monotonic_at,
    spending,
)
from pipelines.llm.offline import OFFLINE_MODEL
from pipelines.llm.rate_limit import reporting_queue_waits
from pipelines.log_context import bind
from pipelines.steps import PipelineContext, StepFailed, Trace
from pipelines.support.confirmations import pending_request_id
from pipelines.support.contracts import (
    IncomingMessage,
    OnWorking,
    PendingConfirmation,
    SupportReply,
)
from pipelines.support.drafts import note_queue_wait
from pipelines.support.input_guard import MAX_MESSAGE_CHARS, clean_message
from pipelines.support.orchestrator import build_workers
from pipelines.support.request import Outcome, SupportRequest
from pipelines.support.routing import HANDOFF_TEXT, answer_message
from pipelines.tracing import TraceRecorder
from storage import confirmations
from storage.backends import Actor, BusinessSystems
from storage.catalog import demo_ids, get_or_create_customer
from storage.conversations import PARTICIPANT, ConversationStore, ThreadKey
from storage.db import Database
from storage.models import Ticket, utcnow
from storage.ticket_info import TicketInfo, bot_stays_quiet
from storage.tickets import TicketStore

FLOOD_LIMIT = 20  # messages per user per window before the bot slows down
FLOOD_WINDOW_S = 60
FLOOD_TEXT = (
    "You're sending messages faster than I can answer them well. I'll pick up again in a "
    "minute; to reach a person now, press *Talk to a person*."
)
NO_WORDS_TEXT = (
    "I didn't catch a question there. Could you tell me what you need help with? For "
    "example: where an order is, a product to return, or a question about an invoice."
)
NOT_YOUR_THREAD_TEXT = (
    "This thread is someone else's support conversation, so I can't look into your account "
    "here. Send me a direct message, or start a new message in the support channel, and "
    "I'll help you there."
)
BUDGET_TEXT: dict[Scope, str] = {
    "user": "You've reached today's limit for the assistant; a person from the support team "
    "can still help: press *Talk to a person*.",
    "everyone": "The assistant has reached today's limit for everyone; a person from the "
    "support team can still help: press *Talk to a person*.",
}
TRUNCATED_NOTE = "\n\n_(Your message was long; I read the first {limit:,} characters.)_"


def provider_label(name: str, trace: Trace) -> str:
    """The provider that answered; "degraded" when the offline one stood in for some steps."""
    if name != "offline" and any(step.model == OFFLINE_MODEL for step in trace.steps):
        return "degraded"
    return name


class SupportService:
    def __init__(
        self,
        db: Database,
        llm: LLM,
        settings: LLMSettings,
        agent_ids: frozenset[str] = frozenset(),
        flood_limit: int = FLOOD_LIMIT,
    ) -> None:
        self.db = db
        self.llm = llm
        self.settings = settings
        self.agent_ids = agent_ids
        self.flood_limit = flood_limit
        self.conversations = ConversationStore(db.sessions)
        self.tickets = TicketStore(db.sessions)
        self.traces = TraceRecorder(db.sessions)
        self.knowledge = KnowledgeBase(db.sessions, embedder_for(llm, settings))
        self.workers = build_workers(BusinessSystems(db.sessions))
        # Daily token budgets, stored: every instance on this database sees one total.
        self.budget = DailyBudget.from_settings(db.sessions, settings)
        self._budgeted_llm = budgeted(llm, self.budget)

    async def handle(
        self, message: IncomingMessage, on_working: OnWorking | None = None
    ) -> SupportReply:
        """Answer `message`; raise `LLMUnavailable` when the provider is down (retry later).

        The ticket is read once, here; the reply carries its snapshot. `on_working` is
        awaited once the bot has decided to answer, before any LLM work.
        """
        cleaned = clean_message(message.text)
        customer = await get_or_create_customer(self.db.sessions, message.user_id, message.team_id)
        key = ThreadKey(message.team_id, message.channel_id, message.thread_ts)
        ticket = await self.conversations.open_ticket(key, message.user_id, customer.id)
        is_agent = message.user_id in self.agent_ids
        if message.user_id != ticket.slack_user_id and not is_agent:
            return await self._not_the_owner(ticket, message, cleaned.text)
        history = await self.conversations.history(
            ticket.id, before_ts=message.message_ts, owner=ticket.slack_user_id
        )
        await self.conversations.add_turn(
            ticket.id, "customer", message.message_ts, cleaned.text, message.user_id
        )
        if bot_stays_quiet(ticket.status, is_agent):
            touched = await self.tickets.touch(ticket.id)
            return self._silent(touched or TicketInfo.of(ticket), escalated=True)
        flood = await self._flood_state(message.user_id, is_agent)
        if flood == "quiet":
            return self._silent(TicketInfo.of(ticket))
        if on_working is not None:
            await on_working()
        trace = Trace(
            "support", {"chars": cleaned.original_chars, "ticket": ticket.ticket_number},
            message.user_id,
        )  # fmt: skip
        bind(run_id=trace.run_id, ticket=ticket.ticket_number)  # on this job's log lines
        if flood == "warn":
            outcome = Outcome(text=FLOOD_TEXT, summary="rate-limited")
        elif not cleaned.has_words:
            outcome = Outcome(text=NO_WORDS_TEXT, summary="no question")
        elif over := await self.budget.refusal(spender := self._spender(message, is_agent)):
            outcome = _over_budget(over)  # told so, and no LLM call at all
        else:
            ids = await demo_ids(self.db.sessions, customer.id)
            request = SupportRequest(
                request_id=message.request_id,
                text=cleaned.text,
                actor=Actor(
                    customer_id=customer.id, slack_user_id=message.user_id, is_agent=is_agent
                ),
                history=history,
                products=ids.products,
                public=message.public,
            )
            outcome = await self._run(trace, request, spender)
            if cleaned.truncated:
                outcome.text += TRUNCATED_NOTE.format(limit=MAX_MESSAGE_CHARS)
        await self.conversations.add_turn(
            ticket.id, "bot", f"reply-to:{message.message_ts}", outcome.text, run_id=trace.run_id
        )
        updated = await self.tickets.record_outcome(
            ticket.id,
            intents=outcome.intents,
            tasks=outcome.tasks,
            actions=outcome.actions,
            summary=outcome.summary or None,
            escalation_reason=outcome.escalation_reason,
            urgent=outcome.urgent,
        )
        pending = await self._prepare(outcome, ticket, message, customer.id)
        return SupportReply(
            pending=pending,
            text=outcome.text,
            ticket_number=updated.number,
            intents=outcome.intents,
            actions=outcome.actions,
            escalated=outcome.escalated,
            run_id=trace.run_id if trace.steps else "",
            provider=provider_label(self.llm.name, trace),
            ticket=updated.snapshot(),
            allowed_links=outcome.links,
        )

    async def _prepare(
        self, outcome: Outcome, ticket: Ticket, message: IncomingMessage, customer_id: int
    ) -> list[PendingConfirmation]:
        """Store the side effects waiting for the customer's confirmation (once per
        request, kind and subject, so a retried job shows the same ones)."""
        prepared = []
        for task in outcome.pending:
            stored = await confirmations.prepare(
                self.db.sessions,
                ticket_id=ticket.id,
                request_id=pending_request_id(message.request_id, task),
                kind=str(task["kind"]),
                params=dict(task["params"]),
                summary=str(task["summary"]),
                requester=message.user_id,
                customer_id=customer_id,
                channel_id=message.channel_id,
                expires_in=dt.timedelta(hours=self.settings.confirm_expiry_hours),
            )
            prepared.append(
                PendingConfirmation(id=stored.id, kind=stored.kind, summary=stored.summary)
            )
        return prepared

    async def _not_the_owner(
        self, ticket: Ticket, message: IncomingMessage, text: str
    ) -> SupportReply:
        """Someone else @-mentioned the bot in a customer's thread: recorded, redirected."""
        await self.conversations.add_turn(
            ticket.id, PARTICIPANT, message.message_ts, text, message.user_id
        )
        info = TicketInfo.of(ticket)
        if await self._flood_state(message.user_id, is_agent=False) != "ok":
            return self._silent(info)
        # No bot turn: the owner's history must not carry an exchange they were not in.
        return SupportReply(
            text=NOT_YOUR_THREAD_TEXT,
            ticket_number=info.number,
            run_id="",
            provider=self.llm.name,
            ticket=info.snapshot(),
        )

    def _silent(self, ticket: TicketInfo, escalated: bool = False) -> SupportReply:
        """Recorded, not answered: a person has the thread, or the user is flooding."""
        return SupportReply(
            text="",
            ticket_number=ticket.number,
            escalated=escalated,
            silent=True,
            run_id="",
            provider=self.llm.name,
            ticket=ticket.snapshot(),
        )

    @staticmethod
    def _spender(message: IncomingMessage, is_agent: bool) -> Spender:
        """Who pays, and since when: the time the customer wrote, not when a worker got to
        it, so under a spent quota answers come in the order the messages were written
        (workers start a batch of jobs in no particular order; a retry keeps its place)."""
        return Spender(message.user_id, is_agent, since=monotonic_at(message.written_at))

    async def _flood_state(self, slack_user_id: str, is_agent: bool) -> str:
        """ "ok", "warn" (the first message over the limit: say so politely) or "quiet".

        Counted from stored turns, so the limit holds across threads and processes.
        """
        if is_agent:
            return "ok"
        since = utcnow() - dt.timedelta(seconds=FLOOD_WINDOW_S)
        count = await self.conversations.customer_turns_since(slack_user_id, since)
        if count <= self.flood_limit:
            return "ok"
        return "warn" if count == self.flood_limit + 1 else "quiet"

    async def _run(self, trace: Trace, request: SupportRequest, spender: Spender) -> Outcome:
        """The pipeline, charged to `spender` (checked already: its calls read no totals)."""
        ctx = PipelineContext(self._budgeted_llm, self.settings, trace)
        try:
            with spending(spender), reporting_queue_waits(note_queue_wait):
                outcome = await answer_message(ctx, request, self.workers, self.knowledge)
        except BudgetExceeded as exc:  # spent during this message: the next call was refused
            await self.traces.save(trace, status="error", error=str(exc))
            return _over_budget(exc.scope)
        except LLMUnavailable as exc:
            await self.traces.save(trace, status="error", error=f"provider unavailable: {exc}")
            raise
        except StepFailed as exc:
            # The model kept answering out of schema: tell the customer honestly and hand
            # the conversation to a person rather than guessing.
            await self.traces.save(trace, status="error", error=str(exc))
            return Outcome(
                text=HANDOFF_TEXT,
                escalation_reason="the assistant could not understand the request",
                summary="assistant failed",
            )
        await self.traces.save(
            trace,
            status="ok",
            output={"text": outcome.text, "actions": outcome.actions, "intents": outcome.intents},
        )
        return outcome


def _over_budget(scope: Scope) -> Outcome:
    """The reply when a daily token budget is spent; the ticket's summary says so."""
    return Outcome(text=BUDGET_TEXT[scope], summary=f"daily LLM budget reached ({scope})")
