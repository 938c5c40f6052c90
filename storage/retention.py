"""Retention: what the bot stores about conversations is deleted after a set number of days.

Three kinds of rows, each with its own age (0 keeps them forever):
- finished jobs (`done` and `dead`), by `finished_at`: their payload is the customer's
  message, or a /faq request. The row, not only its payload, goes, because nothing reads
  a finished job again except the unique `dedupe_key`, and that only matters while Slack
  may still redeliver the event: minutes (its retries come within about five), far below
  the one-day minimum that whole days give. Queued and running jobs are never touched.
- pipeline traces (runs and their steps), by the run's `created_at`: their prompts quote
  the messages and documents.
- the conversation turns of resolved tickets, once both the ticket (its last update) and
  the turn are older than the cutoff. The ticket row, its summary, intents and actions
  stay: tickets are the support team's record (SPEC 6). A ticket that is open again, or
  was touched within the period, keeps every turn.

Deletes go in bounded batches, each its own short transaction: the ids are read first in
a read-only session (on SQLite a deferred BEGIN, which holds no lock a writer waits for),
then deleted by primary key (with the condition checked again where a row can stop
matching meanwhile: a ticket reopened, a trace replayed), so a batch holds the write
lock, which the Slack inbox needs on the ack path, only as long as deleting `batch` rows
by key takes. Several workers may sweep at once: a delete is idempotent (a row already
gone is not counted twice), and on PostgreSQL `FOR UPDATE SKIP LOCKED` lets each one pass
over rows another is deleting instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.sql.elements import ColumnElement

from storage.db import Sessions, read_only
from storage.models import ConversationTurn, Job, Ticket, TraceRun, TraceStep, utcnow
from storage.queue import DEAD, DONE
from storage.ticket_info import RESOLVED

BATCH_ROWS = 500
BATCH_PAUSE_S = 0.05  # between batches: writers waiting for the lock go first


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of row is kept; 0 keeps it forever."""

    job_days: int = 0
    trace_days: int = 0
    turn_days: int = 0

    def __post_init__(self) -> None:
        if min(self.job_days, self.trace_days, self.turn_days) < 0:
            raise ValueError("retention days must be 0 (keep forever) or more")

    @property
    def deletes_anything(self) -> bool:
        return any((self.job_days, self.trace_days, self.turn_days))


@dataclass(frozen=True)
class PurgeReport:
    jobs: int = 0
    trace_runs: int = 0
    trace_steps: int = 0
    turns: int = 0

    @property
    def total(self) -> int:
        return self.jobs + self.trace_runs + self.trace_steps + self.turns

    def summary(self) -> str:
        return (
            f"deleted {self.jobs} finished job(s), {self.trace_runs} trace run(s) with "
            f"{self.trace_steps} step(s), {self.turns} turn(s) of resolved tickets"
        )


async def purge_expired(
    sessions: Sessions,
    policy: RetentionPolicy,
    *,
    now: dt.datetime | None = None,
    batch: int = BATCH_ROWS,
    pause: float = BATCH_PAUSE_S,
) -> PurgeReport:
    """Delete every row `policy` says is too old (see the module docstring)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    now = now or utcnow()
    sweep = _Sweep(sessions, batch, pause)
    jobs = runs = steps = turns = 0
    if policy.job_days:
        jobs = await sweep.delete(Job, _finished_jobs(_cutoff(now, policy.job_days)))
    if policy.trace_days:
        cutoff = _cutoff(now, policy.trace_days)
        old_run = (
            select(TraceRun.id)
            .where(TraceRun.id == TraceStep.run_id, TraceRun.created_at < cutoff)
            .exists()
        )
        # Steps first, explicitly: a run's cascade would delete them in one unbounded go.
        # An old run's steps stay old: the delete needs no second look at the runs.
        steps = await sweep.delete(TraceStep, old_run, recheck=False)
        runs = await sweep.delete(TraceRun, TraceRun.created_at < cutoff)
    if policy.turn_days:
        turns = await sweep.delete(ConversationTurn, _old_resolved_turns(now, policy.turn_days))
    return PurgeReport(jobs=jobs, trace_runs=runs, trace_steps=steps, turns=turns)


def _cutoff(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


def _finished_jobs(cutoff: dt.datetime) -> ColumnElement[bool]:
    # lower(): keeps SQLite off the (status, run_after) index, which would hand it every
    # finished job to sort by id for each batch; walking the primary key instead, it stops
    # at the batch's last row.
    return func.lower(Job.status).in_([DONE, DEAD]) & (Job.finished_at < cutoff)


def _old_resolved_turns(now: dt.datetime, days: int) -> ColumnElement[bool]:
    cutoff = _cutoff(now, days)
    # Correlated: one primary-key lookup per turn, not a pass over every resolved ticket.
    resolved_long_ago = (
        select(Ticket.id)
        .where(
            Ticket.id == ConversationTurn.ticket_id,
            Ticket.status == RESOLVED,
            Ticket.updated_at < cutoff,
        )
        .exists()
    )
    return (ConversationTurn.created_at < cutoff) & resolved_long_ago


class _Sweep:
    """Deletes the rows of one table that match a condition, a bounded batch at a time."""

    def __init__(self, sessions: Sessions, batch: int, pause: float) -> None:
        self._sessions = sessions
        self._batch = batch
        self._pause = pause

    async def delete(
        self, model: Any, condition: ColumnElement[bool], *, recheck: bool = True
    ) -> int:
        """Delete the rows of `model` matching `condition`; how many this call deleted.

        Walks the table once in primary-key order (keyset), so it ends even when another
        sweeper holds some of the rows; those are that sweeper's to delete. `recheck`:
        test `condition` again in the delete, for rows that may stop matching meanwhile.
        """
        deleted = 0
        after: Any = None
        while True:
            ids = await self._next_ids(model, condition, after)
            if not ids:
                return deleted
            deleted += await self._delete_ids(model, condition if recheck else None, ids)
            if len(ids) < self._batch:
                return deleted
            after = ids[-1]
            await asyncio.sleep(self._pause)

    async def _next_ids(self, model: Any, condition: ColumnElement[bool], after: Any) -> list[Any]:
        query = select(model.id).where(condition)
        if after is not None:
            query = query.where(model.id > after)
        async with self._sessions() as session:
            await read_only(session)
            found = await session.scalars(query.order_by(model.id).limit(self._batch))
            return list(found.all())

    async def _delete_ids(
        self, model: Any, condition: ColumnElement[bool] | None, ids: list[Any]
    ) -> int:
        # The condition again: a row may have changed since it was read (a ticket reopened).
        still_matching = select(model.id).where(model.id.in_(ids))
        if condition is not None:
            still_matching = still_matching.where(condition)
        still_matching = still_matching.with_for_update(skip_locked=True)
        statement = (
            delete(model)
            .where(model.id.in_(still_matching))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["BATCH_ROWS", "PurgeReport", "RetentionPolicy", "purge_expired"]
