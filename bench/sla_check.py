"""The workers' SLA check at scale: what one turn costs a worker, at the README defaults.

A SQLite file (and, with `--postgres URL`, a PostgreSQL database) gets `--tickets`
tickets, `--running` of them escalated or claimed with an SLA clock started over the last
`--spread-hours`, at the default targets and business hours (`bot.settings`: urgent=1h /
normal=4h first response, 8h / 24h resolution, 09:00-17:00 UTC, mon-fri). The check is
`bot.triage.sla.SlaCheck` itself over the real `TicketStore` and `JobQueue`, the clock
fixed at a Wednesday noon. It runs three times:

1. the first turn, which finds the backlog's breaches, queues a job and flags each;
2. a steady turn (nothing new is due): the cost every worker pays every
   `SLA_CHECK_SECONDS` (60 by default);
3. one more: proof the flags hold (nothing is flagged twice).

Printed: each turn's seconds and breaches, and the steady turn over the check interval
(the share of a worker's time the check takes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, text

from bench.harness import table
from bot.settings import Settings
from bot.triage.sla import SlaCheck
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Ticket
from storage.queue import JobQueue
from storage.tickets import TicketStore

WEDNESDAY_NOON = dt.datetime(2026, 12, 9, 12, tzinfo=dt.UTC)
BATCH = 5_000


def rows(start: int, count: int, running: int, spread_h: float) -> list[dict[str, Any]]:
    out = []
    for n in range(start, start + count):
        clock = n <= running
        began = WEDNESDAY_NOON - dt.timedelta(hours=spread_h * ((n * 7919) % 1000) / 1000)
        out.append({
            "id": n, "ticket_number": f"T-{n:07d}", "channel_id": f"D{n}", "thread_ts": f"{n}.0",
            "slack_user_id": f"U{n % 5000}", "intents": [], "tasks": [], "actions": [],
            "summary": "", "team_id": "T1", "created_at": began, "updated_at": began,
            "status": ("escalated" if n % 2 else "claimed") if clock else "waiting",
            "assignee": None if n % 2 else "UAGENT", "priority": "urgent" if n % 5 == 0 else "normal",
            "sla_started_at": began if clock else None,
        })  # fmt: skip
    return out


async def seed(url: str, count: int, running: int, spread_h: float) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        for start in range(1, count + 1, BATCH):
            batch = rows(start, min(BATCH, count + 1 - start), running, spread_h)
            async with db.sessions() as session, session.begin():
                await session.execute(insert(Ticket), batch)
        async with db.sessions() as session, session.begin():
            await session.execute(text("ANALYZE"))
    finally:
        await db.dispose()


async def turns(url: str) -> list[tuple[float, str]]:
    db = Database(url)
    queue = JobQueue(db)
    store = TicketStore(db.sessions)

    async def refresh_card(ticket: Any, event: str | None = None, by: str = "") -> bool:
        return await queue.enqueue("triage_card", f"card:{ticket.id}:{ticket.version}", {})

    triage = SimpleNamespace(store=store, slack=SimpleNamespace(submit=queue.enqueue),
                             refresh_card=refresh_card)  # fmt: skip
    check = SlaCheck(triage, Settings().sla_policy, lambda: WEDNESDAY_NOON)  # type: ignore[arg-type]
    results = []
    try:
        for _ in range(3):
            started = time.perf_counter()
            line = await check.run()
            results.append((time.perf_counter() - started, line or "0 target(s) breached"))
    finally:
        await db.dispose()
    return results


async def measure(label: str, url: str, args: argparse.Namespace) -> list[str]:
    await seed(url, args.tickets, args.running, args.spread_hours)
    (first, found), (steady, _), (_, repeat) = await turns(url)
    return [label, f"{args.tickets:,}", f"{args.running:,}", found.split()[0], f"{first:.2f}",
            f"{steady * 1000:.0f}", repeat.split()[0], f"{steady / args.interval:.2%}"]  # fmt: skip


async def main(args: argparse.Namespace) -> int:
    print(
        f"SLA check over {args.tickets:,} tickets, {args.running:,} running clocks started "
        f"over {args.spread_hours:g} h; README defaults (SLA_CHECK_SECONDS={args.interval:g})"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sla-") as tmp:
        results.append(await measure("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 's.db'}", args))
    if args.postgres:
        results.append(await measure("PostgreSQL", args.postgres, args))
    headers = ["backend", "tickets", "running", "breaches", "first turn s", "steady turn ms",
               "flagged again", "steady / interval"]  # fmt: skip
    print(table(headers, results))
    return 0 if all(row[6] == "0" for row in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--running", type=int, default=2_000)
    parser.add_argument("--spread-hours", type=float, default=72.0)
    parser.add_argument("--interval", type=float, default=60.0, help="SLA_CHECK_SECONDS")
    parser.add_argument("--postgres", help="an EMPTY PostgreSQL database URL to seed as well")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
