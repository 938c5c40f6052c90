"""Who may reach what over HTTP: Slack's size cap and signature, and the metrics token.

Bolt's Starlette adapter reads the whole body, decodes it and parses its JSON or form
*before* Bolt checks the signature: an unsigned 40 MB body is read, decoded and parsed
(hundreds of MB, the event loop stalled for seconds) only to be refused afterwards.
`SlackRequestGuard` is a pure ASGI middleware in front of `POST /slack/events` that does
the cheap checks first, on the raw bytes:

- a `Content-Length` over the cap: 413 before a byte of the body is read;
- a body without one (chunked) is counted as it arrives and refused with 413 at the cap;
- the Slack signature (`v0=` HMAC-SHA256 of `v0:{timestamp}:{raw body}`, the timestamp
  within five minutes): 401 when it is missing, stale or wrong.

Only a signed body within the cap reaches the app behind it (replayed as one message).
The one exception is Slack's `ssl_check=1` probe of a slash command's URL, which may come
unsigned: the guard answers it 200 itself, as Bolt's `SslCheck` would, and dispatches nothing.
Bolt then verifies the signature again; that check stays on (SPEC section 3: never
disabled), so a route without this guard in front is still safe.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# Slack's own limit, the one Bolt and slack_sdk apply: older timestamps are replays.
SIGNATURE_MAX_AGE_SECONDS = 5 * 60
# `ssl_check=1&token=...` is a few dozen bytes; nothing bigger is looked at unsigned.
SSL_CHECK_MAX_BYTES = 512


class Refused(Exception):
    """A request answered with `status` before the app behind the guard saw it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        return JSONResponse({"error": self.reason}, status_code=self.status)


class SslCheck(Refused):
    """An unsigned `ssl_check=1` probe: answered 200 with no body, dispatched nowhere."""

    def __init__(self) -> None:
        super().__init__(200, "ssl_check")

    def response(self) -> Response:
        return Response(status_code=200)


def slack_signature_is_valid(
    secret: bytes, body: bytes, timestamp: bytes | None, signature: bytes | None, now: float
) -> bool:
    """Slack's v0 signature, checked on the raw bytes Slack signed.

    Not `slack_sdk`'s `SignatureVerifier`: it decodes the body as UTF-8 first (raising on
    bytes that are not) and raises on a timestamp that is not a number.
    """
    if not timestamp or not signature:
        return False
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > SIGNATURE_MAX_AGE_SECONDS:
        return False
    digest = hmac.new(secret, b"v0:" + timestamp + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(b"v0=" + digest.encode(), signature)


def is_ssl_check(body: bytes, content_type: bytes | None) -> bool:
    """Slack's `ssl_check=1` form post (Bolt's `SslCheck` answers it before verifying)."""
    if len(body) > SSL_CHECK_MAX_BYTES or not (content_type or b"").startswith(
        b"application/x-www-form-urlencoded"
    ):
        return False
    return parse_qs(body).get(b"ssl_check") == [b"1"]


async def read_capped(receive: Receive, max_bytes: int) -> bytes:
    """The whole body, refused with 413 as soon as more than `max_bytes` arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise Refused(413, "body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out the already-read body once, then defers to the server's."""
    pending = True

    async def receive_again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


class SlackRequestGuard:
    """Size cap and signature check on `POST /slack/events`, before anything is parsed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signing_secret: str,
        max_body_bytes: int,
        path: str = SLACK_EVENTS_PATH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.secret = signing_secret.encode()
        self.max_body_bytes = max_body_bytes
        self.path = path
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        try:
            body = await self.checked_body(scope, receive)
        except Refused as refused:
            if refused.status >= 400:
                client = scope.get("client") or ("?", 0)
                logger.warning(
                    "slack events: refused with %d from %s: %s", refused.status, client[0], refused
                )
            await refused.response()(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)

    async def checked_body(self, scope: Scope, receive: Receive) -> bytes:
        """The raw body when it is within the cap and signed by Slack; `Refused` otherwise."""
        headers = dict(scope["headers"])  # names arrive lower-cased (ASGI)
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refused(400, "bad content-length")
            if int(declared) > self.max_body_bytes:
                raise Refused(413, "body too large")
        body = await read_capped(receive, self.max_body_bytes)
        timestamp = headers.get(b"x-slack-request-timestamp")
        signature = headers.get(b"x-slack-signature")
        if not slack_signature_is_valid(self.secret, body, timestamp, signature, self.clock()):
            if is_ssl_check(body, headers.get(b"content-type")):
                raise SslCheck()
            raise Refused(401, "invalid request")
        return body


def bearer_token_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


__all__ = [
    "SIGNATURE_MAX_AGE_SECONDS",
    "SLACK_EVENTS_PATH",
    "Refused",
    "SlackRequestGuard",
    "bearer_token_matches",
    "is_ssl_check",
    "read_capped",
    "slack_signature_is_valid",
]
