"""Retention: finished jobs, traces and resolved tickets' turns go after their days; the rest
stays; deletes come in bounded batches; sweepers running together delete each row once."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest
from sqlalchemy import event, func, select
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from bot.wiring import open_slack_runtime
from bot.worker import Worker
from storage.db import Database
from storage.models import ConversationTurn, Job, Ticket, TraceRun, TraceStep, utcnow
from storage.queue import DEAD, DONE, QUEUED, RUNNING, JobQueue
from storage.retention import PurgeReport, RetentionPolicy, purge_expired
from tests.e2e.conftest import BOT_TOKEN, make_settings
from tests.fakes.fake_slack import FakeSlack

NOW = utcnow()
OLD = NOW - dt.timedelta(days=40)
RECENT = NOW - dt.timedelta(days=2)
POLICY = RetentionPolicy(job_days=30, trace_days=30, turn_days=30)


@pytest.fixture
def db(database: Database) -> Database:
    """SQLite, and PostgreSQL when TEST_POSTGRES_URL is set."""
    return database


def job(key: str, status: str, at: dt.datetime) -> Job:
    finished = at if status in (DONE, DEAD) else None
    return Job(
        kind="slack_message", dedupe_key=key, payload={"message": {"text": "secret"}},
        status=status, created_at=at, updated_at=at, run_after=at, finished_at=finished,
    )  # fmt: skip


def trace(run_id: str, at: dt.datetime, steps: int) -> TraceRun:
    run = TraceRun(id=run_id, pipeline="support", slack_user_id="U1", created_at=at)
    run.steps = [TraceStep(seq=i, name="router", model="m", prompt="secret") for i in range(steps)]
    return run


def ticket(number: str, status: str, updated: dt.datetime, turns: list[dt.datetime]) -> Ticket:
    """A ticket last updated at `updated`, with one customer turn written at each of `turns`."""
    row = Ticket(
        ticket_number=number, channel_id="D1", thread_ts=number, slack_user_id="U1",
        status=status, summary=f"summary of {number}", created_at=OLD, updated_at=updated,
    )  # fmt: skip
    row.turns_to_add = [  # type: ignore[attr-defined]
        ConversationTurn(role="customer", message_ts=f"{i}.0", text="secret", created_at=at)
        for i, at in enumerate(turns)
    ]
    return row


async def add(db: Database, *rows: Any) -> None:
    async with db.sessions() as session, session.begin():
        for row in rows:
            session.add(row)
            for turn in getattr(row, "turns_to_add", []):
                await session.flush()
                turn.ticket_id = row.id
                session.add(turn)


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def old_jobs(db: Database, n: int, prefix: str = "old") -> None:
    await add(db, *(job(f"{prefix}:{i}", DONE if i % 2 else DEAD, OLD) for i in range(n)))


async def test_older_rows_go_newer_and_unfinished_stay(db: Database) -> None:
    await add(
        db,
        job("done-old", DONE, OLD), job("dead-old", DEAD, OLD), job("done-new", DONE, RECENT),
        job("queued-old", QUEUED, OLD), job("running-old", RUNNING, OLD),
        trace("run-old", OLD, 3), trace("run-new", RECENT, 2),
        ticket("T-resolved-old", "resolved", OLD, [OLD, OLD]),
        ticket("T-resolved-new", "resolved", RECENT, [OLD, RECENT]),
        ticket("T-open-old", "open", OLD, [OLD]),
    )  # fmt: skip

    report = await purge_expired(db.sessions, POLICY, now=NOW)

    assert report == PurgeReport(jobs=2, trace_runs=1, trace_steps=3, turns=2)
    async with db.sessions() as session:
        keys = set((await session.scalars(select(Job.dedupe_key))).all())
        runs = set((await session.scalars(select(TraceRun.id))).all())
        tickets = {t.ticket_number: t.summary for t in (await session.scalars(select(Ticket)))}
    assert keys == {"done-new", "queued-old", "running-old"}
    assert runs == {"run-new"}
    assert await count(db, TraceStep) == 2
    # Every ticket row and summary stays; only the resolved-long-ago ticket loses its turns.
    assert set(tickets) == {"T-resolved-old", "T-resolved-new", "T-open-old"}
    assert tickets["T-resolved-old"] == "summary of T-resolved-old"
    remaining = await count(db, ConversationTurn)
    assert remaining == 3  # both of T-resolved-new (touched lately), T-open-old's one
    # Run again: nothing left to delete, nothing counted twice.
    assert await purge_expired(db.sessions, POLICY, now=NOW) == PurgeReport()


async def test_zero_days_keeps_everything(db: Database) -> None:
    await old_jobs(db, 3)
    await add(db, trace("run-old", OLD, 2), ticket("T1", "resolved", OLD, [OLD]))
    assert await purge_expired(db.sessions, RetentionPolicy(), now=NOW) == PurgeReport()
    assert (
        await count(db, Job),
        await count(db, TraceStep),
        await count(db, ConversationTurn),
    ) == (
        3,
        2,
        1,
    )


async def test_a_finished_jobs_key_still_dedupes_inside_the_period(db: Database) -> None:
    """Slack's redelivery of an answered event, a day later, still finds its job."""
    await add(db, job("slack:T1:D1:1.0", DONE, NOW - dt.timedelta(days=1)))
    await purge_expired(db.sessions, RetentionPolicy(job_days=1), now=NOW)
    assert not await JobQueue(db).enqueue("slack_message", "slack:T1:D1:1.0", {})


async def test_each_delete_is_a_bounded_batch(db: Database) -> None:
    await old_jobs(db, 11)
    await add(db, *(trace(f"run-{i}", OLD, 3) for i in range(3)))
    deleted_per_statement: list[int] = []

    def after_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deleted_per_statement.append(cursor.rowcount)

    event.listen(db.engine.sync_engine, "after_cursor_execute", after_execute)
    try:
        report = await purge_expired(db.sessions, POLICY, now=NOW, batch=4, pause=0)
    finally:
        event.remove(db.engine.sync_engine, "after_cursor_execute", after_execute)

    assert (report.jobs, report.trace_steps, report.trace_runs) == (11, 9, 3)
    assert max(deleted_per_statement) <= 4
    assert sum(deleted_per_statement) == 11 + 9 + 3
    assert await count(db, Job) == 0


async def test_sweepers_running_together_delete_each_row_once(db: Database) -> None:
    await old_jobs(db, 60)
    await add(db, *(job(f"new:{i}", DONE, RECENT) for i in range(5)))
    await add(db, ticket("T1", "resolved", OLD, [OLD] * 25), ticket("T2", "open", OLD, [OLD] * 3))

    reports = await asyncio.gather(
        *(purge_expired(db.sessions, POLICY, now=NOW, batch=7, pause=0) for _ in range(3))
    )

    assert sum(r.jobs for r in reports) == 60
    assert sum(r.turns for r in reports) == 25
    assert await count(db, Job) == 5
    assert await count(db, ConversationTurn) == 3


def test_settings_map_to_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().retention == RetentionPolicy(job_days=30, trace_days=90, turn_days=0)
    for name in ("JOB_RETENTION_DAYS", "TRACE_RETENTION_DAYS", "TURN_RETENTION_DAYS"):
        monkeypatch.setenv(name, "0")
    assert not Settings().retention.deletes_anything


async def test_the_worker_sweeps_now_and_then_and_survives_a_failure(db: Database) -> None:
    calls: list[float] = []

    async def sweep() -> PurgeReport:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return PurgeReport(jobs=1)

    worker = Worker(
        JobQueue(db), {}, poll_interval=0.05, sweep=sweep, sweep_interval=0.1, sweep_start_delay=0
    )
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.55)
    worker.stop()
    await asyncio.wait_for(task, 5)
    stopped_at = len(calls)
    await asyncio.sleep(0.2)

    assert 3 <= stopped_at <= 7  # at most one sweep per interval, and on after the failure
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(calls))
    assert len(calls) == stopped_at  # stopping the worker stops its sweeps


async def test_purge_command_uses_the_settings_and_its_overrides(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await old_jobs(db, 2)
    await add(db, ticket("T1", "resolved", OLD, [OLD, OLD]))
    monkeypatch.setenv("DATABASE_URL", db.url)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["purge", "--turn-days", "30"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 finished job(s)" in result.output
    assert "2 turn(s)" in result.output
    assert (await count(db, Job), await count(db, ConversationTurn)) == (0, 0)
    assert await count(db, Ticket) == 1


async def test_the_slack_runtimes_worker_sweeps_with_the_settings(sqlite_url: str) -> None:
    """`serve` and `worker` build their worker here: it carries the sweep of the settings."""
    async with FakeSlack(token=BOT_TOKEN) as fake_slack:
        settings = make_settings(fake_slack.api_url, sqlite_url, job_retention_days=1)
        async with open_slack_runtime(settings) as slack:
            await add(slack.core.db, job("old", DONE, OLD), job("new", DONE, NOW))
            worker = slack.build_worker()
            assert worker.sweep is not None
            assert (await worker.sweep()).jobs == 1
            assert await count(slack.core.db, Job) == 1
        keep_all = make_settings(
            fake_slack.api_url, sqlite_url, job_retention_days=0, trace_retention_days=0
        )
        async with open_slack_runtime(keep_all) as slack:
            assert slack.build_worker().sweep is None
