"""Socket Mode end to end: the app connects to the fake's socket, acks, and answers."""

from __future__ import annotations

import asyncio

import uvicorn

from bot.server import TimedSocketModeHandler, create_asgi_app
from bot.wiring import open_slack_runtime
from tests.e2e.conftest import free_port, make_settings
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import dm_event, event_callback


async def test_socket_mode_acks_and_answers_in_the_thread(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    settings = make_settings(fake_slack.api_url, sqlite_url, slack_app_token=fake_slack.app_token)
    async with open_slack_runtime(settings) as slack:
        bolt = slack.build_app(socket_mode=True)
        worker = slack.build_worker(poll_interval=0.05, shutdown_grace=2)
        handler = TimedSocketModeHandler(bolt, fake_slack.app_token)
        app = create_asgi_app(slack, None, worker=worker, socket_handler=handler)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        try:
            await fake_slack.wait_for(lambda: fake_slack.socket_connected, within=10)
            event = dm_event("Where is my order ORD-10011?")
            envelope_id = await fake_slack.send_socket_event(event_callback(event))
            await fake_slack.wait_for(
                lambda: any(
                    ack.get("envelope_id") == envelope_id for ack in fake_slack.socket_acks
                ),
                within=5,
            )
            await fake_slack.wait_for(lambda: len(fake_slack.posts()) == 1, within=10)
            [reply] = fake_slack.posts()
            assert reply.thread_ts == event["ts"] and "ORD-10011" in reply.text
        finally:
            server.should_exit = True
            await task
