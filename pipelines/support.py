"""`SupportService`: answers one customer message end to end.

It provisions the customer, keeps the ticket and its turns, runs the routing /
orchestration pipeline with a trace, and returns the reply for the Slack layer to post.
Everything it writes is keyed on the message (turns on its ts, side effects on the
request id), so processing the same message twice writes nothing twice.
"""

from __future__ import annotations

from pipelines.config import LLMSettings
from pipelines.contracts import IncomingMessage, SupportReply
from pipelines.knowledge import KnowledgeBase
from pipelines.llm.base import LLM, LLMUnavailable
from pipelines.llm.offline import OFFLINE_MODEL
from pipelines.orchestrator import build_workers
from pipelines.request import Outcome, SupportRequest
from pipelines.routing import HANDOFF_TEXT, answer_message
from pipelines.steps import PipelineContext, StepFailed, Trace
from pipelines.tracing import TraceStore
from storage.backends import Actor, BusinessSystems
from storage.catalog import demo_ids, get_or_create_customer
from storage.conversations import ConversationStore, ThreadKey
from storage.db import Database

MAX_MESSAGE_CHARS = 4000


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
    ) -> None:
        self.db = db
        self.llm = llm
        self.settings = settings
        self.agent_ids = agent_ids
        self.conversations = ConversationStore(db.sessions)
        self.traces = TraceStore(db.sessions)
        self.knowledge = KnowledgeBase(db.sessions)
        self.workers = build_workers(BusinessSystems(db.sessions))

    async def handle(self, message: IncomingMessage) -> SupportReply:
        """Answer `message`; raise `LLMUnavailable` when the provider is down (retry later)."""
        customer = await get_or_create_customer(self.db.sessions, message.user_id, message.team_id)
        key = ThreadKey(message.team_id, message.channel_id, message.thread_ts)
        ticket = await self.conversations.open_ticket(key, message.user_id, customer.id)
        history = await self.conversations.history(ticket.id, before_ts=message.message_ts)
        text = message.text[:MAX_MESSAGE_CHARS]
        await self.conversations.add_turn(
            ticket.id, "customer", message.message_ts, text, message.user_id
        )
        ids = await demo_ids(self.db.sessions, customer.id)
        request = SupportRequest(
            request_id=message.request_id,
            text=text,
            actor=Actor(
                customer_id=customer.id,
                slack_user_id=message.user_id,
                is_agent=message.user_id in self.agent_ids,
            ),
            history=history,
            products=ids.products,
        )
        trace = Trace("support", {"text": text, "ticket": ticket.ticket_number}, message.user_id)
        outcome = await self._run(trace, request)
        await self.conversations.add_turn(
            ticket.id, "bot", f"reply-to:{message.message_ts}", outcome.text, run_id=trace.run_id
        )
        updated = await self.conversations.update_ticket(
            ticket.id,
            intents=outcome.intents,
            tasks=outcome.tasks,
            actions=outcome.actions,
            summary=outcome.summary or None,
            status="escalated" if outcome.escalated else None,
            escalation_reason=outcome.escalation_reason,
        )
        return SupportReply(
            text=outcome.text,
            ticket_number=updated.ticket_number or "",
            intents=outcome.intents,
            actions=outcome.actions,
            escalated=outcome.escalated,
            run_id=trace.run_id,
            provider=provider_label(self.llm.name, trace),
        )

    async def _run(self, trace: Trace, request: SupportRequest) -> Outcome:
        ctx = PipelineContext(self.llm, self.settings, trace)
        try:
            outcome = await answer_message(ctx, request, self.workers, self.knowledge)
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
