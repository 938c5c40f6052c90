"""The bot's identity (auth.test) is asked of Slack once per process, never per event.

Bolt's single-team authorization let every event that arrived before the first auth.test
answer make its own call, and each ack waited for it (`bot.authorization`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from bot.settings import Settings
from tests.e2e.conftest import free_port, run_bot_server, wait_until_healthy
from tests.e2e.test_processes import processes
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import dm_event, encode, event_callback, signed_headers


def burst(count: int, tag: str) -> list[dict[str, str]]:
    return [
        dm_event(f"Where is my order ORD-1001{n}?", user=f"U0{tag}{n}", channel=f"D0{tag}{n}")
        for n in range(count)
    ]


async def test_a_burst_to_a_fresh_app_asks_slack_who_the_bot_is_once(
    fake_slack: FakeSlack, settings: Settings
) -> None:
    fake_slack.slow("auth.test", 0.3)  # every event arrives while the first call is out
    events = burst(12, "FRESH")
    async with run_bot_server(settings, embedded_worker=False) as bot:
        await asyncio.gather(*(bot.post_event(event) for event in events))
        assert len(fake_slack.calls_to("auth.test")) == 1
        assert (await bot.slack.queue.counts())["queued"] == len(events)


async def test_an_event_that_cannot_be_authorized_is_refused_so_slack_sends_it_again(
    fake_slack: FakeSlack, settings: Settings
) -> None:
    fake_slack.fail("auth.test", error="ratelimited", times=1)
    event = dm_event("Where is my order ORD-10011?")
    async with run_bot_server(settings, embedded_worker=False) as bot:
        body = encode(event_callback(event))
        refused = await bot.post(body)
        assert refused.status_code == 500  # Bolt alone answered 200: the event was lost
        assert (await bot.slack.queue.counts())["queued"] == 0
        again = await bot.post(body, retry_num=1)  # Slack's redelivery
        assert again.status_code == 200
        assert (await bot.slack.queue.counts())["queued"] == 1
        assert len(fake_slack.calls_to("auth.test")) == 2


async def test_serve_reuses_its_start_up_token_check_for_every_event(
    fake_slack: FakeSlack, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    events = burst(8, "SERVE")
    async with processes(settings, tmp_path) as procs, httpx.AsyncClient(timeout=30) as http:
        await procs.start("serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))
        await wait_until_healthy(http, [port], within=30)
        assert len(fake_slack.calls_to("auth.test")) == 1  # the start-up check

        async def post(event: dict[str, str]) -> int:
            body = encode(event_callback(event))
            response = await http.post(url + "/slack/events", content=body,
                                       headers=signed_headers(body))  # fmt: skip
            return response.status_code

        assert await asyncio.gather(*(post(event) for event in events)) == [200] * len(events)
        assert len(fake_slack.calls_to("auth.test")) == 1


async def test_the_app_starts_without_bolts_warning_that_the_token_is_ignored(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Given `authorize`, Bolt warns that SLACK_BOT_TOKEN "will be ignored": it is the
    token `SharedBotIdentity` authorizes every request with, so the warning would mislead."""
    caplog.set_level(logging.WARNING, logger="slack_bolt")
    async with run_bot_server(settings, embedded_worker=False):
        pass
    assert [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")] == []
