"""Quota goodput: a 60-question FAQ (121 calls) against a provider quota of R requests/min.

The fake endpoint admits at most R requests in any sliding 60 s window and answers 429
with RetryInfo beyond it. Its window is already full when the run starts, spread evenly
over the last minute (a bot that has been running at its quota, see
`bench.harness.SteadyQuotaFake`), so one slot frees every 60/R s and the ideal time is
calls / R minutes. Two rows:

1. LLM_RPM = R: the client is told the quota and paces itself. Targets: zero failed
   questions, wall time <= 1.15 x ideal, 429s <= 10 % of calls.
2. LLM_RPM = 10 x R: the client is not told (the default 600 is also above R = 200) and
   discovers the quota by 429s. Reported, no target: it shows why LLM_RPM matters.

`--window empty` starts with an empty quota window instead (a first burst after an idle
minute), where R = 200 > 121 calls never binds at all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

from bench.harness import (
    RemoteFake,
    SteadyQuotaFake,
    documents,
    gemini_client,
    table,
)
from pipelines.config import LLMSettings
from pipelines.faq.chain import FaqChain
from pipelines.llm.base import LLM
from pipelines.steps import PipelineContext, Trace
from tests.fakes.gemini_scripts import faq_answers

QUESTIONS = 60
MAX_RATIO = 1.15
MAX_429_SHARE = 0.10
# What production runs with: the default LLM_MAX_CONCURRENCY and RetryPolicy backoff.
MAX_CONCURRENCY = int(LLMSettings.model_fields["llm_max_concurrency"].default)
BACKOFF_BASE_S = 1.0


@dataclass
class Row:
    client_rpm: int
    failed: int
    calls: int
    rate_limited: int
    wall_s: float
    ideal_s: float

    @property
    def ratio(self) -> float:
        return self.wall_s / self.ideal_s

    @property
    def share_429(self) -> float:
        return self.rate_limited / self.calls

    def misses(self) -> list[str]:
        found = []
        if self.failed:
            found.append(f"{self.failed} failed question(s)")
        if self.ratio > MAX_RATIO:
            found.append(f"wall/ideal {self.ratio:.3f} > {MAX_RATIO}")
        if self.share_429 > MAX_429_SHARE:
            found.append(f"429s {self.share_429:.1%} of calls > {MAX_429_SHARE:.0%}")
        return found


async def answer_all(llm: LLM, settings: LLMSettings, n: int) -> int:
    """The FAQ chain's parallel shape for n questions; returns how many questions failed.

    `build_faq` caps N at 50, so the chain is driven directly: questions, then every
    question's answer -> sources chain at once, exactly as `build_faq` gathers them.
    """
    chain = FaqChain(PipelineContext(llm, settings, Trace("bench", {})), documents())
    try:
        questions = await chain.generate_questions(n)
    except Exception:
        return n
    outcomes = await asyncio.gather(
        *(chain.answer_with_sources(q) for q in questions), return_exceptions=True
    )
    return n - len(questions) + sum(isinstance(o, BaseException) for o in outcomes)


async def measure(quota: int, client_rpm: int, latency_s: float, full_window: bool) -> Row:
    fake_class = SteadyQuotaFake if full_window else RemoteFake
    with fake_class(faq_answers(QUESTIONS), latency_s, quota) as fake:
        async with gemini_client(
            fake, max_concurrency=MAX_CONCURRENCY, rpm=client_rpm, backoff_base_s=BACKOFF_BASE_S
        ) as (llm, settings):
            started = time.perf_counter()
            failed = await answer_all(llm, settings, QUESTIONS)
            wall = time.perf_counter() - started
        stats = await fake.stats()
    calls = 2 * QUESTIONS + 1
    return Row(client_rpm, failed, calls, stats["rate_limited"], wall, calls / quota * 60)


def cells(row: Row, target: bool) -> list[str]:
    ok = not row.misses() if target else None
    return [
        str(row.client_rpm), str(QUESTIONS - row.failed), str(row.failed), str(row.calls),
        str(row.rate_limited), f"{row.share_429:.1%}", f"{row.wall_s:.1f}",
        f"{row.ideal_s:.1f}", f"{row.ratio:.3f}",
        f"<= {MAX_RATIO}, 0 failed, <= 10% 429" if target else "- (reported)",
        "" if ok is None else "ok" if ok else "MISSED",
    ]  # fmt: skip


async def main(quota: int, latency_s: float, full_window: bool) -> int:
    told = await measure(quota, quota, latency_s, full_window)
    untold = await measure(quota, 10 * quota, latency_s, full_window)
    window = "full (steady state)" if full_window else "empty"
    print(
        f"Quota goodput: {QUESTIONS} questions ({2 * QUESTIONS + 1} calls), quota R = {quota}"
        f"/min (sliding 60 s, window {window}), L = {latency_s:.2f} s, "
        f"LLM_MAX_CONCURRENCY = {MAX_CONCURRENCY}"
    )
    headers = ["LLM_RPM", "answered", "failed", "calls", "429s", "429 %", "wall s",
               "ideal s", "ratio", "target", ""]  # fmt: skip
    print(table(headers, [cells(told, True), cells(untold, False)]))
    for line in told.misses():
        print("missed:", line)
    return 1 if told.misses() else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quota", type=int, default=200, help="provider quota R (requests/min)")
    parser.add_argument("--latency", type=float, default=0.25, help="per-call latency L (s)")
    parser.add_argument(
        "--window", choices=["full", "empty"], default="full", help="quota window at the start"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.quota, args.latency, args.window == "full")))
