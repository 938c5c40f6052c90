"""The durable work queue on SQLite and PostgreSQL (`database` runs each test on both)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import update

from storage.db import Database
from storage.models import Job, utcnow
from storage.queue import DEAD, DONE, QUEUED, RUNNING, JobQueue, backoff_seconds


@pytest.fixture
def queue(database: Database) -> JobQueue:
    return JobQueue(database, backoff_base=0.01, backoff_cap=0.05)


async def _expire_leases(database: Database) -> None:
    """Pretend time passed: every lease is already over."""
    past = utcnow() - dt.timedelta(seconds=1)
    async with database.sessions() as session, session.begin():
        await session.execute(update(Job).values(lease_expires_at=past))


async def _make_runnable(database: Database) -> None:
    """Pretend the backoff passed: every queued job may run now."""
    past = utcnow() - dt.timedelta(seconds=1)
    async with database.sessions() as session, session.begin():
        await session.execute(update(Job).where(Job.status == QUEUED).values(run_after=past))


async def test_enqueue_is_idempotent_on_the_dedupe_key(queue: JobQueue) -> None:
    assert await queue.enqueue("slack_message", "msg:T:C:1", {"n": 1}) is True
    assert await queue.enqueue("slack_message", "msg:T:C:1", {"n": 2}) is False
    assert await queue.counts() == {QUEUED: 1, RUNNING: 0, DONE: 0, DEAD: 0}
    job = await queue.by_dedupe_key("msg:T:C:1")
    assert job is not None and job.payload == {"n": 1}


async def test_claim_then_complete(queue: JobQueue) -> None:
    await queue.enqueue("slack_message", "a", {"x": 1})
    await queue.enqueue("slack_message", "b", {"x": 2})
    [first] = await queue.claim("w1", lease_seconds=30)
    assert (first.dedupe_key, first.attempts, first.payload) == ("a", 1, {"x": 1})
    assert not first.is_retry
    assert await queue.complete(first, {"ts": "1.2"}) is True
    stored = await queue.get(first.id)
    assert stored is not None and stored.status == DONE and stored.result == {"ts": "1.2"}
    assert stored.finished_at is not None
    # A done job is never claimed again; the other one is.
    [second] = await queue.claim("w1", lease_seconds=30, limit=5)
    assert second.dedupe_key == "b"
    assert await queue.claim("w1", lease_seconds=30) == []


async def test_claim_filters_by_kind_and_respects_run_after(queue: JobQueue) -> None:
    await queue.enqueue("faq", "f", {})
    later = utcnow() + dt.timedelta(hours=1)
    await queue.enqueue("slack_message", "later", {}, run_after=later)
    assert await queue.claim("w1", 30, limit=5, kinds=["slack_message"]) == []
    [job] = await queue.claim("w1", 30, limit=5, kinds=["faq"])
    assert job.kind == "faq"


async def test_expired_lease_is_claimed_again(queue: JobQueue, database: Database) -> None:
    await queue.enqueue("slack_message", "a", {})
    [dead_worker_job] = await queue.claim("w1", lease_seconds=30)
    assert await queue.claim("w2", lease_seconds=30) == []  # lease still held
    await _expire_leases(database)
    [taken_over] = await queue.claim("w2", lease_seconds=30)
    assert taken_over.id == dead_worker_job.id
    assert taken_over.attempts == 2 and taken_over.is_retry


async def test_stale_worker_cannot_settle_a_job_re_leased_by_another(
    queue: JobQueue, database: Database
) -> None:
    await queue.enqueue("slack_message", "a", {})
    [stale] = await queue.claim("w1", lease_seconds=30)
    await _expire_leases(database)
    [fresh] = await queue.claim("w2", lease_seconds=30)

    assert await queue.heartbeat(stale) is False
    assert await queue.complete(stale, {"by": "w1"}) is False
    assert await queue.fail(stale, "boom") is None
    assert await queue.release(stale) is False

    assert await queue.heartbeat(fresh) is True
    assert await queue.complete(fresh, {"by": "w2"}) is True
    stored = await queue.get(fresh.id)
    assert stored is not None and stored.result == {"by": "w2"} and stored.leased_by == "w2"


async def test_same_worker_reclaiming_its_expired_job_fences_the_old_lease(
    queue: JobQueue, database: Database
) -> None:
    await queue.enqueue("slack_message", "a", {})
    [old] = await queue.claim("w1", lease_seconds=30)
    await _expire_leases(database)
    [new] = await queue.claim("w1", lease_seconds=30)
    assert await queue.complete(old, {}) is False  # same worker id, older attempt
    assert await queue.complete(new, {}) is True


async def test_failures_back_off_then_go_dead(queue: JobQueue, database: Database) -> None:
    await queue.enqueue("slack_message", "a", {}, max_attempts=3)
    statuses = []
    for _ in range(3):
        await _make_runnable(database)
        [job] = await queue.claim("w1", lease_seconds=30)
        before = utcnow()
        statuses.append(await queue.fail(job, f"attempt {job.attempts} failed"))
        stored = await queue.get(job.id)
        assert stored is not None
        if stored.status == QUEUED:
            assert stored.run_after >= before  # backed off into the future
            assert stored.leased_by is None
    assert statuses == [QUEUED, QUEUED, DEAD]
    stored = await queue.get(job.id)
    assert stored is not None and stored.last_error == "attempt 3 failed"
    await _make_runnable(database)
    assert await queue.claim("w1", lease_seconds=30) == []


async def test_retry_in_is_a_lower_bound_and_permanent_failures_die_at_once(
    queue: JobQueue,
) -> None:
    await queue.enqueue("slack_message", "a", {})
    await queue.enqueue("slack_message", "b", {})
    first, second = await queue.claim("w1", lease_seconds=30, limit=2)
    before = utcnow()
    assert await queue.fail(first, "ratelimited", retry_in=60) == QUEUED
    stored = await queue.get(first.id)
    assert stored is not None and stored.run_after >= before + dt.timedelta(seconds=59)
    assert await queue.fail(second, "not_in_channel", permanent=True) == DEAD
    assert (await queue.counts())[DEAD] == 1


async def test_release_gives_the_job_back_without_spending_an_attempt(queue: JobQueue) -> None:
    await queue.enqueue("slack_message", "a", {})
    [job] = await queue.claim("w1", lease_seconds=30)
    assert await queue.release(job) is True
    [again] = await queue.claim("w2", lease_seconds=30)
    assert again.attempts == 1
    assert again.is_retry  # an interrupted run may have posted: check before posting


async def test_exhausted_job_is_recognisable(queue: JobQueue, database: Database) -> None:
    await queue.enqueue("slack_message", "a", {}, max_attempts=1)
    [job] = await queue.claim("w1", lease_seconds=30)
    assert job.is_final_attempt and not job.is_exhausted
    await _expire_leases(database)  # the worker died on its last attempt
    [again] = await queue.claim("w2", lease_seconds=30)
    assert again.is_exhausted


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    for attempts, full in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 30.0)]:
        for _ in range(20):
            delay = backoff_seconds(attempts, base=2.0, cap=30.0)
            assert full / 2 <= delay <= full


@pytest.mark.postgres
async def test_concurrent_claimers_never_share_a_job(postgres_url: str) -> None:
    from storage.migrate import upgrade

    await asyncio.to_thread(upgrade, postgres_url)
    db = Database(postgres_url, pool_size=10)
    try:
        queue = JobQueue(db)
        for n in range(200):
            await queue.enqueue("slack_message", f"k{n}", {"n": n})

        async def claimer(name: str) -> list[int]:
            got: list[int] = []
            while jobs := await queue.claim(name, lease_seconds=60, limit=3):
                got.extend(job.id for job in jobs)
            return got

        results = await asyncio.gather(*(claimer(f"w{i}") for i in range(8)))
        claimed = [job_id for result in results for job_id in result]
        assert len(claimed) == 200
        assert len(set(claimed)) == 200
        assert sum(1 for result in results if result) > 1  # they really ran concurrently
    finally:
        await db.dispose()
