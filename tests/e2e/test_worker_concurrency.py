"""The worker's default concurrency follows the LLM budget; --concurrency overrides it.

`supportbot serve` and `supportbot worker` used to run a constant 4 or 8 jobs at once, so a
burst queued behind them although LLM_MAX_CONCURRENCY allowed more calls in flight. These
run the real `serve`/`run_worker` setup against the fake Slack and a temp SQLite database and
look at the worker they built (its loop is replaced by one that only records it).
"""

from __future__ import annotations

import pytest

from bot.server import run_worker, serve
from bot.worker import JOBS_PER_LLM_SLOT, Worker
from tests.e2e.conftest import BOT_TOKEN, make_settings
from tests.fakes.fake_slack import FakeSlack


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Concurrency of every worker that started running; the loop returns at once."""
    seen: list[int] = []

    async def record(self: Worker) -> None:
        seen.append(self.concurrency)

    monkeypatch.setattr(Worker, "run", record)
    return seen


async def test_worker_default_follows_llm_max_concurrency(
    sqlite_url: str, built: list[int]
) -> None:
    async with FakeSlack(token=BOT_TOKEN) as slack:
        await run_worker(make_settings(slack.api_url, sqlite_url, llm_max_concurrency=5))
        await run_worker(make_settings(slack.api_url, sqlite_url, llm_max_concurrency=40))
    assert built == [JOBS_PER_LLM_SLOT * 5, JOBS_PER_LLM_SLOT * 40]


async def test_explicit_concurrency_is_honoured(sqlite_url: str, built: list[int]) -> None:
    async with FakeSlack(token=BOT_TOKEN) as slack:
        settings = make_settings(slack.api_url, sqlite_url, llm_max_concurrency=40)
        await run_worker(settings, concurrency=3)
    assert built == [3]


async def test_serve_embedded_worker_default_follows_llm_max_concurrency(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve() builds its app around the worker, then runs uvicorn: record, do not serve."""
    seen: list[int] = []

    def app_around(slack: object, bolt: object, *, worker: Worker, **kwargs: object) -> None:
        seen.append(worker.concurrency)

    async def no_uvicorn(app: object, host: str, port: int) -> None:
        return None

    monkeypatch.setattr("bot.server.create_asgi_app", app_around)
    monkeypatch.setattr("bot.server.run_uvicorn", no_uvicorn)
    monkeypatch.setattr("bot.server.freeze_startup_objects", lambda: None)
    async with FakeSlack(token=BOT_TOKEN) as slack:
        settings = make_settings(slack.api_url, sqlite_url, llm_max_concurrency=7)
        await serve(settings, port=0)
        await serve(settings, port=0, concurrency=2)
    assert seen == [JOBS_PER_LLM_SLOT * 7, 2]
