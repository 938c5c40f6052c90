"""The durable work queue: the `jobs` table used as a queue with row leases.

Why a table and not an in-process queue: a Slack event is acknowledged as soon as it is
stored here, so a crash, a deploy or a second replica never loses or doubles it (SPEC 8).

- `enqueue` is idempotent on `dedupe_key` (INSERT ... ON CONFLICT DO NOTHING): Slack's
  redeliveries of an event insert nothing new.
- `claim` leases jobs to one worker. PostgreSQL uses `FOR UPDATE SKIP LOCKED`, so any
  number of workers claim concurrently without ever sharing a job; SQLite has one writer
  at a time (`BEGIN IMMEDIATE`, see `storage.db`), which serialises claims by itself.
  A job whose lease expired (its worker died) is claimable again.
- Every later transition (`heartbeat`, `complete`, `fail`, `release`) is guarded on the
  lease (`leased_by` and `attempts`, which every claim increments): a worker whose lease
  expired and was taken over can no longer overwrite the new owner's work. Each returns
  whether it still held the lease.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from storage.db import Database
from storage.group_commit import GroupInserter
from storage.job_notices import job_notices
from storage.models import Job, utcnow

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
DEAD = "dead"
STATUSES = (QUEUED, RUNNING, DONE, DEAD)

DEFAULT_MAX_ATTEMPTS = 5
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class LeasedJob:
    """A job as claimed by one worker; the lease is (`leased_by`, `attempts`)."""

    id: int
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    leased_by: str
    lease_seconds: float
    last_error: str | None = None

    @property
    def is_retry(self) -> bool:
        """True when an earlier run may have got partway (it failed, crashed or was released).

        A handler with an external side effect (posting to Slack) checks for it first.
        """
        return self.attempts > 1 or self.last_error is not None

    @property
    def is_final_attempt(self) -> bool:
        return self.attempts >= self.max_attempts

    @property
    def is_exhausted(self) -> bool:
        """Claimed again after its last attempt died with its worker: do not run it again."""
        return self.attempts > self.max_attempts


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random.

    Spreads retries of a burst that failed together (an LLM outage) instead of having
    them all come back at the same instant.
    """
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay / 2 + random.uniform(0, delay / 2)


def new_job(
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    run_after: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of a job not yet run: `JobQueue.enqueue` inserts them, and a
    caller that must queue a job in its own transaction adds `Job(**new_job(...))`."""
    now = utcnow()
    return {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after or now,
        "created_at": now,
        "updated_at": now,
    }


class JobQueue:
    """Enqueue, lease and settle jobs in the database shared by every process."""

    def __init__(
        self,
        db: Database,
        *,
        backoff_base: float = 4.0,
        backoff_cap: float = 300.0,
    ) -> None:
        self._db = db
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        # SQLite and PostgreSQL: concurrent enqueues share a transaction (group commit).
        self._inserter = GroupInserter(db) if db.dialect in ("sqlite", "postgresql") else None

    # --- producing ----------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        dedupe_key: str,
        payload: dict[str, Any],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        run_after: dt.datetime | None = None,
    ) -> bool:
        """Store a job once; False when a job with this `dedupe_key` already exists."""
        values = new_job(kind, dedupe_key, payload, max_attempts=max_attempts, run_after=run_after)
        if self._inserter is not None:
            return await self._inserter.insert(values)
        try:  # any other dialect: rely on the unique constraint
            async with self._db.sessions() as session, session.begin():
                session.add(Job(**values))
            return True
        except IntegrityError:
            return False

    # --- consuming ----------------------------------------------------------------------

    def notices(self, on_job: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """While open, `on_job()` runs when another process queues a job (PostgreSQL)."""
        return job_notices(self._db, on_job)

    async def claim(
        self,
        worker_id: str,
        lease_seconds: float,
        limit: int = 1,
        kinds: Sequence[str] | None = None,
    ) -> list[LeasedJob]:
        """Lease up to `limit` runnable jobs (oldest first) to `worker_id`."""
        if limit < 1:
            return []
        now = utcnow()
        runnable: ColumnElement[bool] = or_(
            and_(Job.status == QUEUED, Job.run_after <= now),
            and_(Job.status == RUNNING, Job.lease_expires_at < now),
        )
        candidates = select(Job.id).where(runnable)
        if kinds is not None:
            candidates = candidates.where(Job.kind.in_(list(kinds)))
        candidates = (
            candidates.order_by(Job.run_after, Job.id)
            .limit(limit)
            # PostgreSQL: lock the chosen rows, skipping rows another claimer holds.
            # SQLite ignores it: its transaction already holds the database's write lock.
            .with_for_update(skip_locked=True)
        )
        async with self._db.sessions() as session, session.begin():
            # Two statements in one transaction: the SELECT locks the rows (PostgreSQL) so
            # the UPDATE cannot race; a subquery could be re-planned into a join that
            # ignores the LIMIT.
            ids = list((await session.scalars(candidates)).all())
            if not ids:
                return []
            statement = (
                update(Job)
                .where(Job.id.in_(ids))
                .values(
                    status=RUNNING,
                    leased_by=worker_id,
                    lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                    attempts=Job.attempts + 1,
                    updated_at=now,
                )
                .returning(
                    Job.id,
                    Job.kind,
                    Job.dedupe_key,
                    Job.payload,
                    Job.attempts,
                    Job.max_attempts,
                    Job.last_error,
                )
                .execution_options(synchronize_session=False)
            )
            rows = (await session.execute(statement)).all()
        jobs = [
            LeasedJob(
                id=row.id,
                kind=row.kind,
                dedupe_key=row.dedupe_key,
                payload=dict(row.payload or {}),
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                leased_by=worker_id,
                lease_seconds=lease_seconds,
                last_error=row.last_error,
            )
            for row in rows
        ]
        return sorted(jobs, key=lambda job: job.id)

    async def heartbeat(self, job: LeasedJob) -> bool:
        """Extend the lease of a job still being worked on; False when it was lost."""
        now = utcnow()
        return await self._transition(
            job,
            lease_expires_at=now + dt.timedelta(seconds=job.lease_seconds),
            updated_at=now,
        )

    async def complete(self, job: LeasedJob, result: dict[str, Any] | None = None) -> bool:
        """Mark the job done with its result; False when the lease was lost."""
        now = utcnow()
        return await self._transition(
            job,
            status=DONE,
            result=result,
            finished_at=now,
            lease_expires_at=None,
            updated_at=now,
        )

    async def fail(
        self,
        job: LeasedJob,
        error: str,
        *,
        permanent: bool = False,
        retry_in: float | None = None,
    ) -> str | None:
        """Record a failure: retry later with backoff, or dead-letter the job.

        Dead when `permanent` or when this was the last attempt. `retry_in` (a server's
        Retry-After) is a lower bound on the backoff. Returns the new status, or None when
        the lease was lost (nothing was written).
        """
        now = utcnow()
        error = error[:MAX_ERROR_CHARS]
        if permanent or job.is_final_attempt:
            held = await self._transition(
                job,
                status=DEAD,
                last_error=error,
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
            return DEAD if held else None
        delay = backoff_seconds(job.attempts, self._backoff_base, self._backoff_cap)
        if retry_in is not None:
            delay = max(delay, retry_in)
        held = await self._transition(
            job,
            status=QUEUED,
            last_error=error,
            run_after=now + dt.timedelta(seconds=delay),
            leased_by=None,
            lease_expires_at=None,
            updated_at=now,
        )
        return QUEUED if held else None

    async def release(self, job: LeasedJob, reason: str = "released at worker shutdown") -> bool:
        """Give an unfinished job back (graceful shutdown) without spending an attempt.

        `last_error` notes the interruption, so the next run knows it is a retry
        (`LeasedJob.is_retry`) and checks for a reply the interrupted run may have posted.
        """
        now = utcnow()
        return await self._transition(
            job,
            status=QUEUED,
            attempts=max(0, job.attempts - 1),
            last_error=reason,
            run_after=now,
            leased_by=None,
            lease_expires_at=None,
            updated_at=now,
        )

    async def checkpoint(self, job: LeasedJob, payload: dict[str, Any]) -> bool:
        """Replace the job's payload (a long job's progress), only while the lease is held."""
        return await self._transition(job, payload=payload)

    async def _transition(self, job: LeasedJob, **values: Any) -> bool:
        statement = (
            update(Job)
            .where(
                Job.id == job.id,
                Job.status == RUNNING,
                Job.leased_by == job.leased_by,
                Job.attempts == job.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0) == 1)

    # --- inspecting ---------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """Number of jobs per status (every status present, zero when none)."""
        statement = select(Job.status, func.count()).group_by(Job.status)
        async with self._db.sessions() as session:
            rows = (await session.execute(statement)).all()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({status: int(count) for status, count in rows})
        return counts

    async def get(self, job_id: int) -> Job | None:
        async with self._db.sessions() as session:
            return await session.get(Job, job_id)

    async def by_dedupe_key(self, dedupe_key: str) -> Job | None:
        async with self._db.sessions() as session:
            return await session.scalar(select(Job).where(Job.dedupe_key == dedupe_key))


__all__ = [
    "DEAD",
    "DONE",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "JobQueue",
    "LeasedJob",
    "backoff_seconds",
    "new_job",
]
