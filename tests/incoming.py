"""A customer's DM as the Slack layer hands it to the pipeline, for tests of the pipeline."""

from __future__ import annotations

from pipelines.support.contracts import IncomingMessage


def incoming(text: str, ts: str, *, user: str, thread: str | None = None) -> IncomingMessage:
    """The request id derives from `ts`, as a Slack message's does; the thread defaults to
    the message itself (a new conversation)."""
    return IncomingMessage(
        request_id=f"evt-{ts}",
        team_id="T1",
        channel_id="D1",
        thread_ts=thread or ts,
        message_ts=ts,
        user_id=user,
        text=text,
    )
