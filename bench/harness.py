"""Shared pieces of the benchmarks: the fake Gemini endpoint, the real client, documents.

Every benchmark runs the real google-genai client against a local fake endpoint with a
fixed per-call latency, so the numbers measure this project's scheduling, not Google's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from pipelines.config import LLMSettings
from pipelines.faq.chain import SourceDocument
from pipelines.llm.gemini import GeminiLLM
from pipelines.llm.reliability import CallGate, RetryPolicy
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.gemini_scripts import StepAnswer, by_step
from tests.slack_signing import encode, event_callback, signed_headers

TOPICS = {
    "shipping.md": "Standard shipping takes {d} business days. Express orders placed before "
    "2pm ship the same day. Orders over 50 dollars ship free. We ship to {d} countries.",
    "returns.md": "Returns are accepted within {d} days of delivery. Items must be unused and "
    "in their original packaging. Refunds reach the original payment method in {d} days.",
    "warranty.md": "Every product carries a {d}-year warranty against manufacturing defects. "
    "Accidental damage is not covered. Claims need the order number and a photo.",
}


def documents(paragraphs: int = 12) -> list[SourceDocument]:
    """Three documents of a realistic size (12 paragraphs: about 450 tokens each)."""
    return [
        SourceDocument(title, "\n\n".join(text.format(d=i + 2) for i in range(paragraphs)))
        for title, text in TOPICS.items()
    ]


class RemoteFake:
    """The fake endpoint in a child process, so its CPU time is not on the bot's event loop.

    Answers are closures; the child is forked, so they need no pickling.
    """

    def __init__(self, answers: dict[str, StepAnswer], latency_s: float, quota_rpm: int | None):
        self._answers = answers
        self._latency_s = latency_s
        self._quota_rpm = quota_rpm
        self._process: multiprocessing.process.BaseProcess | None = None
        self.base_url = ""

    def _configure(self, fake: FakeGemini) -> None:
        """Adjust the fake before it takes calls (runs in the child; for subclasses)."""

    def _serve(self, port_out: Connection) -> None:
        async def serve() -> None:
            async with FakeGemini(
                by_step(self._answers), latency_s=self._latency_s, rpm=self._quota_rpm
            ) as fake:
                self._configure(fake)
                port_out.send(fake.base_url)
                await asyncio.Event().wait()

        asyncio.run(serve())

    def __enter__(self) -> RemoteFake:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=self._serve, args=(sender,), daemon=True)
        self._process.start()
        if not receiver.poll(20):
            raise RuntimeError("the fake Gemini process did not start")
        self.base_url = receiver.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(5)

    async def stats(self, reset: bool = False) -> dict[str, int]:
        async with aiohttp.ClientSession() as session:
            if reset:
                async with session.post(self.base_url + "_fake/reset") as response:
                    return dict(await response.json())
            async with session.get(self.base_url + "_fake/stats") as response:
                return dict(await response.json())


@asynccontextmanager
async def gemini_client(
    fake: RemoteFake, *, max_concurrency: int, rpm: int, backoff_base_s: float = 0.5
) -> AsyncIterator[tuple[GeminiLLM, LLMSettings]]:
    """The real GeminiLLM, with its own CallGate, pointed at an already running fake."""
    os.environ["GOOGLE_GEMINI_BASE_URL"] = fake.base_url
    settings = LLMSettings(
        gemini_api_key="bench-key",
        llm_provider="gemini",
        llm_max_concurrency=max_concurrency,
        llm_rpm=rpm,
    )
    policy = RetryPolicy.from_settings(settings, backoff_base_s=backoff_base_s)
    llm = GeminiLLM("bench-key", CallGate(max_concurrency, rpm, policy))
    try:
        yield llm, settings
    finally:
        await llm.aclose()


@asynccontextmanager
async def gemini_against_fake(
    answers: dict[str, StepAnswer],
    *,
    latency_s: float,
    max_concurrency: int,
    rpm: int,
    quota_rpm: int | None = None,
    backoff_base_s: float = 0.5,
) -> AsyncIterator[tuple[GeminiLLM, RemoteFake, LLMSettings]]:
    """The real GeminiLLM pointed at a fresh fake endpoint in its own process."""
    with RemoteFake(answers, latency_s, quota_rpm) as fake:
        async with gemini_client(
            fake, max_concurrency=max_concurrency, rpm=rpm, backoff_base_s=backoff_base_s
        ) as (llm, settings):
            yield llm, fake, settings


class SteadyQuotaFake(RemoteFake):
    """A fake whose quota window is already full when the first call arrives.

    The window then holds `quota_rpm` admissions spread evenly over the last 60 s, as if
    the bot had been running at exactly its quota: one slot frees every 60/R s, so no
    client can do better than R calls per minute, and `calls / R` minutes is a true lower
    bound. (With an empty window any burst of up to R calls would go through at once.)
    """

    def _configure(self, fake: FakeGemini) -> None:
        assert fake.quota is not None, "SteadyQuotaFake needs a quota_rpm"
        fake.quota = _FilledOnFirstCall(fake.quota)  # type: ignore[assignment]


class _FilledOnFirstCall:
    """Wraps the fake's sliding quota; fills its window relative to the first call."""

    def __init__(self, quota: Any) -> None:
        self._quota = quota
        self._filled = False

    def admit(self, now: float) -> float | None:
        if not self._filled:
            self._filled = True
            spacing = self._quota.window_s / self._quota.limit
            start = now - self._quota.window_s
            self._quota.admitted.extend(start + (i + 1) * spacing for i in range(self._quota.limit))
        result: float | None = self._quota.admit(now)
        return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RemoteSlack:
    """FakeSlack in a forked child process, so its handlers do not share the load
    generator's event loop. The parent asks it over a pipe how many replies each thread got.
    """

    def __init__(self, token: str) -> None:
        self._token = token
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.api_url = ""

    def _serve(self, conn: Connection) -> None:
        async def serve() -> None:
            async with FakeSlack(token=self._token) as slack:
                conn.send(slack.api_url)
                loop = asyncio.get_running_loop()
                loop.add_reader(conn.fileno(), self._answer, conn, slack)
                await asyncio.Event().wait()

        asyncio.run(serve())

    @staticmethod
    def _answer(conn: Connection, slack: FakeSlack) -> None:
        conn.recv()
        conn.send(Counter((posted.channel, posted.thread_ts) for posted in slack.messages))

    def __enter__(self) -> RemoteSlack:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe(duplex=True)
        self._process = context.Process(target=self._serve, args=(child,), daemon=True)
        self._process.start()
        if not self._conn.poll(20):
            raise RuntimeError("the fake Slack process did not start")
        self.api_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(5)

    def reply_counts(self) -> Counter[tuple[str, str | None]]:
        """Messages posted by the bot, per (channel, thread_ts)."""
        assert self._conn is not None
        self._conn.send("replies")
        counts: Counter[tuple[str, str | None]] = self._conn.recv()
        return counts


# --- `supportbot serve` and other servers in subprocesses --------------------------------

SUPPORTBOT = str(Path(sys.executable).with_name("supportbot"))
REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_BOT_TOKEN = "xoxb-bench-token"
_CONFIG_PREFIXES = ("slack_", "database_", "llm_", "gemini_", "google_", "support_", "model_")


def server_environment(**values: str) -> dict[str, str]:
    """This environment minus the bot's configuration variables, plus `values`.

    A developer's own SLACK_*, LLM_* or GOOGLE_* variables must not change what is measured.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().startswith(_CONFIG_PREFIXES) and key.upper() != "PORT"
    }
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT), **values})
    return env


@dataclass
class ServerProcess:
    url: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


async def _wait_until_healthy(server: ServerProcess, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                break
            try:
                async with session.get(server.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.log.name} did not become healthy:\n{server.log.read_text()}")


@asynccontextmanager
async def background_process(
    command: Sequence[str], env: dict[str, str], workdir: Path, log_name: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    """Run `command` until the block ends, then SIGTERM it (SIGKILL after 20 s).

    Output goes to a file in `workdir` (a pipe nobody reads would fill up and stall it).
    """
    log = workdir / log_name
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=workdir, stdout=out, stderr=out
        )
    try:
        yield process, log
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


@asynccontextmanager
async def server_process(
    command: Sequence[str], port: int, env: dict[str, str], workdir: Path
) -> AsyncIterator[ServerProcess]:
    """Run `command`, an HTTP server on `port` with GET /healthz, once it is healthy."""
    async with background_process(command, env, workdir, f"server-{port}.log") as (process, log):
        server = ServerProcess(f"http://127.0.0.1:{port}", process, log)
        await _wait_until_healthy(server, within=60)
        yield server


@asynccontextmanager
async def supportbot_serve(
    env: dict[str, str], workdir: Path, *args: str
) -> AsyncIterator[ServerProcess]:
    """`supportbot serve` on a free local port (SQLite and settings from `env`)."""
    port = free_port()
    command = [SUPPORTBOT, "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    async with server_process(command, port, env, workdir) as server:
        yield server


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in MB, from /proc."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024  # kB
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- sending signed Slack events ----------------------------------------------------------


def dm_events(count: int, users: int, tag: str) -> list[dict[str, Any]]:
    """`count` distinct DMs (distinct ts) from `users` users, each in its own DM channel."""
    base = int(time.time())
    return [
        {
            "type": "message",
            "user": f"U{tag}{n % users:03d}",
            "text": f"Hi, where is my order ORD-10011? ({tag} {n})",
            "ts": f"{base}.{n:06d}",
            "event_ts": f"{base}.{n:06d}",
            "channel": f"D{tag}{n % users:03d}",
            "channel_type": "im",
        }
        for n in range(count)
    ]


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    wall_s: float = 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        ordered = sorted(self.latencies_s)
        rank = max(1, round(q / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.wall_s


async def post_events(
    url: str,
    events: Iterable[dict[str, Any]],
    connections: int,
    session: aiohttp.ClientSession | None = None,
) -> LoadResult:
    """POST each event, signed like Slack, over `connections` keep-alive connections.

    A closed loop: `connections` senders, each waiting for its answer before the next
    request, so a latency is the server's time to acknowledge, never time spent queued
    in the client's own connection pool. Pass a `session` (see `keep_alive_session`) to
    reuse its open connections, as Slack does, instead of opening new ones.
    """
    if session is None:
        async with keep_alive_session(connections) as own:
            return await post_events(url, events, connections, own)
    bodies = iter([encode(event_callback(event)) for event in events])
    result = LoadResult()

    async def sender() -> None:
        for body in bodies:
            headers = signed_headers(body)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            result.latencies_s.append(time.perf_counter() - started)
            result.statuses[response.status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(connections)))
    result.wall_s = time.perf_counter() - started
    return result


def keep_alive_session(connections: int) -> aiohttp.ClientSession:
    """A client session holding up to `connections` connections open between calls.

    Idle connections stay open for a minute (aiohttp's default is 15 s), less than the
    server's keep-alive (`bot.server.KEEP_ALIVE_SECONDS`), so the server never closes one
    under the client and no request pays for a new connection after the warm-up.
    """
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
