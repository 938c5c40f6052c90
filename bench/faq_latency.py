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
(2N + 1) x L for sequential. Every mode runs at the README's defaults (LLM_MAX_CONCURRENCY
and LLM_RPM as `LLMSettings()` has them, printed). A fourth row per N is the naive
version of the same chain on the same endpoint: google-genai called directly, every call
at once with `asyncio.gather`, no limiter, no retry, no validation, no trace. Targets:
parallel <= 1.10 x at N = 10 and <= 1.15 x at N = 25, and at N = 25 no slower than the
naive version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from google import genai
from google.genai import types

from bench.harness import RemoteFake, documents, gemini_against_fake, table
from pipelines.config import LLMSettings
from pipelines.faq.chain import Mode, build_faq, documents_block
from pipelines.llm.gemini import gemini_json_schema
from pipelines.prompts import FAQ_ANSWER, FAQ_QUESTIONS, FAQ_SOURCES, PromptTemplate, fence
from pipelines.steps import PipelineContext, Trace
from pipelines.support.schemas import FaqAnswer, QuestionList, SourceList
from tests.fakes.gemini_scripts import faq_answers

TARGETS = {10: 1.10, 25: 1.15}
DEFAULTS = LLMSettings(_env_file=None)
NAIVE = "naive asyncio.gather"
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
        faq_answers(n),
        latency_s=latency_s,
        max_concurrency=DEFAULTS.llm_max_concurrency,
        rpm=DEFAULTS.llm_rpm,
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


async def naive(n: int, latency_s: float) -> Run:
    """The same three steps with google-genai alone: questions, then every question's
    answer -> sources at once (`asyncio.gather`), on a fresh fake with the same latency."""
    with RemoteFake(faq_answers(n), latency_s, None) as fake:
        os.environ["GOOGLE_GEMINI_BASE_URL"] = fake.base_url
        client = genai.Client(
            api_key="bench-key", http_options=types.HttpOptions(api_version="v1beta")
        )
        block = documents_block(documents())
        model = DEFAULTS.model_faq_answer

        async def call(template: PromptTemplate, schema: type, **values: str) -> dict[str, Any]:
            response = await client.aio.models.generate_content(
                model=model,
                contents=template.render(documents=block, **values),
                config=types.GenerateContentConfig(
                    system_instruction=template.system,
                    response_mime_type="application/json",
                    response_json_schema=gemini_json_schema(schema),
                ),
            )
            return dict(json.loads(response.text or "{}"))

        async def chain(question: str) -> float:
            answer = await call(FAQ_ANSWER, FaqAnswer, question=fence("question", question))
            await call(
                FAQ_SOURCES,
                SourceList,
                question=fence("question", question),
                answer=fence("answer", str(answer.get("answer", ""))),
            )
            return time.perf_counter()

        await call(FAQ_QUESTIONS, QuestionList, n="1")  # warm-up, as for the others
        await fake.stats(reset=True)
        started, cpu_started = time.perf_counter(), time.process_time()
        questions = (await call(FAQ_QUESTIONS, QuestionList, n=str(n)))["questions"]
        finished = await asyncio.gather(*(chain(q) for q in questions))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await client.aio.aclose()
        return Run(wall, min(finished) - started, await fake.stats(), len(questions), cpu)


async def main(latency_s: float) -> int:
    rows: list[list[str]] = []
    missed: list[str] = []
    print(
        f"Settings: LLM_MAX_CONCURRENCY={DEFAULTS.llm_max_concurrency} "
        f"LLM_RPM={DEFAULTS.llm_rpm} (the defaults), L = {latency_s:.3f} s"
    )
    for n in (4, 10, 25):
        walls: dict[str, float] = {}
        for label, (mode, stream, targeted) in [
            *MODES.items(),
            (NAIVE, ("parallel", False, False)),
        ]:
            run = await (
                naive(n, latency_s) if label == NAIVE else measure(n, mode, stream, latency_s)
            )
            walls[label] = run.wall_s
            wall, stats, items, cpu = run.wall_s, run.stats, run.items, run.cpu_s
            calls = stats["calls"]
            bound = 3 * latency_s if mode == "parallel" else (2 * n + 1) * latency_s
            ratio = wall / bound
            target = TARGETS.get(n) if targeted else None
            ok = target is None or ratio <= target
            if label == NAIVE and n in TARGETS and walls["parallel"] > run.wall_s:
                ok = False  # the product's chain must not lose to the naive one
                target = None
                missed.append(f"N={n}: parallel {walls['parallel']:.3f} s > naive {wall:.3f} s")
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
