"""SLAs over HTTP with a fake clock: a breach outside business hours is not one; inside
them it is flagged once, announced once in the card's thread, counted, listed by
`supportbot tickets --breached`, and stays single across a worker restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from bot.cli.tickets import register
from bot.metrics import SLA_BREACHES
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from storage.models import Ticket, utcnow
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_assignment import escalate
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    AGENT2,
    card_thread,
    cards,
    text_of,
    triage_settings,
)
from tests.fakes.fake_slack import FakeSlack

NY = ZoneInfo("America/New_York")
CHECK_S = 0.05


def ny(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """New York wall-clock time in December 2026 (the 4th is a Friday)."""
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=NY).astimezone(dt.UTC)


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def sla_notices(fake: FakeSlack) -> list[str]:
    return [m.text for card in cards(fake) for m in card_thread(fake, card) if "SLA" in m.text]


async def started_at(bot: BotServer, when: dt.datetime) -> None:
    """The escalation happened at `when` (the clock's start, as the database keeps it)."""
    async with bot.slack.core.db.sessions() as session, session.begin():
        await session.execute(update(Ticket).values(sla_started_at=when))


async def flagged(bot: BotServer) -> dt.datetime | None:
    async with bot.slack.core.db.sessions() as session:
        ticket = await session.get_one(Ticket, 1)
        return ticket.first_response_breached_at


@pytest.fixture
def sla_settings(triage_settings: Settings) -> Settings:  # noqa: F811
    return triage_settings.model_copy(
        update={
            "sla_first_response": "urgent=30m,normal=1h",
            "sla_resolution": "urgent=8h,normal=24h",
            "sla_timezone": "America/New_York",
            "sla_business_hours": "09:00-17:00",
            "sla_weekdays": "mon-fri",
            "sla_check_seconds": CHECK_S,
        }
    )


async def test_a_first_response_breach_counts_business_hours_and_is_flagged_once(
    sla_settings: Settings, fake_slack: FakeSlack, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(utcnow())  # nothing is due while the ticket is escalated
    counted = SLA_BREACHES.labels(kind="first_response", priority="normal")._value.get()
    async with run_bot_server(sla_settings, features=[TriageFeature(clock=clock)]) as bot:
        await escalate(bot, fake_slack, "U0C1", "D0C1")
        await started_at(bot, ny(4, 16, 45))  # Friday 16:45: 15 business minutes so far
        clock.now = ny(5, 12)  # Saturday noon

        await asyncio.sleep(CHECK_S * 10)  # 19 wall-clock hours later, outside business hours
        assert await flagged(bot) is None and sla_notices(fake_slack) == []

        clock.now = ny(7, 9, 50)  # Monday 09:50: 65 business minutes, the target is 60
        await fake_slack.wait_for(lambda: len(sla_notices(fake_slack)) == 1, within=10)
        first_flag = await flagged(bot)
        assert first_flag is not None
        await asyncio.sleep(CHECK_S * 10)  # more checks: nothing new
        notice = sla_notices(fake_slack)
        assert len(notice) == 1 and "T-00001" in notice[0] and "first response" in notice[0]
        assert f"<@{AGENT_ID}>" in notice[0] and f"<@{AGENT2}>" in notice[0]
        await fake_slack.wait_for(
            lambda: "First response SLA breached" in text_of(cards(fake_slack)[0].blocks), 10
        )

    async with run_bot_server(sla_settings, features=[TriageFeature(clock=clock)]) as restarted:
        await asyncio.sleep(CHECK_S * 10)  # a new worker's checks over the same database
        assert await flagged(restarted) == first_flag
    assert len(sla_notices(fake_slack)) == 1
    after = SLA_BREACHES.labels(kind="first_response", priority="normal")._value.get()
    assert after == counted + 1

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `tickets` a subcommand
    result = await asyncio.to_thread(CliRunner().invoke, app, ["tickets", "--breached", "--json"])
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.output.splitlines()]
    assert [t["ticket"] for t in listed] == ["T-00001"]
    assert listed[0]["sla_breached"]["first_response"] is not None


async def test_an_agent_reply_in_time_meets_the_first_response_target(
    sla_settings: Settings, fake_slack: FakeSlack
) -> None:
    clock = FakeClock(utcnow())
    async with run_bot_server(sla_settings, features=[TriageFeature(clock=clock)]) as bot:
        await escalate(bot, fake_slack, "U0C1", "D0C1")
        await started_at(bot, ny(7, 9))  # Monday 09:00
        async with bot.slack.core.db.sessions() as session, session.begin():
            await session.execute(update(Ticket).values(agent_replied_at=ny(7, 9, 20)))
        clock.now = ny(7, 12)  # three hours later: answered after 20 minutes
        await asyncio.sleep(CHECK_S * 10)
        assert await flagged(bot) is None and sla_notices(fake_slack) == []
