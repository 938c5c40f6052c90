"""The `sla_breach` job's paths against the fake Slack Web API: it announces a flagged
breach once (a retry finds its post), waits for a flag or a card that is on its way, and
says nothing when the ticket moved on, a new clock started or the agent answered in time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.triage.sla import SLA_BREACH_JOB, SlaBreachJob, clock_key
from bot.worker import JobFailed
from storage.conversations import ConversationStore
from storage.db import Database
from storage.queue import LeasedJob
from storage.sla import FIRST_RESPONSE, RESOLUTION, SlaPolicy, parse_business_hours
from storage.ticket_info import TicketInfo
from storage.tickets import TicketStore
from tests.e2e.conftest import BOT_TOKEN
from tests.fakes.fake_slack import FakeSlack
from tests.test_tickets import new_ticket

TRIAGE = "C0TRIAGE"
POLICY = SlaPolicy(
    parse_business_hours("00:00-24:00", "UTC", "mon-sun"),
    {FIRST_RESPONSE: {"normal": 3600}, RESOLUTION: {"normal": 7200}},
)


def breach_job(ticket: TicketInfo, kind: str, *, job_id: int = 7, attempts: int = 1) -> LeasedJob:
    return LeasedJob(
        id=job_id, kind=SLA_BREACH_JOB, dedupe_key=clock_key(ticket, kind),
        payload={"ticket_id": ticket.id, "kind": kind}, attempts=attempts, max_attempts=5,
        leased_by="test", lease_seconds=10,
    )  # fmt: skip


def job_for(store: TicketStore, fake: FakeSlack, channel: str | None) -> SlaBreachJob:
    settings = SimpleNamespace(support_triage_channel=channel, support_agent_ids=["U0AGENT"])
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)
    triage: Any = SimpleNamespace(
        store=store, slack=SimpleNamespace(settings=settings, client=client)
    )
    return SlaBreachJob(triage, POLICY)


async def escalated(db: Database, store: TicketStore, thread: str, card: bool) -> TicketInfo:
    ticket = (await store.escalate((await new_ticket(db, thread)).id, "help")).ticket
    assert ticket is not None
    if card:
        await store.reserve_card(ticket.id, None, "p:x:1")
        await store.attach_card(ticket.id, "p:x:1", TRIAGE, "1700000000.000100")
    found = await store.get(ticket.id)
    assert found is not None
    return found


def notices(fake: FakeSlack) -> list[str]:
    return [m.text for m in fake.posts(channel=TRIAGE) if "breached" in m.text]


async def test_a_flagged_breach_is_announced_once_even_when_retried(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    store = TicketStore(sqlite_db.sessions)
    ticket = await escalated(sqlite_db, store, "1.1", card=True)
    job = job_for(store, fake_slack, TRIAGE)
    with pytest.raises(JobFailed, match="not flagged yet"):  # queued before the flag
        await job.run(breach_job(ticket, RESOLUTION))
    assert notices(fake_slack) == []

    assert ticket.sla_started_at is not None
    await store.flag_sla_breach(ticket.id, RESOLUTION, ticket.sla_started_at)
    await job.run(breach_job(ticket, RESOLUTION))
    await job.run(breach_job(ticket, RESOLUTION, attempts=2))  # a retry after a crash
    [notice] = notices(fake_slack)
    assert "T-00001" in notice and "resolution SLA" in notice and "<@U0AGENT>" in notice


async def test_nothing_is_said_once_the_ticket_moved_on(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    store = TicketStore(sqlite_db.sessions)
    answered = await escalated(sqlite_db, store, "2.1", card=True)
    await ConversationStore(sqlite_db.sessions).add_turn(answered.id, "agent", "9.9", "hi", "U0A")
    job = job_for(store, fake_slack, TRIAGE)
    result = await job.run(breach_job(answered, FIRST_RESPONSE))
    assert result == {"skipped": "answered in time"}

    handed_back = await escalated(sqlite_db, store, "2.2", card=True)
    old_clock = breach_job(handed_back, RESOLUTION)
    await store.hand_back(handed_back.id)
    assert await job.run(old_clock) == {"skipped": "no longer with a person"}
    await store.escalate(handed_back.id, "again")  # a new clock: the old job is stale
    assert await job.run(old_clock) == {"skipped": "a new SLA clock"}
    assert notices(fake_slack) == []


async def test_a_card_on_its_way_is_waited_for_and_no_triage_channel_is_no_notice(
    sqlite_db: Database, fake_slack: FakeSlack
) -> None:
    store = TicketStore(sqlite_db.sessions)
    ticket = await escalated(sqlite_db, store, "3.1", card=False)
    assert ticket.sla_started_at is not None
    await store.flag_sla_breach(ticket.id, RESOLUTION, ticket.sla_started_at)
    with pytest.raises(JobFailed, match="card is not posted yet"):
        await job_for(store, fake_slack, TRIAGE).run(breach_job(ticket, RESOLUTION))
    result = await job_for(store, fake_slack, None).run(breach_job(ticket, RESOLUTION))
    assert result == {"skipped": "no triage channel"}
