"""Scale-out on PostgreSQL: two `serve` replicas and two workers share a load of events;
one worker is SIGKILLed in the middle of it. Every event is still answered exactly once,
and the queue ends with every job done."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, make_settings, wait_until, wait_until_healthy
from tests.e2e.test_processes import job_counts, one_reply_per_thread, processes
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import dm_event, encode, event_callback, signed_headers

EVENTS = 120


@pytest.mark.postgres
async def test_killing_a_worker_under_load_loses_and_doubles_nothing(
    fake_slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(fake_slack.api_url, postgres_url)
    ports = [free_port(), free_port()]
    events = [
        dm_event(f"where is ORD-1001{n % 3}? ({n})", user=f"U0LOAD{n % 12:02d}",
                 channel=f"D{n % 12:03d}")
        for n in range(EVENTS)
    ]  # fmt: skip
    # Every reply is slowed a little, so the killed worker has jobs in hand.
    fake_slack.slow("chat.postMessage", 0.3, times=EVENTS * 2)
    async with processes(settings, tmp_path) as procs, httpx.AsyncClient(timeout=30) as http:
        for port in ports:
            await procs.start("serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))

        await wait_until_healthy(http, ports, within=40)
        worker_args = ("worker", "--concurrency", "6", "--lease-seconds", "2")
        victim = await procs.start(*worker_args)
        await procs.start(*worker_args)

        async def send(n: int, event: dict[str, str]) -> None:
            body = encode(event_callback(event))
            response = await http.post(
                f"http://127.0.0.1:{ports[n % 2]}/slack/events",
                content=body,
                headers=signed_headers(body),
            )
            assert response.status_code == 200, response.text

        await asyncio.gather(*(send(n, event) for n, event in enumerate(events)))
        await fake_slack.wait_for(lambda: len(fake_slack.posts()) >= EVENTS // 4, within=60)
        victim.kill()  # SIGKILL: no graceful release; its leases must expire
        await victim.wait()
        assert len(fake_slack.posts()) < EVENTS

        async def all_done() -> bool:
            return (await job_counts(postgres_url))["done"] == EVENTS

        await wait_until(all_done, within=90)
        await asyncio.sleep(0.5)
        one_reply_per_thread(fake_slack, events)
        assert await job_counts(postgres_url) == {
            "queued": 0, "running": 0, "done": EVENTS, "dead": 0,
        }  # fmt: skip
