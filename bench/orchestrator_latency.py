"""Orchestrator latency: a three-task message through SupportService over its critical path.

"Invoice X looks too high, I want to return product Y, and where is order Z?" goes
through the real SupportService (SQLite temp database, real google-genai client against
the fake endpoint with per-call latency L): router and orchestrator planner at once (the
planner starts speculatively, LLM_SPECULATIVE_PLAN's default) -> three workers at once
(billing's extract_concern is the only worker with an LLM step) -> synthesizer. Four
calls, three in a row: lower bound 3 x L (4 x L with LLM_SPECULATIVE_PLAN=false). Target:
median wall time <= 1.15 x the bound, so everything else (database work, the backends,
the trace, thread bookkeeping) costs at most 15 %.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.harness import gemini_against_fake, table
from pipelines.support.contracts import IncomingMessage, SupportReply
from pipelines.support.service import SupportService
from storage.catalog import DemoIds, demo_ids, get_or_create_customer
from storage.db import Database
from storage.migrate import upgrade
from tests.fakes.gemini_scripts import StepAnswer, user_text

TARGET = 1.15
CALLS_PER_MESSAGE = 4
TEAM = "T0BENCH"


@asynccontextmanager
async def temp_database() -> AsyncIterator[Database]:
    """A migrated SQLite database in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-orch-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            yield db
        finally:
            await db.dispose()


def answers() -> dict[str, StepAnswer]:
    """Valid model answers for the four steps of a three-task message.

    The planner's tasks are read from the message in the prompt, so one script serves
    every customer.
    """

    def plan(body: dict[str, Any]) -> dict[str, Any]:
        text = user_text(body)
        invoice, order = re.search(r"INV-\d+", text), re.search(r"ORD-\d+", text)
        product = re.search(r"return the (.+?) because", text)
        assert invoice and order and product, text
        return {
            "tasks": [
                {"kind": "billing_inquiry", "invoice_number": invoice[0]},
                {"kind": "product_return", "product_name": product[1], "reason": "incompatible"},
                {"kind": "status_update", "order_id": order[0]},
            ]
        }

    return {
        "classify_intent": lambda body: {
            "intent": "billing_inquiry",
            "confidence": 0.93,
            "multiple_requests": True,
        },
        "plan_tasks": plan,
        "extract_concern": lambda body: {
            "wants_investigation": True,
            "concern": "the total looks too high",
        },
        "synthesize_reply": lambda body: {"reply": "All three are sorted, details below."},
    }


async def customer(db: Database, run: int) -> tuple[str, DemoIds]:
    """A provisioned demo customer of its own for each run (the bot's flood guard limits
    one user's messages per minute, and a first message is the common case)."""
    user = f"U0BENCH{run:03d}"
    record = await get_or_create_customer(db.sessions, user, TEAM)
    return user, await demo_ids(db.sessions, record.id)


def message(user: str, ids: DemoIds, run: int) -> IncomingMessage:
    """The customer's first message, in a new thread."""
    text = (
        f"Invoice {ids.invoice_numbers[0]} looks too high, I want to return the "
        f"{ids.products[0]} because it is incompatible, and where is {ids.order_numbers[1]}?"
    )
    ts = f"{1_700_000_000 + run}.000100"
    return IncomingMessage(
        request_id=f"bench-orch-{run}",
        team_id=TEAM,
        channel_id=f"D{user}",
        thread_ts=ts,
        message_ts=ts,
        user_id=user,
        text=text,
    )


def check(reply: SupportReply) -> str | None:
    """What is wrong with a reply, if anything: it must name the case and the RMA."""
    if not (re.search(r"CASE-\d+", reply.text) and re.search(r"RMA-\d+", reply.text)):
        return f"reply lacks its case or RMA number: {reply.text[:120]!r}"
    return None


async def measure(latency_s: float, runs: int) -> tuple[list[float], list[str], int]:
    """Wall seconds of each measured run, any problems seen, and the calls in a row."""
    problems: list[str] = []
    async with temp_database() as db:
        customers = [await customer(db, run) for run in range(runs + 1)]
        async with gemini_against_fake(
            answers(), latency_s=latency_s, max_concurrency=16, rpm=600
        ) as (llm, fake, settings):
            service = SupportService(db, llm, settings)
            in_a_row = CALLS_PER_MESSAGE - (1 if settings.llm_speculative_plan else 0)
            # Warm-up: HTTP connections, the SQLite connection pool, lazy imports.
            await service.handle(message(*customers[0], 0))
            walls = []
            for run in range(1, runs + 1):
                await fake.stats(reset=True)
                started = time.perf_counter()
                reply = await service.handle(message(*customers[run], run))
                walls.append(time.perf_counter() - started)
                calls = (await fake.stats())["calls"]
                if calls != CALLS_PER_MESSAGE:
                    problems.append(f"run {run}: {calls} LLM calls, expected {CALLS_PER_MESSAGE}")
                if (problem := check(reply)) is not None:
                    problems.append(f"run {run}: {problem}")
    return walls, problems, in_a_row


async def main(latency_s: float, runs: int) -> int:
    walls, problems, in_a_row = await measure(latency_s, runs)
    bound = in_a_row * latency_s
    median = statistics.median(walls)
    ratio = median / bound
    ok = ratio <= TARGET and not problems
    print(
        f"Orchestrator latency: three-task message through SupportService, L = "
        f"{latency_s:.3f} s, {runs} runs after one warm-up (real google-genai client), "
        f"{CALLS_PER_MESSAGE} calls, {in_a_row} in a row"
    )
    bound_label = f"bound s ({in_a_row}L)"
    headers = ["runs", "min s", "median s", "max s", bound_label, "median ratio", "target", ""]
    row = [str(runs), f"{min(walls):.3f}", f"{median:.3f}", f"{max(walls):.3f}",
           f"{bound:.3f}", f"{ratio:.3f}", f"<= {TARGET}", "ok" if ok else "MISSED"]  # fmt: skip
    print(table(headers, [row]))
    if ratio > TARGET:
        print(f"missed: median ratio {ratio:.3f} > {TARGET}")
    for problem in problems:
        print("missed:", problem)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.25, help="per-call latency L (s)")
    parser.add_argument("--runs", type=int, default=7, help="measured runs (median reported)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.latency, args.runs)))
