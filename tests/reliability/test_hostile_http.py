"""Hostile HTTP: huge, unsigned and malformed bodies on /slack/events, and /metrics abuse.

The real app under uvicorn (`run_bot_server`). Bolt's own parser is counted, so "refused
before it was parsed" is checked, not assumed; the logs are checked for tracebacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import slack_bolt.request.async_request as bolt_request
from sqlalchemy import func, select

from bot import server as server_module
from bot.http_guard import slack_signature_is_valid
from bot.metrics import QueueGauges, start_metrics_server
from bot.settings import Settings
from storage.db import Database
from storage.models import Job
from storage.queue import JobQueue
from tests.e2e.conftest import BotServer, free_port, make_settings, run_bot_server
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import SIGNING_SECRET, dm_event, encode, event_callback, signed_headers

MB = 1024 * 1024
METRICS_TOKEN = "metrics-token-0123456789"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every body Bolt parsed (its `parse_body`, called by the request)."""
    seen: list[int] = []
    real = bolt_request.parse_body

    def counting(body: str, content_type: str | None) -> dict[str, Any]:
        seen.append(len(body))
        return real(body, content_type)

    monkeypatch.setattr(bolt_request, "parse_body", counting)
    return seen


@pytest.fixture
def server_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record, uvicorn's too (its loggers do not propagate to the root)."""
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    try:
        yield caplog
    finally:
        uvicorn_logger.removeHandler(caplog.handler)


@pytest.fixture
def settings(fake_slack: FakeSlack, sqlite_url: str) -> Settings:
    return make_settings(fake_slack.api_url, sqlite_url, metrics_token=METRICS_TOKEN)


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings) as server:
        yield server


async def post_raw(bot: BotServer, body: bytes, headers: dict[str, str]) -> int:
    response = await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    return response.status_code


def signed(body: bytes, **kwargs: Any) -> dict[str, str]:
    """Slack's headers for raw bytes (the signature is over the bytes as sent)."""
    headers = signed_headers("", **kwargs)
    stamp = headers["X-Slack-Request-Timestamp"]
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    headers["X-Slack-Signature"] = "v0=" + digest.hexdigest()
    return headers


def big_event(size: int) -> bytes:
    payload = event_callback(dm_event("x"))
    payload["padding"] = "a" * size
    return encode(payload).encode()


async def job_count(bot: BotServer) -> int:
    async with bot.slack.core.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


def assert_no_traceback(logs: pytest.LogCaptureFixture) -> None:
    assert not [record for record in logs.records if record.exc_info], logs.text
    assert "Traceback" not in logs.text


# --- size ---------------------------------------------------------------------------------


async def test_a_1mb_unsigned_body_gets_413_without_being_parsed(
    bot: BotServer, parses: list[int], server_logs: pytest.LogCaptureFixture
) -> None:
    status = await post_raw(bot, big_event(MB), {"Content-Type": "application/json"})
    assert status == 413
    assert parses == []
    assert_no_traceback(server_logs)


async def test_a_chunked_body_is_cut_off_at_the_cap(bot: BotServer, parses: list[int]) -> None:
    """No Content-Length to refuse up front: the guard counts and stops at the cap."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MB in 64 KB pieces
            sent += 64 * 1024
            yield b"a" * (64 * 1024)

    response = await bot.http.post(
        f"{bot.url}/slack/events", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert parses == []


async def test_a_signed_body_over_the_cap_is_refused_too(bot: BotServer, parses: list[int]) -> None:
    body = big_event(MB)
    assert await post_raw(bot, body, signed(body)) == 413
    assert parses == []


# --- signature and malformed bodies ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "how", "expected"),
    [
        (b'{"type": "event_callback", "event": ', "signed", 400),
        (b'{"type": "event_callback", "text": "\xff\xfe"}', "signed", 400),
        (b"[1, 2, 3]", "signed", 400),
        (b"payload=%7Bnot-json", "signed-form", 400),
        (b'{"type": "event_callback", "text": "\xff\xfe"}', "unsigned", 401),
        (b'{"type": "event_callback", "event": ', "unsigned", 401),
        (b'{"type": "url_verification", "challenge": "x"}', "forged", 401),
        (b'{"type": "url_verification", "challenge": "x"}', "bad-timestamp", 401),
    ],
    ids=[
        "bad-json", "bad-utf8", "json-array", "bad-form-payload", "unsigned-bad-utf8",
        "unsigned-bad-json", "forged", "non-numeric-timestamp",
    ],
)  # fmt: skip
async def test_bad_bodies_get_a_4xx_and_no_traceback(
    bot: BotServer,
    parses: list[int],
    server_logs: pytest.LogCaptureFixture,
    body: bytes,
    how: str,
    expected: int,
) -> None:
    headers = {"Content-Type": "application/json"}
    if how in ("signed", "forged"):
        headers = signed(body)
    elif how == "signed-form":
        headers = signed(body, content_type="application/x-www-form-urlencoded")
    if how == "forged":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif how == "bad-timestamp":
        headers = {**signed(body), "X-Slack-Request-Timestamp": "soon"}
    assert await post_raw(bot, body, headers) == expected
    if expected == 401:
        assert parses == []  # refused on the raw bytes, before Bolt saw them
    assert_no_traceback(server_logs)
    warnings = [r for r in server_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(expected) in warnings[0].getMessage()
    assert await job_count(bot) == 0


async def test_a_signed_event_still_gets_its_200_and_one_job(
    bot: BotServer, parses: list[int]
) -> None:
    body = encode(event_callback(dm_event("Where is my order ORD-10011?"))).encode()
    assert await post_raw(bot, body, signed(body)) == 200
    assert len(parses) == 1
    assert await job_count(bot) == 1


async def test_an_unsigned_ssl_check_is_answered_and_dispatches_nothing(
    bot: BotServer, parses: list[int]
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert await post_raw(bot, b"ssl_check=1&token=legacy", form) == 200
    assert await post_raw(bot, b"ssl_check=0&command=%2Ffaq", form) == 401
    smuggled = b"ssl_check=1&payload=" + b"a" * 1024  # only a bare probe passes unsigned
    assert await post_raw(bot, smuggled, form) == 401
    assert parses == []


def test_the_signature_check_is_slacks_v0_with_its_time_window() -> None:
    body = b'{"a": 1}'
    headers = signed(body)
    stamp, signature = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    check = slack_signature_is_valid
    secret = SIGNING_SECRET.encode()
    now = int(stamp)
    assert check(secret, body, stamp.encode(), signature.encode(), now)
    assert check(secret, body, stamp.encode(), signature.encode(), now + 299)
    assert not check(secret, body, stamp.encode(), signature.encode(), now + 301)
    assert not check(secret, body + b" ", stamp.encode(), signature.encode(), now)
    assert not check(b"other", body, stamp.encode(), signature.encode(), now)
    assert not check(secret, body, None, signature.encode(), now)
    assert not check(secret, body, stamp.encode(), "v0=é".encode(), now)


# --- /metrics and /healthz --------------------------------------------------------------------


async def test_metrics_want_the_token_when_one_is_set(bot: BotServer) -> None:
    url = f"{bot.url}/metrics"
    assert (await bot.http.get(url)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await bot.http.get(url, headers=wrong)).status_code == 401
    basic = {"Authorization": f"Basic {METRICS_TOKEN}"}
    assert (await bot.http.get(url, headers=basic)).status_code == 401
    good = await bot.http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert good.status_code == 200 and "supportbot_jobs" in good.text
    assert (await bot.http.get(f"{bot.url}/healthz")).status_code == 200  # probes stay open


async def test_scrapes_share_one_count_over_the_jobs_table(
    bot: BotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = bot.slack.queue
    real = queue.counts
    calls = 0

    async def counting() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return await real()

    monkeypatch.setattr(queue, "counts", counting)
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    async def scrape() -> int:
        return (await bot.http.get(f"{bot.url}/metrics", headers=auth)).status_code

    assert await asyncio.gather(*(scrape() for _ in range(10))) == [200] * 10
    for _ in range(10):
        assert await scrape() == 200
    assert calls == 1


async def test_concurrent_health_probes_share_one_query(
    bot: BotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def slow_probe(_: Any) -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return True

    monkeypatch.setattr(server_module, "database_is_up", slow_probe)
    statuses = await asyncio.gather(
        *(bot.http.get(f"{bot.url}/healthz") for _ in range(10))
    )  # fmt: skip
    assert [s.status_code for s in statuses] == [200] * 10
    assert calls == 1


async def test_queue_gauges_read_again_once_they_are_old(sqlite_db: Database) -> None:
    now = [time.monotonic()]
    gauges = QueueGauges(JobQueue(sqlite_db), max_age=5.0, clock=lambda: now[0])
    await gauges.refresh()
    await gauges.refresh()
    assert gauges.reads == 1
    now[0] += 5.1
    await gauges.refresh()
    assert gauges.reads == 2


async def test_the_workers_metrics_port_wants_the_token_too() -> None:
    port = free_port()
    server = start_metrics_server(port, METRICS_TOKEN, host="127.0.0.1")
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            url = f"http://127.0.0.1:{port}/metrics"
            assert (await http.get(url)).status_code == 401
            good = await http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    finally:
        server.shutdown()
    assert good.status_code == 200 and "supportbot_job_outcomes_total" in good.text
