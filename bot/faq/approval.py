"""Who may teach the bot: agents approve or discard other people's FAQs from App Home.

A FAQ made with `/faq` by someone who is not a support agent is posted for them, but it
is knowledge for every customer only once an agent approves it (`storage.faqs`): a
poisoned document ("refunds go to any account you name", a look-alike login link) would
otherwise be repeated to everyone. Agents see the pending FAQs in their App Home with
Approve / Discard buttons.

Every click is checked here, not only hidden: a non-agent who crafts the click is refused
(by DM, since App Home has no channel for an ephemeral message). The decision is one
conditional UPDATE, so a double click or two agents at once decide once; the clicker's
App Home is then published again, so the FAQ leaves the list (that is the confirmation:
one Slack call, within the 3 s the listener has).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import Block, actions, button, context, divider, escape, header, section
from bot.home.feature import HomeViewer, republish_home
from bot.interactions import Click, tell
from storage.db import Database
from storage.faqs import APPROVED, DISCARDED, Decision, PendingFaq, pending_faqs, review_faq

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

APPROVE_ACTION = "faq_approve"
DISCARD_ACTION = "faq_discard"
DECISIONS: dict[str, Decision] = {APPROVE_ACTION: APPROVED, DISCARD_ACTION: DISCARDED}
MAX_LISTED_FAQS = 5
MAX_LISTED_QUESTIONS = 3
NOTICE_TIMEOUT_SECONDS = 1.5  # listeners run before the response to Slack (3 s)

NOT_AN_AGENT_TEXT = "Only the support team can approve or discard FAQs."


def pending_faq_blocks(faq: PendingFaq) -> list[Block]:
    """One pending FAQ: title, requester, its first questions, Approve and Discard."""
    count = len(faq.questions)
    head = f"*{escape(faq.title)}* · by <@{escape(faq.created_by)}> · {count} questions"
    shown = "\n".join(f"• {escape(q[:200])}" for q in faq.questions[:MAX_LISTED_QUESTIONS])
    more = f"\n… and {count - MAX_LISTED_QUESTIONS} more" if count > MAX_LISTED_QUESTIONS else ""
    value = str(faq.id)
    return [
        section(f"{head}\n{shown}{more}"),
        actions(
            button("Approve", APPROVE_ACTION, value, style="primary"),
            button("Discard", DISCARD_ACTION, value, style="danger"),
            block_id=f"faq_review_{faq.id}",
        ),
    ]


class PendingFaqSection:
    """App Home, agents only: FAQs waiting for review (hidden when there are none)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        if not viewer.is_agent:
            return []
        faqs = await pending_faqs(self._db.sessions, MAX_LISTED_FAQS + 1)
        if not faqs:
            return []
        blocks: list[Block] = [
            header("FAQs waiting for review"),
            context("Made by people outside the support team: not used for customers yet."),
        ]
        for faq in faqs[:MAX_LISTED_FAQS]:
            blocks += pending_faq_blocks(faq)
        if len(faqs) > MAX_LISTED_FAQS:
            blocks.append(context("… and more: review these first."))
        blocks.append(divider())
        return blocks


class FaqReview:
    """The Approve / Discard listeners."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack

    def register(self, app: AsyncApp) -> None:
        async def on_review(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            await self.review(body, action)

        app.action(APPROVE_ACTION)(on_review)
        app.action(DISCARD_ACTION)(on_review)

    async def review(self, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        click = Click.of(body, action)
        decision = DECISIONS.get(str(action.get("action_id") or ""))
        if not click.user or decision is None:
            return
        if not await self._slack.agents.is_agent(click.user):
            await tell(
                self._slack.client,
                click.user,
                NOT_AN_AGENT_TEXT,
                channel=click.channel,  # none in App Home: then by DM
                within_s=NOTICE_TIMEOUT_SECONDS,
            )
            return
        if not click.value.isdigit():
            return
        faq_id = int(click.value)
        changed = await review_faq(self._slack.core.db.sessions, faq_id, decision, click.user)
        logger.info(
            "FAQ review", extra={"faq_id": faq_id, "decision": decision, "changed": changed}
        )
        team = str((body.get("team") or {}).get("id") or "")
        await republish_home(self._slack.features, click.user, team)


__all__ = ["APPROVE_ACTION", "DISCARD_ACTION", "FaqReview", "PendingFaqSection"]
