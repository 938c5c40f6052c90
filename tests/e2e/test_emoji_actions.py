"""Emoji actions over HTTP: signed reaction_added events from agents and customers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from storage.models import Ticket
from storage.ticket_info import CLAIMED, ESCALATED, RESOLVED
from tests.e2e.conftest import AGENT_ID, SUPPORT_CHANNEL, BotServer, run_bot_server
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    cards,
    idle,
    triage_settings,
)
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import dm_event, new_ts


@pytest.fixture
async def bot(triage_settings: Settings) -> AsyncIterator[BotServer]:  # noqa: F811
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as server:
        yield server


def reaction(user: str, name: str, channel: str, ts: str) -> dict[str, Any]:
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": "U0CUST",
        "event_ts": new_ts(),
    }


async def tickets(bot: BotServer) -> list[Ticket]:
    async with bot.slack.core.db.sessions() as session:
        return list((await session.scalars(select(Ticket).order_by(Ticket.id))).all())


async def test_ticket_emoji_on_a_channel_message_opens_one_ticket_with_a_card(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    ts = new_ts()  # a customer's message the bot was not mentioned in (not answered)
    fake_slack.messages.append(Posted(SUPPORT_CHANNEL, ts, "my order never arrived", None,
                                      None, None, user="U0CUST", bot_id=""))  # fmt: skip
    await bot.post_event(reaction("U0CUST", "ticket", SUPPORT_CHANNEL, ts))  # not an agent
    await idle(bot)
    assert await tickets(bot) == []
    await bot.post_event(reaction(AGENT_ID, "ticket", SUPPORT_CHANNEL, ts))
    await bot.post_event(reaction(AGENT_ID, "ticket", SUPPORT_CHANNEL, ts))  # twice
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1, within=10)
    await idle(bot)
    [ticket] = await tickets(bot)
    assert ticket.status == ESCALATED and ticket.thread_ts == ts
    assert ticket.slack_user_id == "U0CUST" and ":ticket:" in (ticket.escalation_reason or "")
    assert len(cards(fake_slack)) == 1


async def test_eyes_claims_and_check_mark_resolves_for_agents_only(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    event = dm_event("Where is my order ORD-10011?")
    await bot.post_event(event)
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1, within=10)
    await idle(bot)
    [card] = cards(fake_slack)
    triage = bot.slack.settings.support_triage_channel or ""

    await bot.post_event(reaction("U0CUST", "white_check_mark", triage, card.ts))
    await idle(bot)
    assert [t.status for t in await tickets(bot)] != [RESOLVED]  # a customer: nothing

    await bot.post_event(reaction(AGENT_ID, "eyes", triage, card.ts))
    await idle(bot)
    [ticket] = await tickets(bot)
    assert ticket.status == CLAIMED and ticket.assignee == AGENT_ID

    # On the customer's own thread root, too.
    await bot.post_event(reaction(AGENT_ID, "white_check_mark", "D0CUST", event["ts"]))
    await idle(bot)
    [ticket] = await tickets(bot)
    assert ticket.status == RESOLVED
    async with bot.slack.core.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 1
