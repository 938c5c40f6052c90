"""Async engine and session factory for SQLite (default) and PostgreSQL.

SQLite runs with WAL, foreign keys and a busy timeout, and every transaction starts with
`BEGIN IMMEDIATE`: the single-writer lock is taken up front, so two writers queue on the
busy timeout instead of failing with "database is locked" when a read upgrades to a write.
A session that only reads can say so (`read_only`): its transaction is a plain deferred
`BEGIN`, which under WAL takes no lock that a writer waits for.

`synchronous=FULL`: under WAL, NORMAL syncs the log only at checkpoints, so a commit can
be lost to a power cut (not to a process crash). The inbox's insert is what Slack's ack
promises, and a worker's claim is what tells a rerun it is a retry; with FULL a commit is
on disk when it returns. It costs one sync of the log per commit, shared by a
group-committed batch (figures in bench/README.md).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# The session factory as the layers above name it: `bot` and `pipelines` hand it to storage
# functions without importing SQLAlchemy themselves (tests/test_layers.py).
Sessions: TypeAlias = async_sessionmaker[AsyncSession]

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_SYNCHRONOUS = "FULL"
READ_ONLY_OPTION = "supportbot_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Build the async engine for `url`, applying SQLite's pragmas when needed."""
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)

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

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        reads_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

    return engine


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
