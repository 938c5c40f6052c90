"""Showing a reply while it is written: one Slack stream per reply.

`ReplyStream` is the `DraftWatcher` the pipeline reports to. At the first thing worth
showing (the plan's first step, or the first checked words of the answer) it starts a
stream under the customer's message (`chat.startStream`, with the plan shown as task
cards), then appends what changed (`chat.appendStream`), at most one call in flight and
one every `STREAM_INTERVAL_S`: text that arrives in between is sent together, so a fast
model costs a few Slack calls, not one per token.

It never finishes the message itself: the reply job stops the stream and replaces its
text with the checked reply, its context line and buttons (`chat.update`), so the final
message is the same whether or not it streamed. When Slack refuses a stream (an old
workspace, a channel without recipient ids, a rate limit) nothing more is streamed, the
reason is logged, and the reply is posted as one message instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.slack_calls import Refused, SlackCalls
from pipelines.support.contracts import IncomingMessage
from pipelines.support.drafts import StepNote

logger = logging.getLogger(__name__)

STREAM_INTERVAL_S = 0.25
PLAN_TITLE = "Working on your request"


@dataclass(frozen=True)
class StreamTarget:
    """Where a reply streams: the thread, and for channels the one person watching."""

    channel: str
    thread_ts: str
    recipient_team_id: str | None = None
    recipient_user_id: str | None = None

    def start_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"channel": self.channel, "thread_ts": self.thread_ts}
        if self.recipient_team_id and self.recipient_user_id:
            fields["recipient_team_id"] = self.recipient_team_id
            fields["recipient_user_id"] = self.recipient_user_id
        return fields


def stream_target(message: IncomingMessage) -> StreamTarget | None:
    """Where `message`'s reply may stream, or None.

    Never in a public channel: its reply is checked for account details before anyone
    sees it (`withhold_account_details`), which a growing text cannot be. Slack wants
    the recipient in channel threads; a message without them is answered in one post.
    """
    if message.public:
        return None
    if message.channel_id.startswith("D"):
        return StreamTarget(message.channel_id, message.thread_ts)
    if not (message.team_id and message.user_id):
        logger.info("no recipient ids for a channel thread; the reply is posted at once")
        return None
    return StreamTarget(message.channel_id, message.thread_ts, message.team_id, message.user_id)


def task_chunk(note: StepNote) -> dict[str, Any]:
    chunk = {"type": "task_update", "id": note.id, "title": note.title, "status": note.status}
    if note.detail:
        chunk["details"] = note.detail[:200]
    return chunk


class ReplyStream:
    """Streams one reply's plan and text; `close()` waits for the call in flight."""

    shows_text = True

    def __init__(
        self,
        slack: SlackCalls,
        target: StreamTarget,
        on_started: Callable[[str], Awaitable[None]] | None = None,
        interval: float = STREAM_INTERVAL_S,
    ) -> None:
        self._slack = slack
        self._target = target
        self._on_started = on_started
        self._interval = interval
        self.ts: str | None = None
        self.refused: str | None = None
        self._text = ""  # the newest checked text
        self._sent = ""  # what Slack already shows (append-only)
        self._steps: dict[str, StepNote] = {}  # changed since the last call
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    # --- DraftWatcher: called inside the pipeline, must return at once -----------------

    def step(self, note: StepNote) -> None:
        self._steps[note.id] = note
        self._kick()

    def text(self, so_far: str) -> None:
        # A retried call starts again from "": Slack cannot take words back, so a text
        # that no longer extends what is shown waits for the final message instead.
        if so_far.startswith(self._sent) and len(so_far) > len(self._text):
            self._text = so_far
            self._kick()

    # --- the pump -------------------------------------------------------------------------

    def _kick(self) -> None:
        if self.refused is not None or self._closing.is_set():
            return
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run(), name="reply-stream")
        self._wake.set()

    async def close(self) -> str | None:
        """Stop sending (the call in flight completes); the stream's ts, if it started."""
        self._closing.set()
        self._wake.set()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await self._pump
        return self.ts

    async def _run(self) -> None:
        while not self._closing.is_set() and self.refused is None:
            await self._wake.wait()
            self._wake.clear()
            if self._closing.is_set():
                return
            await self._send()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._interval)

    async def _send(self) -> None:
        chunks = [task_chunk(note) for note in self._steps.values()]
        self._steps.clear()
        delta = self._text[len(self._sent) :]
        if delta:
            chunks.append({"type": "markdown_text", "text": delta})
        if not chunks:
            return
        client = self._slack.client
        if self.ts is None:
            if len(chunks) > bool(delta):  # the plan comes first: give it its title
                chunks.insert(0, {"type": "plan_update", "title": PLAN_TITLE})
            response = await self._slack.call(
                "chat.startStream",
                client.chat_startStream(
                    **self._target.start_fields(), chunks=chunks, task_display_mode="plan"
                ),
                best_effort=True,
            )
        else:
            response = await self._slack.call(
                "chat.appendStream",
                client.chat_appendStream(channel=self._target.channel, ts=self.ts, chunks=chunks),
                best_effort=True,
            )
        if isinstance(response, Refused):
            self.refused = response.error
            logger.warning(
                "Slack refused the reply stream (%s); the reply will be %s",
                response.error,
                "posted as one message" if self.ts is None else "completed by an update",
            )
            return
        self._sent += delta
        if self.ts is None:
            self.ts = str(response.get("ts"))
            if self._on_started is not None:
                await self._on_started(self.ts)


__all__ = ["PLAN_TITLE", "ReplyStream", "StreamTarget", "stream_target", "task_chunk"]
