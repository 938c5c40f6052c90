"""Group commit of the durable inbox: concurrent enqueues share transactions, and each
caller still learns exactly whether its own job was new."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.group_commit import GroupInserter
from storage.models import Job, utcnow
from storage.queue import JobQueue


async def test_concurrent_enqueues_with_redeliveries_store_each_job_once(
    database: Database,
) -> None:
    queue = JobQueue(database)
    keys = [f"slack:T:C:{n}" for n in range(150)] + [f"slack:T:C:{n}" for n in range(0, 150, 5)]
    results = await asyncio.gather(
        *(queue.enqueue("slack_message", key, {"n": i}) for i, key in enumerate(keys))
    )
    assert sum(results) == 150  # each new key reported new exactly once
    assert not any(results[150:])  # every redelivery reported as a duplicate
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 150
    # and a later redelivery, alone, is a duplicate too
    assert await queue.enqueue("slack_message", "slack:T:C:7", {}) is False


async def test_batches_share_transactions(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    inserter = GroupInserter(database)
    statements: list[int] = []
    original = inserter._insert

    async def counting(rows):  # type: ignore[no-untyped-def]
        statements.append(len(rows))
        return await original(rows)

    monkeypatch.setattr(inserter, "_insert", counting)
    values = [_row(f"k{n}") for n in range(100)]
    results = await asyncio.gather(*(inserter.insert(v) for v in values))
    assert all(results)
    assert len(statements) < 10 and sum(statements) == 100


async def test_a_failed_batch_fails_each_caller_and_the_next_one_works(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    inserter = GroupInserter(database)
    original = inserter._insert
    calls = 0

    async def flaky(rows):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return await original(rows)

    monkeypatch.setattr(inserter, "_insert", flaky)
    first = await asyncio.gather(*(inserter.insert(_row(f"a{n}")) for n in range(5)),
                                 return_exceptions=True)  # fmt: skip
    assert all(isinstance(result, ConnectionError) for result in first)
    assert await inserter.insert(_row("a0")) is True  # nothing was stored by the failure


def _row(key: str) -> dict[str, object]:
    now = utcnow()
    return {
        "kind": "test", "dedupe_key": key, "payload": {}, "status": "queued", "attempts": 0,
        "max_attempts": 5, "run_after": now, "created_at": now, "updated_at": now,
    }  # fmt: skip


async def test_rows_are_stored_exactly_as_the_orm_stores_them(database: Database) -> None:
    """The SQLite path binds values itself: the stored text must match the ORM's, or
    `run_after <= now` comparisons in `claim` would silently misorder jobs."""
    values = _row("group") | {"payload": {"text": "héllo", "n": [1, 2.5, None]}}
    assert await GroupInserter(database).insert(values) is True
    async with database.sessions() as session, session.begin():
        session.add(Job(**(values | {"dedupe_key": "orm"})))
    columns = "kind, payload, status, attempts, max_attempts, run_after, created_at, updated_at"
    async with database.engine.connect() as connection:
        stored = (
            await connection.exec_driver_sql(
                f"SELECT dedupe_key, {columns} FROM jobs ORDER BY dedupe_key"
            )
        ).all()
    by_key = {row[0]: tuple(row[1:]) for row in stored}
    assert by_key["group"] == by_key["orm"]
    queue = JobQueue(database)
    claimed = await queue.claim("w", 60, limit=5, kinds=["test"])
    assert sorted(job.dedupe_key for job in claimed) == ["group", "orm"]
