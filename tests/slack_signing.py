"""Signed Slack requests for tests: the v0 signature and Events API payloads.

The signature is what Slack sends and Bolt verifies (`slack_sdk.signature`):
`X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}"))` with
`X-Slack-Request-Timestamp`; Bolt refuses a timestamp more than 5 minutes old.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
TEAM_ID = "T0TEST"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"

_ts_counter = itertools.count(1)


def new_ts() -> str:
    """A fresh, increasing Slack message timestamp."""
    return f"{1_700_000_000 + next(_ts_counter)}.{next(_ts_counter):06d}"


def signature(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(
        secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256
    ).hexdigest()
    return f"v0={digest}"


def signed_headers(
    body: str,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers of a request Slack would send (re-signed with a fresh timestamp each time)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": signature(secret, stamp, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def event_callback(
    event: dict[str, Any], *, team_id: str = TEAM_ID, event_id: str | None = None
) -> dict[str, Any]:
    """An Events API envelope around `event`."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": "A0TEST",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def _message(
    text: str, user: str, channel: str, channel_type: str, ts: str | None, thread_ts: str | None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts or new_ts(),
        "channel": channel,
        "channel_type": channel_type,
        "event_ts": ts,
    }
    event["event_ts"] = event["ts"]
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def dm_event(
    text: str, *, user: str = "U0CUST", channel: str = "D0CUST", ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`message.im`: a direct message to the bot."""
    return _message(text, user, channel, "im", ts, thread_ts)


def channel_message(
    text: str, *, user: str = "U0CUST", channel: str = "C0SUPPORT", ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`message.channels`: a message in a public channel."""
    return _message(text, user, channel, "channel", ts, thread_ts)


def mention_event(
    text: str, *, user: str = "U0CUST", channel: str = "C0GENERAL", ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`app_mention`: the text starts with the bot's mention, as Slack sends it."""
    event = _message(f"<@{BOT_USER_ID}> {text}", user, channel, "channel", ts, thread_ts)
    event["type"] = "app_mention"
    del event["channel_type"]  # app_mention events carry none
    return event


def bot_message(
    text: str, *, channel: str = "C0SUPPORT", ts: str | None = None, thread_ts: str | None = None,
    own: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """A message from a bot: the bot's own (`own=True`) or another integration's."""
    event = _message(text, BOT_USER_ID if own else "U0OTHERBOT", channel, "channel", ts, thread_ts)
    event["bot_id"] = BOT_ID if own else "B0OTHER"
    event["bot_profile"] = {"id": event["bot_id"], "name": "a bot"}
    return event


def message_changed(
    text: str, *, channel: str = "C0SUPPORT", original_ts: str, user: str = "U0CUST"
) -> dict[str, Any]:
    """`message_changed`: an edit (the edited message is nested, the event has no user)."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "channel_type": "channel",
        "ts": new_ts(),
        "event_ts": new_ts(),
        "message": {"type": "message", "user": user, "text": text, "ts": original_ts},
        "previous_message": {"type": "message", "user": user, "text": "old", "ts": original_ts},
    }


def thread_edit(original: dict[str, Any], text: str | None, *, thread_ts: str) -> dict[str, Any]:
    """`message_changed` (new `text`) or `message_deleted` (None) of a thread reply."""
    before = {k: original[k] for k in ("type", "user", "text", "ts")} | {"thread_ts": thread_ts}
    event: dict[str, Any] = {
        "type": "message", "hidden": True, "channel": original["channel"],
        "channel_type": original.get("channel_type", "group"), "ts": new_ts(),
        "event_ts": new_ts(), "previous_message": before,
    }  # fmt: skip
    if text is None:
        event |= {"subtype": "message_deleted", "deleted_ts": original["ts"]}
    else:
        edited = {"user": original["user"], "ts": new_ts()}
        event |= {"subtype": "message_changed",
                  "message": before | {"text": text, "edited": edited}}  # fmt: skip
    return event


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))
