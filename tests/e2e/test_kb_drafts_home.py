"""Done when: an escalated, agent-resolved ticket produces one draft entry; approving it
in App Home makes the next customer's same question answered from it. Over HTTP on the
offline provider: the customer's DM escalates, an agent answers (an `agent` turn, as the
triage relay records it) and resolves; the agent's App Home queues the draft job, lists
the draft, and the agent approves it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.knowledge.drafts import (
    ANSWER_BLOCK,
    APPROVE_DRAFT,
    DISCARD_DRAFT,
    EDIT_DRAFT,
    QUESTION_BLOCK,
    TEXT_ACTION,
)
from bot.knowledge.feature import KnowledgeFeature
from bot.settings import Settings
from storage.conversations import ConversationStore
from storage.knowledge_drafts import pending_drafts
from storage.models import Ticket
from storage.tickets import TicketStore
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_approval import agent_home, home_click
from tests.e2e.test_faq_slack import interact, settle
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import dm_event

QUESTION = "Can I pair two soundbars together?"
ANSWER = "Yes: hold the link button on both soundbars for five seconds until they beep."


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[HomeFeature(), KnowledgeFeature()]) as server:
        yield server


async def dm(bot: BotServer, fake: FakeSlack, text: str, user: str, channel: str) -> Any:
    event = dm_event(text, user=user, channel=channel)
    await bot.post_event(event)
    await fake.wait_for(lambda: bool(fake.posts(channel=channel, thread_ts=event["ts"])))
    return fake.posts(channel=channel, thread_ts=event["ts"])[0]


def draft_buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {
        element["action_id"]: element["value"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] in (APPROVE_DRAFT, EDIT_DRAFT, DISCARD_DRAFT)
    }


async def test_a_resolved_tickets_answer_becomes_knowledge_once_approved(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    first = await dm(bot, fake_slack, f"{QUESTION} I want to talk to a person.", "U0CUST", "D0C")
    assert "support team" in first.text
    db = bot.slack.core.db
    async with db.sessions() as session:
        ticket = (await session.scalars(select(Ticket))).one()
    assert ticket.status == "escalated"
    await ConversationStore(db.sessions).add_turn(ticket.id, "agent", "9.1", ANSWER, AGENT_ID)
    assert (await TicketStore(db.sessions).resolve(ticket.id, AGENT_ID)).ok

    assert draft_buttons(await agent_home(bot, fake_slack)) == {}  # drafting is queued
    await settle(bot)
    buttons = draft_buttons(await agent_home(bot, fake_slack))
    [draft] = await pending_drafts(db.sessions)
    assert buttons == {a: str(draft.id) for a in (APPROVE_DRAFT, EDIT_DRAFT, DISCARD_DRAFT)}
    assert draft.question == QUESTION and draft.ticket_number == ticket.ticket_number

    before = await dm(bot, fake_slack, QUESTION, "U0NEXT", "D0N1")
    assert "five seconds" not in before.text
    # The unanswered question is listed for agents as a knowledge gap.
    home_text = str(await agent_home(bot, fake_slack))
    assert "Questions the knowledge base could not answer" in home_text and QUESTION in home_text
    await interact(bot, home_click(APPROVE_DRAFT, str(draft.id), user=AGENT_ID))
    after = await dm(bot, fake_slack, QUESTION, "U0NEXT", "D0N2")
    assert "five seconds until they beep" in after.text
    assert f"Ticket {ticket.ticket_number} &gt; {QUESTION}" in after.text

    await agent_home(bot, fake_slack)  # no second draft for the same ticket
    await settle(bot)
    assert await pending_drafts(db.sessions) == []


def edited_submission(view: dict[str, Any], user: str, question: str, answer: str) -> Any:
    values = {
        QUESTION_BLOCK: {TEXT_ACTION: {"type": "plain_text_input", "value": question}},
        ANSWER_BLOCK: {TEXT_ACTION: {"type": "plain_text_input", "value": answer}},
    }
    return {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "fake"},
        "user": {"id": user, "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "token": "legacy",
        "trigger_id": "trigger-edit",
        "view": {**view, "id": "V0EDIT", "team_id": "T0TEST", "state": {"values": values}},
    }


async def test_an_agent_edits_a_draft_and_the_edited_answer_is_what_customers_get(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    await dm(bot, fake_slack, f"{QUESTION} I want to talk to a person.", "U0CUST", "D0C")
    db = bot.slack.core.db
    async with db.sessions() as session:
        ticket = (await session.scalars(select(Ticket))).one()
    await ConversationStore(db.sessions).add_turn(ticket.id, "agent", "9.1", ANSWER, AGENT_ID)
    assert (await TicketStore(db.sessions).resolve(ticket.id, AGENT_ID)).ok
    await agent_home(bot, fake_slack)
    await settle(bot)
    [draft] = await pending_drafts(db.sessions)

    await interact(bot, home_click(EDIT_DRAFT, str(draft.id), user=AGENT_ID))
    await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("views.open")), within=5)
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert draft.answer in json.dumps(view) and view["private_metadata"] == str(draft.id)

    edited = "Yes: hold the LINK button on both soundbars for ten seconds, then release it."
    refused = await interact(bot, edited_submission(view, "U0CUST", QUESTION, edited))
    assert "Only the support team" in refused.text  # a customer's forged submission
    assert [d.id for d in await pending_drafts(db.sessions)] == [draft.id]
    empty = await interact(bot, edited_submission(view, AGENT_ID, QUESTION, "  "))
    assert "Cannot be empty" in empty.text

    await interact(bot, edited_submission(view, AGENT_ID, QUESTION, edited))
    assert await pending_drafts(db.sessions) == []
    after = await dm(bot, fake_slack, QUESTION, "U0NEXT", "D0N3")
    assert "ten seconds, then release it" in after.text
    assert "five seconds" not in after.text
