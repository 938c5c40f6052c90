"""SQLite `synchronous`: what FULL costs the inbox (the insert an ack waits for) and a worker.

With WAL, `synchronous=NORMAL` syncs the log only at checkpoints: a committed transaction
survives a crash of the process but not a power cut or a kernel panic, so an event Slack
was told we had (the ack) could be gone. FULL syncs the log at every commit. This measures
the price on the local disk, in-process, with the queue the bot uses (`storage.queue`, the
group-commit inbox included), on a fresh SQLite file per mode and repetition:

- quiet ack: events stored one after another (each commit alone): the ack-path latency;
- burst: waves of concurrent events (group commit shares a commit, hence one sync, per batch);
- worker: claim then complete, one job at a time (two commits per job).

Modes alternate (NORMAL, FULL, NORMAL, ...) so that the VM's drifting speed hits both.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event

from storage.db import Database
from storage.migrate import upgrade
from storage.queue import JobQueue

MODES = ("NORMAL", "FULL")
PAYLOAD = {"message": {"text": "my invoice INV-10011 looks too high " * 4}}


@dataclass
class Sample:
    quiet_ms: list[float]
    burst_ms: list[float]
    burst_per_s: float
    worker_ms: list[float]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def force_synchronous(db: Database, mode: str) -> None:
    """Override `storage.db`'s pragma on every new connection (listeners run in order)."""

    @event.listens_for(db.engine.sync_engine, "connect")
    def _synchronous(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous={mode}")
        cursor.close()


async def timed(coro: Any) -> float:
    started = time.perf_counter()
    await coro
    return (time.perf_counter() - started) * 1000


async def measure(mode: str, args: argparse.Namespace) -> Sample:
    with tempfile.TemporaryDirectory(prefix="inbox-sync-", dir=args.dir) as workdir:
        url = f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        force_synchronous(db, mode)
        queue = JobQueue(db)
        try:
            await queue.enqueue("bench", "warm-up", PAYLOAD)
            quiet = [
                await timed(queue.enqueue("bench", f"quiet:{i}", PAYLOAD))
                for i in range(args.events)
            ]
            burst: list[float] = []
            started = time.perf_counter()
            for wave in range(args.waves):
                burst += await asyncio.gather(
                    *(
                        timed(queue.enqueue("bench", f"burst:{wave}:{i}", PAYLOAD))
                        for i in range(args.wave_size)
                    )
                )
            per_s = len(burst) / (time.perf_counter() - started)
            worker = []
            for _ in range(args.events):
                started = time.perf_counter()
                (job,) = await queue.claim("bench-worker", 60.0, limit=1)
                await queue.complete(job, {"ok": True})
                worker.append((time.perf_counter() - started) * 1000)
        finally:
            await db.dispose()
    return Sample(quiet, burst, per_s, worker)


async def main(args: argparse.Namespace) -> None:
    samples: dict[str, list[Sample]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            samples[mode].append(await measure(mode, args))
    print(
        f"SQLite synchronous, {args.repeat} alternating repetitions per mode; quiet ack: "
        f"{args.events} events one at a time; burst: {args.waves} waves of {args.wave_size}; "
        f"worker: {args.events} jobs claimed then completed one at a time"
    )
    print(
        f"{'mode':>6}  {'quiet p50':>9}  {'quiet p99':>9}  {'burst p50':>9}  {'burst p99':>9}"
        f"  {'burst/s':>8}  {'worker p50':>10}  {'worker p99':>10}   (ms, median of repetitions)"
    )
    for mode, runs in samples.items():

        def med(pick: Any, runs: list[Sample] = runs) -> float:
            return statistics.median(pick(run) for run in runs)

        print(
            f"{mode:>6}  {med(lambda r: pct(r.quiet_ms, 0.5)):9.2f}"
            f"  {med(lambda r: pct(r.quiet_ms, 0.99)):9.2f}"
            f"  {med(lambda r: pct(r.burst_ms, 0.5)):9.2f}"
            f"  {med(lambda r: pct(r.burst_ms, 0.99)):9.2f}"
            f"  {med(lambda r: r.burst_per_s):8.0f}"
            f"  {med(lambda r: pct(r.worker_ms, 0.5)):10.2f}"
            f"  {med(lambda r: pct(r.worker_ms, 0.99)):10.2f}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300, help="quiet events and worker jobs")
    parser.add_argument("--waves", type=int, default=20, help="burst waves")
    parser.add_argument("--wave-size", type=int, default=50, help="concurrent events per wave")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per mode")
    parser.add_argument(
        "--dir", default=None, help="where the SQLite files go (the disk to measure)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
