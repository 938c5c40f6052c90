"""The gap loop in Slack: drafts from resolved tickets, approved in App Home.

When an agent opens App Home, every resolved ticket an agent answered in and not drafted
yet gets a `kb_draft` job (keyed by the ticket: one job per ticket, ever), which condenses
it into a draft (`pipelines.knowledge.drafts`). Agents see the pending drafts in App Home
with Approve / Edit / Discard (Edit opens the question and answer in a modal; saving it
approves the edited text); an approved one answers the next customer at once. Every click
and submission is checked again (a non-agent's is refused), and a decision is made once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import (
    Block,
    actions,
    button,
    context,
    divider,
    escape,
    header,
    input_block,
    modal,
    section,
)
from bot.home.feature import HomeViewer, republish_home
from bot.interactions import Click, submitted_text, tell
from bot.slack_calls import call
from pipelines.knowledge.drafts import decide_draft, draft_from_ticket
from storage.knowledge import open_gaps
from storage.knowledge_drafts import (
    Draft,
    DraftDecision,
    get_draft,
    pending_drafts,
    tickets_to_draft,
)
from storage.queue import LeasedJob

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

DRAFT_JOB = "kb_draft"
APPROVE_DRAFT = "kb_draft_approve"
DISCARD_DRAFT = "kb_draft_discard"
EDIT_DRAFT = "kb_draft_edit"
EDIT_MODAL = "kb_draft_edit_modal"
QUESTION_BLOCK, ANSWER_BLOCK, TEXT_ACTION = "kb_draft_question", "kb_draft_answer", "text"
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
            button("Edit", EDIT_DRAFT, str(draft.id)),
            button("Discard", DISCARD_DRAFT, str(draft.id), style="danger"),
            block_id=f"kb_draft_{draft.id}",
        ),
    ]


def edit_modal(draft: Draft) -> dict[str, Any]:
    """The draft's question and answer, editable; saving approves what the agent wrote."""

    def text_input(value: str, limit: int, multiline: bool) -> Block:
        return {
            "type": "plain_text_input", "action_id": TEXT_ACTION, "initial_value": value,
            "max_length": limit, "multiline": multiline,
        }  # fmt: skip

    return modal(
        "Edit knowledge draft",
        [
            input_block(QUESTION_BLOCK, "Question", text_input(draft.question[:2000], 2000, False)),
            input_block(ANSWER_BLOCK, "Answer", text_input(draft.answer[:3000], 3000, True)),
            context(f"From {escape(draft.ticket_number)}. Saving approves it: it answers at once."),
        ],
        submit="Save and approve",
        close="Cancel",
        callback_id=EDIT_MODAL,
        private_metadata=str(draft.id),
    )


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

    async def on_edit(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await edit_clicked(slack, body, action)

    async def on_edited(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        question, answer = (
            submitted_text(view, b, TEXT_ACTION).strip() for b in (QUESTION_BLOCK, ANSWER_BLOCK)
        )
        missing = {b: "Cannot be empty." for b, t in ((QUESTION_BLOCK, question),
                                                      (ANSWER_BLOCK, answer)) if not t}  # fmt: skip
        user = str((body.get("user") or {}).get("id") or "")
        if not missing and not await slack.agents.is_agent(user):
            missing = {ANSWER_BLOCK: NOT_AN_AGENT_TEXT}
        if missing:
            await ack(response_action="errors", errors=missing)
            return
        await ack()
        draft_id = str(view.get("private_metadata") or "")
        if draft_id.isdigit():
            draft = await decide_draft(
                slack.core.db, int(draft_id), "approved", user, (question, answer)
            )
            logger.info("knowledge draft edited", extra={"changed": bool(draft)})
        await republish_home(slack.features, user, str((body.get("team") or {}).get("id") or ""))

    app.action(APPROVE_DRAFT)(on_review)
    app.action(DISCARD_DRAFT)(on_review)
    app.action(EDIT_DRAFT)(on_edit)
    app.view(EDIT_MODAL)(on_edited)


async def edit_clicked(
    slack: SlackRuntime, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    """Open the draft in the edit modal (agents only; a decided draft is not reopened)."""
    click = Click.of(body, action)
    if not click.user or not click.value.isdigit():
        return
    if not await slack.agents.is_agent(click.user):
        await tell(slack.client, click.user, NOT_AN_AGENT_TEXT, channel=click.channel,
                   within_s=NOTICE_TIMEOUT_SECONDS)  # fmt: skip
        return
    draft = await get_draft(slack.core.db.sessions, int(click.value))
    trigger = str(body.get("trigger_id") or "")
    if draft is None or draft.review != "pending" or not trigger:
        return
    await call(  # a stale trigger (over 3 s) only loses this modal: logged, not raised
        "views.open",
        slack.client.views_open(trigger_id=trigger, view=edit_modal(draft)),
        best_effort=True,
    )


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
    await republish_home(slack.features, click.user, str((body.get("team") or {}).get("id") or ""))
