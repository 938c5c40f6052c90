"""Streamed messages in the fake Slack (mixed into `FakeSlack`): chat.*Stream.

    slack.streams[ts]               # every stream: its chunks in order, stopped or not
    slack.refuse_streams_in = {"C0SUPPORT"}   # startStream there answers an error

`chat.startStream` posts a message in the thread (listed by `conversations.replies`,
without metadata until `chat.stopStream` or `chat.update` sets it) and, like Slack, wants
`recipient_team_id` and `recipient_user_id` outside DMs. `chat.appendStream` adds chunks
to a stream that is still open (`message_not_in_streaming_state` otherwise); the markdown
chunks make up the message's text. `chat.stopStream` closes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Params = dict[str, Any]


@dataclass
class FakeStream:
    channel: str
    thread_ts: str
    ts: str
    start: Params
    chunks: list[dict[str, Any]] = field(default_factory=list)
    appends: int = 0
    stopped: bool = False

    @property
    def text(self) -> str:
        return "".join(c.get("text", "") for c in self.chunks if c.get("type") == "markdown_text")

    def tasks(self) -> dict[str, list[str]]:
        """Each task card's statuses in the order they were sent."""
        seen: dict[str, list[str]] = {}
        for chunk in self.chunks:
            if chunk.get("type") == "task_update":
                seen.setdefault(chunk["id"], []).append(chunk["status"])
        return seen


class SlackStreamsMixin:
    messages: list[Any]
    bot_user_id: str
    bot_id: str

    def _init_streams(self) -> None:
        self.streams: dict[str, FakeStream] = {}
        self.refuse_streams_in: set[str] = set()

    def _new_ts(self) -> str:
        raise NotImplementedError

    def _api_chat_startStream(self, params: Params) -> dict[str, Any]:
        channel, thread_ts = str(params.get("channel") or ""), str(params.get("thread_ts") or "")
        if not channel or not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        if channel in self.refuse_streams_in:
            return {"ok": False, "error": "streaming_not_supported"}
        if not channel.startswith("D"):
            if not params.get("recipient_team_id"):
                return {"ok": False, "error": "missing_recipient_team_id"}
            if not params.get("recipient_user_id"):
                return {"ok": False, "error": "missing_recipient_user_id"}
        ts = self._new_ts()
        stream = FakeStream(channel, thread_ts, ts, params, list(params.get("chunks") or []))
        self.streams[ts] = stream
        self._add_message(stream)
        return {"ok": True, "channel": channel, "ts": ts}

    def _api_chat_appendStream(self, params: Params) -> dict[str, Any]:
        stream = self.streams.get(str(params.get("ts")))
        if stream is None or stream.channel != params.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        if stream.stopped:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        chunks = list(params.get("chunks") or [])
        if params.get("markdown_text"):
            chunks.append({"type": "markdown_text", "text": params["markdown_text"]})
        stream.chunks.extend(chunks)
        stream.appends += 1
        self._sync_text(stream)
        return {"ok": True, "channel": stream.channel, "ts": stream.ts}

    def _api_chat_stopStream(self, params: Params) -> dict[str, Any]:
        stream = self.streams.get(str(params.get("ts")))
        if stream is None or stream.channel != params.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        if stream.stopped:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if params.get("markdown_text"):
            stream.chunks.append({"type": "markdown_text", "text": params["markdown_text"]})
        stream.stopped = True
        message = self._sync_text(stream)
        if message is not None:
            message.blocks = params.get("blocks") or message.blocks
            message.metadata = params.get("metadata") or message.metadata
        return {"ok": True, "channel": stream.channel, "ts": stream.ts}

    def _add_message(self, stream: FakeStream) -> None:
        from tests.fakes.fake_slack import Posted

        self.messages.append(
            Posted(
                channel=stream.channel,
                ts=stream.ts,
                text=stream.text,
                thread_ts=stream.thread_ts,
                blocks=None,
                metadata=None,
                user=self.bot_user_id,
                bot_id=self.bot_id,
            )
        )

    def _sync_text(self, stream: FakeStream) -> Any:
        for message in self.messages:
            if message.channel == stream.channel and message.ts == stream.ts:
                if not message.edits:  # a chat.update's text wins over the stream's
                    message.text = stream.text
                return message
        return None
