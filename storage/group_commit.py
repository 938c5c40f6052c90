"""Group commit: writes asked for together share one statement and one commit.

`GroupCommit` is the mechanism (used here for the inbox and by `storage.budgets` for the
token ledger); `GroupInserter` is the durable inbox: jobs enqueued together share one INSERT.

Every Slack event is stored before it is acknowledged, so the insert is on the ack path of
every request. One transaction per event costs a commit, a round trip to the database
thread and, on SQLite, a turn at the single writer lock each time. Here, events that
arrive while a flush is in progress wait for the next one and go in together: one
multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING`, one commit. Each caller still
returns only after its own row is committed, so durability is unchanged; a quiet system
flushes each event alone, at once.

On SQLite the batch is one statement run on the driver connection, outside SQLAlchemy's
execution machinery. A single `INSERT` on a connection in autocommit (see `storage.db`) is
its own transaction: atomic, and as durable as a commit. It costs one trip to aiosqlite's
thread where SQLAlchemy's Core path cost nine (cursor, BEGIN IMMEDIATE, execute, fetch,
close, commit, rollback on return), and that trip count, not SQLite, was most of the CPU
spent per event (figures in bench/README.md). Values still go through the column types'
own bind processors, so stored rows are identical. PostgreSQL keeps the Core statement:
there the database server does the work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.dialects.postgresql import insert as pg_insert

from storage.db import Database
from storage.models import Job

MAX_ROWS = 200  # rows per statement: far below SQLite's bound-parameter limit

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Items submitted while a write is in progress wait for the next one and go in
    together; each caller gets its own item's result, or the batch's exception. A quiet
    process writes each item alone, at once. `write` takes a batch (at most `max_items`)
    and returns one result per item, in order."""

    def __init__(
        self, write: Callable[[list[Item]], Awaitable[list[Result]]], max_items: int = MAX_ROWS
    ) -> None:
        self._write = write
        self._max_items = max_items
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        await asyncio.sleep(0)  # let the items of this loop iteration join the batch
        while self._pending:
            batch = self._pending[: self._max_items]
            del self._pending[: self._max_items]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:  # every caller of the batch learns it failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class GroupInserter:
    """Inserts `jobs` rows for many concurrent callers, a batch per transaction."""

    def __init__(self, db: Database, max_rows: int = MAX_ROWS) -> None:
        if db.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"group commit needs SQLite or PostgreSQL, not {db.dialect}")
        self._db = db
        self._rows: GroupCommit[dict[str, Any], bool] = GroupCommit(self._created, max_rows)
        self._processors: dict[str, Callable[[Any], Any] | None] = {}

    async def insert(self, values: dict[str, Any]) -> bool:
        """Store one row; False when its `dedupe_key` already exists (or came twice)."""
        return await self._rows.submit(values)

    async def _created(self, batch: list[dict[str, Any]]) -> list[bool]:
        """Insert the batch; for each row, whether it was the one that stored its key."""
        inserted = await self._insert(batch)
        claimed: set[str] = set()
        created = []
        for values in batch:
            key = values["dedupe_key"]
            created.append(key in inserted and key not in claimed)
            claimed.add(key)
        return created

    async def _insert(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert `rows` in one transaction; the dedupe keys that were new."""
        unique = list({row["dedupe_key"]: row for row in reversed(rows)}.values())
        if self._db.dialect == "sqlite":
            return await self._insert_sqlite(unique)
        # One cached statement run with many parameter sets: SQLAlchemy's "insertmanyvalues"
        # turns it into multi-row INSERTs and still returns each inserted key.
        statement = (
            pg_insert(Job)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Job.dedupe_key)
        )
        async with self._db.engine.begin() as connection:
            result = await connection.execute(statement, unique)
            return set(result.scalars().all())

    async def _insert_sqlite(self, rows: list[dict[str, Any]]) -> set[str]:
        """One autocommit statement on the aiosqlite connection (see the module docstring)."""
        columns = list(rows[0])
        if any(row.keys() != rows[0].keys() for row in rows):
            raise ValueError("group commit needs the same columns in every row")
        processors = [self._processor(column) for column in columns]
        parameters = [
            process(row[column]) if process is not None else row[column]
            for row in rows
            for column, process in zip(columns, processors, strict=True)
        ]
        async with self._db.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            found = await driver.execute_fetchall(
                sqlite_insert_statement(columns, len(rows)), parameters
            )
        return {str(key) for (key,) in found}

    def _processor(self, column: str) -> Callable[[Any], Any] | None:
        """The bind processor SQLAlchemy itself would apply to `jobs.<column>`."""
        if column not in self._processors:
            dialect = self._db.engine.dialect
            column_type = Job.__table__.c[column].type.dialect_impl(dialect)
            self._processors[column] = column_type.bind_processor(dialect)
        return self._processors[column]


def sqlite_insert_statement(columns: Sequence[str], count: int) -> str:
    """`INSERT INTO jobs (...) VALUES (?, ...), ... ON CONFLICT DO NOTHING RETURNING`."""
    known = Job.__table__.c
    names = ", ".join(known[column].name for column in columns)  # KeyError if unknown
    row = "(" + ", ".join("?" * len(columns)) + ")"
    return (
        f"INSERT INTO jobs ({names}) VALUES {', '.join([row] * count)} "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key"
    )
