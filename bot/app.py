"""The Bolt app: Slack client, request verification, middleware and listeners wired together.

`process_before_response=True` is deliberate. Bolt's default (False) acknowledges an
event first and runs the listener afterwards in a fire-and-forget task: if the process
dies in between, or the database write fails, the event is lost although Slack was told
it arrived. Our listeners only store a job (milliseconds), so we let them finish *before*
the 200: an acknowledged event is durably queued, and a failed enqueue answers 500, which
makes Slack redeliver it. The same holds in Socket Mode. The price is that every listener
registered on this app (slash commands, buttons) must also be quick: queue long work,
never do it inline.

Signature verification is always on: `request_verification_enabled` is never turned off,
and the app refuses to start without a signing secret in HTTP mode.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import ClientConnectorError
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.authorization import SharedBotIdentity
from bot.messages.intake import Intake, register_listeners
from bot.metrics import EVENTS_RECEIVED
from bot.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

# Slack methods that must not be sent twice: a connection dropped after the request left
# may have been served already. They are only retried when the connection never opened;
# anything else is left to the job's own retry, which checks for the message first.
NON_IDEMPOTENT_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "files.upload"})
SLACK_TIMEOUT_SECONDS = 30

Registrar = Callable[[AsyncApp], None]


class SafeConnectionErrorRetryHandler(AsyncConnectionErrorRetryHandler):
    """Retry connection errors, but never re-send a post that may have gone through."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1]
        if method in NON_IDEMPOTENT_METHODS and not isinstance(error, ClientConnectorError):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def slack_retry_handlers() -> list[AsyncRetryHandler]:
    """Wait out 429s (honouring Retry-After; Slack did not process the call) and retry
    transient connection errors. 5xx answers are not retried here: the job retries."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=4),
        SafeConnectionErrorRetryHandler(max_retry_count=2),
    ]


def normalized_api_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@asynccontextmanager
async def pooled_slack_session() -> AsyncIterator[aiohttp.ClientSession]:
    """One keep-alive HTTP session for all of a process's Web API calls.

    Without one, slack-sdk opens a new session, connection and (on https) TLS handshake
    for every call and closes it afterwards: a streamed reply makes ~8 calls, and under a
    burst that setup was a measurable part of each message's CPU (bench/README.md). The
    session's own timeout is what slack-sdk applies to calls made through it.
    """
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT_SECONDS))
    try:
        yield session
    finally:
        await session.close()


def build_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The bot's Web API client, pointed at `SLACK_API_URL`, with retries; `session` (from
    `pooled_slack_session`) keeps its connections open between calls."""
    if settings.slack_bot_token is None:
        raise SettingsError("missing required setting(s): SLACK_BOT_TOKEN")
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=normalized_api_url(settings.slack_api_url),
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=slack_retry_handlers(),
        session=session,
    )


def request_type(body: dict[str, Any]) -> str:
    """'message', 'app_mention', 'block_actions', 'view_submission', '/faq', …"""
    event = body.get("event")
    if isinstance(event, dict) and event.get("type"):
        return str(event["type"])
    if body.get("command"):
        return str(body["command"])
    return str(body.get("type") or "unknown")


class RequestCounter(AsyncMiddleware):
    """Count every Slack request by type; note redeliveries (the dedupe key absorbs them).

    A middleware class rather than a decorated function: Bolt builds the whole kwargs
    dictionary (~30 entries, a dozen payload parsers) for every function middleware on
    every request, and this one runs on all of them.
    """

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt calls it with next=
    ) -> BoltResponse | None:
        kind = request_type(req.body)
        EVENTS_RECEIVED.labels(type=kind).inc()
        retry_num = req.headers.get("x-slack-retry-num", [None])[0]
        if retry_num is not None:
            reason = req.headers.get("x-slack-retry-reason", [""])[0]
            logger.info(
                "redelivery %s of event %s (%s, %s)",
                retry_num,
                req.body.get("event_id"),
                kind,
                reason,
            )
        return await next()


class _DropClientTokenWarning(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN is "unused" when a client or `authorize` is given:
    `SharedBotIdentity` authorizes every request with that same token, so the warning
    only confuses whoever reads the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("`token`" in message and ("will be unused" in message or "ignored" in message))


logging.getLogger("slack_bolt.AsyncApp").addFilter(_DropClientTokenWarning())


def build_app(
    settings: Settings,
    intake: Intake,
    *,
    client: AsyncWebClient | None = None,
    socket_mode: bool = False,
    assistant: bool = True,
    registrars: Iterable[Registrar] = (),
    identity: AsyncSlackResponse | None = None,
) -> AsyncApp:
    """The Bolt app of the support bot.

    `registrars` add other features' listeners (triage buttons, App Home, /faq); each is
    called with the app after the message listeners are registered. `identity` is the
    token's auth.test answer when the caller has it (`SharedBotIdentity`).
    """
    if settings.slack_signing_secret is None and not socket_mode:
        raise SettingsError("missing required setting(s): SLACK_SIGNING_SECRET")
    secret = settings.slack_signing_secret
    client = client or build_client(settings)
    assert client.token is not None  # build_client refuses to build one without
    app = AsyncApp(
        client=client,
        authorize=SharedBotIdentity(client.token, identity),
        # Socket Mode has no HTTP requests to verify; Bolt still wants a string.
        signing_secret=secret.get_secret_value() if secret is not None else "",
        process_before_response=True,
        request_verification_enabled=True,
        ignoring_self_events_enabled=True,
        raise_error_for_unhandled_request=False,
        # No listener of this app takes `say`, `set_status` or the other conversation
        # kwargs, and Bolt would build them for every message event. The assistant
        # attaches its own (`AsyncAssistant` adds the same middleware to its listeners).
        attaching_conversation_kwargs_enabled=False,
        name="supportbot",
    )
    app.middleware(RequestCounter())
    if assistant:
        from bot.messages.assistant import build_assistant

        app.assistant(build_assistant(intake))
    register_listeners(app, intake)
    for register in registrars:
        register(app)
    return app


__all__ = [
    "NON_IDEMPOTENT_METHODS",
    "RequestCounter",
    "SafeConnectionErrorRetryHandler",
    "build_app",
    "build_client",
    "normalized_api_url",
    "pooled_slack_session",
    "request_type",
    "slack_retry_handlers",
]
