"""Real processes: a worker killed mid-job, and serve/worker replicas on PostgreSQL.

Nothing in a process's memory may be needed for correctness (SPEC 8): a SIGKILLed worker's
jobs are taken over when their leases expire, and a reply it had already posted is found
in the thread instead of being posted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from bot.app import build_client
from bot.cli.server import register
from bot.settings import Settings, SettingsError
from bot.wiring import check_slack_token
from storage.db import Database
from storage.queue import JobQueue
from tests.e2e.conftest import (
    SUPPORTBOT,
    bot_environment,
    free_port,
    make_settings,
    run_bot_server,
    wait_until,
    wait_until_healthy,
)
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import dm_event, encode, event_callback, signed_headers


def supportbot_command() -> list[str]:
    """`supportbot` once the main CLI registers the serving commands, else the module."""
    from bot.cli import app

    names = {command.name for command in app.registered_commands}
    return [SUPPORTBOT] if "worker" in names else [sys.executable, "-m", "bot.cli.server"]


class Processes:
    """`supportbot` subprocesses with their output in files (shown when a test fails)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[asyncio.subprocess.Process] = []
        self._names = itertools.count(1)

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        log = self.logs / f"{next(self._names)}-{args[0]}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *supportbot_command(), *args, env=self.env, stdout=out, stderr=out
            )
        self.running.append(process)
        return process

    async def stop_all(self) -> list[int | None]:
        for process in self.running:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in self.running:
            try:
                codes.append(await asyncio.wait_for(process.wait(), 15))
            except TimeoutError:
                process.kill()
                codes.append(await process.wait())
        return codes

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()}" for log in sorted(self.logs.iterdir())
        )


@contextlib.asynccontextmanager
async def processes(settings: Settings, tmp_path: Path) -> AsyncIterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(bot_environment(settings), logs)
    try:
        yield procs
    except BaseException:
        await procs.stop_all()
        print(procs.output())
        raise
    await procs.stop_all()


async def job_counts(database_url: str) -> dict[str, int]:
    db = Database(database_url)
    try:
        return await JobQueue(db).counts()
    finally:
        await db.dispose()


def one_reply_per_thread(fake: FakeSlack, events: list[dict[str, str]]) -> None:
    for event in events:
        replies = fake.posts(channel=event["channel"], thread_ts=event["ts"])
        assert len(replies) == 1, f"{len(replies)} replies to {event['ts']}"
    assert len(fake.posts()) == len(events)


def test_serve_without_slack_credentials_names_them_and_points_to_chat() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    output = result.output.strip()
    assert "SLACK_BOT_TOKEN" in output and "SLACK_SIGNING_SECRET" in output
    assert "supportbot chat" in output
    assert len(output.splitlines()) == 1


async def test_killed_worker_every_message_answered_exactly_once(
    fake_slack: FakeSlack, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fake_slack.api_url, sqlite_url)
    events = [dm_event(f"Where is my order ORD-1001{n}?", channel=f"D0CUST{n}") for n in range(6)]
    async with run_bot_server(settings, embedded_worker=False) as bot:
        for event in events:
            await bot.post_event(event)

    # The first two jobs hang before answering; the third posts, but its worker never
    # hears back. Then the worker is killed.
    fake_slack.slow("reactions.add", 60, times=2)
    fake_slack.slow("chat.postMessage", 60, times=1)
    worker_args = ("worker", "--concurrency", "3", "--lease-seconds", "2")
    async with processes(settings, tmp_path) as procs:
        first = await procs.start(*worker_args)
        await fake_slack.wait_for(
            lambda: len(fake_slack.calls_to("reactions.add")) >= 3 and len(fake_slack.posts()) >= 1,
            within=30,
        )
        first.kill()
        await first.wait()
        assert len(fake_slack.posts()) == 1

        fake_slack.clear_faults()
        await procs.start(*worker_args)

        async def all_done() -> bool:
            return (await job_counts(sqlite_url))["done"] == len(events)

        await wait_until(all_done, within=40)
        await asyncio.sleep(0.5)
        one_reply_per_thread(fake_slack, events)
        # the job whose reply was posted before the kill was settled by finding it
        assert len(fake_slack.calls_to("conversations.replies")) >= 3


@pytest.mark.postgres
async def test_replicas_on_postgres_answer_every_event_exactly_once(
    fake_slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fake_slack.api_url, postgres_url)
    ports = [free_port(), free_port()]
    users = [f"U0CUST{n:02d}" for n in range(20)]
    events = [
        dm_event(
            f"Where is my order ORD-1001{n % 3}? ({n})",
            user=users[n % 20],
            channel=f"D{n % 20:03d}",
        )
        for n in range(200)
    ]
    async with processes(settings, tmp_path) as procs, httpx.AsyncClient(timeout=30) as http:
        for port in ports:  # both start at once: migrations take turns on a lock
            await procs.start("serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))

        await wait_until_healthy(http, ports, within=40)
        for _ in range(2):
            await procs.start("worker", "--concurrency", "8")

        limit = asyncio.Semaphore(16)

        async def send(n: int, event: dict[str, str]) -> None:
            body = encode(event_callback(event))
            deliveries = [(ports[n % 2], None)]
            if n % 10 == 0:  # a redelivery that lands on the other replica
                deliveries.append((ports[(n + 1) % 2], 1))
            for port, retry_num in deliveries:
                async with limit:
                    response = await http.post(
                        f"http://127.0.0.1:{port}/slack/events",
                        content=body,
                        headers=signed_headers(body, retry_num=retry_num),
                    )
                assert response.status_code == 200, response.text

        await asyncio.gather(*(send(n, event) for n, event in enumerate(events)))
        await fake_slack.wait_for(lambda: len(fake_slack.posts()) >= len(events), within=90)
        await asyncio.sleep(1.0)
        one_reply_per_thread(fake_slack, events)
        counts = await job_counts(postgres_url)
        assert counts == {"queued": 0, "running": 0, "done": 200, "dead": 0}
        codes = await procs.stop_all()
        # uvicorn drains, then re-raises SIGTERM (exit -15); workers drain and exit 0.
        assert codes == [-signal.SIGTERM, -signal.SIGTERM, 0, 0], procs.output()
        assert procs.output().count("Application shutdown complete") == 2


async def test_a_token_slack_refuses_stops_startup_with_a_clear_error(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    wrong = make_settings(fake_slack.api_url, sqlite_url, slack_bot_token="xoxb-wrong")
    with pytest.raises(SettingsError, match="invalid_auth"):
        await check_slack_token(build_client(wrong))
    right = make_settings(fake_slack.api_url, sqlite_url)
    await check_slack_token(build_client(right))  # no error
