"""Where a message's CPU goes, and what a burst's wait can be on one process.

`bench.slack_wait` shows a burst's p95 following the serve process's CPU per message: the
README's default is one process (SPEC section 8), whose event loop runs one message's
Python at a time, so the last answers of a burst of N come about N x that CPU after it
starts. This script measures, in one run at the README's defaults, what that CPU is made
of and how low it could go with the SDKs the project is built on:

- the whole message: a burst of 40 order-status DMs through `supportbot serve` (as in
  slack_wait), the serve process's CPU over the burst, per message;
- accepting only: the same burst to `serve --no-worker` (HTTP, signature, dedupe, the
  durable enqueue), nothing answered;
- returning customers: a burst from 40 customers who wrote before, in new threads (the
  others are all first contacts, which provision demo records);
- the SDK calls a message makes, counted in the burst at the fakes, each measured here
  one after another against the same fakes at L = 0: google-genai (the project's
  GeminiLLM with its gate, a router-sized JSON call and a streamed reply) and slack-sdk
  (AsyncWebClient, a threaded chat.postMessage).

The floor is accepting + the SDK calls: what a message costs before any of the bot's own
work (pipeline, tickets, traces, budget, queue leases). The table then puts each figure
next to the issue-14 burst targets, with the CPU per message each target needs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bench.harness import BENCH_BOT_TOKEN, RemoteFake, gemini_client, table
from bench.slack_wait import (
    REPLY,
    TARGET_40,
    TARGET_200,
    Run,
    TimedSlack,
    answers,
    bot,
    collect,
    dms,
    scenario,
    send_burst,
    single_wait,
)
from pipelines.config import LLMSettings
from pipelines.llm.base import LLMRequest
from pipelines.prompts import CLASSIFY_INTENT, SYNTHESIZE_REPLY, fence
from pipelines.support.schemas import IntentClassification, Reply

BURST = 40
KIND = "order status"


async def cpu_ms_per_call(call: Callable[[], Awaitable[object]], n: int = 100) -> float:
    """This process's CPU per awaited call (all threads), after a warm-up."""
    for _ in range(10):
        await call()
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n * 1000


async def sdk_costs(slack: TimedSlack) -> dict[str, float]:
    """ms of CPU per google-genai call (plain, streamed) and per slack-sdk call."""
    settings = LLMSettings(_env_file=None)
    message = fence("customer_message", "Hi, where is my order ORD-10011?")
    router = LLMRequest(
        step=CLASSIFY_INTENT.name,
        model=settings.model_for("router"),
        system=CLASSIFY_INTENT.system,
        prompt=CLASSIFY_INTENT.render(
            message=message, history=fence("history", "(none)"), products="(none)"
        ),
        output_schema=IntentClassification,
    )
    reply = LLMRequest(
        step=SYNTHESIZE_REPLY.name,
        model=settings.model_for("synthesizer"),
        system=SYNTHESIZE_REPLY.system,
        prompt=SYNTHESIZE_REPLY.render(message=message, results=fence("results", "[]")),
        output_schema=Reply,
    )
    seen: list[str] = []
    with RemoteFake(answers(), 0.0, None) as fast:
        async with gemini_client(
            fast, max_concurrency=settings.llm_max_concurrency, rpm=settings.llm_rpm
        ) as (llm, _):
            plain = await cpu_ms_per_call(lambda: llm.generate(router))
            streamed = await cpu_ms_per_call(lambda: llm.generate_streaming(reply, seen.append))
    client = AsyncWebClient(token=BENCH_BOT_TOKEN, base_url=slack.api_url)
    post = await cpu_ms_per_call(
        lambda: client.chat_postMessage(channel="CFLOOR", thread_ts="1.000001", text=REPLY)
    )
    return {"genai": plain, "genai streamed": streamed, "slack": post}


async def accepting_only(slack: TimedSlack, gemini: RemoteFake, workdir: Path) -> float:
    """Serve CPU per message of a burst that is only accepted (`serve --no-worker`)."""
    async with bot(slack, gemini, workdir, "A40", ["--no-worker"]) as deployment:
        await asyncio.sleep(1.0)  # past start-up
        before = deployment.cpu_seconds()
        await send_burst(deployment.server, dms(KIND, "A40", BURST), Run("accept"))
        await asyncio.sleep(0.5)  # anything the acks left running
        return (deployment.cpu_seconds() - before) / BURST * 1000


async def returning_customers(
    slack: TimedSlack, gemini: RemoteFake, workdir: Path
) -> tuple[Run, float]:
    """The burst again from the same 40 customers in new threads: no first-contact
    provisioning. (p95 s, serve CPU ms per message) of the second burst."""
    async with bot(slack, gemini, workdir, "R40", []) as deployment:
        first = Run("first contact")
        await send_burst(deployment.server, dms(KIND, "R40", BURST), first)
        await collect(slack, first, 240.0)
        await asyncio.sleep(1.1)  # a new second: new timestamps, so new threads
        before = deployment.cpu_seconds()
        again = Run("returning")
        await send_burst(deployment.server, dms(KIND, "R40", BURST), again)
        await collect(slack, again, 240.0)
        return again, (deployment.cpu_seconds() - before) / BURST * 1000


async def main(latency_s: float) -> int:
    settings = LLMSettings(_env_file=None)
    print(
        f"Settings: README defaults (LLM_MAX_CONCURRENCY={settings.llm_max_concurrency} "
        f"LLM_RPM={settings.llm_rpm}, serve's embedded worker), L={latency_s:.2f} s, "
        f"{BURST} {KIND} DMs at once"
    )
    slack = TimedSlack(BENCH_BOT_TOKEN)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp, slack:
        workdir = Path(tmp)
        with RemoteFake(answers(), latency_s, None) as gemini:
            single = await scenario(slack, gemini, workdir, KIND, 1, [], 120.0)
            calls_before = slack.calls()
            burst = await scenario(slack, gemini, workdir, KIND, BURST, [], 240.0)
            slack_calls = sum((slack.calls() - calls_before).values()) / BURST
            accepting = await accepting_only(slack, gemini, workdir)
            returning, returning_ms = await returning_customers(slack, gemini, workdir)
        costs = await sdk_costs(slack)
    for run in (burst, returning):
        if run.failures or not run.exactly_once:
            print(f"{run.label}: {run.failures} failures, exactly once: {run.exactly_once}")
            return 1
    whole = burst.cpu_s / BURST * 1000
    llm_calls = burst.llm["calls"] / BURST
    streamed = burst.llm["streamed"] / BURST
    plain = llm_calls - streamed
    genai = plain * costs["genai"] + streamed * costs["genai streamed"]
    slack_ms = slack_calls * costs["slack"]
    floor = accepting + genai + slack_ms
    parts = [
        ["whole message (serve, burst of 40)", "", "", f"{whole:.1f}"],
        ["accepting (serve --no-worker)", "1", f"{accepting:.1f}", f"{accepting:.1f}"],
        ["google-genai calls, plain", f"{plain:.1f}", f"{costs['genai']:.2f}",
         f"{plain * costs['genai']:.1f}"],
        ["google-genai calls, streamed", f"{streamed:.1f}", f"{costs['genai streamed']:.2f}",
         f"{streamed * costs['genai streamed']:.1f}"],
        ["slack-sdk calls", f"{slack_calls:.1f}", f"{costs['slack']:.2f}", f"{slack_ms:.1f}"],
        ["floor (accepting + SDK calls)", "", "", f"{floor:.1f}"],
        ["the bot's own work (whole - floor)", "", "", f"{whole - floor:.1f}"],
    ]  # fmt: skip
    print(table(["per message", "count", "CPU ms each", "CPU ms"], parts))
    wait = single_wait(single)
    p95 = burst.pct(95)
    print(
        f"\none customer: finished {wait:.2f} s; burst of {BURST}: p95 {p95:.2f} s = "
        f"{p95 / wait:.2f} x single, {p95 / (0.95 * BURST * whole / 1000):.2f} x "
        f"(0.95 x {BURST} x the whole message's CPU)"
    )
    print(
        f"the same {BURST} customers again, in new threads (no first-contact provisioning): "
        f"{returning_ms:.1f} ms per message, p95 {returning.pct(95):.2f} s = "
        f"{returning.pct(95) / wait:.2f} x single\n"
    )
    calls_200 = 200 * llm_calls
    concurrency_s = calls_200 / settings.llm_max_concurrency * latency_s
    rows = []
    for count, target in ((BURST, TARGET_40), (200, TARGET_200)):
        allowed = target * wait
        rows.append(
            [
                f"burst of {count}",
                f"{allowed:.2f}",
                f"{allowed / (0.95 * count) * 1000:.1f}",
                f"{0.95 * count * whole / 1000:.2f}",
                f"{0.95 * count * floor / 1000:.2f}",
            ]
        )
    headers = ["one process", "target p95 s", "CPU ms/msg it allows",
               "0.95 N x whole s", "0.95 N x floor s"]  # fmt: skip
    print(table(headers, rows))
    print(
        f"burst of 200 also: {calls_200:.0f} LLM calls at LLM_MAX_CONCURRENCY="
        f"{settings.llm_max_concurrency} take >= {concurrency_s:.2f} s at L"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.5, help="fake Gemini latency L, s")
    sys.exit(asyncio.run(main(parser.parse_args().latency)))
