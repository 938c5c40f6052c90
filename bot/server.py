"""Serving: the Starlette app (HTTP mode), Socket Mode, and the stand-alone worker process.

HTTP routes:
- `POST /slack/events` — every Slack request (events, commands, interactivity) to Bolt.
  `bot.http_guard.SlackRequestGuard` in front refuses a body over `SLACK_MAX_BODY_BYTES`
  (413) and a missing, stale or wrong signature (401) before anything is parsed; a signed
  body that is not UTF-8 JSON or form gets a 400; Bolt verifies the signature again;
- `GET /healthz` — 200 when the database answers `SELECT 1`, 503 when it does not;
  concurrent probes share one query;
- `GET /metrics` — Prometheus text format, queue depth read from the database at most
  every few seconds (`bot.metrics.QueueGauges`); with `METRICS_TOKEN` set it wants
  `Authorization: Bearer <token>`.

The embedded worker runs in the app's lifespan: it starts with the server and, on
shutdown (SIGTERM), stops claiming, finishes or releases its jobs, then lets the server go.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import (
    to_async_bolt_request,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.http_guard import SLACK_EVENTS_PATH, SlackRequestGuard, bearer_token_matches
from bot.metrics import ACK_SECONDS, QueueGauges, render_latest, start_metrics_server
from bot.settings import Settings, SettingsError
from bot.wiring import Feature, SlackRuntime, check_slack_token, open_slack_runtime
from bot.worker import Worker, jobs_for_llm_budget
from storage.db import Database

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0
CHAT_HINT = "or try the bot without Slack: `supportbot chat`"


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Socket Mode adapter that records how long each acknowledgement took."""

    async def handle(self, client: Any, req: Any) -> None:
        started = time.perf_counter()
        await super().handle(client, req)
        ACK_SECONDS.labels(mode="socket").observe(time.perf_counter() - started)


async def database_is_up(db: Database) -> bool:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await db.ping()
        return True
    except Exception as exc:
        logger.warning("health check: database unavailable: %s", exc)
        return False


class DatabaseProbe:
    """`database_is_up`, shared by concurrent callers: a flood of `/healthz` probes (the
    route is open, load balancers send no token) runs one `SELECT 1` at a time."""

    def __init__(self, slack: SlackRuntime) -> None:
        self.slack = slack
        self._in_flight: asyncio.Task[bool] | None = None

    async def is_up(self) -> bool:
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(database_is_up(self.slack.core.db))
        return await asyncio.shield(self._in_flight)


async def slack_request_or_refusal(request: Request) -> AsyncBoltRequest | Response:
    """Bolt's request for this body, or a 400 when the body is not UTF-8 JSON or form.

    Building Bolt's request only decodes and parses the body, so whatever it raises means
    the body is malformed: one warning line, no traceback, no 500. Unsigned bodies never
    get here (`SlackRequestGuard`).
    """
    body = await request.body()
    try:
        return to_async_bolt_request(request, body)
    except Exception as exc:
        logger.warning(
            "slack events: refused with 400, a signed body that does not parse (%d bytes): %s",
            len(body),
            type(exc).__name__,
        )
        return JSONResponse({"error": "malformed body"}, status_code=400)


def create_asgi_app(
    slack: SlackRuntime,
    bolt: AsyncApp | None,
    worker: Worker | None = None,
    socket_handler: AsyncSocketModeHandler | None = None,
) -> Starlette:
    """The ASGI app; `bolt=None` leaves out `/slack/events` (Socket Mode serves only health
    and metrics over HTTP)."""

    settings = slack.settings
    probe = DatabaseProbe(slack)
    queue_gauges = QueueGauges(slack.queue)
    metrics_token = settings.metrics_token

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        assert bolt is not None
        bolt_request = await slack_request_or_refusal(request)
        if isinstance(bolt_request, Response):
            return bolt_request
        response = to_starlette_response(await bolt.async_dispatch(bolt_request))
        ACK_SECONDS.labels(mode="http").observe(time.perf_counter() - started)
        return response

    async def healthz(_: Request) -> Response:
        if await probe.is_up():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)

    async def metrics(request: Request) -> Response:
        if metrics_token is not None and not bearer_token_matches(
            request.headers.get("authorization"), metrics_token.get_secret_value()
        ):
            return JSONResponse(
                {"error": "unauthorized"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                await queue_gauges.refresh()
        except Exception as exc:  # still serve the process's own metrics
            logger.warning("metrics: queue counts unavailable: %s", exc)
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        worker_task = asyncio.create_task(worker.run(), name="worker") if worker else None
        if socket_handler is not None:
            await socket_handler.connect_async()
        try:
            yield
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    middleware = []
    if bolt is not None:
        routes.append(Route(SLACK_EVENTS_PATH, slack_events, methods=["POST"]))
        middleware.append(slack_guard(settings))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def slack_guard(settings: Settings) -> Middleware:
    """`SlackRequestGuard` configured from the settings (HTTP mode needs the secret)."""
    if settings.slack_signing_secret is None:
        raise SettingsError("missing required setting(s): SLACK_SIGNING_SECRET")
    return Middleware(
        SlackRequestGuard,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        max_body_bytes=settings.slack_max_body_bytes,
    )


# Idle keep-alive connections stay open this long (uvicorn's default is 5 s). Whatever sits
# in front of the bot (Slack's senders, a load balancer: AWS ALB and GCP keep idle
# connections 60 s and more) must never reuse a connection the server has just closed,
# which shows up as sporadic 502s or resets; and every new connection costs a handshake
# on the ack path (bench/README.md, "How Slack ingress reached its targets").
KEEP_ALIVE_SECONDS = 75


async def run_uvicorn(app: Starlette, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles the signals, then the lifespan drains)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="info",
        log_config=None,  # uvicorn's records go to the root handler, in LOG_FORMAT
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    await uvicorn.Server(config).serve()


def freeze_startup_objects() -> None:
    """Exclude everything allocated so far from garbage collection (`gc.freeze`).

    After start-up the heap holds a few hundred thousand long-lived objects (modules,
    pydantic and SQLAlchemy metadata, Bolt's listeners) that no cycle collection can free.
    Left in the oldest generation, each full collection walks all of them, and one in the
    middle of a burst of Slack events stalls every acknowledgement behind it (measured in
    bench/README.md). Frozen, a full collection only walks what the process allocated since.
    """
    gc.collect()
    gc.freeze()


def require_for_serve(settings: Settings, socket_mode: bool) -> None:
    """Stop with one line naming what is missing, and where to go without Slack."""
    needed = ["slack_bot_token", "slack_app_token" if socket_mode else "slack_signing_secret"]
    try:
        settings.require(*needed)
    except SettingsError as exc:
        raise SettingsError(f"{exc}; set them in the environment or .env, {CHAT_HINT}") from None


async def serve(
    settings: Settings,
    *,
    socket_mode: bool = False,
    embedded_worker: bool = True,
    host: str = "0.0.0.0",
    port: int | None = None,
    concurrency: int | None = None,
    lease_seconds: float = 60.0,
    features: Sequence[Feature] | None = None,
) -> None:
    """`supportbot serve`: HTTP mode (or Socket Mode), with an embedded worker by default.

    `concurrency` None: as many jobs at once as the LLM budget can use (`jobs_for_llm_budget`).
    """
    require_for_serve(settings, socket_mode)
    async with open_slack_runtime(settings, features=features) as slack:
        identity = await check_slack_token(slack.client)
        bolt = slack.build_app(socket_mode=socket_mode, identity=identity)
        worker = (
            slack.build_worker(
                concurrency=concurrency or jobs_for_llm_budget(settings.llm_max_concurrency),
                lease_seconds=lease_seconds,
            )
            if embedded_worker
            else None
        )
        socket_handler = None
        if socket_mode:
            assert settings.slack_app_token is not None
            socket_handler = TimedSocketModeHandler(
                bolt, settings.slack_app_token.get_secret_value()
            )
        app = create_asgi_app(
            slack, None if socket_mode else bolt, worker=worker, socket_handler=socket_handler
        )
        freeze_startup_objects()
        mode = "Socket Mode" if socket_mode else "HTTP mode (POST /slack/events)"
        logger.info(
            "serving %s on %s:%d; worker %s",
            mode,
            host,
            port or settings.port,
            "embedded" if worker else "disabled",
        )
        await run_uvicorn(app, host, port or settings.port)


async def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    lease_seconds: float = 60.0,
    metrics_port: int | None = None,
    features: Sequence[Feature] | None = None,
) -> None:
    """`supportbot worker`: the worker loop alone, until SIGINT/SIGTERM."""
    try:
        settings.require("slack_bot_token")
    except SettingsError as exc:
        raise SettingsError(f"{exc}; the worker posts replies with it") from None
    async with open_slack_runtime(settings, features=features) as slack:
        await check_slack_token(slack.client)
        worker = slack.build_worker(
            concurrency=concurrency or jobs_for_llm_budget(settings.llm_max_concurrency),
            lease_seconds=lease_seconds,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(signum, worker.stop)
        token = settings.metrics_token
        metrics_server = (
            start_metrics_server(metrics_port, token.get_secret_value() if token else None)
            if metrics_port
            else None
        )
        try:
            await worker.run()
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()


__all__ = [
    "KEEP_ALIVE_SECONDS",
    "DatabaseProbe",
    "TimedSocketModeHandler",
    "create_asgi_app",
    "database_is_up",
    "require_for_serve",
    "run_uvicorn",
    "run_worker",
    "serve",
]
