"""Read-only sessions on SQLite neither wait for nor hold the write lock.

Every other transaction starts with `BEGIN IMMEDIATE` (see `storage.db`), so a plain read
would queue behind any writer for up to the busy timeout. The Slack listener looks up a
thread's ticket on the ack path, next to the worker's writes: that lookup must not queue.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import storage.db
from storage.catalog import demo_ids, get_or_create_customer
from storage.conversations import ConversationStore, ThreadKey
from storage.db import Database, read_only

KEY = ThreadKey("T0TEST", "C0SUPPORT", "1700000000.000100")


async def test_a_read_only_lookup_runs_while_another_connection_writes(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await get_or_create_customer(sqlite_db.sessions, "U0CUST", KEY.team_id)
    ticket = await ConversationStore(sqlite_db.sessions).open_ticket(KEY, "U0CUST", customer.id)
    monkeypatch.setattr(storage.db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    impatient = Database(sqlite_db.url)  # same file, gives up on a lock after 0.2 s
    try:
        async with sqlite_db.engine.connect() as writer:
            await writer.begin()  # BEGIN IMMEDIATE: holds the write lock until rollback
            await writer.execute(text("UPDATE tickets SET status = status"))

            found = await asyncio.wait_for(
                ConversationStore(impatient.sessions).find_ticket(KEY), 5
            )
            assert found is not None and found.id == ticket.id
            # what every message reads on its way through the pipeline, known customer
            again = await asyncio.wait_for(
                get_or_create_customer(impatient.sessions, "U0CUST", KEY.team_id), 5
            )
            assert again.id == customer.id
            ids = await asyncio.wait_for(demo_ids(impatient.sessions, customer.id), 5)
            assert len(ids.order_numbers) == 3 and ids.products
            turns = ConversationStore(impatient.sessions)
            assert await asyncio.wait_for(turns.history(ticket.id), 5) == []
            since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            assert await asyncio.wait_for(turns.customer_turns_since("U0CUST", since), 5) == 0

            with pytest.raises(OperationalError, match="locked"):  # the same read, not marked
                async with impatient.sessions() as session:
                    await session.scalar(text("SELECT count(*) FROM tickets"))
            await writer.rollback()
    finally:
        await impatient.dispose()


async def test_read_only_changes_nothing_on_postgresql(database: Database) -> None:
    async with database.sessions() as session:
        await read_only(session)
        assert await session.scalar(text("SELECT 1")) == 1
