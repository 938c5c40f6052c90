"""`supportbot report --json` over 100,000 tickets: the support numbers stay fast.

A SQLite file (and, with `--postgres URL`, a PostgreSQL database) gets `--tickets`
tickets opened over the last 60 days, each with a customer turn and a bot reply (a tenth
escalated with an agent turn, a third resolved), a vote on every fifth, a satisfaction
question on every resolved one (two thirds answered). Then the command a support lead
runs, `supportbot report --since 30d --json`, is started `--runs` times as a subprocess
(the whole command: interpreter start, imports, the migration check, the queries), and
the query alone is timed in-process. Target (issue 15): the command under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bench.harness import table
from storage.db import Database
from storage.feedback_models import CsatSurvey, ReplyVote
from storage.migrate import upgrade
from storage.models import ConversationTurn, Ticket, utcnow
from storage.support_report import support_report

INTENTS = ["order_status", "billing_inquiry", "product_return", "technical_support"]
BATCH = 5_000
SUPPORTBOT = str(Path(sys.executable).with_name("supportbot"))


def rows_for(start: int, count: int, now: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    tickets, turns, votes, surveys = [], [], [], []
    for n in range(start, start + count):
        opened = now - dt.timedelta(minutes=(n * 7919) % (60 * 24 * 60))
        escalated = n % 10 == 0
        resolved = n % 3 == 0
        tickets.append({
            "id": n, "ticket_number": f"T-{n:07d}", "channel_id": f"D{n}", "thread_ts": f"{n}.0",
            "slack_user_id": f"U{n % 5000}", "intents": [INTENTS[n % 4]], "status":
            "resolved" if resolved else "waiting", "summary": "", "tasks": [], "actions": [],
            "team_id": "T1", "created_at": opened, "updated_at": opened,
            "primary_intent": INTENTS[n % 4], "escalated_at": opened if escalated else None,
            "person_involved": escalated, "first_response_s": 2.0 + n % 5,
            "resolved_at": opened + dt.timedelta(hours=1 + n % 24) if resolved else None,
            "resolution_s": 3600.0 * (1 + n % 24) if resolved else None,
        })  # fmt: skip
        turns.append({"ticket_id": n, "role": "customer", "message_ts": f"{n}.0",
                      "slack_user_id": f"U{n % 5000}", "text": "where is my order?",
                      "created_at": opened})  # fmt: skip
        turns.append({"ticket_id": n, "role": "bot", "message_ts": f"r{n}", "slack_user_id": "",
                      "text": "it is on its way", "created_at":
                      opened + dt.timedelta(seconds=2 + n % 5)})  # fmt: skip
        if escalated:
            turns.append({"ticket_id": n, "role": "agent", "message_ts": f"a{n}",
                          "slack_user_id": "UAGENT", "text": "on it",
                          "created_at": opened + dt.timedelta(minutes=20)})  # fmt: skip
        if n % 5 == 0:
            votes.append({"ticket_id": n, "channel_id": f"D{n}", "message_ts": f"r{n}",
                          "run_id": "", "slack_user_id": f"U{n % 5000}",
                          "vote": "up" if n % 4 else "down", "created_at": now,
                          "updated_at": now})  # fmt: skip
        if resolved:
            surveys.append({"ticket_id": n, "slack_user_id": f"U{n % 5000}",
                            "channel_id": f"D{n}", "score": (n % 5) + 1 if n % 9 else None,
                            "asked_at": now})  # fmt: skip
    return {"tickets": tickets, "turns": turns, "votes": votes, "surveys": surveys}


async def seed(url: str, count: int) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    now = utcnow()
    try:
        for start in range(1, count + 1, BATCH):
            rows = rows_for(start, min(BATCH, count + 1 - start), now)
            async with db.sessions() as session, session.begin():
                await session.execute(insert(Ticket), rows["tickets"])
                await session.execute(insert(ConversationTurn), rows["turns"])
                await session.execute(insert(ReplyVote), rows["votes"])
                await session.execute(insert(CsatSurvey), rows["surveys"])
        async with db.sessions() as session, session.begin():
            await session.execute(text("ANALYZE"))  # fresh statistics, as after a day of use
    finally:
        await db.dispose()


async def query_time(url: str) -> tuple[float, int]:
    db = Database(url)
    try:
        now = dt.datetime.now(dt.UTC)
        times, tickets = [], 0
        for _ in range(3):
            started = time.perf_counter()
            report = await support_report(db.sessions, now - dt.timedelta(days=30), now)
            times.append(time.perf_counter() - started)
            tickets = report.overall.tickets
        return min(times), tickets
    finally:
        await db.dispose()


def command_times(url: str, runs: int) -> list[float]:
    env = {**os.environ, "DATABASE_URL": url}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [SUPPORTBOT, "report", "--since", "30d", "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
    return times


async def measure(label: str, url: str, count: int, runs: int) -> list[str]:
    started = time.perf_counter()
    await seed(url, count)
    seeded = time.perf_counter() - started
    query_s, in_period = await query_time(url)
    times = command_times(url, runs)
    median = statistics.median(times)
    return [label, f"{count:,}", f"{in_period:,}", f"{seeded:.0f}", f"{query_s * 1000:.0f}",
            f"{median:.2f}", f"{max(times):.2f}", "ok" if median < 1.0 else "MISSED"]  # fmt: skip


async def main(count: int, runs: int, postgres: str | None) -> int:
    print(f"supportbot report --since 30d --json over {count:,} tickets, {runs} runs each")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'report.db'}"
        rows.append(await measure("SQLite", url, count, runs))
    if postgres:
        rows.append(await measure("PostgreSQL", postgres, count, runs))
    headers = ["backend", "tickets", "in 30 days", "seed s", "query ms", "command p50 s",
               "command max s", "< 1 s"]  # fmt: skip
    print(table(headers, rows))
    return 0 if all(row[-1] == "ok" for row in rows) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--postgres", help="an EMPTY PostgreSQL database URL to seed as well (asyncpg)"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.tickets, args.runs, args.postgres)))
