"""Slack ingress: acknowledgement latency and throughput of `supportbot serve`.

1,000 signed Events API requests (distinct DMs, distinct ts, from 60 users) are sent over
50 keep-alive connections, each connection waiting for its answer before the next
request, to two servers run one after the other as subprocesses:

- bare: a Bolt AsyncApp that only acknowledges, on the same stack (Starlette, Bolt's
  Starlette adapter, uvicorn with the same config, same signing secret): the ceiling;
- supportbot: `supportbot serve` (SQLite in a temp directory, offline provider, the fake
  Slack as its Web API) with its embedded worker ON, answering while events arrive.

Each server gets a warm-up of 50 events first. Targets for supportbot: p99 ack < 100 ms,
throughput >= 0.7 x bare, and afterwards every event answered exactly once (replies per
thread counted at the fake Slack once the queue has drained, within --drain-timeout).
The table also shows each server's CPU time per event during the load (from /proc).
`--separate-worker` runs `serve --no-worker` plus a `supportbot worker` process instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    BENCH_BOT_TOKEN,
    SUPPORTBOT,
    LoadResult,
    RemoteSlack,
    ServerProcess,
    background_process,
    cpu_seconds,
    dm_events,
    free_port,
    post_events,
    server_environment,
    server_process,
    supportbot_serve,
    table,
)
from storage.db import Database
from storage.queue import JobQueue
from tests.slack_signing import SIGNING_SECRET

P99_TARGET_MS = 100.0
THROUGHPUT_SHARE = 0.7
WARM_UP = 50
# Distinct customers sending the 1,050 DMs. The bot answers at most 20 messages per user
# per minute (its flood guard, pipelines.support) and stays silent beyond: with only a
# handful of users most events would (correctly) get no reply at all.
USERS = 60


def run_bare_app(port: int, slack_api_url: str) -> None:
    """The comparison server: Bolt that only acks, served exactly like `supportbot serve`."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bot.server import run_uvicorn

    bolt = AsyncApp(
        client=AsyncWebClient(token=BENCH_BOT_TOKEN, base_url=slack_api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,  # as the bot: the listener finishes before the 200
        request_verification_enabled=True,
    )

    @bolt.event("message")
    async def acknowledge_only() -> None:
        """Nothing to do: Bolt answers 200 when the listener returns."""

    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    asyncio.run(run_uvicorn(app, "127.0.0.1", port))


@dataclass
class Measured:
    name: str
    load: LoadResult
    cpu_s: float  # the server's CPU time during the load

    def cells(self) -> list[str]:
        load = self.load
        non_200 = sum(n for status, n in load.statuses.items() if status != 200)
        return [self.name, str(len(load.latencies_s)), str(non_200),
                f"{load.percentile_ms(50):.1f}", f"{load.percentile_ms(99):.1f}",
                f"{max(load.latencies_s) * 1000:.1f}", f"{load.throughput:.0f}",
                f"{self.cpu_s / len(load.latencies_s) * 1000:.2f}"]  # fmt: skip


async def measured_load(
    name: str, server: ServerProcess, events: Sequence[dict[str, Any]], connections: int
) -> Measured:
    """Send `events` and note the server's CPU time spent meanwhile."""
    cpu_before = cpu_seconds(server.pid)
    result = await post_events(server.url + "/slack/events", events, connections)
    return Measured(name, result, cpu_seconds(server.pid) - cpu_before)


async def measure_bare(slack: RemoteSlack, workdir: Path, count: int, connections: int) -> Measured:
    port = free_port()
    command = [sys.executable, "-m", "bench.slack_ingress", "--bare-app", str(port),
               "--slack-api", slack.api_url]  # fmt: skip
    events = dm_events(WARM_UP + count, USERS, "BARE")
    async with server_process(command, port, server_environment(), workdir) as server:
        await post_events(server.url + "/slack/events", events[:WARM_UP], connections)
        return await measured_load("bare Bolt (ack only)", server, events[WARM_UP:], connections)


async def wait_for_replies(
    slack: RemoteSlack, threads: set[tuple[str, str]], timeout_s: float
) -> float | None:
    """Seconds until every thread has a reply, or None when `timeout_s` passed first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        counts = slack.reply_counts()
        if all(counts[thread] for thread in threads):
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


@dataclass
class Drain:
    seconds: float | None  # from the end of the load until every event had its reply
    cpu_s: float  # the server's CPU time from the start of the load until then
    problems: list[str]  # exactly-once violations
    jobs: dict[str, int]  # the queue's jobs by status afterwards


async def job_counts(database_url: str) -> dict[str, int]:
    db = Database(database_url)
    try:
        return await JobQueue(db).counts()
    finally:
        await db.dispose()


def database_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'ingress.db'}"


def bot_environment(slack: RemoteSlack, workdir: Path) -> dict[str, str]:
    return server_environment(
        SLACK_BOT_TOKEN=BENCH_BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=database_url(workdir),
        LLM_PROVIDER="offline",
    )


async def measure_bot(
    slack: RemoteSlack,
    workdir: Path,
    count: int,
    connections: int,
    drain_timeout_s: float,
    separate_worker: bool,
) -> tuple[Measured, Drain]:
    """The load, then the exactly-once check over every event sent (warm-up included).

    `separate_worker`: `serve --no-worker` plus a `supportbot worker` process (SPEC 8's
    scale-out shape) instead of the embedded worker.
    """
    env = bot_environment(slack, workdir)
    events = dm_events(WARM_UP + count, USERS, "CUST")
    threads = {(e["channel"], e["ts"]) for e in events}
    async with AsyncExitStack() as stack:
        serve_args = ["--no-worker"] if separate_worker else []
        server = await stack.enter_async_context(supportbot_serve(env, workdir, *serve_args))
        pids = [server.pid]
        if separate_worker:
            worker, _ = await stack.enter_async_context(
                background_process([SUPPORTBOT, "worker"], env, workdir, "worker.log")
            )
            pids.append(worker.pid)
        await post_events(server.url + "/slack/events", events[:WARM_UP], connections)
        await wait_for_replies(slack, {(e["channel"], e["ts"]) for e in events[:WARM_UP]}, 30)
        cpu_before = sum(map(cpu_seconds, pids))
        name = "supportbot serve" + (" --no-worker" if separate_worker else "")
        measured = await measured_load(name, server, events[WARM_UP:], connections)
        drained = await wait_for_replies(slack, threads, drain_timeout_s)
        cpu = sum(map(cpu_seconds, pids)) - cpu_before
        await asyncio.sleep(1.0)  # a duplicate would show up now
    counts = slack.reply_counts()
    problems = [f"{n} replies to {thread}" for thread in threads if (n := counts[thread]) != 1]
    strays = sum(counts.values()) - sum(counts[t] for t in threads)
    if strays:
        problems.append(f"{strays} posts outside the events' threads")
    return measured, Drain(drained, cpu, problems, await job_counts(database_url(workdir)))


def misses(bare: Measured, bot: Measured, drain: Drain) -> list[str]:
    found = []
    if (p99 := bot.load.percentile_ms(99)) >= P99_TARGET_MS:
        found.append(f"p99 ack {p99:.1f} ms >= {P99_TARGET_MS:.0f} ms")
    share = bot.load.throughput / bare.load.throughput
    if share < THROUGHPUT_SHARE:
        found.append(f"throughput {share:.2f} x bare < {THROUGHPUT_SHARE}")
    if any(status != 200 for status in bot.load.statuses):
        found.append(f"non-200 answers: {dict(bot.load.statuses)}")
    if drain.seconds is None:
        found.append("the queue did not drain within the timeout")
    if drain.problems:
        found.append(f"{len(drain.problems)} exactly-once problem(s), first: {drain.problems[0]}")
    return found


async def main(count: int, connections: int, drain_timeout_s: float, separate: bool) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingress-") as tmp,
        RemoteSlack(BENCH_BOT_TOKEN) as slack,
    ):
        workdir = Path(tmp)
        bare = await measure_bare(slack, workdir, count, connections)
        bot, drain = await measure_bot(
            slack, workdir, count, connections, drain_timeout_s, separate
        )
    print(
        f"Slack ingress: {count} signed DM events (after {WARM_UP} warm-up) over "
        f"{connections} connections; supportbot "
        + ("with a separate worker process" if separate else "with its embedded worker")
        + " answering meanwhile"
    )
    headers = ["server", "events", "non-200", "p50 ms", "p99 ms", "max ms", "events/s",
               "server CPU ms/event"]  # fmt: skip
    print(table(headers, [bare.cells(), bot.cells()]))
    share = bot.load.throughput / bare.load.throughput
    print(
        f"throughput supportbot/bare: {share:.2f} (target >= {THROUGHPUT_SHARE}); "
        f"p99 target < {P99_TARGET_MS:.0f} ms"
    )
    print("jobs afterwards: " + ", ".join(f"{k} {v}" for k, v in drain.jobs.items()))
    if drain.seconds is not None:
        print(
            f"all {WARM_UP + count} events answered, the last {drain.seconds:.1f} s after the "
            f"load; server CPU per answered event (ack + job): {drain.cpu_s / count * 1000:.1f}"
            f" ms; exactly once: {'yes' if not drain.problems else 'NO'}"
        )
    found = misses(bare, bot, drain)
    for line in found:
        print("missed:", line)
    return 1 if found else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000, help="measured events per server")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument("--drain-timeout", type=float, default=90.0, help="seconds to drain")
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="serve --no-worker plus a `supportbot worker` process (not the default)",
    )
    parser.add_argument("--bare-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--slack-api", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app:
        run_bare_app(args.bare_app, args.slack_api)
        sys.exit(0)
    sys.exit(
        asyncio.run(main(args.events, args.connections, args.drain_timeout, args.separate_worker))
    )
