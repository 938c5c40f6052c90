"""`PrefilteredAssistant` routes every request exactly as Bolt's own `AsyncAssistant`.

The prefilter exists only to skip Bolt's per-listener matching on requests that cannot be
assistant events (see `bot.messages.assistant`). These tests dispatch the same signed requests
through two apps, one with each middleware, and compare which listener answered.
"""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.messages.assistant import PrefilteredAssistant
from tests.slack_signing import (
    BOT_ID,
    BOT_USER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    bot_message,
    channel_message,
    dm_event,
    encode,
    event_callback,
    message_changed,
    new_ts,
    signed_headers,
)


async def authorize(**_: Any) -> AuthorizeResult:
    """No auth.test round trip: these apps never reach Slack."""
    return AuthorizeResult(
        enterprise_id=None,
        team_id=TEAM_ID,
        bot_user_id=BOT_USER_ID,
        bot_id=BOT_ID,
        bot_token="xoxb-test",
    )


def build(assistant: AsyncAssistant, seen: list[str]) -> AsyncApp:
    app = AsyncApp(
        signing_secret=SIGNING_SECRET,
        authorize=authorize,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    def noting(name: str) -> Any:
        async def listener() -> None:
            seen.append(name)

        return listener

    assistant.thread_started(noting("assistant:thread_started"))
    assistant.thread_context_changed(noting("assistant:context_changed"))
    assistant.user_message(noting("assistant:user_message"))
    assistant.bot_message(noting("assistant:bot_message"))
    app.use(assistant)
    app.event("message")(noting("app:message"))
    app.event("app_mention")(noting("app:app_mention"))
    app.event("app_home_opened")(noting("app:app_home_opened"))
    return app


async def outcome(assistant: AsyncAssistant, event: dict[str, Any]) -> tuple[int, list[str]]:
    seen: list[str] = []
    body = encode(event_callback(event))
    headers = {key.lower(): value for key, value in signed_headers(body).items()}
    response = await build(assistant, seen).async_dispatch(
        AsyncBoltRequest(body=body, headers=headers)
    )
    return response.status, seen


def dm_thread_edit() -> dict[str, Any]:
    edit = message_changed("edited", channel="D0CUST", original_ts=new_ts())
    edit["channel_type"] = "im"
    edit["message"]["thread_ts"] = new_ts()
    return edit


EVENTS = {
    "top-level DM": dm_event("where is my order?"),
    "DM thread reply": dm_event("and the invoice?", thread_ts=new_ts()),
    "bot message in a DM thread": {
        **bot_message("answer", channel="D0CUST", thread_ts=new_ts()),
        "channel_type": "im",
    },
    "edit in a DM thread": dm_thread_edit(),
    "channel message": channel_message("hi"),
    "mention": {
        **channel_message(f"<@{BOT_USER_ID}> hi"),
        "type": "app_mention",
    },
    "thread started": {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": "U0CUST", "channel_id": "D0CUST", "thread_ts": new_ts()},
        "event_ts": new_ts(),
    },
    "context changed": {
        "type": "assistant_thread_context_changed",
        "assistant_thread": {
            "user_id": "U0CUST",
            "channel_id": "D0CUST",
            "thread_ts": new_ts(),
            "context": {"channel_id": "C0SUPPORT"},
        },
        "event_ts": new_ts(),
    },
    "home opened": {"type": "app_home_opened", "user": "U0CUST", "tab": "home"},
}


SAME_ROUTING = {name: event for name, event in EVENTS.items() if name != "edit in a DM thread"}


@pytest.mark.parametrize("event", list(SAME_ROUTING.values()), ids=list(SAME_ROUTING))
async def test_the_prefilter_changes_no_routing(event: dict[str, Any]) -> None:
    expected = await outcome(AsyncAssistant(), event)
    assert await outcome(PrefilteredAssistant(), event) == expected
    assert expected[0] == 200


async def test_the_prefilter_lets_a_top_level_dm_skip_the_assistant() -> None:
    """The case the prefilter is for: answered by the app's own listener."""
    assert await outcome(PrefilteredAssistant(), EVENTS["top-level DM"]) == (200, ["app:message"])
    assert await outcome(PrefilteredAssistant(), EVENTS["DM thread reply"]) == (
        200,
        ["assistant:user_message"],
    )


async def test_an_edit_in_a_dm_thread_reaches_the_intake_instead_of_being_dropped() -> None:
    """Bolt's assistant drops it; the intake follows a customer's edit (`mirror_edit`)."""
    edit = EVENTS["edit in a DM thread"]
    assert await outcome(AsyncAssistant(), edit) == (200, [])
    assert await outcome(PrefilteredAssistant(), edit) == (200, ["app:message"])
