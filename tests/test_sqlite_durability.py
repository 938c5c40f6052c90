"""SQLite commits are synced at commit time, on the inbox's connection above all: an event
Slack was told we stored survives a power cut, not only a crash of the process."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.queue import JobQueue

FULL = 2  # what `PRAGMA synchronous` reads back for FULL (NORMAL is 1)


async def test_the_inbox_insert_runs_on_a_fully_synchronous_connection(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[Any] = []
    get_raw_connection = AsyncConnection.get_raw_connection

    async def spy(self: AsyncConnection) -> Any:
        raw = await get_raw_connection(self)
        used.append(raw.driver_connection)
        return raw

    monkeypatch.setattr(AsyncConnection, "get_raw_connection", spy)
    assert await JobQueue(sqlite_db).enqueue("slack_message", "slack:T1:D1:1.0", {"m": 1})

    assert used, "the inbox did not insert through a driver connection"
    for driver in used:
        ((synchronous,),) = await driver.execute_fetchall("PRAGMA synchronous")
        ((journal,),) = await driver.execute_fetchall("PRAGMA journal_mode")
        assert (synchronous, journal) == (FULL, "wal")


async def test_every_pooled_connection_is_fully_synchronous(sqlite_db: Database) -> None:
    """Claims and completions too: a lost claim would let a rerun think it is the first."""
    async with sqlite_db.engine.connect() as first, sqlite_db.engine.connect() as second:
        for connection in (first, second):
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            ((synchronous,),) = await driver.execute_fetchall("PRAGMA synchronous")
            assert synchronous == FULL
