"""A worker on PostgreSQL starts a job another process queued at once, not at its next
poll (`storage.job_notices`, migration 0011), and keeps doing so after its listening
connection is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text

from bot.worker import Worker
from storage import job_notices
from storage.db import Database
from storage.queue import DONE, JobQueue, LeasedJob
from tests.conftest import migrated

POLL_S = 30.0  # far beyond every wait below: only a notice can start the job in time


class Ran:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        self.at[job.dedupe_key] = time.monotonic()
        return None

    async def give_up(self, job: LeasedJob, error: str) -> None:
        return None


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await task


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
async def two_processes(postgres_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines on one database: the worker's process and the one that enqueues."""
    async with migrated(postgres_url) as worker_db:
        other = Database(postgres_url)
        try:
            yield worker_db, other
        finally:
            await other.dispose()


@pytest.mark.postgres
async def test_a_job_queued_elsewhere_starts_at_once(
    two_processes: tuple[Database, Database],
) -> None:
    worker_db, other_db = two_processes
    ran = Ran()
    worker = Worker(JobQueue(worker_db), {"test": ran}, concurrency=4, poll_interval=POLL_S)
    other = JobQueue(other_db)
    async with running(worker):
        await asyncio.sleep(0.3)  # the worker's first claim found nothing; now it waits
        for n in range(3):
            queued = time.monotonic()
            await other.enqueue("test", f"k{n}", {})

            async def started(key: str = f"k{n}") -> bool:
                return key in ran.at

            assert await eventually(started, within=3.0), f"k{n} waited for the poll"
            assert ran.at[f"k{n}"] - queued < 3.0


@pytest.mark.postgres
async def test_after_losing_its_connection_the_worker_listens_again(
    two_processes: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_notices, "RECONNECT_S", 0.1)
    worker_db, other_db = two_processes
    ran = Ran()
    worker = Worker(JobQueue(worker_db), {"test": ran}, concurrency=4, poll_interval=POLL_S)
    other = JobQueue(other_db)

    async def listeners() -> set[int]:
        async with other_db.sessions() as session:
            pids = await session.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
            return set(pids)

    async with running(worker):
        assert await eventually(lambda: _one_other_than(listeners, set()), within=3.0)
        first = await listeners()
        async with other_db.sessions() as session, session.begin():
            await session.execute(
                text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                {"pids": list(first)},
            )
        assert await eventually(lambda: _one_other_than(listeners, first), within=3.0)
        await asyncio.sleep(0.2)  # the new connection's own catch-up claim has run
        await other.enqueue("test", "after", {})

        async def done() -> bool:
            return (await other.counts())[DONE] == 1

        assert await eventually(done, within=3.0)


async def _one_other_than(pids: Callable[[], Awaitable[set[int]]], old: set[int]) -> bool:
    now = await pids()
    return len(now) == 1 and not now & old


async def test_sqlite_has_no_listener(sqlite_db: Database) -> None:
    """Nothing to listen to: the block runs and nothing is called."""
    calls: list[int] = []
    async with JobQueue(sqlite_db).notices(lambda: calls.append(1)):
        await asyncio.sleep(0.05)
    assert calls == []
