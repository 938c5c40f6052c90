"""PostgreSQL tells workers in other processes that a job was queued.

A worker inside `serve` is woken by the jobs its own process submits, but a `supportbot
worker` beside `serve --no-worker` only polled, and the poll interval (0.5 s) was added
to every message's wait. Migration 0011 makes PostgreSQL `NOTIFY supportbot_jobs`
whenever a `jobs` row becomes queued; `job_notices` holds one connection that LISTENs
and calls `on_job` for each notice. The poll stays underneath: a notice lost with a
dropped connection costs one poll interval, never a job. SQLite needs none of this: one
process answers from its file and wakes its own worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage.db import Database

logger = logging.getLogger(__name__)

JOB_NOTICE_CHANNEL = "supportbot_jobs"  # the migration's CHANNEL
RECONNECT_S = 5.0
# Keyword arguments of SQLAlchemy's asyncpg adapter, not of asyncpg.connect.
_ADAPTER_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


@asynccontextmanager
async def job_notices(db: Database, on_job: Callable[[], None]) -> AsyncIterator[None]:
    """While the block runs, call `on_job()` whenever any process queues a job
    (PostgreSQL only; elsewhere nothing happens)."""
    if db.dialect != "postgresql":
        yield
        return
    listener = asyncio.create_task(_listen(db, on_job), name="job-notices")
    try:
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def _connect(db: Database) -> Any:
    """A connection of its own (a LISTEN holds it), with the engine's connect arguments."""
    args, kwargs = db.engine.dialect.create_connect_args(db.engine.url)
    for name in _ADAPTER_ONLY:
        kwargs.pop(name, None)
    return await asyncpg.connect(*args, **kwargs)


async def _listen(db: Database, on_job: Callable[[], None]) -> None:
    """LISTEN until cancelled; reconnect every RECONNECT_S after a failure or a loss."""
    while True:
        try:
            await _listen_once(db, on_job)
            logger.warning("job notices: connection lost; polling until it is back")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is down or refuses: the poll goes on
            logger.warning("job notices unavailable (%s); polling meanwhile", exc)
        await asyncio.sleep(RECONNECT_S)


async def _listen_once(db: Database, on_job: Callable[[], None]) -> None:
    """One connection's LISTEN; returns when the connection ends."""
    connection = await _connect(db)
    try:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(JOB_NOTICE_CHANNEL, lambda *_notice: on_job())
        on_job()  # whatever was queued while nobody listened
        await lost.wait()
    finally:
        if not connection.is_closed():
            connection.terminate()
