"""/faq in Slack: the slash command, the message shortcut and the modal submission.

    from bot.faq.feature import FaqFeature
    open_slack_runtime(settings, features=[FaqFeature()])

Every listener is quick (the app processes before responding, see `bot.app`): it opens a
modal or stores a job, then acknowledges; the work happens in the `faq_build` job
(`bot.faq.job`), in whichever worker claims it.

- `/faq` opens the modal (`bot.faq.modal`); `/faq 20` preselects 20 questions;
  `/faq help` (or anything else it does not understand) answers with usage, ephemerally.
- The message shortcut `faq_from_message` ("Make an FAQ from these files") opens the same
  modal for the files of that message, listed rather than asked for; a message without
  files gets a modal saying so. It opens the modal instead of starting at once so the
  number of questions, the mode and the channel can still be chosen.
- A submission is validated (no files, questions outside 1..50, more questions than a
  non-agent may ask or a spent daily token budget (`pipelines.faq.limits`, checked again
  by the job), a channel the requester is not a member of (`bot.faq.access`) -> inline
  errors via `response_action: errors`), queued with the view id as its dedupe key (a redelivered
  submission queues nothing new), then the modal is replaced by a short confirmation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import escape
from bot.faq.access import quick_refusal
from bot.faq.approval import FaqReview, PendingFaqSection
from bot.faq.job import FAQ_JOB, FaqJob
from bot.faq.modal import (
    CHANNEL_BLOCK,
    DEFAULT_QUESTIONS,
    HELP_TEXT,
    MODAL_CALLBACK,
    NO_FILES_MODAL_TEXT,
    QUESTIONS_BLOCK,
    SHORTCUT_CALLBACK,
    faq_modal,
    notice_modal,
    read_submission,
    submitted_modal,
)
from bot.faq.state import FaqJobRequest
from bot.slack_calls import SLACK_CALL_ERRORS
from bot.worker import JobHandler
from pipelines.faq.limits import FAQ_BUDGET_TEXT
from pipelines.llm.budget import DailyBudget, Spender

if TYPE_CHECKING:
    from bot.home.feature import HomeSection
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

HELP_WORDS = frozenset({"help", "-h", "--help", "?", "usage"})
HISTORY_MARGIN_SECONDS = 300  # clock skew between us and Slack, for finding our messages
UNUSABLE_FILE_MODES = frozenset({"tombstone", "hidden_by_limit", "external"})


def faq_job_key(team_id: str, view_id: str) -> str:
    """One job per submitted modal: Slack's redelivery of a submission carries the same view."""
    return f"faq:{team_id}:{view_id}"


def command_reply(text: str) -> tuple[int | None, str | None]:
    """(questions to preselect, None) to open the modal, or (None, usage text) to answer."""
    words = text.strip()
    if not words:
        return DEFAULT_QUESTIONS, None
    if words.isdigit():
        return int(words), None
    if words.lower() in HELP_WORDS:
        return None, HELP_TEXT
    return None, f"I did not understand `{escape(words[:100])}`.\n\n{HELP_TEXT}"


def message_files(shortcut: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The files of the shortcut's message that may be downloadable."""
    files = (shortcut.get("message") or {}).get("files") or []
    return [f for f in files if f.get("id") and f.get("mode") not in UNUSABLE_FILE_MODES]


async def submission_refusal(slack: SlackRuntime, questions: int, user_id: str) -> str | None:
    """Why the modal refuses a submission: too many questions for a non-agent, or the
    requester's (or everyone's) daily token budget is spent (`pipelines.llm.budget`)."""
    is_agent = await slack.agents.is_agent(user_id)
    reason = slack.settings.faq_limits.questions_refusal(questions, is_agent)
    if reason is None:
        budget = DailyBudget.from_settings(slack.core.db.sessions, slack.settings)
        scope = await budget.refusal(Spender(user_id, is_agent))
        reason = None if scope is None else FAQ_BUDGET_TEXT[scope]
    return None if reason is None else reason[0].upper() + reason[1:]


class FaqFeature:
    """The `bot.wiring.Feature` of /faq."""

    def __init__(self, *, progress_interval: float = 1.5, max_attempts: int = 4) -> None:
        self.progress_interval = progress_interval
        self.max_attempts = max_attempts

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        job = FaqJob(
            slack.client,
            slack.core.db,
            slack.core.llm,
            slack.settings,
            api_url=slack.settings.slack_api_url,
            progress_interval=self.progress_interval,
            is_agent=slack.agents.is_agent,
            limits=slack.settings.faq_limits,
        )
        return {FAQ_JOB: job}

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        """Agents: other people's FAQs waiting for approval (`bot.faq.approval`)."""
        return [PendingFaqSection(slack.core.db)]

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        FaqReview(slack).register(app)

        async def on_command(
            ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
        ) -> None:
            questions, usage = command_reply(str(command.get("text") or ""))
            if questions is None:
                await ack(text=usage or HELP_TEXT, response_type="ephemeral")
                return
            view = faq_modal(channel_id=command.get("channel_id"), questions=questions)
            try:
                await client.views_open(trigger_id=command["trigger_id"], view=view)
            except SLACK_CALL_ERRORS as exc:
                logger.warning("/faq: views.open failed: %s", exc)
                await ack(
                    text="Sorry, I could not open the FAQ form. Please try `/faq` again.",
                    response_type="ephemeral",
                )
                return
            await ack()

        async def on_shortcut(
            ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient
        ) -> None:
            await ack()  # sent when this listener returns (process_before_response)
            files = message_files(shortcut)
            channel = (shortcut.get("channel") or {}).get("id")
            if files:
                view = faq_modal(channel_id=channel, message_files=files)
            else:
                view = notice_modal("Make an FAQ", NO_FILES_MODAL_TEXT)
            try:
                await client.views_open(trigger_id=shortcut["trigger_id"], view=view)
            except SLACK_CALL_ERRORS as exc:
                logger.warning("FAQ shortcut: views.open failed: %s", exc)

        async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
            submission = read_submission(view)
            if isinstance(submission, dict):
                await ack(response_action="errors", errors=submission)
                return
            user_id = str((body.get("user") or {}).get("id") or "")
            # Only where the requester is a member (`bot.faq.access`; the job checks fully).
            refusal, too_large = await asyncio.gather(
                quick_refusal(slack.client, submission.channel_id, user_id),
                submission_refusal(slack, submission.questions, user_id),
            )
            if refusal is not None:
                await ack(response_action="errors", errors={CHANNEL_BLOCK: refusal})
                return
            if too_large is not None:  # the job checks again and decides
                await ack(response_action="errors", errors={QUESTIONS_BLOCK: too_large})
                return
            team_id = str((body.get("team") or {}).get("id") or "")
            view_id = str(view.get("id") or body.get("trigger_id") or "")
            request = FaqJobRequest(
                team_id=team_id,
                user_id=user_id,
                channel_id=submission.channel_id,
                files=submission.files,
                questions=submission.questions,
                mode=submission.mode,
                title=submission.title,
                view_id=view_id,
            )
            payload = {
                "request": request.model_dump(mode="json"),
                "enqueued_at": f"{time.time() - HISTORY_MARGIN_SECONDS:.6f}",
            }
            created = await slack.submit(
                FAQ_JOB, faq_job_key(team_id, view_id), payload, max_attempts=self.max_attempts
            )
            logger.info(
                "FAQ request %s",
                "queued" if created else "duplicate",
                extra={
                    "view_id": view_id,
                    "user": request.user_id,
                    "channel": request.channel_id,
                    "files": len(request.files),
                    "questions": request.questions,
                },
            )
            await ack(response_action="update", view=submitted_modal(submission.channel_id))

        app.command("/faq")(on_command)
        app.shortcut(SHORTCUT_CALLBACK)(on_shortcut)
        app.view(MODAL_CALLBACK)(on_submit)


__all__ = ["FaqFeature", "command_reply", "faq_job_key", "message_files"]
