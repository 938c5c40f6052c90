"""The worker loop with stand-in handlers: bounds, retries, timeouts, leases, shutdown."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update

from bot.worker import JobFailed, Worker
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Job, utcnow
from storage.queue import DEAD, DONE, QUEUED, JobQueue, LeasedJob


@pytest.fixture
async def queue(sqlite_url: str) -> AsyncIterator[JobQueue]:
    await asyncio.to_thread(upgrade, sqlite_url)
    db = Database(sqlite_url)
    try:
        yield JobQueue(db, backoff_base=0.01, backoff_cap=0.02)
    finally:
        await db.dispose()


class Handler:
    """Records what it ran; `behaviour(job)` decides what each attempt does."""

    def __init__(self, behaviour: Any = None) -> None:
        self.behaviour = behaviour
        self.runs: list[tuple[int, int]] = []
        self.gave_up: list[tuple[int, str]] = []
        self.running = 0
        self.max_running = 0

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        self.runs.append((job.id, job.attempts))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.behaviour is not None:
                await self.behaviour(job)
            return {"ok": job.id}
        finally:
            self.running -= 1

    async def give_up(self, job: LeasedJob, error: str) -> None:
        self.gave_up.append((job.id, error))


async def run_until(worker: Worker, condition: Any, within: float = 10.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = asyncio.get_running_loop().time() + within
    try:
        while not await condition():
            assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task


def make_worker(queue: JobQueue, handler: Handler, **options: Any) -> Worker:
    defaults: dict[str, Any] = {"concurrency": 3, "lease_seconds": 5, "poll_interval": 0.02}
    defaults.update(options)
    return Worker(queue, {"test": handler}, **defaults)


async def status_of(queue: JobQueue, job_id: int) -> Job:
    job = await queue.get(job_id)
    assert job is not None
    return job


async def test_runs_every_job_with_bounded_concurrency(queue: JobQueue) -> None:
    async def slow(_: LeasedJob) -> None:
        await asyncio.sleep(0.05)

    handler = Handler(slow)
    for n in range(10):
        await queue.enqueue("test", f"k{n}", {})

    async def all_done() -> bool:
        return (await queue.counts())[DONE] == 10

    await run_until(make_worker(queue, handler, concurrency=3), all_done)
    assert sorted(job_id for job_id, _ in handler.runs) == list(range(1, 11))
    assert handler.max_running == 3


async def test_a_full_worker_starts_the_next_job_as_a_slot_frees(queue: JobQueue) -> None:
    """Not at the next poll (10 s here): a finish wakes a worker that was full."""

    async def short(_: LeasedJob) -> None:
        await asyncio.sleep(0.05)

    handler = Handler(short)
    for n in range(3):
        await queue.enqueue("test", f"k{n}", {})
    started = time.monotonic()

    async def all_done() -> bool:
        return (await queue.counts())[DONE] == 3

    await run_until(make_worker(queue, handler, concurrency=1, poll_interval=10.0), all_done)
    assert time.monotonic() - started < 2.0


class CountingQueue(JobQueue):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims = 0

    async def claim(self, *args: Any, **kwargs: Any) -> list[LeasedJob]:
        self.claims += 1
        return await super().claim(*args, **kwargs)


async def _until_done(queue: JobQueue, count: int) -> None:
    for _ in range(100):  # 2 s
        if (await queue.counts())[DONE] >= count:
            break
        await asyncio.sleep(0.02)
    assert (await queue.counts())[DONE] == count


async def test_jobs_cost_no_empty_claims(queue: JobQueue) -> None:
    """A claim with room to spare took every runnable job, and a finish in a worker with
    free slots frees nothing anyone waits for: neither is followed by another claim (each
    is a write transaction). A job submitted later wakes the worker (`wake`)."""
    counting = CountingQueue(queue._db)
    for n in range(3):
        await counting.enqueue("test", f"k{n}", {})
    worker = make_worker(counting, Handler(), concurrency=10, poll_interval=10.0)
    task = asyncio.create_task(worker.run())
    try:
        await _until_done(counting, 3)
        await asyncio.sleep(0.2)  # a claim after the finishes would be counted by now
        assert counting.claims == 1
        await counting.enqueue("test", "later", {})
        worker.wake()
        await _until_done(counting, 4)
        assert counting.claims == 2
    finally:
        worker.stop()
        await task


async def test_other_kinds_are_left_alone(queue: JobQueue) -> None:
    await queue.enqueue("someone_elses", "x", {})
    await queue.enqueue("test", "y", {})
    handler = Handler()

    async def mine_done() -> bool:
        return (await queue.counts())[DONE] == 1

    await run_until(make_worker(queue, handler), mine_done)
    assert (await queue.counts())[QUEUED] == 1


async def test_failures_retry_then_give_up_and_notify(queue: JobQueue) -> None:
    async def broken(_: LeasedJob) -> None:
        raise RuntimeError("backend down")

    handler = Handler(broken)
    await queue.enqueue("test", "k", {}, max_attempts=3)

    async def dead() -> bool:
        return (await queue.counts())[DEAD] == 1

    await run_until(make_worker(queue, handler), dead)
    assert [attempt for _, attempt in handler.runs] == [1, 2, 3]
    [(job_id, error)] = handler.gave_up
    assert "backend down" in error
    assert "backend down" in ((await status_of(queue, job_id)).last_error or "")


async def test_permanent_failure_dies_at_once_without_notifying(queue: JobQueue) -> None:
    async def fatal(_: LeasedJob) -> None:
        raise JobFailed("not_in_channel", permanent=True, can_notify=False)

    handler = Handler(fatal)
    await queue.enqueue("test", "k", {})

    async def dead() -> bool:
        return (await queue.counts())[DEAD] == 1

    await run_until(make_worker(queue, handler), dead)
    assert len(handler.runs) == 1 and handler.gave_up == []


async def test_a_hung_job_times_out_and_is_retried(queue: JobQueue) -> None:
    async def hang_once(job: LeasedJob) -> None:
        if job.attempts == 1:
            await asyncio.sleep(30)

    handler = Handler(hang_once)
    await queue.enqueue("test", "k", {})

    async def done() -> bool:
        return (await queue.counts())[DONE] == 1

    await run_until(make_worker(queue, handler, job_timeout=0.2), done)
    assert [attempt for _, attempt in handler.runs] == [1, 2]


async def test_shutdown_releases_unfinished_jobs(queue: JobQueue) -> None:
    started = asyncio.Event()

    async def long(_: LeasedJob) -> None:
        started.set()
        await asyncio.sleep(30)

    handler = Handler(long)
    await queue.enqueue("test", "k", {})
    worker = make_worker(queue, handler, shutdown_grace=0.1)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)

    [job] = await queue.claim("next-worker", lease_seconds=5)
    assert job.attempts == 1  # the release gave the attempt back
    assert job.is_retry  # but the next run knows it was interrupted


async def test_lost_lease_abandons_the_job(queue: JobQueue) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long(_: LeasedJob) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    handler = Handler(long)
    await queue.enqueue("test", "k", {})
    worker = make_worker(queue, handler, lease_seconds=0.3)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    # Another worker takes the job over (as if this one had stalled past its lease).
    async with queue._db.sessions() as session, session.begin():
        await session.execute(
            update(Job).values(leased_by="thief", lease_expires_at=utcnow() + dt.timedelta(60))
        )
    await asyncio.wait_for(cancelled.wait(), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    job = await status_of(queue, 1)
    assert job.leased_by == "thief" and job.status == "running"  # untouched by the loser


async def test_an_outcome_the_database_could_not_record_waits_for_the_lease(
    queue: JobQueue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    complete = queue.complete
    outages = iter([OSError("database is down")])

    async def flaky_complete(job: LeasedJob, result: dict[str, Any] | None = None) -> bool:
        for error in outages:  # only the first call fails
            raise error
        return await complete(job, result)

    monkeypatch.setattr(queue, "complete", flaky_complete)
    handler = Handler()
    await queue.enqueue("test", "k", {})
    worker = make_worker(queue, handler, lease_seconds=0.3)

    async def done() -> bool:
        return (await status_of(queue, 1)).status == DONE

    await run_until(worker, done)
    assert handler.runs == [(1, 1), (1, 2)]  # run again once the lease expired
    assert "could not record its outcome" in caplog.text


async def test_while_slack_is_sending_jobs_wait_then_run_one_at_a_time(
    queue: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedded worker yields to acknowledgements during a burst, but never starves."""
    monkeypatch.setattr("bot.worker.MAX_DEFERRAL_S", 0.3)
    handler = Handler(lambda job: asyncio.sleep(0.02))
    for n in range(6):
        await queue.enqueue("test", f"k{n}", {})
    busy = True
    worker = make_worker(queue, handler, concurrency=4, throttle=lambda: busy)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)
        assert handler.runs == []  # deferred while events arrive
        await asyncio.sleep(0.5)
        assert handler.runs and handler.max_running == 1  # then one at a time
        busy = False

        async def all_done() -> bool:
            return (await queue.counts())[DONE] == 6

        deadline = asyncio.get_running_loop().time() + 10
        while not await all_done():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task


async def test_a_deferred_job_starts_as_soon_as_the_events_pause(queue: JobQueue) -> None:
    """The customer's wait: once Slack stops sending, the deferred job starts within a
    few tens of ms, not at the next poll (here 1 s; 0.5 s by default)."""
    started: list[float] = []
    ran = asyncio.Event()

    async def note_start(job: LeasedJob) -> None:
        started.append(time.monotonic())
        ran.set()

    handler = Handler(note_start)
    busy = True
    worker = make_worker(queue, handler, poll_interval=1.0, throttle=lambda: busy)
    task = asyncio.create_task(worker.run())
    try:
        await queue.enqueue("test", "k", {})
        worker.wake()
        await asyncio.sleep(0.1)
        assert handler.runs == []  # deferred while events arrive
        busy = False
        paused = time.monotonic()
        await asyncio.wait_for(ran.wait(), timeout=2)
        assert started[0] - paused < 0.2
    finally:
        worker.stop()
        await task
