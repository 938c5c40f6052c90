"""Memory: resident set of `supportbot serve`, idle and with 500 conversations in flight.

`supportbot serve` (SQLite in a temp directory, embedded worker with --concurrency 500,
LLM_PROVIDER=gemini against the fake endpoint, LLM_MAX_CONCURRENCY 1000) is sent 500
signed DMs at once. Each is a technical question (router + technical-support handler: two
LLM calls), at 5 s per call so that all 500 are in flight together: at 2 s the first ones
were answered before the worker had started the last (its database work paces it), and
only ~190 calls overlapped. The run checks that >= 90 % of them were in flight at once
(the server's own jobs-in-flight gauge, sampled from /metrics).

Read from /proc/<pid>/status: VmRSS idle after start, idle after a warm-up of a few
conversations, sampled every 100 ms under load, and after the queue drained; VmHWM (the
process's peak resident set) at the end.

Target: peak < 300 MB. Why: it leaves room for a second process in a 512 MB container
(the smallest common size), and with the ~160 MB idle footprint it bounds one conversation
in flight to (300 - 160) / 500 = ~290 KB: a conversation holds a job task, its prompts and
trace, a database session and an HTTP request, never documents.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import (
    BENCH_BOT_TOKEN,
    RemoteFake,
    RemoteSlack,
    ServerProcess,
    memory_mb,
    post_events,
    server_environment,
    supportbot_serve,
    table,
)
from tests.fakes.gemini_scripts import StepAnswer
from tests.slack_signing import SIGNING_SECRET

TARGET_MB = 300.0
IN_FLIGHT_SHARE = 0.9  # below this the run did not measure what it claims to
WARM_UP = 5
# 500 DMs from 30 customers: under the bot's flood guard (20 messages per user per
# minute, pipelines.support.service), beyond which it records a message and stays silent.
USERS = 30


def answers() -> dict[str, StepAnswer]:
    """A technical question: classified, then answered by its handler (two calls)."""
    return {
        "classify_intent": lambda body: {"intent": "technical_support", "confidence": 0.9},
        "technical_support": lambda body: {
            "reply": "Try unplugging it for ten seconds, then update its firmware. "
            "Which of these have you tried, and which model is it?"
        },
    }


def technical_dms(count: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    """Distinct DMs (distinct ts) from a few users, each a new conversation."""
    return [
        {
            "type": "message",
            "user": f"U{tag}{n % USERS:03d}",
            "text": f"My headphones keep disconnecting from my laptop, please help ({n})",
            "ts": f"1800000000.{n:06d}",
            "channel": f"D{tag}{n % USERS:03d}",
            "channel_type": "im",
        }
        for n in range(start, start + count)
    ]


async def answered(slack: RemoteSlack, events: list[dict[str, Any]], timeout_s: float) -> bool:
    """Wait until every event's thread has a reply (False on timeout)."""
    threads = [(e["channel"], e["ts"]) for e in events]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        counts = slack.reply_counts()
        if all(counts[thread] for thread in threads):
            return True
        await asyncio.sleep(0.25)
    return False


@dataclass
class Sample:
    peak_rss_mb: float = 0.0
    peak_jobs: int = 0  # the server's own supportbot_jobs_in_flight gauge
    running: bool = True


async def jobs_in_flight(session: aiohttp.ClientSession, server: ServerProcess) -> int:
    async with session.get(server.url + "/metrics") as response:
        found = re.search(r"^supportbot_jobs_in_flight (\S+)$", await response.text(), re.M)
    return int(float(found.group(1))) if found else 0


async def sample(server: ServerProcess, sample: Sample) -> None:
    """Keep the highest VmRSS (every 100 ms) and jobs in flight (every 500 ms) seen."""
    async with aiohttp.ClientSession() as session:
        tick = 0
        while sample.running:
            sample.peak_rss_mb = max(sample.peak_rss_mb, memory_mb(server.pid)["VmRSS"])
            if tick % 5 == 0:
                sample.peak_jobs = max(sample.peak_jobs, await jobs_in_flight(session, server))
            tick += 1
            await asyncio.sleep(0.1)


async def under_load(
    server: ServerProcess, slack: RemoteSlack, events: list[dict[str, Any]], timeout_s: float
) -> tuple[Sample, bool]:
    """Send the DMs and wait for their replies; (what was sampled, all answered)."""
    seen = Sample()
    sampler = asyncio.create_task(sample(server, seen))
    await post_events(server.url + "/slack/events", events, connections=50)
    done = await answered(slack, events, timeout_s)
    seen.running = False
    await sampler
    return seen, done


async def main(conversations: int, latency_s: float, timeout_s: float) -> int:
    rows: list[list[str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        RemoteSlack(BENCH_BOT_TOKEN) as slack,
        RemoteFake(answers(), latency_s, None) as gemini,
    ):
        workdir = Path(tmp)
        env = server_environment(
            SLACK_BOT_TOKEN=BENCH_BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'memory.db'}",
            LLM_PROVIDER="gemini",
            GEMINI_API_KEY="bench-key",
            GOOGLE_GEMINI_BASE_URL=gemini.base_url,
            LLM_MAX_CONCURRENCY="1000",
            LLM_RPM="1000000",
        )
        async with supportbot_serve(env, workdir, "--concurrency", str(conversations)) as server:
            started = memory_mb(server.pid)["VmRSS"]
            warm = technical_dms(WARM_UP, "W")
            await post_events(server.url + "/slack/events", warm, connections=WARM_UP)
            warmed_up = await answered(slack, warm, 30)
            idle = memory_mb(server.pid)["VmRSS"]
            await gemini.stats(reset=True)
            events = technical_dms(conversations, "L")
            seen, done = await under_load(server, slack, events, timeout_s)
            after = memory_mb(server.pid)
            stats = await gemini.stats()
    # VmHWM can lag VmRSS (the kernel syncs per-thread RSS counters lazily): take the higher.
    peak = max(after["VmHWM"], seen.peak_rss_mb)
    per_conversation_kb = (peak - idle) / conversations * 1024
    in_flight_ok = seen.peak_jobs >= IN_FLIGHT_SHARE * conversations
    ok = peak < TARGET_MB and done and warmed_up and in_flight_ok
    print(
        f"Memory of supportbot serve: {conversations} DMs, Gemini via the fake at "
        f"{latency_s:.1f} s per call; at most {seen.peak_jobs} conversations (jobs) and "
        f"{stats['max_in_flight']} LLM calls in flight together; {stats['calls']} LLM calls"
    )
    headers = ["idle (started) MB", "idle (warmed up) MB", "peak RSS MB", "VmHWM MB",
               "after drain MB", "KB per conversation", "target", ""]  # fmt: skip
    rows.append([f"{started:.1f}", f"{idle:.1f}", f"{seen.peak_rss_mb:.1f}",
                 f"{after['VmHWM']:.1f}", f"{after['VmRSS']:.1f}", f"{per_conversation_kb:.0f}",
                 f"peak < {TARGET_MB:.0f}", "ok" if ok else "MISSED"])  # fmt: skip
    print(table(headers, rows))
    if not warmed_up or not done:
        print(f"missed: not every conversation was answered within {timeout_s:.0f} s")
    if not in_flight_ok:
        print(
            f"missed: only {seen.peak_jobs} conversations were in flight at once (raise --latency)"
        )
    if peak >= TARGET_MB:
        print(f"missed: peak {peak:.1f} MB >= {TARGET_MB:.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=500, help="DMs in flight")
    parser.add_argument("--latency", type=float, default=5.0, help="per-call latency (s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to answer all")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.conversations, args.latency, args.timeout)))
