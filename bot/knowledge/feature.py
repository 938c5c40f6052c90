"""The knowledge base in App Home, for agents: drafts from resolved tickets to approve
(`bot.knowledge.drafts`), and the documents answers cite, each with a Remove button.

Who may teach the bot: only a support agent removes knowledge. The button is shown to
agents only, and every click is checked again here (a crafted click from anyone else is
refused by DM, as `bot.faq.approval` does). Removing a document deletes every version,
its passages and their vectors (`storage.knowledge.remove_document`); every process's
index follows at its next search. The clicker's App Home is then published again, so the
document leaves the list.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import Block, actions, button, context, divider, escape, header, section
from bot.home.feature import HomeSection, HomeViewer, republish_home
from bot.interactions import Click, tell
from bot.knowledge.drafts import DRAFT_JOB, DraftJob, DraftsSection, register_draft_review
from bot.knowledge.shortcut import ADD_JOB, AddJob, register_add_shortcut
from storage.db import Database
from storage.knowledge import DocumentInfo, list_documents, remove_document

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime
    from bot.worker import JobHandler

logger = logging.getLogger(__name__)

REMOVE_ACTION = "kb_remove_document"
MAX_LISTED = 10
NOTICE_TIMEOUT_SECONDS = 1.5
NOT_AN_AGENT_TEXT = "Only the support team can remove documents from the knowledge base."


def document_blocks(document: DocumentInfo) -> list[Block]:
    by = f"<@{escape(document.added_by)}>" if document.added_by.startswith("U") else "the operator"
    line = (
        f"*{escape(document.name)}* · version {document.version} · "
        f"{document.passages} passages · added by {by}"
    )
    return [
        section(line),
        actions(
            button("Remove", REMOVE_ACTION, document.name[:2000], style="danger"),
            block_id=f"kb_document_{document.id}",
        ),
    ]


class KnowledgeSection:
    """App Home, agents only: the searched documents (hidden when there are none)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        if not viewer.is_agent:
            return []
        documents = [d for d in await list_documents(self._db.sessions) if d.searchable]
        if not documents:
            return []
        blocks: list[Block] = [
            header("Knowledge base"),
            context("Documents answers cite (`supportbot kb add` or an agent's /faq)."),
        ]
        for document in documents[:MAX_LISTED]:
            blocks += document_blocks(document)
        if len(documents) > MAX_LISTED:
            blocks.append(
                context(f"… and {len(documents) - MAX_LISTED} more: `supportbot kb list`.")
            )
        blocks.append(divider())
        return blocks


class KnowledgeFeature:
    """The `bot.wiring.Feature` of the knowledge base's Slack surface."""

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        return {DRAFT_JOB: DraftJob(slack), ADD_JOB: AddJob(slack)}

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        return [DraftsSection(slack), KnowledgeSection(slack.core.db)]

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        register_draft_review(app, slack)
        register_add_shortcut(app, slack)

        async def on_remove(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await remove_clicked(slack, body, action)

        app.action(REMOVE_ACTION)(on_remove)


async def remove_clicked(
    slack: SlackRuntime, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    click = Click.of(body, action)
    if not click.user or not click.value:
        return
    if not await slack.agents.is_agent(click.user):
        await tell(
            slack.client,
            click.user,
            NOT_AN_AGENT_TEXT,
            channel=click.channel,
            within_s=NOTICE_TIMEOUT_SECONDS,
        )
        return
    removed = await remove_document(slack.core.db.sessions, click.value)
    logger.info("knowledge document removed", extra={"versions": removed})
    team = str((body.get("team") or {}).get("id") or "")
    await republish_home(slack.features, click.user, team)


__all__ = ["REMOVE_ACTION", "KnowledgeFeature", "KnowledgeSection"]
