"""Fair share of a tight LLM quota: customers who write while a big /faq is being built.

The limiter under test is the production one (`pipelines.llm.rate_limit`), with time
shortened: a window of 1 s stands for LLM_RPM's 60 s, so a quota of R requests per window
is R per minute in production. One user's /faq puts its 1 + 2 x QUESTIONS calls in the
queue at t = 0 (questions, then each question's answer and sources at once); CUSTOMERS
customers write during the first window, each message being three calls one after another
(router, planner, synthesizer) of LATENCY each. Two rows:

1. per user (production): each call carries its user (`spending_as`), `FairOrder` serves a
   user past their share of the recent budget after the others, then the oldest work.
2. one identity: every call under the same user, i.e. the order without per-user shares
   (the /faq began first, so it goes first: what a single FIFO queue does).

Printed: the customers' wait (message -> third call done) in windows, the /faq's finish,
and the largest number of admissions in any window (never more than R).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from bench.harness import table
from pipelines.llm.budget import spending_as
from pipelines.llm.rate_limit import build_rate_limiter

QUOTA = 20  # requests per window
QUESTIONS = 50
CUSTOMERS = 10
LATENCY = 0.02  # of one LLM call, in windows (about 1.2 s against a 60 s window)
# Targets for the per-user row. Each customer call needs a slot of a window the /faq has
# already filled, and the three are sequential, so about three windows is the floor
# without reserving slots for calls that have not been made yet.
MAX_CUSTOMER_WAIT = 3.0  # windows
MAX_WAIT_RATIO = 0.6  # of the one-identity row's worst customer wait


async def scenario(per_user: bool) -> tuple[list[float], float, int]:
    limiter = build_rate_limiter(QUOTA, window_seconds=1, margin_s=0)
    admitted: list[float] = []
    start = time.monotonic()

    async def faq() -> float:
        with spending_as("U_FAQ" if per_user else "everyone"):
            await one_call()
            await asyncio.gather(*(one_call() for _ in range(2 * QUESTIONS)))
        return time.monotonic() - start

    async def one_call() -> None:  # the caller's spending_as says who and since when
        await limiter.acquire()
        admitted.append(time.monotonic() - start)
        await asyncio.sleep(LATENCY)

    async def customer(n: int) -> float:
        await asyncio.sleep(0.05 + n * 0.05)
        wrote = time.monotonic()
        with spending_as(f"U_CUST{n}" if per_user else "everyone"):
            for _ in range(3):
                await one_call()
        return time.monotonic() - wrote

    faq_task = asyncio.create_task(faq())
    waits = await asyncio.gather(*(customer(n) for n in range(CUSTOMERS)))
    faq_done = await faq_task
    worst = max(sum(1 for t in admitted if s <= t < s + 0.999) for s in admitted)
    return list(waits), faq_done, worst


async def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(
        f"settings: quota {QUOTA} requests per window (1 s standing for 60 s), a /faq of "
        f"{QUESTIONS} questions ({1 + 2 * QUESTIONS} calls), {CUSTOMERS} customers x 3 calls, "
        f"call latency {LATENCY} window"
    )
    rows = []
    ok = True
    worst_wait: dict[bool, float] = {}
    for label, per_user in (("per user (production)", True), ("one identity", False)):
        waits, faq_done, worst = await scenario(per_user)
        p50 = statistics.median(waits)
        rows.append(
            [label, f"{p50:.2f}", f"{max(waits):.2f}", f"{faq_done:.2f}", f"{worst}/{QUOTA}"]
        )
        ok &= worst <= QUOTA
        worst_wait[per_user] = max(waits)
    headers = ["order", "customer wait p50", "max", "/faq done", "max in a window"]
    print(table(headers, rows))
    ratio = worst_wait[True] / worst_wait[False]
    ok &= worst_wait[True] <= MAX_CUSTOMER_WAIT and ratio <= MAX_WAIT_RATIO
    print(
        f"worst customer wait, per user / one identity: {ratio:.2f} "
        f"(targets: <= {MAX_CUSTOMER_WAIT} windows and <= {MAX_WAIT_RATIO}); "
        f"{'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
