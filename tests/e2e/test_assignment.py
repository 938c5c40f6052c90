"""Round-robin assignment over HTTP: escalations claimed for agents who are not away,
within the cap; /support away and back, agents only."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from bot.triage.views import NOT_AN_AGENT, REASSIGN_ACTION
from storage.models import Ticket
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_slack import post_form
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    AGENT2,
    STRANGER,
    TRIAGE,
    block_action,
    card_thread,
    cards,
    click,
    ephemerals,
    idle,
    text_of,
    triage_settings,
)
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import TEAM_ID, dm_event


async def support(bot: BotServer, user: str, text: str) -> str:
    fields = {
        "token": "legacy", "team_id": TEAM_ID, "team_domain": "fake", "channel_id": "D0X",
        "channel_name": "directmessage", "user_id": user, "user_name": user.lower(),
        "command": "/support", "text": text, "api_app_id": "A0TEST",
        "response_url": "https://hooks.slack.test/commands/2", "trigger_id": "1.2.x",
    }  # fmt: skip
    response = await post_form(bot, fields)
    assert response.status_code == 200, response.text
    return response.text


async def escalate(bot: BotServer, fake: FakeSlack, user: str, channel: str) -> None:
    await bot.post_event(dm_event("I want to talk to a person", user=user, channel=channel))
    await fake.wait_for(lambda: any(c.channel for c in cards(fake)), within=10)
    await idle(bot)


async def assignees(bot: BotServer) -> list[str | None]:
    async with bot.slack.core.db.sessions() as session:
        return [t.assignee for t in (await session.scalars(select(Ticket).order_by(Ticket.id)))]


async def test_escalations_go_round_robin_to_agents_who_are_not_away_within_the_cap(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    settings = triage_settings.model_copy(
        update={"support_assignment": "round_robin", "support_max_open_per_agent": 1}
    )
    async with run_bot_server(settings, features=[HomeFeature(), TriageFeature()]) as bot:
        assert "Only the support team" in await support(bot, "U0CUST", "away")
        assert "You're away" in await support(bot, AGENT2, "away")
        await escalate(bot, fake_slack, "U0C1", "D0C1")
        await escalate(bot, fake_slack, "U0C2", "D0C2")  # AGENT_ID holds one: at the cap
        assert await assignees(bot) == [AGENT_ID, None]
        dms = [m.text for m in fake_slack.posts(AGENT_ID)]
        assert any("You were assigned T-00001" in t for t in dms)

        assert "Welcome back" in await support(bot, AGENT2, "back")
        await escalate(bot, fake_slack, "U0C3", "D0C3")
        assert (await assignees(bot))[2] == AGENT2


def reassign(user: str, chosen: str, card: Posted) -> dict[str, Any]:
    """The card's *Assign to…* users_select, as Slack sends a pick."""
    payload = block_action(REASSIGN_ACTION, "", user=user, channel=TRIAGE, message=card)
    payload["actions"][0] = {"action_id": REASSIGN_ACTION, "block_id": "triage_card_actions",
                             "type": "users_select", "selected_user": chosen}  # fmt: skip
    return payload


def assigned_notes(fake: FakeSlack, card: Posted) -> list[str]:
    return [m.text for m in card_thread(fake, card) if "was assigned to you" in m.text]


async def test_an_agent_reassigns_from_the_card_and_the_new_assignee_is_pinged_once(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as bot:
        await escalate(bot, fake_slack, "U0C1", "D0C1")
        card = cards(fake_slack)[0]
        assert REASSIGN_ACTION in json.dumps(card.blocks)

        await click(bot, reassign(AGENT_ID, AGENT2, card))
        await idle(bot)
        assert await assignees(bot) == [AGENT2]
        assert assigned_notes(fake_slack, card) == [
            f":arrow_right: <@{AGENT2}>, T-00001 was assigned to you by <@{AGENT_ID}>."
        ]
        assert f"<@{AGENT2}>" in text_of(cards(fake_slack)[0].blocks)  # the card, redrawn

        await click(bot, reassign(AGENT_ID, AGENT2, card))  # the same pick again
        await click(bot, reassign("U0C1", AGENT_ID, card))  # the customer: not an agent
        await click(bot, reassign(AGENT2, STRANGER, card))  # a non-agent cannot be assigned
        await idle(bot)
        assert await assignees(bot) == [AGENT2]
        assert len(assigned_notes(fake_slack, card)) == 1
        assert any("already has T-00001" in t for t in ephemerals(fake_slack, AGENT_ID))
        assert ephemerals(fake_slack, "U0C1") == [NOT_AN_AGENT]
        assert any("can be assigned" in t for t in ephemerals(fake_slack, AGENT2))

        await click(bot, reassign(AGENT2, AGENT_ID, card))  # and back to the first agent
        await idle(bot)
        assert await assignees(bot) == [AGENT_ID]
        assert len(assigned_notes(fake_slack, card)) == 2
