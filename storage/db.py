"""Async engine and session factory for SQLite (default) and PostgreSQL.

SQLite runs with WAL, foreign keys and a busy timeout, and every transaction starts with
`BEGIN IMMEDIATE`: the single-writer lock is taken up front, so two writers queue on the
busy timeout instead of failing with "database is locked" when a read upgrades to a write.
A session that only reads can say so (`read_only`): its transaction is a plain deferred
`BEGIN`, which under WAL takes no lock that a writer waits for.

Writers of one process take turns at an asyncio lock (`WriteTurns`) before `BEGIN
IMMEDIATE`: otherwise every waiting connection sleeps in SQLite's busy handler, whose
sleeps grow to 100 ms whatever the lock's real wait, so a burst of messages spent most of
its time asleep while the lock was free. Between processes the busy timeout still applies.

`synchronous=FULL`: under WAL, NORMAL syncs the log only at checkpoints, so a commit can
be lost to a power cut (not to a process crash). The inbox's insert is what Slack's ack
promises, and a worker's claim is what tells a rerun it is a retry; with FULL a commit is
on disk when it returns. It costs one sync of the log per commit, shared by a
group-committed batch (figures in bench/README.md).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, TypeAlias, cast

from sqlalchemy import Table, event, text
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_

from storage.sqlite_driver import one_trip_dbapi

# The session factory as the layers above name it: `bot` and `pipelines` hand it to storage
# functions without importing SQLAlchemy themselves (tests/test_layers.py).
Sessions: TypeAlias = async_sessionmaker[AsyncSession]

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_TURN_TIMEOUT_S = 30.0  # then "database is locked", as the busy timeout would say
SQLITE_SYNCHRONOUS = "FULL"
READ_ONLY_OPTION = "supportbot_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class WriteTurns:
    """One SQLite writer at a time in this process, in arrival order.

    Taken in the engine's `begin` event (inside SQLAlchemy's greenlet, so it can await)
    right before `BEGIN IMMEDIATE`; given back after the DBAPI commit or rollback, or when
    the connection is closed, terminated or returned to the pool still holding it.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._holders: set[int] = set()  # id() of the DBAPI connections holding the turn

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {lp: lk for lp, lk in self._locks.items() if not lp.is_closed()}
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def take(self, dbapi_connection: Any) -> None:
        try:
            await asyncio.wait_for(self._lock().acquire(), self.timeout_s)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holders.add(id(dbapi_connection))

    def give_back(self, dbapi_connection: Any) -> None:
        if id(dbapi_connection) in self._holders:
            self._holders.discard(id(dbapi_connection))
            self._lock().release()

    def install(self, engine: AsyncEngine) -> None:
        """Give the turn back after each way a transaction or connection ends."""
        dialect = engine.sync_engine.dialect
        for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
            original = getattr(dialect, name)

            def ended(connection: Any, _original: Any = original) -> None:
                try:
                    _original(connection)
                finally:
                    self.give_back(_dbapi(connection))

            setattr(dialect, name, ended)

        @event.listens_for(engine.sync_engine, "checkin")
        def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
            self.give_back(dbapi_connection)


def _dbapi(connection: Any) -> Any:
    """The DBAPI connection behind a pool proxy (or itself)."""
    return getattr(connection, "dbapi_connection", connection)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Build the async engine for `url`, applying SQLite's pragmas when needed."""
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)

    if make_url(url).get_driver_name() == "aiosqlite":
        kwargs.setdefault("module", one_trip_dbapi())
    engine = create_async_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level, so that our own BEGIN below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.close()

    turns = WriteTurns(WRITE_TURN_TIMEOUT_S)
    turns.install(engine)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        # SQLAlchemy's bridge from this sync event to the event loop (we are in its greenlet).
        await_(turns.take(_dbapi(connection.connection)))
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def conflict_insert(dialect: str, model: Any) -> PgInsert | SqliteInsert:
    """A Core `INSERT` into `model`'s table in the dialect's own form, which can say `ON
    CONFLICT` (both SQLite and PostgreSQL do). On the table, not the mapped class: the
    ORM's bulk-insert path adds nothing to a single upsert but CPU."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(cast(Table, model.__table__))


async def read_only(session: AsyncSession) -> None:
    """Mark `session`, before its first statement, as one that never writes.

    On SQLite its transaction then starts with a deferred `BEGIN` instead of `BEGIN
    IMMEDIATE`, so it neither waits for nor holds up writers (the Slack inbox's inserts on
    the ack path above all). A write in such a session may fail with "database is locked"
    when another writer is active: use it for reads only. No effect on PostgreSQL.
    """
    await session.connection(execution_options={READ_ONLY_OPTION: True})


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Database:
    """The engine and session factory of one database, created once per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = create_session_factory(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        """Ask the database for `SELECT 1`; raises when it does not answer (health checks)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
