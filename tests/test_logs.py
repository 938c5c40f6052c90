"""Structured logs (`LOG_FORMAT`): the fields of a job reach every line logged for it.

The worker binds job_id/job_kind/attempt, the support service binds run_id and ticket;
`bot.logs` prints them after the message (text) or as keys of one JSON object a line.
Concurrent jobs are separate asyncio tasks, so their fields never mix.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.logs import LogFormat, build_handler
from bot.worker import Worker
from pipelines.config import LLMSettings
from pipelines.llm.offline import OfflineLLM
from pipelines.log_context import bind, bound, current_fields
from pipelines.support.contracts import IncomingMessage, SupportReply
from pipelines.support.service import SupportService
from storage.db import Database
from storage.queue import DONE, JobQueue, LeasedJob
from tests.e2e.conftest import (
    BOT_TOKEN,
    SUPPORTBOT,
    bot_environment,
    free_port,
    make_settings,
    wait_until,
    wait_until_healthy,
)
from tests.fakes.fake_slack import FakeSlack
from tests.incoming import incoming
from tests.slack_signing import dm_event, encode, event_callback, signed_headers

pipeline_logger = logging.getLogger("pipelines.fake")


class Captured:
    """Lines printed by `bot.logs`' handler on the root logger, in one format."""

    def __init__(self, log_format: LogFormat) -> None:
        self.stream = io.StringIO()
        self.handler = build_handler(log_format, self.stream)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """`capture("json")` attaches a handler of that format to the root logger, at INFO."""
    caplog.set_level(logging.INFO)
    attached: list[logging.Handler] = []

    def attach(log_format: LogFormat) -> Captured:
        captured = Captured(log_format)
        logging.getLogger().addHandler(captured.handler)
        attached.append(captured.handler)
        return captured

    yield attach
    for handler in attached:
        logging.getLogger().removeHandler(handler)


@pytest.fixture
async def queue(sqlite_db: Database) -> AsyncIterator[JobQueue]:
    yield JobQueue(sqlite_db, backoff_base=0.01, backoff_cap=0.02)


def message(text: str, ts: str, user: str = "U0LOGS") -> IncomingMessage:
    return incoming(text, ts, user=user)


class ServiceJobs:
    """A job handler that answers its payload's text with the real support service."""

    def __init__(self, service: SupportService) -> None:
        self.service = service
        self.replies: dict[int, SupportReply] = {}

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        reply = await self.service.handle(message(job.payload["text"], job.payload["ts"]))
        pipeline_logger.info("answered")
        self.replies[job.id] = reply
        return None

    async def give_up(self, job: LeasedJob, error: str) -> None:
        return None


async def run_jobs(worker: Worker, queue: JobQueue, count: int) -> None:
    task = asyncio.create_task(worker.run())

    async def all_done() -> bool:
        return (await queue.counts()).get(DONE, 0) >= count

    try:
        await wait_until(all_done, within=20, interval=0.02)
    finally:
        worker.stop()
        await task


def worker_for(queue: JobQueue, handler: Any, concurrency: int = 2) -> Worker:
    return Worker(
        queue, {"test": handler}, concurrency=concurrency, lease_seconds=5, poll_interval=0.02
    )


# --- JSON: a worker job through the real support pipeline -------------------------------


async def test_json_lines_carry_job_run_and_ticket_from_a_worker_job(
    queue: JobQueue, sqlite_db: Database, capture: Any
) -> None:
    captured = capture("json")
    jobs = ServiceJobs(SupportService(sqlite_db, OfflineLLM(), LLMSettings()))
    await queue.enqueue("test", "k1", {"text": "Where is my order ORD-10001?", "ts": "1.0001"})

    await run_jobs(worker_for(queue, jobs), queue, 1)

    [(job_id, reply)] = jobs.replies.items()
    assert reply.run_id and reply.ticket_number
    lines = captured.objects()  # every line is one JSON object
    answered = next(line for line in lines if line["message"] == "answered")
    assert answered["logger"] == "pipelines.fake" and answered["level"] == "INFO"
    assert answered["time"].endswith("+00:00")
    # Bound by the worker (job) and by SupportService.handle (run, ticket), logged elsewhere.
    assert answered["job_id"] == job_id and answered["job_kind"] == "test"
    assert answered["attempt"] == 1
    assert answered["run_id"] == reply.run_id
    assert answered["ticket"] == reply.ticket_number
    # The worker's own summary line of that job carries them too.
    summary = next(line for line in lines if line.get("outcome") == "done")
    assert summary["outcome"] == "done" and summary["run_id"] == reply.run_id


async def test_json_exception_is_one_string_field(capture: Any) -> None:
    captured = capture("json")
    with bound(job_id=7):
        try:
            raise ValueError("bad input")
        except ValueError:
            pipeline_logger.exception("step failed", extra={"step": "router"})

    [line] = captured.objects()
    assert line["message"] == "step failed" and line["step"] == "router"
    assert line["job_id"] == 7
    assert isinstance(line["exc_info"], str) and "ValueError: bad input" in line["exc_info"]


# --- text: the classic line, fields appended by the formatter -----------------------------


async def test_text_format_appends_the_bound_fields(capture: Any) -> None:
    captured = capture("text")
    with bound(job_id=12, job_kind="slack_message"):
        bind(run_id="r-1", ticket="T-0001")
        pipeline_logger.info("answered %s", "ok", extra={"note": "two words", "reason": None})
    pipeline_logger.info("outside")

    inside, outside = captured.lines()
    assert inside.endswith(
        " INFO pipelines.fake: answered ok "
        'job_id=12 job_kind=slack_message run_id=r-1 ticket=T-0001 note="two words"'
    )
    assert outside.endswith(" INFO pipelines.fake: outside")  # the block restored nothing
    assert current_fields() == {}


# --- concurrent jobs never share fields -------------------------------------------------


async def test_concurrent_jobs_each_log_their_own_fields(queue: JobQueue, capture: Any) -> None:
    captured = capture("json")
    both_running = asyncio.Barrier(2)

    class Interleaved:
        async def run(self, job: LeasedJob) -> dict[str, Any] | None:
            bind(run_id=f"run-of-{job.id}")
            await both_running.wait()  # the two jobs are in flight together
            pipeline_logger.info("step", extra={"payload_job": job.payload["n"]})
            await asyncio.sleep(0)
            pipeline_logger.info("step")
            return None

        async def give_up(self, job: LeasedJob, error: str) -> None:
            return None

    for n in (1, 2):
        await queue.enqueue("test", f"k{n}", {"n": n})
    await run_jobs(worker_for(queue, Interleaved()), queue, 2)

    steps = [line for line in captured.objects() if line["message"] == "step"]
    assert len(steps) == 4
    assert {line["job_id"] for line in steps} == {1, 2}
    for line in steps:
        assert line["run_id"] == f"run-of-{line['job_id']}"
    assert all(line["payload_job"] == line["job_id"] for line in steps if "payload_job" in line)
    assert current_fields() == {}  # nothing leaked into the test's own task


# --- LOG_FORMAT as a setting ----------------------------------------------------------


def test_invalid_log_format_is_the_one_line_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")

    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid setting LOG_FORMAT: ")
    assert result.stderr.count("\n") == 1


# --- the real `supportbot serve` process ---------------------------------------------------


async def test_serve_process_prints_only_json_lines_with_the_job_fields(
    sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    port = free_port()
    event = dm_event("Where is my order ORD-10001?", channel="D0LOGS")
    body = encode(event_callback(event))
    async with FakeSlack(token=BOT_TOKEN) as fake, httpx.AsyncClient(timeout=30) as http:
        env = {**bot_environment(make_settings(fake.api_url, sqlite_url)), "LOG_FORMAT": "json"}
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                SUPPORTBOT, "serve", "--host", "127.0.0.1", "--port", str(port),
                env=env, stdout=out, stderr=out,
            )  # fmt: skip
        try:

            async def answered() -> bool:
                return bool(fake.posts(channel="D0LOGS"))

            await wait_until_healthy(http, [port], within=30)
            url = f"http://127.0.0.1:{port}/slack/events"
            response = await http.post(url, content=body, headers=signed_headers(body))
            assert response.status_code == 200
            await wait_until(answered, within=30)
            await asyncio.sleep(0.3)  # the job's summary line follows the post
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 15)

    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # nothing but JSON, uvicorn too
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access", "bot.worker"} <= loggers, loggers
    summary = next(line for line in lines if line.get("outcome") == "done")
    assert summary["job_kind"] == "slack_message" and summary["job_id"] == 1
    assert summary["run_id"] and summary["ticket"].startswith("T-"), summary
    assert BOT_TOKEN not in text and "ORD-10001" not in text  # no token, no message text


def test_logging_survives_the_stderr_it_started_with_being_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command run in-process (Click's runner) installs our handler while stderr is the
    runner's buffer, then closes it: later records must go to the stderr of their time."""
    from bot.logs import configure_logging
    from bot.settings import Settings

    root = logging.getLogger()
    before = list(root.handlers), root.level
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    try:
        configure_logging(Settings(_env_file=None))  # type: ignore[call-arg]
        swapped.close()
        later = io.StringIO()
        monkeypatch.setattr("sys.stderr", later)
        logging.getLogger("supportbot.test").warning("after the runner")
        assert "after the runner" in later.getvalue()
        assert "Logging error" not in later.getvalue()
    finally:
        for handler in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(handler)
        root.setLevel(before[1])
