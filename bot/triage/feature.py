"""Support-team triage: ticket cards, their buttons, human handoff and the App Home.

    from bot.triage.feature import TriageFeature       # a `bot.wiring.Feature`
    open_slack_runtime(settings, features=[TriageFeature()])

What it adds to the bot:
- **Cards.** Each ticket gets one card in SUPPORT_TRIAGE_CHANNEL, edited in place
  (`chat.update`) whenever the ticket changes. Card refreshes are jobs of their own
  (`triage_card`), enqueued with the dedupe key (ticket, version, event): the reply job
  only enqueues one after the customer's reply is posted (it is a `TicketObserver` of
  `bot.messages.reply_job.SlackReplyJob`), so a card can never delay or fail a reply, and a card
  that Slack refused is retried like any job. A card job always renders the ticket as it
  is *now* in the database, and renders again if it changed meanwhile, so concurrent
  refreshes converge on the latest state.
  Posting a card exactly once: the job first reserves the ticket's `triage_ts` with a
  marker (a compare-and-set in the database); a job that finds another's fresh marker
  retries shortly; a job that takes over a stale or its own earlier marker first looks
  for an already-posted card (message metadata, `conversations.history`).
- **Buttons.** Claim / Unclaim / Hand back to bot / Resolve / Reopen on the card, for
  support agents only (SUPPORT_AGENT_IDS or members of the triage channel, fetched with
  `conversations.members` and cached for a minute); anyone else gets an ephemeral
  refusal. Each click is one conditional UPDATE (`storage.tickets`): of two concurrent
  claims one wins and the other is told who has the ticket.
  Trace opens a modal (`views.open`, within the click's 3 s) with the ticket's latest
  traced runs step by step (`bot.triage.trace_views`): for agents only, like the other buttons;
  traces are never shown to customers.
- **Handoff.** "Talk to a person" (on every reply) escalates the ticket, tells the
  customer a person will follow up (a `customer_notice` job, posted once) and turns the
  pressed button into a note. Escalations from the pipeline (handoff intent, low
  confidence, urgent message) and from a dead reply job reach the card through the reply
  job's observer. An escalation is flagged on the card and announced to the agents in the
  card's thread (mentioning SUPPORT_AGENT_IDS, or @here when none are configured).
  While the ticket is escalated or claimed the bot stays quiet in the customer's thread
  (`pipelines.support.service`), and agents' replies there are recorded as `agent` turns
  (`bot.messages.intake`); Unclaim, Hand back to bot and Resolve give the thread back to it.
- **App Home section** (`bot.triage.home`): agents see the ticket counts and the
  escalated, claimed and open tickets in App Home (`bot.home`).

Listeners ack at once and only do quick work before the response (the app processes
before responding): one conditional UPDATE, one enqueue, at most one ephemeral message.

This module holds the feature and its listeners; the rest lives next to it:
`bot.triage.cards` (the `triage_card` job), `bot.triage.notice` (the `customer_notice`
job), `bot.triage.agents` (who is an agent) and `bot.triage.views` (Block Kit).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import escape
from bot.home.feature import HomeSection
from bot.home.views import View
from bot.interactions import Click, tell
from bot.messages.intake import SLACK_MESSAGE_JOB
from bot.messages.reply_job import TICKET_CUSTOMER_WROTE, SlackReplyJob
from bot.messages.views import TALK_TO_HUMAN_ACTION
from bot.triage.agents import AgentDirectory
from bot.triage.assignment import (
    ASSIGN_JOB,
    AssignJob,
    register_reassign,
    register_support_command,
)
from bot.triage.brief import BRIEF_JOB, BriefJob
from bot.triage.cards import TRIAGE_CARD_JOB, TriageCardJob
from bot.triage.home import AgentQueueSection
from bot.triage.notice import CUSTOMER_NOTICE_JOB, CustomerNoticeJob
from bot.triage.reactions import register_reactions
from bot.triage.relay import (
    MIRROR_EDIT_JOB,
    MIRROR_JOB,
    RELAY_EDIT_JOB,
    RELAY_JOB,
    MirrorEditJob,
    MirrorJob,
    RelayEditJob,
    RelayJob,
    register_relay,
)
from bot.triage.sla import SLA_BREACH_JOB, Clock, SlaBreachJob, SlaCheck
from bot.triage.trace_views import MAX_TRACE_RUNS, trace_modal
from bot.triage.views import (
    CLAIM_ACTION,
    HAND_BACK_ACTION,
    HANDOFF_NOTICE,
    NOT_AN_AGENT,
    NOT_YOUR_TICKET,
    OPEN_THREAD_ACTION,
    REOPEN_ACTION,
    RESOLVE_ACTION,
    TRACE_ACTION,
    UNCLAIM_ACTION,
    refusal_text,
    without_handoff_button,
)
from bot.worker import JobHandler, PeriodicCheck
from storage.feedback import run_votes
from storage.models import utcnow
from storage.ticket_info import ESCALATED, TicketInfo, TicketSnapshot
from storage.tickets import TicketStore, Transition
from storage.traces import TraceStore

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

# Listeners run before the response to Slack (3 s): every Slack call in them is bounded.
EPHEMERAL_TIMEOUT_SECONDS = 1.0
# The trigger_id of a click expires after 3 s: the agent check, the reads and views.open
# share this budget (a failure still leaves time for an ephemeral message).
TRACE_TIMEOUT_SECONDS = 1.9
TRACE_FAILED = "Sorry, I could not open the traces of {number}; please try again."
CARD_BUTTON_ACTIONS = re.compile(r"^triage_(claim|unclaim|hand_back|resolve|reopen)$")


class TriageFeature:
    """Cards, buttons, handoff and an App Home section, as a `bot.wiring.Feature`.

    It also observes the reply job (`SlackReplyJob.add_observer`) to refresh cards.
    """

    def __init__(self, *, clock: Clock = utcnow) -> None:
        """`clock`: the SLA check's and the cards' *now* (tests move it)."""
        self._slack: SlackRuntime | None = None
        self._store: TicketStore | None = None
        self.clock = clock

    # --- Feature ------------------------------------------------------------------------

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        self._bind(slack)
        reply_job = slack.handlers.get(SLACK_MESSAGE_JOB)
        if isinstance(reply_job, SlackReplyJob):
            reply_job.add_observer(self)
        settings = slack.settings
        return {
            TRIAGE_CARD_JOB: TriageCardJob(
                slack.client,
                self.store,
                settings.support_triage_channel,
                settings.support_agent_ids,
                sla_policy=settings.sla_policy,
                sla_clock=self.clock,
            ),
            CUSTOMER_NOTICE_JOB: CustomerNoticeJob(slack.client),
            BRIEF_JOB: BriefJob(self),
            RELAY_JOB: RelayJob(self),
            RELAY_EDIT_JOB: RelayEditJob(self),
            MIRROR_JOB: MirrorJob(self),
            MIRROR_EDIT_JOB: MirrorEditJob(self),
            ASSIGN_JOB: AssignJob(self),
            SLA_BREACH_JOB: SlaBreachJob(self, settings.sla_policy),
        }

    def periodic_checks(self, slack: SlackRuntime) -> Sequence[PeriodicCheck]:
        """The SLA check (`bot.triage.sla`), run by every worker."""
        self._bind(slack)
        policy = slack.settings.sla_policy
        if not policy.enabled:
            return []
        return [SlaCheck(self, policy, self.clock).periodic(slack.settings.sla_check_seconds)]

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        self._bind(slack)
        return [AgentQueueSection(self.store)]

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        self._bind(slack)

        async def on_card_button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await self.card_button(body, action)

        async def on_talk_to_human(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await self.talk_to_human(body, action)

        async def on_show_trace(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await self.show_trace(body, action)

        async def on_open_thread(ack: Any) -> None:
            await ack()  # a link button: Slack opens the URL, we only acknowledge

        app.action(CARD_BUTTON_ACTIONS)(on_card_button)
        app.action(TALK_TO_HUMAN_ACTION)(on_talk_to_human)
        app.action(OPEN_THREAD_ACTION)(on_open_thread)
        app.action(TRACE_ACTION)(on_show_trace)
        register_reactions(app, self)
        register_relay(app, self)
        register_support_command(app, self)
        register_reassign(app, self)

    # --- TicketObserver -----------------------------------------------------------------

    async def ticket_changed(self, ticket: TicketSnapshot, event: str) -> None:
        await self.refresh_card(ticket, event)
        if event == TICKET_CUSTOMER_WROTE and self.slack.settings.support_triage_channel:
            await self.slack.submit(
                MIRROR_JOB, f"{MIRROR_JOB}:{ticket.id}:{ticket.version}", {"ticket_id": ticket.id}
            )

    # --- actions ------------------------------------------------------------------------

    @property
    def slack(self) -> SlackRuntime:
        assert self._slack is not None, "TriageFeature is not bound to a runtime yet"
        return self._slack

    @property
    def store(self) -> TicketStore:
        assert self._store is not None, "TriageFeature is not bound to a runtime yet"
        return self._store

    @property
    def directory(self) -> AgentDirectory:
        return self.slack.agents

    async def refresh_card(
        self, ticket: TicketInfo | TicketSnapshot, event: str | None = None, by: str = ""
    ) -> bool:
        """Queue a refresh of the ticket's card (once per ticket version and event);
        `by`: who caused the event, for the card-thread note some events get."""
        if not self.slack.settings.support_triage_channel:
            return False
        created: bool = await self.slack.submit(
            TRIAGE_CARD_JOB,
            f"{TRIAGE_CARD_JOB}:{ticket.id}:{ticket.version}:{event or 'update'}",
            {"ticket_id": ticket.id, "event": event, "by": by},
        )
        if event == ESCALATED:  # the agents get a brief of what the customer needs
            await self.slack.submit(
                BRIEF_JOB, f"{BRIEF_JOB}:{ticket.id}:{ticket.version}", {"ticket_id": ticket.id}
            )
            if self.slack.settings.support_assignment == "round_robin":
                await self.slack.submit(
                    ASSIGN_JOB,
                    f"{ASSIGN_JOB}:{ticket.id}:{ticket.version}",
                    {"ticket_id": ticket.id},
                )
        return created

    async def card_button(self, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        click = Click.of(body, action)
        user, channel, number = click.user, click.channel, click.value
        if not await self.directory.is_agent(user):
            await self.ephemeral(channel, user, NOT_AN_AGENT)
            return
        ticket = await self.store.by_number(number)
        if ticket is None:
            await self.ephemeral(channel, user, refusal_text("not_found", number, None))
            return
        result = await self.act(ticket, str(action.get("action_id")), user)
        if result is not None and not result.ok:
            await self.ephemeral(channel, user, refusal_text(result.reason, number, result.ticket))

    async def act(self, ticket: TicketInfo, action_id: str, user: str) -> Transition | None:
        """One agent's action on a ticket, from a card button or an emoji: the transition,
        the card's refresh (on a refusal too: the card looked at may be out of date) and,
        on a resolve, the features that follow one. None for an unknown action."""
        transitions = {
            CLAIM_ACTION: lambda: self.store.claim(ticket.id, user),
            UNCLAIM_ACTION: lambda: self.store.unclaim(ticket.id, user),
            HAND_BACK_ACTION: lambda: self.store.hand_back(ticket.id),
            RESOLVE_ACTION: lambda: self.store.resolve(ticket.id, user),
            REOPEN_ACTION: lambda: self.store.reopen(ticket.id),
        }
        if action_id not in transitions:
            return None
        result = await transitions[action_id]()
        logger.info("%s on %s by %s: %s", action_id, ticket.number, user, result.reason or "ok")
        if result.ticket is not None:
            await self.refresh_card(result.ticket, action_id if result.ok else None)
        if result.ok and action_id == RESOLVE_ACTION and result.ticket is not None:
            await self.tell_resolved(result.ticket)
        return result

    async def tell_resolved(self, ticket: TicketInfo) -> None:
        """Features that act on a resolve (the satisfaction question) hear about it;
        their failure never undoes the resolve."""
        for feature in self.slack.features:
            hook = getattr(feature, "ticket_resolved", None)
            if hook is None:
                continue
            try:
                await hook(ticket)
            except Exception as exc:
                logger.warning("after resolving %s: %s", ticket.number, exc)

    async def talk_to_human(self, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        click = Click.of(body, action)
        user, channel, number = click.user, click.channel, click.value
        ticket = await self.store.by_number(number)
        if ticket is None:
            await self.ephemeral(channel, user, refusal_text("not_found", number, None))
            return
        customer = user == ticket.slack_user_id
        if not customer and not await self.directory.is_agent(user):
            await self.ephemeral(channel, user, NOT_YOUR_TICKET)
            return
        reason = (
            "the customer pressed Talk to a person" if customer else "an agent asked for a person"
        )
        result = await self.store.escalate(ticket.id, reason)
        if not result.ok or result.ticket is None:
            await self.ephemeral(channel, user, refusal_text(result.reason, number, result.ticket))
            return
        escalated = result.ticket
        message = body.get("message") or {}
        container = body.get("container") or {}
        replace = None
        if message.get("blocks") and container.get("message_ts"):
            replace = {
                "channel": str(container.get("channel_id") or channel),
                "ts": str(container["message_ts"]),
                "blocks": without_handoff_button(list(message["blocks"]), number),
                "text": str(message.get("text") or ""),
            }
        await self.slack.submit(
            CUSTOMER_NOTICE_JOB,
            f"handoff_notice:{escalated.id}:{escalated.version}",
            {
                "channel": escalated.channel_id,
                "thread_ts": escalated.thread_ts,
                "text": HANDOFF_NOTICE,
                "ticket": escalated.number,
                "replace": replace,
            },
        )
        await self.refresh_card(escalated, ESCALATED)

    async def show_trace(self, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        """Open a modal with the ticket's latest traces, for support agents only."""
        started = time.monotonic()
        click = Click.of(body, action)
        user, channel, number = click.user, click.channel, click.value
        if not await self.directory.is_agent(user):
            await self.ephemeral(channel, user, NOT_AN_AGENT)
            return
        try:
            budget = max(0.2, TRACE_TIMEOUT_SECONDS - (time.monotonic() - started))
            async with asyncio.timeout(budget):
                view = await self.trace_view(number)
                if view is not None:
                    await self.slack.client.views_open(
                        trigger_id=str(body.get("trigger_id") or ""), view=view
                    )
        except Exception as exc:
            logger.warning("could not show the traces of %s to %s: %s", number, user, exc)
            await self.ephemeral(channel, user, TRACE_FAILED.format(number=escape(number)))
            return
        if view is None:
            await self.ephemeral(channel, user, refusal_text("not_found", number, None))

    async def trace_view(self, number: str) -> View | None:
        """The trace modal of ticket `number` (None: no such ticket)."""
        ticket = await self.store.by_number(number)
        if ticket is None:
            return None
        run_ids = await self.store.latest_run_ids(ticket.id, limit=MAX_TRACE_RUNS)
        traces = TraceStore(self.slack.core.db.sessions)
        runs = [run for run_id in run_ids if (run := await traces.load(run_id)) is not None]
        sessions = self.slack.core.db.sessions
        votes = {run.id: await run_votes(sessions, run.id) for run in runs}
        return trace_modal(ticket.number, runs, votes)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        """Tell one person something in `channel` (the card's channel; nothing without)."""
        if channel:
            await tell(
                self.slack.client, user, text, channel=channel, within_s=EPHEMERAL_TIMEOUT_SECONDS
            )

    # --- helpers ------------------------------------------------------------------------

    def _bind(self, slack: SlackRuntime) -> None:
        if self._slack is slack:
            return
        self._slack = slack
        self._store = TicketStore(slack.core.db.sessions)


__all__ = ["TriageFeature"]
