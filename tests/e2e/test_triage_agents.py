"""Who is an agent, end to end: signed clicks over HTTP against the fake Slack.

Without SUPPORT_AGENT_IDS the triage channel's members are the agents; a member who left
loses access once the cached list expires, even while `conversations.members` fails (a
short grace, then nobody). With SUPPORT_AGENT_IDS set, membership grants nothing (that
case is in tests/e2e/test_triage_slack.py: STRANGER is a member there). A public or
shared triage channel is warned about at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.agents import AgentDirectory, channel_exposure
from bot.triage.feature import TriageFeature
from bot.triage.views import NOT_AN_AGENT, TRACE_ACTION
from tests.e2e.conftest import BotServer, make_settings, run_bot_server
from tests.e2e.test_triage_slack import block_action, click, ephemerals
from tests.fakes.fake_slack import FakeSlack

TRIAGE = "C0TRIAGE"
MEMBER = "U0MEMBER"
STRANGER = "U0STRANGER"
TTL, GRACE = 60.0, 120.0
NO_TICKET = "There is no ticket T-09999."  # what an agent is told; a non-agent is refused


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def membership_settings(fake_slack: FakeSlack, sqlite_url: str) -> Settings:
    fake_slack.channel_members[TRIAGE] = [MEMBER]
    return make_settings(
        fake_slack.api_url, sqlite_url, support_triage_channel=TRIAGE, support_agent_ids=[]
    )


@pytest.fixture
async def bot(membership_settings: Settings) -> AsyncIterator[BotServer]:
    features = [HomeFeature(), TriageFeature()]
    async with run_bot_server(membership_settings, features=features) as server:
        yield server


async def answer_to(bot: BotServer, fake: FakeSlack, user: str) -> str:
    """What `user` is told after pressing Trace on a ticket that does not exist."""
    before = len(ephemerals(fake, user))
    await click(bot, block_action(TRACE_ACTION, "T-09999", user=user, channel=TRIAGE))
    told = ephemerals(fake, user)
    assert len(told) == before + 1
    return told[-1]


async def test_a_member_who_left_loses_access_after_the_ttl_even_while_slack_fails(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    clock = Clock()
    bot.slack.agents = AgentDirectory(
        bot.slack.client, [], TRIAGE, ttl=TTL, grace=GRACE, clock=clock
    )
    assert await answer_to(bot, fake_slack, MEMBER) == NO_TICKET
    assert await answer_to(bot, fake_slack, STRANGER) == NOT_AN_AGENT

    # MEMBER leaves the channel, and from then on Slack cannot list the members.
    fake_slack.channel_members[TRIAGE] = []
    fake_slack.fail("conversations.members", status=500, times=None)
    clock.now += TTL + 1  # expired: a refresh is tried and fails, the old list still holds
    assert await answer_to(bot, fake_slack, MEMBER) == NO_TICKET
    clock.now += GRACE  # past the grace: the stale list is dropped
    assert await answer_to(bot, fake_slack, MEMBER) == NOT_AN_AGENT
    clock.now += 10
    assert await answer_to(bot, fake_slack, MEMBER) == NOT_AN_AGENT

    # Slack answers again: the fresh list decides (MEMBER rejoined).
    fake_slack.clear_faults()
    fake_slack.channel_members[TRIAGE] = [MEMBER]
    clock.now += 10
    assert await answer_to(bot, fake_slack, MEMBER) == NO_TICKET


async def test_membership_is_read_page_by_page_and_cached(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    crowd = [f"U{n:06d}" for n in range(2500)]
    fake_slack.channel_members[TRIAGE] = [*crowd, MEMBER]
    assert await answer_to(bot, fake_slack, MEMBER) == NO_TICKET
    assert await answer_to(bot, fake_slack, STRANGER) == NOT_AN_AGENT
    assert len(fake_slack.calls_to("conversations.members")) == 3  # 1000 a page, then cached


async def test_a_public_triage_channel_is_warned_about_at_start_up(
    fake_slack: FakeSlack, membership_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.channel_info[TRIAGE] = {"is_private": False, "is_ext_shared": False}
    caplog.set_level(logging.WARNING, logger="bot.triage.agents")
    async with run_bot_server(membership_settings, features=[TriageFeature()]) as server:
        warning = server.slack.agents.setup_warning
    assert warning is not None and warning in caplog.text
    assert f"SUPPORT_TRIAGE_CHANNEL {TRIAGE} is public" in warning
    assert "act as an agent" in warning and "set SUPPORT_AGENT_IDS" in warning


async def test_a_private_triage_channel_is_not_warned_about(
    fake_slack: FakeSlack, membership_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.channel_info[TRIAGE] = {"is_private": True}
    caplog.set_level(logging.WARNING, logger="bot.triage.agents")
    async with run_bot_server(membership_settings, features=[TriageFeature()]) as server:
        assert server.slack.agents.setup_warning is None
    assert "SUPPORT_TRIAGE_CHANNEL" not in caplog.text
    assert len(fake_slack.calls_to("conversations.info")) == 1


@pytest.mark.parametrize(
    ("channel", "problems"),
    [
        ({"is_private": True}, []),
        ({"is_private": False}, ["public"]),
        ({"is_private": True, "is_ext_shared": True}, ["shared"]),
        ({"is_private": True, "is_org_shared": True}, ["shared"]),
        ({"is_private": False, "is_shared": True}, ["public", "shared"]),
    ],
)
def test_what_exposes_a_triage_channel(channel: dict[str, Any], problems: list[str]) -> None:
    found = channel_exposure(channel)
    assert [word for word in ("public", "shared") if any(word in p for p in found)] == problems
