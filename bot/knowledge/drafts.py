"""The gap loop in Slack: drafts from resolved tickets, approved in App Home.

When an agent opens App Home, every resolved ticket an agent answered in and not drafted
yet gets a `kb_draft` job (keyed by the ticket: one job per ticket, ever), which condenses
it into a draft (`pipelines.knowledge.drafts`). Agents see the pending drafts in App Home
with Approve / Discard; an approved one answers the next customer at once. Every click is
checked again (a non-agent's is refused by DM), and a decision is made once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import Block, actions, button, context, divider, escape, header, section
from bot.home.feature import HomeFeature, HomeViewer
from bot.interactions import Click, tell
from pipelines.knowledge.drafts import decide_draft, draft_from_ticket
from storage.knowledge import open_gaps
from storage.knowledge_drafts import Draft, DraftDecision, pending_drafts, tickets_to_draft
from storage.queue import LeasedJob

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

DRAFT_JOB = "kb_draft"
APPROVE_DRAFT = "kb_draft_approve"
DISCARD_DRAFT = "kb_draft_discard"
DECISIONS: dict[str, DraftDecision] = {APPROVE_DRAFT: "approved", DISCARD_DRAFT: "discarded"}
MAX_LISTED = 5
NOTICE_TIMEOUT_SECONDS = 1.5
NOT_AN_AGENT_TEXT = "Only the support team can approve or discard knowledge drafts."


def draft_blocks(draft: Draft) -> list[Block]:
    head = f"*{escape(draft.question[:300])}*  ·  from {escape(draft.ticket_number)}"
    return [
        section(f"{head}\n{escape(draft.answer[:1500])}"),
        actions(
            button("Approve", APPROVE_DRAFT, str(draft.id), style="primary"),
            button("Discard", DISCARD_DRAFT, str(draft.id), style="danger"),
            block_id=f"kb_draft_{draft.id}",
        ),
    ]


class DraftsSection:
    """App Home, agents only: drafts waiting for review; queues drafting of new ones."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        if not viewer.is_agent:
            return []
        sessions = self._slack.core.db.sessions
        for ticket_id in await tickets_to_draft(sessions):
            await self._slack.submit(
                DRAFT_JOB, f"{DRAFT_JOB}:{ticket_id}", {"ticket_id": ticket_id}
            )
        drafts = await pending_drafts(sessions, MAX_LISTED + 1)
        gaps = await open_gaps(sessions, MAX_LISTED)
        blocks: list[Block] = []
        if drafts:
            blocks += [
                header("Knowledge drafts from resolved tickets"),
                context("What agents answered, condensed. Approved drafts answer at once."),
            ]
            for draft in drafts[:MAX_LISTED]:
                blocks += draft_blocks(draft)
        if gaps:
            asked = "\n".join(f"• {escape(gap.question[:200])}" for gap in gaps)
            blocks += [
                header("Questions the knowledge base could not answer"),
                section(asked),
                context("The newest first. Add a document that answers them: `supportbot kb add`."),
            ]
        if blocks:
            blocks.append(divider())
        return blocks


class DraftJob:
    """`JobHandler` of `kb_draft`: one ticket's draft (stored once)."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        core = self._slack.core
        ticket_id = int(job.payload["ticket_id"])
        drafted = await draft_from_ticket(core.db, core.llm, core.settings, ticket_id)
        return {"drafted": drafted}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("knowledge draft not made: %s", error)


def register_draft_review(app: AsyncApp, slack: SlackRuntime) -> None:
    async def on_review(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await review_clicked(slack, body, action)

    app.action(APPROVE_DRAFT)(on_review)
    app.action(DISCARD_DRAFT)(on_review)


async def review_clicked(
    slack: SlackRuntime, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    click = Click.of(body, action)
    decision = DECISIONS.get(str(action.get("action_id") or ""))
    if not click.user or decision is None or not click.value.isdigit():
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
    draft = await decide_draft(slack.core.db, int(click.value), decision, click.user)
    logger.info("knowledge draft review", extra={"decision": decision, "changed": bool(draft)})
    team = str((body.get("team") or {}).get("id") or "")
    for feature in slack.features:
        if isinstance(feature, HomeFeature):
            await feature.publish_home(click.user, team)
