"""The retention sweep against the inbox: what the ack path waits while old rows are deleted.

A SQLite file gets `--jobs` finished jobs, `--runs` trace runs (5 steps each) and
`--tickets` resolved tickets (4 turns each), all past their retention, plus a tenth as
many recent jobs. Then events are stored one every
`--interval-ms` (the inbox insert each Slack ack waits for, `storage.queue`), first alone
for `--quiet-s` seconds, then while `storage.retention.purge_expired` deletes the old rows
in its batches. Printed: the insert latency in both phases, the sweep's time and rows, and
the longest single delete statement (how long one batch holds SQLite's write lock).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert

from storage.db import Database
from storage.migrate import upgrade
from storage.models import ConversationTurn, Job, Ticket, TraceRun, TraceStep, utcnow
from storage.queue import DONE, JobQueue
from storage.retention import BATCH_ROWS, RetentionPolicy, purge_expired

PAYLOAD = {"message": {"text": "where is my order ORD-10002? " * 4}}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(db: Database, jobs: int, runs: int, tickets: int) -> None:
    old = utcnow() - dt.timedelta(days=400)
    recent = utcnow() - dt.timedelta(hours=1)
    job_rows = [
        {
            "kind": "slack_message",
            "dedupe_key": f"old:{i}",
            "payload": PAYLOAD,
            "status": DONE,
            "run_after": at,
            "created_at": at,
            "updated_at": at,
            "finished_at": at,
        }
        for i in range(jobs + jobs // 10)
        for at in [old if i < jobs else recent]
    ]
    run_rows = [
        {"id": f"run-{i:08d}", "pipeline": "support", "input": {}, "created_at": old}
        for i in range(runs)
    ]
    step_rows = [
        {"run_id": f"run-{i:08d}", "seq": s, "name": "router", "model": "m", "prompt": "p" * 400}
        for i in range(runs)
        for s in range(5)
    ]
    ticket_rows = [
        {
            "id": i + 1, "ticket_number": f"T-{i + 1:06d}", "channel_id": "D1",
            "thread_ts": f"{i}.0", "slack_user_id": "U1", "status": "resolved",
            "summary": "s", "created_at": old, "updated_at": old,
        }
        for i in range(tickets)
    ]  # fmt: skip
    turn_rows = [
        {
            "ticket_id": i + 1, "role": "customer" if t % 2 else "bot",
            "message_ts": f"{t}.0", "text": "t" * 200, "created_at": old,
        }
        for i in range(tickets)
        for t in range(4)
    ]  # fmt: skip
    tables = (
        (Job, job_rows), (TraceRun, run_rows), (TraceStep, step_rows),
        (Ticket, ticket_rows), (ConversationTurn, turn_rows),
    )  # fmt: skip
    async with db.sessions() as session, session.begin():
        for table, rows in tables:
            for start in range(0, len(rows), 5000):
                await session.execute(insert(table), rows[start : start + 5000])


async def trickle(
    queue: JobQueue, prefix: str, interval: float, stop: asyncio.Event
) -> list[float]:
    latencies: list[float] = []
    n = 0
    while not stop.is_set():
        started = time.perf_counter()
        await queue.enqueue("slack_message", f"{prefix}:{n}", PAYLOAD)
        latencies.append((time.perf_counter() - started) * 1000)
        n += 1
        await asyncio.sleep(interval)
    return latencies


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="retention-") as workdir:
        url = f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        deletes: list[float] = []

        def before(conn: Any, *_: Any) -> None:
            conn.info["started"] = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().upper().startswith("DELETE"):
                deletes.append((time.perf_counter() - conn.info["started"]) * 1000)

        event.listen(db.engine.sync_engine, "before_cursor_execute", before)
        event.listen(db.engine.sync_engine, "after_cursor_execute", after)
        try:
            await fill(db, args.jobs, args.runs, args.tickets)
            queue = JobQueue(db)
            stop = asyncio.Event()
            quiet_task = asyncio.create_task(trickle(queue, "q", args.interval_ms / 1000, stop))
            await asyncio.sleep(args.quiet_s)
            stop.set()
            quiet = await quiet_task
            stop = asyncio.Event()
            busy_task = asyncio.create_task(trickle(queue, "b", args.interval_ms / 1000, stop))
            started = time.perf_counter()
            report = await purge_expired(db.sessions, RetentionPolicy(30, 30, 30), batch=args.batch)
            sweep_s = time.perf_counter() - started
            stop.set()
            busy = await busy_task
        finally:
            await db.dispose()
    print(
        f"retention sweep on SQLite: {args.jobs} old jobs, {args.runs} old runs x 5 steps, "
        f"{args.tickets} resolved tickets x 4 turns, "
        f"batches of {args.batch}; an event stored every {args.interval_ms} ms"
    )
    print(f"sweep: {report.summary()} in {sweep_s:.2f} s; {len(deletes)} delete statements, ")
    print(f"  each held the write lock p50 {pct(deletes, 0.5):.1f} ms, max {max(deletes):.1f} ms")
    for name, values in (("inbox insert, no sweep", quiet), ("inbox insert during sweep", busy)):
        print(
            f"{name:>26}: n={len(values)} p50 {pct(values, 0.5):.2f} ms "
            f"p99 {pct(values, 0.99):.2f} ms max {max(values):.2f} ms"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50_000, help="old finished jobs")
    parser.add_argument("--runs", type=int, default=10_000, help="old trace runs (5 steps each)")
    parser.add_argument("--tickets", type=int, default=10_000, help="resolved (4 turns each)")
    parser.add_argument("--batch", type=int, default=BATCH_ROWS, help="rows per delete")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="between two events")
    parser.add_argument("--quiet-s", type=float, default=3.0, help="events before the sweep")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
