"""The message shortcut "Add to knowledge base": a message's files become knowledge.

Agents only (who may teach the bot): anyone else gets a modal saying so and nothing is
stored. The listener acknowledges, checks, queues one `kb_add` job keyed by the click and
says so in a modal; the job downloads the files with the bot token (`bot.faq.files`, the
same limits as `/faq`), adds each readable one to the knowledge base (a changed file
replaces its earlier version, the same file changes nothing: a retried job stores nothing
twice) and tells the agent by DM what was added and what was skipped, and why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import escape
from bot.faq.feature import message_files
from bot.faq.files import TransientDownloadError, fetch_documents
from bot.faq.modal import FileRef, notice_modal
from bot.slack_calls import Mrkdwn, SlackCalls
from bot.worker import JobFailed
from pipelines.knowledge.library import NewDocument, add_to_knowledge
from storage.queue import LeasedJob

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

ADD_SHORTCUT = "kb_add_from_message"
ADD_JOB = "kb_add"
TITLE = "Knowledge base"
NOT_AN_AGENT_TEXT = "Only the support team can add documents to the knowledge base."
NO_FILES_TEXT = "This message has no files I can read. Use it on a message with documents."
QUEUED_TEXT = "Adding {count} file(s) to the knowledge base; I'll send you a message when done."


def register_add_shortcut(app: AsyncApp, slack: SlackRuntime) -> None:
    async def on_shortcut(ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str((shortcut.get("user") or {}).get("id") or "")
        files = message_files(shortcut)
        if not await slack.agents.is_agent(user):
            text = NOT_AN_AGENT_TEXT
        elif not files:
            text = NO_FILES_TEXT
        else:
            refs = [
                FileRef(id=str(f["id"]), name=str(f.get("name") or f["id"])).model_dump()
                for f in files
            ]
            key = f"{ADD_JOB}:{shortcut.get('trigger_id') or shortcut.get('action_ts')}"
            await slack.submit(ADD_JOB, key, {"user_id": user, "files": refs})
            text = QUEUED_TEXT.format(count=len(files))
        try:
            await client.views_open(
                trigger_id=shortcut["trigger_id"], view=notice_modal(TITLE, text)
            )
        except Exception as exc:  # the work is queued either way; the modal is a courtesy
            logger.warning("knowledge shortcut: views.open failed: %s", type(exc).__name__)

    app.shortcut(ADD_SHORTCUT)(on_shortcut)


class AddJob:
    """`JobHandler` of `kb_add`: download, add, and tell the agent."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack
        self._calls = SlackCalls(slack.client)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        user = str(job.payload["user_id"])
        refs = [FileRef.model_validate(f) for f in job.payload["files"]]
        try:
            fetched = await fetch_documents(
                self._slack.client,
                refs,
                token=self._slack.client.token or "",
                api_url=self._slack.settings.slack_api_url,
                give_up_on_transient=job.is_final_attempt,
            )
        except TransientDownloadError as exc:
            raise JobFailed(f"download failed: {exc}") from exc
        lines = []
        for doc in fetched.docs:
            added = await add_to_knowledge(
                self._slack.core.db,
                NewDocument(doc.title, doc.text),
                source="slack",
                added_by=user,
            )
            lines.append(
                f"• *{escape(doc.title)}*: {added.status}, version {added.version}, "
                f"{added.passages} passages"
            )
        lines += [f"• skipped {escape(str(rejected))}" for rejected in fetched.rejected]
        await self._calls.post(user, Mrkdwn("Knowledge base:\n" + "\n".join(lines)))
        return {"added": len(fetched.docs), "skipped": len(fetched.rejected)}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        user = str(job.payload["user_id"])
        await self._calls.post(
            user, f"I could not add those files to the knowledge base ({error[:200]})."
        )
