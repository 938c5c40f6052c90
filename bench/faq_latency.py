"""FAQ latency: wall time of the FAQ chain over the critical-path lower bound.

N = 4, 10, 25 questions over 3 documents at a fixed per-call latency L against the fake
endpoint, in three modes:

- parallel: the product's mode. The questions call is streamed, and each question's
  answer -> sources chain starts once its string is complete in the partial answer;
- parallel, whole list: the same without streaming (all chains start when the list is
  complete), reported to show what streaming buys;
- sequential: one call after another.

A streamed call takes L in all too (the fake sends its first event at 0.3 L and the last
at L), so the lower bounds stay 3 x L for parallel (questions -> answer -> sources) and
(2N + 1) x L for sequential. Targets: parallel <= 1.10 x at N = 10 and <= 1.25 x at
N = 25, with LLM_MAX_CONCURRENCY = 2N + 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

from bench.harness import documents, gemini_against_fake, table
from pipelines.faq.chain import Mode, build_faq
from pipelines.steps import PipelineContext, Trace
from tests.fakes.gemini_scripts import faq_answers

TARGETS = {10: 1.10, 25: 1.25}
# label -> (build_faq mode, stream the questions call, the target applies)
MODES: dict[str, tuple[Mode, bool, bool]] = {
    "parallel": ("parallel", True, True),
    "parallel, whole list": ("parallel", False, False),
    "sequential": ("sequential", False, False),
}


@dataclass(frozen=True)
class Run:
    wall_s: float
    first_item_s: float  # when the first question had its answer and sources
    stats: dict[str, int]  # the fake's counters
    items: int
    cpu_s: float  # this process's CPU time meanwhile


async def measure(n: int, mode: Mode, stream: bool, latency_s: float) -> Run:
    """One FAQ of n questions, after a warm-up, timed.

    The CPU time is the client's (the fake runs in its own process): building and
    reading each request, almost all of it inside google-genai. In parallel mode a stage's
    N requests are built one after the other on one core, so it adds to the wall time.
    """
    async with gemini_against_fake(
        faq_answers(n), latency_s=latency_s, max_concurrency=2 * n + 2, rpm=100_000
    ) as (llm, fake, settings):
        docs = documents()
        # One warm-up call first: a serving process keeps its HTTP session and connections,
        # so their one-time setup is not part of an FAQ's latency.
        warm_up = PipelineContext(llm, settings, Trace("warm-up", {}))
        await build_faq(warm_up, docs, 1, mode, stream=stream)
        await fake.stats(reset=True)
        finished: list[float] = []

        async def progress(stage: str, done: int, total: int) -> None:
            if stage == "answers":
                finished.append(time.perf_counter())

        started, cpu_started = time.perf_counter(), time.process_time()
        context = PipelineContext(llm, settings, Trace("bench", {}))
        result = await build_faq(context, docs, n, mode, progress, stream=stream)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        return Run(wall, finished[0] - started, await fake.stats(), len(result.items), cpu)


async def main(latency_s: float) -> int:
    rows: list[list[str]] = []
    missed: list[str] = []
    for n in (4, 10, 25):
        for label, (mode, stream, targeted) in MODES.items():
            run = await measure(n, mode, stream, latency_s)
            wall, stats, items, cpu = run.wall_s, run.stats, run.items, run.cpu_s
            calls = stats["calls"]
            bound = 3 * latency_s if mode == "parallel" else (2 * n + 1) * latency_s
            ratio = wall / bound
            target = TARGETS.get(n) if targeted else None
            ok = target is None or ratio <= target
            if not ok or items != n or calls != 2 * n + 1 or stats["streamed"] != int(stream):
                missed.append(
                    f"N={n} {label}: ratio {ratio:.3f}, {items} items, {calls} calls, "
                    f"{stats['streamed']} streamed"
                )
            rows.append(
                [str(n), label, str(calls), f"{run.first_item_s:.3f}", f"{wall:.3f}",
                 f"{bound:.3f}", f"{ratio:.3f}", f"{cpu / calls * 1000:.1f}",
                 f"<= {target:.2f}" if target else "-", "ok" if ok else "MISSED"]
            )  # fmt: skip
    print(f"FAQ latency, per-call latency L = {latency_s:.3f} s (real google-genai client)")
    headers = ["N", "mode", "calls", "first item s", "wall s", "bound s", "ratio",
               "client CPU ms/call", "target", ""]  # fmt: skip
    print(table(headers, rows))
    for line in missed:
        print("missed:", line)
    return 1 if missed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.25, help="per-call latency L (s)")
    sys.exit(asyncio.run(main(parser.parse_args().latency)))
