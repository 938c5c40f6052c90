"""SQLite statements make one trip to aiosqlite's thread (`storage.sqlite_driver`), and
give SQLAlchemy the same results, counts and errors as its own adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.sqlite_driver import OneTripCursor


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
    yield database
    await database.dispose()


async def _count_trips(connection: AsyncConnection, statement: Any, params: Any = None) -> int:
    """How many functions the statement queued on the driver connection's thread."""
    raw = await connection.get_raw_connection()
    driver = raw.dbapi_connection._connection  # type: ignore[union-attr]
    queue = driver._tx
    queued: list[object] = []

    class CountingQueue:
        def put_nowait(self, item: Any) -> None:
            queued.append(item)
            queue.put_nowait(item)

    driver._tx = CountingQueue()
    try:
        await connection.execute(statement, params)
    finally:
        driver._tx = queue
    return len(queued)


async def test_a_statement_is_one_trip_to_the_thread(database: Database) -> None:
    """SQLAlchemy's own adapter makes four (cursor, execute, fetchall, close)."""
    async with database.engine.begin() as connection:
        assert await _count_trips(connection, text("INSERT INTO t (name) VALUES ('a')")) == 1
        assert await _count_trips(connection, text("SELECT id, name FROM t")) == 1
        many = [{"name": "b"}, {"name": "c"}]
        assert (
            await _count_trips(connection, text("INSERT INTO t (name) VALUES (:name)"), many) == 1
        )


async def test_results_counts_and_ids_are_the_drivers(database: Database) -> None:
    async with database.engine.begin() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]
        many = await connection.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}]
        )
        assert many.rowcount == 2
        one = await connection.execute(text("INSERT INTO t (name) VALUES ('c')"))
        assert one.lastrowid == 3
        rows = await connection.execute(text("SELECT id, name FROM t ORDER BY id"))
        assert list(rows.keys()) == ["id", "name"]
        assert rows.fetchmany(2) == [(1, "a"), (2, "b")]
        assert rows.fetchall() == [(3, "c")]
        updated = await connection.execute(text("UPDATE t SET name = 'x' WHERE id > 1"))
        assert updated.rowcount == 2
        nothing = await connection.execute(text("SELECT id FROM t WHERE id > 99"))
        assert nothing.first() is None


async def test_errors_reach_sqlalchemy_as_its_own(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (id, name) VALUES (1, 'a')"))
        with pytest.raises(exc.IntegrityError):
            await connection.execute(text("INSERT INTO t (id, name) VALUES (1, 'b')"))
    async with database.engine.connect() as connection:
        with pytest.raises(exc.OperationalError, match="no such table"):
            await connection.execute(text("SELECT * FROM missing"))


async def test_streamed_results_still_work(database: Database) -> None:
    """`stream_results` uses SQLAlchemy's server-side cursor, unchanged."""
    async with database.engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": str(n)} for n in range(5)]
        )
        result = await connection.stream(text("SELECT name FROM t ORDER BY id"))
        assert [row.name async for row in result] == ["0", "1", "2", "3", "4"]
