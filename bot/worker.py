"""The worker loop: lease jobs from the shared queue and run them, a few at a time.

Any number of workers (embedded in `serve`, or `supportbot worker` processes on other
machines) share one queue; nothing in a worker's memory is needed for correctness:
- a job is leased, and the lease is renewed by a heartbeat while the job runs; a worker
  that dies stops renewing, and the job is claimed again when the lease expires;
- a worker that loses its lease (it stalled, another took over) cancels its copy;
- a job that runs past `job_timeout` (a hung call) is cancelled and retried;
- on shutdown the worker stops claiming, gives in-hand jobs `shutdown_grace` seconds to
  finish and releases the rest, so the next worker starts them at once;
- every `sweep_interval` seconds it runs the retention sweep (`storage.retention`) beside
  the jobs, in small batches; several workers sweeping at once only repeat idempotent deletes;
- it runs the features' `PeriodicCheck`s (the SLA check, `bot.triage.sla`) on their own
  intervals; a check keeps its state in the database, so any worker may run it.

What a job does is its handler's business (`JobHandler`, e.g. `bot.messages.reply_job`). A handler
raises `JobFailed` to choose between retry-with-backoff and the dead letter; any other
exception is retried too. Before a job is dead-lettered its handler may tell the customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.metrics import JOB_OUTCOMES, JOB_SECONDS, JOBS_IN_FLIGHT
from pipelines.log_context import bound
from storage.queue import DEAD, JobQueue, LeasedJob
from storage.retention import PurgeReport

logger = logging.getLogger(__name__)


class JobFailed(Exception):
    """A failed attempt, described for `last_error` and for the retry decision.

    `permanent`: retrying cannot help (the bot is not in the channel, the token is
    revoked): dead-letter at once. `retry_in`: wait at least this long (Retry-After).
    `can_notify`: whether it is worth trying to tell the customer when giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_in: float | None = None,
        can_notify: bool = True,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_in = retry_in
        self.can_notify = can_notify


class JobHandler(Protocol):
    """Runs the jobs of one kind."""

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        """Do the job; the returned dict is stored as the job's result."""
        ...

    async def give_up(self, job: LeasedJob, error: str) -> None:
        """The job is about to be dead-lettered: tell whoever is waiting, if possible."""
        ...


def default_worker_id() -> str:
    """host-pid-random: unique per process incarnation, at most 64 characters."""
    host = socket.gethostname()[:40]
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


MAX_DEFERRAL_S = 2.0
# While deferring to arriving events, look again this often: the job starts as soon as
# the events pause, not at the next poll (0.5 s later, all of it the customer's wait).
THROTTLED_POLL_S = 0.02
SWEEP_INTERVAL_S = 3600.0
# The first sweep waits a random share of this, so start-up does not pay for it and
# workers started together do not sweep together.
SWEEP_START_DELAY_S = 120.0

Sweep = Callable[[], Awaitable[PurgeReport]]


@dataclass(frozen=True)
class PeriodicCheck:
    """Work a worker does every `interval` seconds beside the jobs; `run` returns a line
    to log, or None when there was nothing to do. A failure waits for the next turn."""

    name: str
    interval: float
    run: Callable[[], Awaitable[str | None]]


JOBS_PER_LLM_SLOT = 2


def jobs_for_llm_budget(llm_max_concurrency: int) -> int:
    """How many jobs a worker runs at once when no --concurrency is given.

    LLM calls are the scarce resource and the CallGate and LLM_RPM limiter already bound
    them; a job waiting for a call costs memory, not a provider request. So the worker
    takes a few jobs per LLM slot, enough to keep every slot busy while other jobs do
    their database and Slack work, instead of a constant that queues a burst behind it.
    """
    return JOBS_PER_LLM_SLOT * llm_max_concurrency


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, JobHandler],
        *,
        worker_id: str | None = None,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
        shutdown_grace: float = 20.0,
        job_timeout: float | None = 600.0,
        throttle: Callable[[], bool] | None = None,
        sweep: Sweep | None = None,
        sweep_interval: float = SWEEP_INTERVAL_S,
        sweep_start_delay: float = SWEEP_START_DELAY_S,
        checks: Sequence[PeriodicCheck] = (),
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.queue = queue
        self.handlers = dict(handlers)
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.job_timeout = job_timeout
        # While `throttle()` is true (Slack is sending), an embedded worker yields the shared
        # event loop to acknowledgements: it starts no job for up to MAX_DEFERRAL_S, then
        # runs one at a time, so a long stream of events cannot starve the answers.
        self.throttle = throttle
        self._throttled_since: float | None = None
        self.sweep = sweep
        self.sweep_interval = sweep_interval
        self.sweep_start_delay = sweep_start_delay
        self.checks = list(checks)
        self._tasks: dict[asyncio.Task[None], LeasedJob] = {}
        self._lost: set[int] = set()
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def wake(self) -> None:
        """Look for work now instead of at the next poll (a job was just enqueued)."""
        self._wakeup.set()

    def stop(self) -> None:
        """Stop claiming; `run` then finishes or releases the jobs in hand and returns."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Claim and run jobs until `stop()` (or cancellation, which also drains)."""
        logger.info(
            "worker %s started (concurrency %d, lease %.0fs, kinds %s)",
            self.worker_id,
            self.concurrency,
            self.lease_seconds,
            ", ".join(sorted(self.handlers)),
        )
        sweeper = asyncio.create_task(self._sweep_periodically()) if self.sweep else None
        checkers = [asyncio.create_task(self._check_periodically(c)) for c in self.checks]
        try:
            # Jobs queued by other processes wake it too (PostgreSQL's notices), not only
            # its own process's submissions; the poll is what remains if a notice is lost.
            async with self.queue.notices(self.wake):
                while not self._stopping.is_set():
                    if not await self._claim_some():
                        deferring = self._throttled_since is not None
                        await self._sleep(THROTTLED_POLL_S if deferring else self.poll_interval)
        finally:
            background = [*checkers, *([sweeper] if sweeper is not None else [])]
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._drain()
            logger.info("worker %s stopped", self.worker_id)

    def _limit(self) -> int:
        if self.throttle is None or not self.throttle():
            self._throttled_since = None
            return self.concurrency
        now = time.monotonic()
        if self._throttled_since is None:
            self._throttled_since = now
        return 1 if now - self._throttled_since >= MAX_DEFERRAL_S else 0

    async def _claim_some(self) -> bool:
        """Claim what there is room for; True when there may be more to claim at once.

        A claim that found fewer jobs than it had room for has taken every runnable one:
        the next is submitted later (and wakes the worker) or falls due later (the next
        poll finds it). Looking again at once would be an empty claim, a write
        transaction, per batch.
        """
        free = self._limit() - self.in_flight
        if free <= 0:
            return False
        try:
            jobs = await self.queue.claim(
                self.worker_id, self.lease_seconds, limit=free, kinds=list(self.handlers)
            )
        except Exception as exc:  # the database is down: keep trying, slowly
            logger.warning("claiming jobs failed: %s", exc)
            await asyncio.sleep(min(5.0, self.poll_interval * 4))
            return False
        for job in jobs:
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._tasks[task] = job
            task.add_done_callback(self._finished)
        return len(jobs) == free and self.in_flight < self.concurrency

    def _finished(self, task: asyncio.Task[None]) -> None:
        was_full = self.in_flight >= self.concurrency
        self._tasks.pop(task, None)
        # Only a full worker has waited for a slot; any other learns of new jobs when
        # they are submitted (`wake`) or at the next poll. Waking on every finish cost
        # each job one more, empty, claim.
        if was_full or self._throttled_since is not None:
            self._wakeup.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        logger.info("waiting up to %.0fs for %d job(s)", self.shutdown_grace, len(self._tasks))
        _, pending = await asyncio.wait(list(self._tasks), timeout=self.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _sweep_periodically(self) -> None:
        """Run the retention sweep now and then; a failed sweep waits for the next turn."""
        assert self.sweep is not None
        delay = self.sweep_start_delay * random.uniform(0.5, 1.0)
        while True:
            await asyncio.sleep(delay)
            delay = self.sweep_interval
            try:
                report = await self.sweep()
            except Exception as exc:
                logger.warning("retention sweep failed: %s", exc)
                continue
            if report.total:
                logger.info("retention: %s", report.summary())

    async def _check_periodically(self, check: PeriodicCheck) -> None:
        while True:
            await asyncio.sleep(check.interval)
            try:
                line = await check.run()
            except Exception as exc:
                logger.warning("%s failed: %s", check.name, exc)
                continue
            if line:
                logger.info("%s: %s", check.name, line)

    # --- one job ------------------------------------------------------------------------

    async def _execute(self, job: LeasedJob) -> None:
        # Every record logged while the job runs, here, in its handler and in the tasks
        # they start, carries the job's fields (`bot.logs` prints them).
        with bound(job_id=job.id, job_kind=job.kind, attempt=job.attempts):
            await self._execute_bound(job)

    async def _execute_bound(self, job: LeasedJob) -> None:
        started = time.perf_counter()
        JOBS_IN_FLIGHT.inc()
        heartbeat = asyncio.create_task(self._heartbeat(job, asyncio.current_task()))
        outcome = "error"
        try:
            outcome = await self._attempt(self.handlers[job.kind], job)
        except asyncio.CancelledError:
            if job.id in self._lost:
                outcome = "lost"
            else:
                outcome = "released"
                with contextlib.suppress(Exception):
                    await self.queue.release(job)
                raise
        except Exception as exc:  # the outcome could not be recorded: the database is down
            logger.warning(
                "job: could not record its outcome (%s); it runs again when its lease expires",
                exc,
            )
        finally:
            heartbeat.cancel()
            self._lost.discard(job.id)
            JOBS_IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            JOB_SECONDS.labels(kind=job.kind).observe(seconds)
            JOB_OUTCOMES.labels(kind=job.kind, outcome=outcome).inc()
            logger.info(
                "job %s after %.2fs",
                outcome,
                seconds,
                extra={"outcome": outcome, "max_attempts": job.max_attempts},
            )

    async def _attempt(self, handler: JobHandler, job: LeasedJob) -> str:
        if job.is_exhausted:  # its worker died during the last attempt
            error = f"gave up after {job.max_attempts} attempts: {job.last_error or 'worker died'}"
            return await self._give_up(handler, job, error, notify=True)
        deadline = asyncio.timeout(self.job_timeout)
        try:
            async with deadline:
                result = await handler.run(job)
        except TimeoutError as exc:
            expired = deadline.expired()
            reason = f"timed out after {self.job_timeout:.0f}s" if expired else repr(exc)
            return await self._failed(handler, job, JobFailed(reason))
        except JobFailed as exc:
            return await self._failed(handler, job, exc)
        except Exception as exc:
            logger.exception("job raised %s", type(exc).__name__)
            return await self._failed(handler, job, JobFailed(f"{type(exc).__name__}: {exc}"))
        return "done" if await self.queue.complete(job, result) else "lost"

    async def _failed(self, handler: JobHandler, job: LeasedJob, exc: JobFailed) -> str:
        error = str(exc)
        logger.warning("job attempt failed: %s", error)
        if exc.permanent or job.is_final_attempt:
            return await self._give_up(handler, job, error, notify=exc.can_notify)
        status = await self.queue.fail(job, error, retry_in=exc.retry_in)
        return "retry" if status is not None else "lost"

    async def _give_up(self, handler: JobHandler, job: LeasedJob, error: str, notify: bool) -> str:
        if notify:
            try:
                await handler.give_up(job, error)
            except Exception as exc:
                logger.warning("job given up; could not tell the customer: %s", exc)
                error = f"{error}; follow-up message failed: {exc}"
        status = await self.queue.fail(job, error, permanent=True)
        return "dead" if status == DEAD else "lost"

    async def _heartbeat(self, job: LeasedJob, task: asyncio.Task[Any] | None) -> None:
        """Renew the lease every third of it; cancel the job when the lease was lost."""
        interval = max(0.05, job.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self.queue.heartbeat(job)
            except Exception as exc:
                logger.warning("job heartbeat failed: %s", exc)
                continue
            if not held:
                logger.warning("job lease lost to another worker; abandoning it")
                self._lost.add(job.id)
                if task is not None:
                    task.cancel()
                return


__all__ = ["JobFailed", "JobHandler", "PeriodicCheck", "Worker", "default_worker_id"]
