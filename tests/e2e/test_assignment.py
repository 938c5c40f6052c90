"""Round-robin assignment over HTTP: escalations claimed for agents who are not away,
within the cap; /support away and back, agents only."""

from __future__ import annotations

from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from storage.models import Ticket
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_slack import post_form
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    AGENT2,
    cards,
    idle,
    triage_settings,
)
from tests.fakes.fake_slack import FakeSlack
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
