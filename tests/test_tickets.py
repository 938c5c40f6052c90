"""Ticket lifecycle storage (`storage.tickets`) on SQLite and PostgreSQL, and the
`supportbot tickets` command."""

from __future__ import annotations

import asyncio
import json

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli.tickets import register
from pipelines.steps import Trace
from pipelines.tracing import TraceRecorder
from storage.backends import Actor, BusinessSystems
from storage.catalog import demo_ids, get_or_create_customer
from storage.conversations import ConversationStore, ThreadKey
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Ticket
from storage.ticket_info import (
    ACTIVE_STATUSES,
    CLAIMED,
    ESCALATED,
    OPEN,
    RESOLVED,
    STATUSES,
    WAITING,
    TicketInfo,
    card_marker,
    card_marker_time,
    card_marker_token,
    is_card_marker,
)
from storage.ticket_queries import customer_records
from storage.tickets import TicketStore

TEAM = "T1"


async def new_ticket(db: Database, thread: str, user: str = "U0CUST") -> TicketInfo:
    customer = await get_or_create_customer(db.sessions, user, TEAM)
    ticket = await ConversationStore(db.sessions).open_ticket(
        ThreadKey(TEAM, "D1", thread), user, customer.id
    )
    found = await TicketStore(db.sessions).get(ticket.id)
    assert found is not None
    return found


async def test_claim_race_has_exactly_one_winner(database: Database) -> None:
    store = TicketStore(database.sessions)
    ticket = await new_ticket(database, "1.0")
    agents = [f"U0AGENT{i}" for i in range(8)]
    results = await asyncio.gather(*(store.claim(ticket.id, agent) for agent in agents))

    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    winner = winners[0].ticket
    assert winner is not None and winner.status == CLAIMED and winner.assignee in agents
    for loser in (r for r in results if not r.ok):
        assert loser.reason == "claimed"
        assert loser.ticket is not None and loser.ticket.assignee == winner.assignee
    again = await store.claim(ticket.id, winner.assignee or "")
    assert (again.ok, again.reason) == (False, "yours")


async def test_lifecycle_unclaim_resolve_reopen_hand_back(database: Database) -> None:
    store = TicketStore(database.sessions)
    ticket = await new_ticket(database, "2.0")
    assert ticket.status == OPEN and ticket.number == f"T-{ticket.id:05d}"

    assert (await store.claim(ticket.id, "UA")).ok
    refused = await store.unclaim(ticket.id, "UB")  # only the holder lets go
    assert (refused.ok, refused.reason) == (False, "claimed")
    handed = await store.unclaim(ticket.id, "UA")
    assert handed.ok and handed.ticket and handed.ticket.status == OPEN
    assert handed.ticket.assignee is None
    assert (await store.unclaim(ticket.id, "UA")).reason == "not_claimed"

    resolved = await store.resolve(ticket.id, "UB")
    assert resolved.ticket and (resolved.ticket.status, resolved.ticket.assignee) == (
        RESOLVED,
        "UB",
    )
    assert (await store.resolve(ticket.id, "UB")).reason == "already"
    assert (await store.claim(ticket.id, "UA")).reason == "resolved"
    reopened = await store.reopen(ticket.id)
    assert reopened.ticket and (reopened.ticket.status, reopened.ticket.assignee) == (OPEN, None)
    assert (await store.reopen(ticket.id)).reason == "already"

    escalated = await store.escalate(ticket.id, "customer asked for a person")
    assert escalated.ticket and escalated.ticket.status == ESCALATED and escalated.ticket.bot_paused
    busy = await store.escalate(ticket.id, "again")
    assert (busy.ok, busy.reason) == (False, "busy")
    assert escalated.ticket.escalation_reason == "customer asked for a person"
    back = await store.hand_back(ticket.id)
    assert back.ticket and back.ticket.status == OPEN and back.ticket.escalation_reason is None
    assert (await store.hand_back(ticket.id)).reason == "already"
    assert (await store.claim(10_000, "UA")).reason == "not_found"


async def test_every_change_bumps_the_version(database: Database) -> None:
    store = TicketStore(database.sessions)
    ticket = await new_ticket(database, "3.0")
    versions = {ticket.version}
    claimed = (await store.claim(ticket.id, "UA")).ticket
    touched = await store.touch(ticket.id)
    assert claimed is not None and touched is not None
    versions |= {claimed.version, touched.version}
    assert len(versions) == 3


async def test_outcome_merges_and_never_undoes_a_claim(database: Database) -> None:
    store = TicketStore(database.sessions)
    ticket = await new_ticket(database, "4.0")
    first = await store.record_outcome(
        ticket.id,
        intents=["billing_inquiry"],
        tasks=[{"kind": "billing_inquiry", "invoice_number": "INV-1"}],
        actions=["CASE-000001 opened"],
        summary="invoice looks high",
    )
    assert first.status == WAITING and first.summary == "invoice looks high"
    second = await store.record_outcome(
        ticket.id,
        intents=["billing_inquiry", "order_status"],
        tasks=[{"kind": "billing_inquiry", "invoice_number": "INV-1"}],
        actions=["CASE-000001 opened"],
        escalation_reason="customer sounds urgent or upset",
    )
    assert second.intents == ["billing_inquiry", "order_status"]
    assert len(second.tasks) == 1 and second.actions == ["CASE-000001 opened"]
    assert second.status == ESCALATED and second.summary == "invoice looks high"

    await store.claim(ticket.id, "UA")
    third = await store.record_outcome(ticket.id, summary="later", escalation_reason=None)
    assert (third.status, third.assignee, third.summary) == (CLAIMED, "UA", "later")


async def test_listing_counting_and_a_customers_own_tickets(database: Database) -> None:
    store = TicketStore(database.sessions)
    a = await new_ticket(database, "5.0", user="U0A")
    b = await new_ticket(database, "5.1", user="U0A")
    c = await new_ticket(database, "5.2", user="U0B")
    await store.escalate(b.id, "low confidence")
    await store.resolve(c.id, "UA")

    assert [t.number for t in await store.list_tickets([ESCALATED])] == [b.number]
    active = await store.list_tickets(ACTIVE_STATUSES)
    assert {t.number for t in active} == {a.number, b.number}
    assert active[0].number == b.number  # most recently updated first
    assert len(await store.list_tickets(None, limit=2)) == 2
    counts = await store.counts()
    assert set(STATUSES) <= set(counts)
    assert (counts[OPEN], counts[ESCALATED], counts[RESOLVED], counts[CLAIMED]) == (1, 1, 1, 0)
    mine = await store.for_user(TEAM, "U0A")
    assert {t.number for t in mine} == {a.number, b.number}
    assert await store.for_user("OTHER", "U0A") == []
    assert (await store.by_number(b.number)) == (await store.get(b.id))
    assert (await store.find(ThreadKey(TEAM, "D1", "5.2"))) is not None


async def test_latest_run_ids_of_a_ticket_newest_first(database: Database) -> None:
    store = TicketStore(database.sessions)
    conversations = ConversationStore(database.sessions)
    traces = TraceRecorder(database.sessions)
    mine = await new_ticket(database, "8.0", user="U0A")
    other = await new_ticket(database, "8.1", user="U0A")
    assert await store.latest_run_ids(mine.id) == []

    async def run(ticket: TicketInfo, turn: str | None, user: str = "U0A") -> str:
        trace = Trace("support", {"chars": 5, "ticket": ticket.number}, user)
        await traces.save(trace, status="ok")
        if turn is not None:
            await conversations.add_turn(ticket.id, "bot", turn, "hi", run_id=trace.run_id)
        return trace.run_id

    first = await run(mine, "reply-to:1")
    second = await run(mine, "reply-to:2", user="U0AGENT")  # an agent's question, answered
    await run(other, "reply-to:3")
    outage = await run(mine, None)  # the provider was down: a trace, no bot turn
    await conversations.add_turn(mine.id, "bot", "reply-to:4", "slow down", run_id="no-trace")

    assert await store.latest_run_ids(mine.id) == [outage, second, first]
    assert await store.latest_run_ids(mine.id, limit=2) == [outage, second]
    assert await store.latest_run_ids(10_000) == []


async def test_card_reservation_is_compare_and_set(database: Database) -> None:
    store = TicketStore(database.sessions)
    ticket = await new_ticket(database, "6.0")
    marker = card_marker("42", 1_700_000_000.5)
    assert is_card_marker(marker) and card_marker_token(marker) == "42"
    assert card_marker_time(marker) == 1_700_000_000
    assert len(card_marker("9" * 40, 1e10)) <= 32

    results = await asyncio.gather(
        store.reserve_card(ticket.id, None, marker),
        store.reserve_card(ticket.id, None, card_marker("43", 1_700_000_000)),
    )
    assert sorted(results) == [False, True]
    reserved = await store.get(ticket.id)
    assert reserved is not None and reserved.card_ts is None  # a marker is not a card
    assert reserved.version == ticket.version  # bookkeeping does not bump the version
    winner = str(reserved.triage_ts)
    assert not await store.attach_card(ticket.id, "p:other:1", "C0TRIAGE", "1.1")
    assert await store.attach_card(ticket.id, winner, "C0TRIAGE", "1800000001.000100")
    attached = await store.get(ticket.id)
    assert attached is not None and attached.card_ts == "1800000001.000100"
    assert attached.triage_channel == "C0TRIAGE"
    assert await store.detach_card(ticket.id, "1800000001.000100")
    detached = await store.get(ticket.id)
    assert detached is not None and detached.triage_ts is None


async def test_customer_records_show_orders_and_returns(database: Database) -> None:
    customer = await get_or_create_customer(database.sessions, "U0REC", TEAM)
    ids = await demo_ids(database.sessions, customer.id)
    systems = BusinessSystems(database.sessions)
    actor = Actor(customer_id=customer.id, slack_user_id="U0REC")
    created = await systems.returns.authorize_return(
        actor, ids.products[0], "it is incompatible", "req-1"
    )
    records = await customer_records(database.sessions, customer.id)
    assert {o.number for o in records.orders} == set(ids.order_numbers)
    assert all(order.items for order in records.orders)
    [rma] = records.returns
    assert rma.rma_number == created.rma_number and rma.product == ids.products[0]
    assert rma.order_number in ids.order_numbers and rma.reason == "it is incompatible"


def test_cli_lists_tickets_by_status(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(sqlite_url)

    async def seed() -> list[str]:
        db = Database(sqlite_url)
        try:
            store = TicketStore(db.sessions)
            made = [await new_ticket(db, f"9.{i}", user=f"U0C{i}") for i in range(3)]
            await store.escalate(made[0].id, "customer asked for a person")
            await store.record_outcome(made[1].id, summary="order ORD-10011 shipped")
            await store.resolve(made[2].id, "U0AGENT")
            return [t.number for t in made]
        finally:
            await db.dispose()

    escalated, waiting, resolved = asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `tickets` a subcommand
    runner = CliRunner()

    result = runner.invoke(app, ["tickets", "--status", "escalated"])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:3] == ["TICKET", "STATUS", "AGE"]
    assert len(rows) == 1 and rows[0].startswith(escalated) and "escalated" in rows[0]
    assert "customer asked for a person" in rows[0] and "U0C0" in rows[0]

    active = runner.invoke(app, ["tickets"]).output
    assert escalated in active and waiting in active and resolved not in active
    everything = runner.invoke(app, ["tickets", "--status", "all", "--json"]).output
    assert {json.loads(line)["ticket"] for line in everything.splitlines()} == {
        escalated,
        waiting,
        resolved,
    }
    assert "no claimed tickets" in runner.invoke(app, ["tickets", "-s", "claimed"]).output
    bad = runner.invoke(app, ["tickets", "--status", "nope"])
    assert bad.exit_code == 2 and "--status must be one of" in bad.output


async def test_the_brief_reads_the_conversation_without_internal_notes(database: Database) -> None:
    from storage.briefs import conversation

    ticket = await new_ticket(database, "8.1")
    turns = ConversationStore(database.sessions)
    await turns.add_turn(ticket.id, "customer", "8.1", "where is my parcel?", "U0CUST")
    await turns.add_turn(ticket.id, "note", "8.2", "refund them quietly, don't say so", "U0A")
    await turns.add_turn(ticket.id, "agent", "8.3", "Checking with the carrier", "U0A")
    read = await conversation(database.sessions, ticket.id)
    assert read is not None
    assert read.text == "customer: where is my parcel?\nagent: Checking with the carrier"


async def test_a_confirmed_or_expired_action_is_recorded_without_moving_the_status(
    database: Database,
) -> None:
    store = TicketStore(database.sessions)
    ticket = await new_ticket(database, "8.5")
    await store.resolve(ticket.id, "U0AGENT")
    after = await store.add_actions(ticket.id, ["confirmation expired: return of a mouse"])
    assert after.status == RESOLVED  # not reopened days later by an expiry
    assert after.actions == ["confirmation expired: return of a mouse"]
    answered = await store.record_outcome(ticket.id, actions=["RMA-1 created"])
    assert answered.status == WAITING  # an answered turn still moves it on


async def test_a_replayed_turn_is_recorded_once(database: Database) -> None:
    """A retried job records its turns again: nothing is added, and the ticket's first
    reply keeps the time of the first recording."""
    ticket = await new_ticket(database, "12.0")
    conversations = ConversationStore(database.sessions)
    await conversations.add_turn(ticket.id, "customer", "12.0", "where is my order?", "U0CUST")
    await conversations.add_turn(ticket.id, "bot", "reply-to:12.0", "on its way", run_id="r1")
    first = await _first_response_s(database, ticket.id)
    assert first is not None
    await asyncio.sleep(0.05)
    await conversations.add_turn(ticket.id, "customer", "12.0", "where is my order?", "U0CUST")
    await conversations.add_turn(ticket.id, "bot", "reply-to:12.0", "a second text", run_id="r2")
    history = await conversations.history(ticket.id, before_ts="99.0", owner="U0CUST")
    assert len(history) == 2 and "a second text" not in str(history)
    assert await _first_response_s(database, ticket.id) == first


async def _first_response_s(database: Database, ticket_id: int) -> float | None:
    async with database.sessions() as session:
        return await session.scalar(select(Ticket.first_response_s).where(Ticket.id == ticket_id))
