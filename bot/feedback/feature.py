"""Feedback on every answer (Slack's thumbs up / down under each reply, stored) and the
satisfaction question when a ticket is resolved (`bot.feedback.csat`).

A vote is stored against the reply's message and its pipeline run (`storage.feedback`):
one per person and reply, a changed vote replaces the old one, a re-click does nothing.
A new thumbs-down offers the customer a person (an ephemeral message with *Talk to a
person*, handled by the triage feature like the reply's own button) and refreshes the
ticket's triage card, which counts the votes and flags a thumbs-down. The trace modal
lists the votes of its run (`bot.triage.trace_views`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import section
from bot.feedback.csat import CSAT_JOB, CsatQuestionJob, ask_on_resolve, register_csat
from bot.feedback.numbers import SupportNumbersSection
from bot.home.feature import HomeSection
from bot.interactions import Click
from bot.messages.views import FEEDBACK_ACTION, parse_feedback_value, talk_to_human_button
from bot.metrics import FEEDBACK_VOTES
from bot.slack_calls import call
from storage.feedback import Vote, record_vote
from storage.ticket_info import TicketInfo
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime
    from bot.worker import JobHandler

logger = logging.getLogger(__name__)

SORRY_TEXT = (
    "Sorry that didn't help. A person from the support team can take over this conversation."
)


class FeedbackFeature:
    """Feedback buttons under replies, and the satisfaction question on resolve
    (`bot.feedback.csat`)."""

    def __init__(self) -> None:
        self._slack: SlackRuntime | None = None

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        self._slack = slack

        async def on_feedback(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await feedback_clicked(slack, body, action)

        app.action(FEEDBACK_ACTION)(on_feedback)
        register_csat(app, slack)

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        self._slack = slack
        return {CSAT_JOB: CsatQuestionJob(slack)}

    async def ticket_resolved(self, ticket: TicketInfo) -> None:
        """Told by the triage feature when an agent resolved a ticket: ask the customer."""
        if self._slack is not None:
            await ask_on_resolve(self._slack, ticket)

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        return [SupportNumbersSection(slack.core.db.sessions)]


async def feedback_clicked(
    slack: SlackRuntime, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    click = Click.of(body, action)
    parsed = parse_feedback_value(click.value)
    message = body.get("message") or {}
    message_ts = str(message.get("ts") or (body.get("container") or {}).get("message_ts") or "")
    if parsed is None or not click.user or not click.channel or not message_ts:
        logger.info("feedback click without a reply to attach it to; ignored")
        return
    vote, number, run_id = parsed
    sessions = slack.core.db.sessions
    change = await record_vote(
        sessions,
        ticket_number=number,
        channel_id=click.channel,
        message_ts=message_ts,
        run_id=run_id,
        user_id=click.user,
        vote=_vote(vote),
    )
    if not change.changed or change.ticket_id is None:
        return
    FEEDBACK_VOTES.labels(vote=vote).inc()
    logger.info("reply feedback", extra={"vote": vote, "ticket": number, "run_id": run_id})
    if vote == "down":
        thread_ts = str(message.get("thread_ts") or message_ts)
        await call(
            "chat.postEphemeral",
            slack.client.chat_postEphemeral(
                channel=click.channel,
                user=click.user,
                thread_ts=thread_ts,
                text=SORRY_TEXT,
                blocks=[section(SORRY_TEXT), talk_to_human_button(number)],
            ),
            best_effort=True,
        )
    touched = await TicketStore(sessions).touch(change.ticket_id)
    if touched is not None:
        await _refresh_card(slack, touched)


async def _refresh_card(slack: SlackRuntime, ticket: Any) -> None:
    """The triage card counts the votes: have it redrawn (when triage is set up)."""
    from bot.triage.feature import TriageFeature

    for feature in slack.features:
        if isinstance(feature, TriageFeature):
            await feature.refresh_card(ticket, "feedback")


def _vote(value: str) -> Vote:
    return "up" if value == "up" else "down"


__all__ = ["FeedbackFeature", "feedback_clicked"]
