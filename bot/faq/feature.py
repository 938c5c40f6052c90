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
- A submission is validated (no files, questions outside 1..50, a channel the requester
  is not a member of (`bot.faq.access`) -> inline errors via `response_action: errors`), queued with the view id as its dedupe key (a redelivered
  submission queues nothing new), then the modal is replaced by a short confirmation.
"""

from __future__ import annotations

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
    SHORTCUT_CALLBACK,
    faq_modal,
    notice_modal,
    read_submission,
    submitted_modal,
)
from bot.faq.state import FaqJobRequest
from bot.slack_calls import SLACK_CALL_ERRORS
from bot.worker import JobHandler

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
            refusal = await quick_refusal(slack.client, submission.channel_id, user_id)
            if refusal is not None:
                await ack(response_action="errors", errors={CHANNEL_BLOCK: refusal})
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
