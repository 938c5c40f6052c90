"""SLA policy (`storage.sla`): business time, due dates, settings, and the ticket's clock
as the transitions move it (`storage.tickets`, `storage.conversations`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.settings import Settings
from storage.conversations import ConversationStore
from storage.db import Database
from storage.sla import (
    FIRST_RESPONSE,
    RESOLUTION,
    SlaConfigError,
    SlaPolicy,
    parse_business_hours,
    parse_targets,
    parse_weekdays,
    sla_clocks,
)
from storage.tickets import TicketStore
from tests.test_tickets import new_ticket

NY = ZoneInfo("America/New_York")
HOURS = parse_business_hours("09:00-17:00", "America/New_York", "mon-fri")


def ny(day: int, hour: int, minute: int = 0, month: int = 12) -> dt.datetime:
    """A New York wall-clock time in December 2026 (the 4th is a Friday)."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=NY).astimezone(dt.UTC)


def test_business_time_skips_nights_and_weekends() -> None:
    assert HOURS.seconds_between(ny(4, 16, 30), ny(7, 9, 30)) == 3600  # Fri 16:30 -> Mon 9:30
    assert HOURS.seconds_between(ny(5, 10), ny(6, 23)) == 0  # a weekend
    assert HOURS.seconds_between(ny(3, 8), ny(3, 18)) == 8 * 3600  # a whole day, from outside
    assert HOURS.seconds_between(ny(3, 12), ny(3, 11)) == 0


def test_due_dates_land_in_business_hours() -> None:
    assert HOURS.add(ny(4, 16, 30), 3600) == ny(7, 9, 30)
    assert HOURS.add(ny(5, 12), 60) == ny(7, 9, 1)  # a Saturday start waits for Monday
    assert HOURS.add(ny(3, 9), 8 * 3600) == ny(3, 17)
    assert HOURS.is_open(ny(4, 16, 59)) and not HOURS.is_open(ny(4, 17))


def test_a_dst_change_keeps_opening_hours_on_the_wall_clock() -> None:
    # 2027-03-14 is the US spring-forward Sunday: Friday 16:00 EST -> Monday 10:00 EDT is 2h.
    friday = dt.datetime(2027, 3, 12, 16, tzinfo=NY).astimezone(dt.UTC)
    monday = dt.datetime(2027, 3, 15, 10, tzinfo=NY).astimezone(dt.UTC)
    assert HOURS.seconds_between(friday, monday) == 2 * 3600
    assert HOURS.add(friday, 2 * 3600) == monday


def test_settings_parse_and_refuse_clearly() -> None:
    assert parse_targets("urgent=30m, normal=1.5h") == {"urgent": 1800, "normal": 5400}
    assert parse_targets("off") == {}
    assert parse_weekdays("sun-thu") == {6, 0, 1, 2, 3}
    assert parse_weekdays("mon,wed") == {0, 2}
    for bad in ("urgent=0m", "vip=1h", "urgent"):
        with pytest.raises(SlaConfigError):
            parse_targets(bad)
    with pytest.raises(SlaConfigError, match="not a time zone"):
        parse_business_hours("09:00-17:00", "Mars/Olympus", "mon-fri")
    with pytest.raises(SlaConfigError, match="before closing"):
        parse_business_hours("17:00-09:00", "UTC", "mon-fri")
    with pytest.raises(SlaConfigError, match="weekdays"):
        parse_weekdays("funday")
    with pytest.raises(ValueError, match="weekdays"):
        Settings(sla_weekdays="someday")


def test_clocks_run_until_met_and_count_business_time_left() -> None:
    policy = SlaPolicy(HOURS, {FIRST_RESPONSE: {"normal": 3600}, RESOLUTION: {"normal": 8 * 3600}})
    running = sla_clocks(policy, priority="urgent", started_at=ny(4, 16, 30), now=ny(7, 9, 10),
                         replied_at=None, resolved_at=None, breached={})  # fmt: skip
    first, resolution = running
    assert first.due == ny(7, 9, 30) and first.left_s == 20 * 60 and not first.breached
    assert resolution.left_s == 8 * 3600 - 40 * 60  # urgent falls back to normal targets
    late = sla_clocks(policy, priority="normal", started_at=ny(4, 16, 30), now=ny(7, 12),
                      replied_at=ny(7, 9, 15), resolved_at=None, breached={})  # fmt: skip
    assert late[0].met_at is not None and late[0].left_s > 0 and not late[0].breached
    assert not late[1].breached


async def test_the_clock_starts_at_escalation_stops_with_the_bot_and_restarts(
    database: Database,
) -> None:
    db = database
    store = TicketStore(db.sessions)
    ticket = await new_ticket(db, "1.1")
    assert ticket.sla_started_at is None
    escalated = (await store.escalate(ticket.id, "angry", urgent=True)).ticket
    assert escalated is not None and escalated.priority == "urgent"
    started = escalated.sla_started_at
    assert started is not None
    claimed = (await store.claim(ticket.id, "U0AGENT")).ticket
    assert claimed is not None and claimed.sla_started_at == started  # claiming keeps it

    await ConversationStore(db.sessions).add_turn(ticket.id, "agent", "2.2", "On it", "U0AGENT")
    replied = await store.get(ticket.id)
    assert replied is not None and replied.agent_replied_at is not None
    assert await store.flag_sla_breach(ticket.id, FIRST_RESPONSE, started) is None  # answered
    flagged = await store.flag_sla_breach(ticket.id, RESOLUTION, started)
    assert flagged is not None and flagged.resolution_breached_at is not None
    assert await store.flag_sla_breach(ticket.id, RESOLUTION, started) is None  # once

    back = (await store.unclaim(ticket.id, "U0AGENT")).ticket
    assert back is not None and back.sla_started_at is None and not any(back.sla_breaches.values())
    again = (await store.escalate(ticket.id, "asked for a person")).ticket
    assert again is not None and again.priority == "normal"
    assert again.sla_started_at is not None and again.agent_replied_at is None
    assert await store.flag_sla_breach(ticket.id, RESOLUTION, started) is None  # old clock
    breached = await store.list_tickets(None, breached=True)
    assert breached == []


async def test_a_resolved_ticket_escalated_again_gets_a_new_clock(database: Database) -> None:
    db = database
    store = TicketStore(db.sessions)
    ticket = await new_ticket(db, "1.2")
    first = (await store.escalate(ticket.id, "help")).ticket
    assert first is not None and first.sla_started_at is not None
    await store.resolve(ticket.id, "U0AGENT")
    updated = await store.record_outcome(ticket.id, escalation_reason="again", urgent=True)
    assert updated.sla_started_at is not None and updated.sla_started_at > first.sla_started_at
    assert updated.priority == "urgent"
    quiet = await store.record_outcome((await new_ticket(db, "1.3")).id)
    assert quiet.sla_started_at is None  # the bot answered: no person, no clock


async def test_the_check_reads_running_clocks_page_by_page(database: Database) -> None:
    store = TicketStore(database.sessions)
    made = [await new_ticket(database, f"3.{i}") for i in range(5)]
    started = [(await store.escalate(t.id, "help")).ticket for t in made[:4]]
    first = started[0]
    assert first is not None and first.sla_started_at is not None
    for kind in (FIRST_RESPONSE, RESOLUTION):  # every target of the first one flagged
        await store.flag_sla_breach(first.id, kind, first.sla_started_at)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    seen, after = [], 0
    while page := await store.sla_running(later, after_id=after, limit=2):
        seen += [t.id for t in page]
        after = page[-1].id
    assert seen == [t.id for t in made[1:4]]  # fully flagged and never escalated: left out
    assert await store.sla_running(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)) == []
