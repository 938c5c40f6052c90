"""End-to-end harness: the real ASGI app under uvicorn, a fake Slack, a temp database.

`bot_server(...)` starts the whole HTTP side (Bolt with signature verification, listeners,
queue, embedded worker) on a free port, talking to `FakeSlack` as its Web API.
`post_event(...)` sends a signed Events API request the way Slack does.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bot.messages.reply_job import AnswersMessages
from bot.server import create_asgi_app
from bot.settings import Settings
from bot.wiring import Feature, SlackRuntime, open_slack_runtime
from bot.worker import Worker
from pipelines.llm.base import LLM
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import SIGNING_SECRET, encode, event_callback, signed_headers

BOT_TOKEN = "xoxb-test-token"
SUPPORT_CHANNEL = "C0SUPPORT"
AGENT_ID = "U0AGENT"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(api_url: str, database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": api_url,
        "database_url": database_url,
        "support_channels": [SUPPORT_CHANNEL],
        "support_agent_ids": [AGENT_ID],
        "llm_provider": "offline",
    }
    values.update(changes)
    return Settings(**values)


@dataclass
class BotServer:
    url: str
    slack: SlackRuntime
    worker: Worker | None
    http: httpx.AsyncClient

    async def post(
        self,
        body: str,
        *,
        retry_num: int | None = None,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        headers = signed_headers(body, secret=secret, timestamp=timestamp, retry_num=retry_num)
        return await self.http.post(f"{self.url}/slack/events", content=body, headers=headers)

    async def post_event(self, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """Send `event` in a fresh envelope (its own event id); returns Slack's view of it."""
        response = await self.post(encode(event_callback(event)), **kwargs)
        assert response.status_code == 200, response.text
        return response


def act_at_once(bot: BotServer) -> None:
    """CONFIRM_ACTIONS=none for this bot (the old behaviour: returns and billing cases are
    opened at once), for tests of those side effects themselves; confirming first is
    tested in tests/e2e/test_confirmations.py."""
    bot.slack.core.settings.confirm_actions = frozenset()


@asynccontextmanager
async def run_bot_server(
    settings: Settings,
    *,
    service: AnswersMessages | None = None,
    embedded_worker: bool = True,
    lease_seconds: float = 10.0,
    concurrency: int = 4,
    features: Sequence[Feature] = (),
    llm: LLM | None = None,
) -> AsyncIterator[BotServer]:
    async with open_slack_runtime(
        settings, service=service, llm=llm, features=features, backoff_base=0.05, backoff_cap=0.2
    ) as slack:
        bolt = slack.build_app()
        worker = (
            slack.build_worker(
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                poll_interval=0.05,
                shutdown_grace=2.0,
            )
            if embedded_worker
            else None
        )
        app = create_asgi_app(slack, bolt, worker=worker)
        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_level="warning"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                yield BotServer(f"http://127.0.0.1:{port}", slack, worker, http)
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def settings(fake_slack: FakeSlack, sqlite_url: str) -> Settings:
    return make_settings(fake_slack.api_url, sqlite_url)


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    """The bot with the real SupportService and the offline provider."""
    async with run_bot_server(settings) as server:
        yield server


# --- subprocesses -----------------------------------------------------------------------

SUPPORTBOT = str(Path(sys.executable).with_name("supportbot"))


def bot_environment(settings: Settings) -> dict[str, str]:
    """The environment of a `supportbot` subprocess configured like `settings`."""
    import os

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("SLACK_", "DATABASE_", "LLM_", "GEMINI_", "SUPPORT_"))
    }
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": settings.slack_api_url,
            "DATABASE_URL": settings.database_url,
            "SUPPORT_CHANNELS": ",".join(settings.support_channels),
            "LLM_PROVIDER": "offline",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def wait_until(
    condition: Callable[[], Awaitable[bool]], within: float, interval: float = 0.1
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def wait_until_healthy(http: httpx.AsyncClient, ports: Sequence[int], within: float) -> None:
    """Until every local server on `ports` (supportbot subprocesses) answers GET /healthz."""

    async def healthy() -> bool:
        try:
            for port in ports:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code != 200:
                    return False
        except httpx.TransportError:
            return False
        return True

    await wait_until(healthy, within=within)
