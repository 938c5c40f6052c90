"""A fake Slack Web API on 127.0.0.1, for tests: a real HTTP server the real SDK talks to.

    async with FakeSlack() as slack:                 # SLACK_API_URL = slack.api_url
        slack.fail("chat.postMessage", status=429, retry_after=1)
        slack.fail("chat.postMessage", error="not_in_channel", times=None)
        slack.slow("chat.postMessage", 3.0)          # records, then answers 3 s later
        ...
        await slack.wait_for(lambda: len(slack.posts()) == 3, within=5)

It answers `GET|POST /api/<method>` like Slack (`{"ok": true, ...}`; errors as
`{"ok": false, "error": ...}`, 429 with Retry-After), reading parameters from the query
string, a form or a JSON body, and records every call. Messages posted by the bot are
kept with their text, blocks, thread and metadata, and `conversations.replies` returns
them (metadata only with `include_all_metadata`), which is what idempotent posting needs.
Methods it does not know answer `unknown_method`; add one with `slack.respond(...)`.

Streamed messages (`chat.startStream` ...) are in `tests/fakes/fake_slack_streams.py`.

Socket Mode too: `apps.connections.open` hands out `ws://.../socket`, where the fake says
`hello`; `await slack.send_socket_event(body)` sends an `events_api` envelope to the
connected app and `slack.socket_acks` collects the app's acknowledgements.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.fake_slack_files import SlackFilesMixin
from tests.fakes.fake_slack_streams import SlackStreamsMixin

Params = dict[str, Any]
Responder = Callable[[Params], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    method: str
    params: Params
    at: float
    authorization: str = ""
    peer: str = ""  # the client's address and port: one per connection


@dataclass
class Fault:
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    times: int | None = 1  # None: every call from now on
    body: str | None = None  # a 5xx's own page (e.g. HTML from a proxy)
    content_type: str = "text/plain"


@dataclass
class Slowness:
    seconds: float
    record_first: bool = True  # True: the call takes effect, only the answer is late
    times: int | None = None


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    thread_ts: str | None
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None
    user: str
    bot_id: str
    edits: list[Params] = field(default_factory=list)

    def as_message(self, with_metadata: bool) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "bot_id": self.bot_id,
            "ts": self.ts,
            "text": self.text,
        }
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.blocks:
            message["blocks"] = self.blocks
        if with_metadata and self.metadata:
            message["metadata"] = self.metadata
        return message


def _decode(value: Any) -> Any:
    """Form fields arrive as strings; JSON-looking ones (blocks, metadata) are decoded."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _truthy(value: Any) -> bool:
    return str(value).lower() in {"1", "true", "yes"}


class FakeSlack(SlackFilesMixin, SlackStreamsMixin):
    def __init__(
        self,
        *,
        token: str | None = None,
        app_token: str = "xapp-test-token",
        team_id: str = "T0TEST",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token  # when set, any other bearer token gets `invalid_auth`
        self.app_token = app_token  # the only token apps.connections.open accepts
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.messages: list[Posted] = []
        self.deleted: list[Posted] = []  # chat.delete
        self.reactions: set[tuple[str, str, str]] = set()
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._slowness: dict[str, Slowness] = {}
        self._responders: dict[str, Responder] = {}
        self._ts = itertools.count(1)
        self._host = host
        self._runner: web.AppRunner | None = None
        self.api_url = ""
        self.socket_url = ""
        self.socket_acks: list[dict[str, Any]] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._envelopes = itertools.count(1)
        self._init_files()  # file downloads and uploads: tests/fakes/fake_slack_files.py
        self._init_streams()  # chat.startStream/appendStream/stopStream: fake_slack_streams.py
        self.channel_members: dict[str, list[str]] = {}  # conversations.members, by channel
        # conversations.members of a channel not in `channel_members` (None: channel_not_found)
        self.default_members: list[str] | None = None
        self.channel_info: dict[str, dict[str, Any]] = {}  # conversations.info, by channel

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/socket", self._socket)
        self._add_file_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        await web.SockSite(self._runner, sock).start()
        host, port = sock.getsockname()[:2]
        self.api_url = f"http://{host}:{port}/api/"
        self.socket_url = f"ws://{host}:{port}/socket"

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- scripting ----------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: float | None = None,
        times: int | None = 1,
        body: str | None = None,
        content_type: str = "text/plain",
    ) -> None:
        """Make the next `times` calls of `method` fail (None: until `clear_faults`).

        `status=429` answers `ratelimited` with Retry-After; `status=500` a bare 500 in
        plain text (`body`/`content_type` choose another page, e.g. HTML; with `error` it
        is Slack's JSON); `error="not_in_channel"` a 200 with `{"ok": false, "error": ...}`.
        """
        if status == 429 and error is None:
            error = "ratelimited"
        self._faults[method].append(
            Fault(status, error, retry_after, times, body=body, content_type=content_type)
        )

    def slow(
        self, method: str, seconds: float, *, record_first: bool = True, times: int | None = None
    ) -> None:
        """Answer the next `times` calls of `method` (None: all) `seconds` late.

        With `record_first` the call takes effect at once and only the answer is late:
        a client that dies meanwhile never learns that its message was posted.
        """
        self._slowness[method] = Slowness(seconds, record_first, times)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._slowness.clear()

    def respond(self, method: str, responder: Responder) -> None:
        """Serve `method` with `responder(params) -> response body` (without "ok")."""
        self._responders[method] = responder

    # --- inspecting ---------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[Posted]:
        return [
            message
            for message in self.messages
            if (channel is None or message.channel == channel)
            and (thread_ts is None or message.thread_ts == thread_ts)
        ]

    async def wait_for(
        self, condition: Callable[[], bool], within: float = 10.0, interval: float = 0.02
    ) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {within}s")
            await asyncio.sleep(interval)

    # --- Socket Mode --------------------------------------------------------------------

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def send_socket_event(self, body: dict[str, Any]) -> str:
        """Deliver an Events API payload over the app's socket; returns the envelope id."""
        envelope_id = f"env-{next(self._envelopes)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "payload": body,
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        [ws] = [ws for ws in self._sockets if not ws.closed][-1:]
        await ws.send_json(envelope)
        return envelope_id

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}}
        )
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
        return ws

    # --- serving ------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> Params:
        params: Params = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(await request.post())
        return {key: _decode(value) for key, value in params.items()}

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        authorization = request.headers.get("Authorization", "")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        address = f"{peer[0]}:{peer[1]}" if peer else ""
        self.calls.append(Call(method, params, time.monotonic(), authorization, address))

        slowness = self._take_slowness(method)
        if slowness is not None and not slowness.record_first:
            await asyncio.sleep(slowness.seconds)
        fault = self._next_fault(method)
        if fault is not None:
            return self._fault_response(fault)
        expected = self.app_token if method == "apps.connections.open" else self.token
        if expected is not None and authorization != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        body = self._answer(method, params)
        if slowness is not None and slowness.record_first:
            await asyncio.sleep(slowness.seconds)
        return web.json_response(body)

    def _take_slowness(self, method: str) -> Slowness | None:
        slowness = self._slowness.get(method)
        if slowness is not None and slowness.times is not None:
            slowness.times -= 1
            if slowness.times <= 0:
                del self._slowness[method]
        return slowness

    def _next_fault(self, method: str) -> Fault | None:
        faults = self._faults.get(method)
        if not faults:
            return None
        fault = faults[0]
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.popleft()
        return fault

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after))
        if fault.status >= 500 and (fault.error is None or fault.body is not None):
            return web.Response(
                status=fault.status,
                text=fault.body if fault.body is not None else "internal error",
                content_type=fault.content_type,
                headers=headers,
            )
        return web.json_response(
            {"ok": False, "error": fault.error or "fatal_error"},
            status=fault.status,
            headers=headers,
        )

    def _answer(self, method: str, params: Params) -> dict[str, Any]:
        if method in self._responders:
            return {"ok": True, **self._responders[method](params)}
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        result: dict[str, Any] = handler(params)
        return result

    def _new_ts(self) -> str:
        return f"{1_800_000_000 + next(self._ts)}.000100"

    # --- the Web API methods ------------------------------------------------------------

    def _api_auth_test(self, _: Params) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake Team",
            "user": "supportbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _api_chat_postMessage(self, params: Params) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        posted = Posted(
            channel=channel,
            ts=self._new_ts(),
            text=str(params.get("text") or ""),
            thread_ts=params.get("thread_ts") or None,
            blocks=params.get("blocks"),
            metadata=params.get("metadata"),
            user=self.bot_user_id,
            bot_id=self.bot_id,
        )
        self.messages.append(posted)
        return {"ok": True, "channel": channel, "ts": posted.ts, "message": posted.as_message(True)}

    def _api_apps_connections_open(self, _: Params) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_url}

    def _api_chat_postEphemeral(self, params: Params) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._new_ts()}

    def _api_chat_update(self, params: Params) -> dict[str, Any]:
        for posted in self.messages:
            if posted.channel == params.get("channel") and posted.ts == params.get("ts"):
                posted.edits.append(params)
                posted.text = str(params.get("text") or posted.text)
                posted.blocks = params.get("blocks") or posted.blocks
                posted.metadata = params.get("metadata") or posted.metadata
                return {"ok": True, "channel": posted.channel, "ts": posted.ts}
        return {"ok": False, "error": "message_not_found"}

    def _api_chat_delete(self, params: Params) -> dict[str, Any]:
        for posted in self.messages:
            if posted.channel == params.get("channel") and posted.ts == params.get("ts"):
                self.messages.remove(posted)
                self.deleted.append(posted)
                return {"ok": True, "channel": posted.channel, "ts": posted.ts}
        return {"ok": False, "error": "message_not_found"}

    def _api_reactions_add(self, params: Params) -> dict[str, Any]:
        key = (str(params.get("channel")), str(params.get("timestamp")), str(params.get("name")))
        if key in self.reactions:
            return {"ok": False, "error": "already_reacted"}
        self.reactions.add(key)
        return {"ok": True}

    def _api_reactions_remove(self, params: Params) -> dict[str, Any]:
        key = (str(params.get("channel")), str(params.get("timestamp")), str(params.get("name")))
        if key not in self.reactions:
            return {"ok": False, "error": "no_reaction"}
        self.reactions.discard(key)
        return {"ok": True}

    def _api_conversations_replies(self, params: Params) -> dict[str, Any]:
        channel, root = str(params.get("channel")), str(params.get("ts"))
        with_metadata = _truthy(params.get("include_all_metadata", False))
        thread = [
            posted.as_message(with_metadata)
            for posted in self.messages
            if posted.channel == channel and root in (posted.thread_ts, posted.ts)
        ]
        limit = int(params.get("limit") or 1000)
        start = int(params.get("cursor") or 0)
        page = thread[start : start + limit]
        more = start + limit < len(thread)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _api_views_open(self, params: Params) -> dict[str, Any]:
        return {"ok": True, "view": {"id": f"V{next(self._ts)}", **(params.get("view") or {})}}

    _api_views_publish = _api_views_open
    _api_views_update = _api_views_open
    _api_views_push = _api_views_open

    def _api_assistant_threads_setStatus(self, _: Params) -> dict[str, Any]:
        return {"ok": True}

    _api_assistant_threads_setSuggestedPrompts = _api_assistant_threads_setStatus
    _api_assistant_threads_setTitle = _api_assistant_threads_setStatus

    def _api_users_info(self, params: Params) -> dict[str, Any]:
        user = str(params.get("user"))
        return {"ok": True, "user": {"id": user, "name": user.lower(), "is_bot": False}}

    # --- triage: channel members, permalinks, channel history ---------------------------

    def _api_conversations_members(self, params: Params) -> dict[str, Any]:
        """Paged like Slack's (`limit`, `cursor`)."""
        channel = str(params.get("channel"))
        members = self.channel_members.get(channel, self.default_members)
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        more = start + limit < len(members)
        return {
            "ok": True,
            "members": list(members[start : start + limit]),
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _api_conversations_info(self, params: Params) -> dict[str, Any]:
        """`channel_info[channel]` (e.g. `{"is_private": True}`), else channel_not_found."""
        channel = str(params.get("channel"))
        if channel not in self.channel_info:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, **self.channel_info[channel]}}

    def _api_chat_getPermalink(self, params: Params) -> dict[str, Any]:
        channel, ts = str(params.get("channel")), str(params.get("message_ts"))
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://fake.slack.test/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _api_conversations_history(self, params: Params) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, from `oldest` on."""
        channel = str(params.get("channel"))
        with_metadata = _truthy(params.get("include_all_metadata", False))
        oldest = float(params.get("oldest") or 0)
        top_level = [
            posted.as_message(with_metadata)
            for posted in reversed(self.messages)
            if posted.channel == channel
            and posted.thread_ts in (None, posted.ts)
            and float(posted.ts) >= oldest
        ]
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        more = start + limit < len(top_level)
        return {
            "ok": True,
            "messages": top_level[start : start + limit],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }


__all__ = ["Call", "FakeSlack", "Posted"]
