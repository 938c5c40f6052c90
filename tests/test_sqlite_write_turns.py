"""SQLite writers of one process take turns (`storage.db.WriteTurns`) instead of sleeping
in SQLite's busy handler, and a turn is always given back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import db as storage_db
from storage.db import Database, read_only


async def _table(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))


async def _write(database: Database, n: int, hold_s: float = 0.005) -> None:
    async with database.sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        await asyncio.sleep(hold_s)  # the write lock is held across an await


@pytest.fixture
def no_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own busy timeout off: any two writers that meet fail at once."""
    monkeypatch.setattr(storage_db, "SQLITE_BUSY_TIMEOUT_MS", 0)


@pytest.mark.usefixtures("no_busy_wait")
async def test_concurrent_writers_never_meet_at_sqlites_lock(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    try:
        await _table(database)
        await asyncio.gather(*(_write(database, n) for n in range(30)))
        async with database.sessions() as session:
            await read_only(session)
            assert await session.scalar(text("SELECT count(*) FROM t")) == 30
    finally:
        await database.dispose()


@pytest.mark.usefixtures("no_busy_wait")
async def test_without_turns_the_same_writers_do_meet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above is not vacuous: with the turn a no-op, SQLite refuses writers."""

    async def no_turn(self: storage_db.WriteTurns, dbapi_connection: object) -> None:
        return None

    monkeypatch.setattr(storage_db.WriteTurns, "take", no_turn)
    monkeypatch.setattr(storage_db.WriteTurns, "give_back", lambda self, c: None)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'no-turns.db'}")
    try:
        await _table(database)
        results = await asyncio.gather(
            *(_write(database, n) for n in range(30)), return_exceptions=True
        )
        assert any("database is locked" in str(r) for r in results)
    finally:
        await database.dispose()


async def test_a_writer_cancelled_mid_transaction_gives_its_turn_back(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'cancel.db'}")
    try:
        await _table(database)
        stuck = asyncio.create_task(_write(database, 1, hold_s=60))
        await asyncio.sleep(0.1)
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
        await asyncio.wait_for(_write(database, 2), timeout=5)  # not waiting 30 s
        failed = asyncio.create_task(_write_then_fail(database))
        with pytest.raises(RuntimeError):
            await failed
        await asyncio.wait_for(_write(database, 3), timeout=5)
    finally:
        await database.dispose()


async def _write_then_fail(database: Database) -> None:
    async with database.sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t (n) VALUES (9)"))
        raise RuntimeError("the caller's own error, mid-transaction")
