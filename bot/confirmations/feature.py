"""Confirm before acting, in Slack: the buttons, the confirmed action, the expiry.

A reply that prepared side effects (`pipelines.support.confirmations`) carries one card
each. A click is decided in the database once (`storage.confirmations.decide`: a
conditional UPDATE; only the customer who asked; never after the expiry): Confirm stores,
in the same transaction, the `confirmed_action` job that does exactly that task, so a
double click, a replayed interaction or a restart between click and job still does it
once; Cancel and Change record the decision, and the card says what happened. When the
reply is posted, a `confirmation_expiry` job is queued for the expiry time
(`CONFIRM_EXPIRY_HOURS`): a confirmation still pending then is marked expired, the
ticket records it and the customer is told. No timer lives in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import escape
from bot.confirmations.views import (
    CANCEL_ACTION,
    CHANGE_ACTION,
    CONFIRM_ACTION,
    DECIDED_TEXT,
    EXPIRED_TEXT,
    REFUSAL_TEXT,
    decided,
)
from bot.home.feature import HomeSection
from bot.interactions import Click, tell
from bot.messages.intake import SLACK_MESSAGE_JOB
from bot.messages.reply_job import SlackReplyJob
from bot.slack_calls import Mrkdwn, SlackCalls, job_tag
from pipelines.support.confirmations import PendingTask, run_confirmed
from pipelines.support.contracts import IncomingMessage, SupportReply
from storage import confirmations
from storage.backends import Actor, BusinessSystems
from storage.confirmations import Outcome
from storage.models import utcnow
from storage.queue import LeasedJob
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime
    from bot.worker import JobHandler

logger = logging.getLogger(__name__)

CONFIRMED_JOB = "confirmed_action"
EXPIRY_JOB = "confirmation_expiry"
RESULT_EVENT_TYPE = "supportbot_confirmed"
OUTCOME_OF: dict[str, Outcome] = {
    CONFIRM_ACTION: "confirmed",
    CANCEL_ACTION: "cancelled",
    CHANGE_ACTION: "changed",
}


class ConfirmationsFeature:
    """Buttons on confirmation cards, and the jobs that act on or expire them."""

    def __init__(self) -> None:
        self._slack: SlackRuntime | None = None

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        async def on_decision(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await decision_clicked(slack, body, action)

        for action_id in OUTCOME_OF:
            app.action(action_id)(on_decision)

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        self._slack = slack
        reply_job = slack.handlers.get(SLACK_MESSAGE_JOB)
        if isinstance(reply_job, SlackReplyJob):
            reply_job.add_reply_observer(self)
        return {CONFIRMED_JOB: ConfirmedActionJob(slack), EXPIRY_JOB: ExpiryJob(slack)}

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        return []

    async def reply_posted(self, message: IncomingMessage, reply: SupportReply, ts: str) -> None:
        """Remember where each card is and queue its expiry (once per action)."""
        slack = self._slack
        if slack is None:
            return
        hours = slack.settings.confirm_expiry_hours
        for item in reply.pending:
            await confirmations.set_reply(slack.core.db.sessions, item.id, message.channel_id, ts)
            await slack.submit(
                EXPIRY_JOB,
                f"{EXPIRY_JOB}:{item.id}",
                {"action_id": item.id},
                run_after=utcnow() + dt.timedelta(hours=hours),
            )


async def decision_clicked(
    slack: SlackRuntime, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    click = Click.of(body, action)
    outcome = OUTCOME_OF.get(str(action.get("action_id") or ""))
    if outcome is None or not click.value.isdigit() or not click.user:
        return
    action_id = int(click.value)
    then_job = None
    if outcome == "confirmed":
        then_job = (CONFIRMED_JOB, f"{CONFIRMED_JOB}:{action_id}", {"action_id": action_id})
    decision = await confirmations.decide(
        slack.core.db.sessions, action_id, outcome, click.user, then_job
    )
    if not decision.ok:
        status = decision.action.status if decision.action else ""
        text = REFUSAL_TEXT.get(decision.reason, REFUSAL_TEXT["not_found"]).format(status=status)
        await tell(slack.client, click.user, text, channel=click.channel, within_s=1.5)
        return
    if then_job is not None:
        slack.jobs.wake()
    logger.info("confirmation decided", extra={"action_id": action_id, "outcome": outcome})
    assert decision.action is not None
    message = body.get("message") or {}
    if click.channel and message.get("ts") and message.get("blocks"):
        text = DECIDED_TEXT[outcome].format(summary=decision.action.summary)
        await SlackCalls(slack.client).update(
            click.channel,
            str(message["ts"]),
            Mrkdwn(str(message.get("text") or "")),
            blocks=decided(list(message["blocks"]), action_id, text),
            best_effort=True,  # cosmetic: the decision is stored and acted on already
        )


class ConfirmedActionJob:
    """`JobHandler` of `confirmed_action`: do exactly the confirmed task, once."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack
        self._calls = SlackCalls(slack.client)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        sessions = self._slack.core.db.sessions
        action = await confirmations.get(sessions, int(job.payload["action_id"]))
        if action is None or action.status != "confirmed":
            return {"skipped": "not confirmed"}
        ticket = await TicketStore(sessions).get(action.ticket_id)
        if ticket is None:
            return {"skipped": "no ticket"}
        actor = Actor(customer_id=action.customer_id or 0, slack_user_id=action.requester)
        task = PendingTask(action.kind, {k: str(v) for k, v in action.params.items()},
                           action.summary)  # fmt: skip
        # Keyed like the worker would have keyed it: a retry replays, never repeats.
        done = await run_confirmed(BusinessSystems(sessions), actor, action.request_id, task)
        await confirmations.finish(sessions, action.id, done.text)
        if done.action:
            await TicketStore(sessions).add_actions(ticket.id, [done.action])
        posted, _ = await self._calls.post_in_thread_once(
            ticket.channel_id, ticket.thread_ts, Mrkdwn(escape(done.text)),
            job_tag(RESULT_EVENT_TYPE, job.id), retry=job.is_retry,
        )  # fmt: skip
        return {"action": done.action, "ts": posted}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("a confirmed action failed for good: %s", error)


class ExpiryJob:
    """`JobHandler` of `confirmation_expiry`: a confirmation nobody answered expires."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack
        self._calls = SlackCalls(slack.client)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        sessions = self._slack.core.db.sessions
        decision = await confirmations.decide(
            sessions, int(job.payload["action_id"]), "expired", None
        )
        if not decision.ok or decision.action is None:
            return {"skipped": decision.reason}
        action = decision.action
        store = TicketStore(sessions)
        ticket = await store.add_actions(
            action.ticket_id, [f"confirmation expired: {action.summary}"[:200]]
        )
        hours = self._slack.settings.confirm_expiry_hours
        await self._calls.post(
            ticket.channel_id,
            EXPIRED_TEXT.format(summary=action.summary, hours=hours),
            thread_ts=ticket.thread_ts,
            best_effort=True,
        )
        return {"expired": action.id}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("confirmation expiry not recorded: %s", error)


__all__ = ["CONFIRMED_JOB", "EXPIRY_JOB", "ConfirmationsFeature", "decision_clicked"]
