"""Prometheus metrics of the Slack layer and the work queue.

Counters live in each process (prometheus sums them across replicas). The queue's depth
is the database's, not a process's: `QueueGauges` reads it from the `jobs` table when
`/metrics` is scraped, so every replica reports the same, true numbers; at most once per
`QUEUE_COUNTS_MAX_AGE_SECONDS` and one read at a time, so scraping `/metrics` in a loop
cannot turn into a stream of counts over the jobs table.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
)
from prometheus_client import generate_latest as _generate_latest

from bot.http_guard import bearer_token_matches
from storage.queue import JobQueue

EVENTS_RECEIVED = Counter(
    "supportbot_slack_events_received_total",
    "Slack requests received, by event or payload type.",
    ["type"],
)
EVENTS_ENQUEUED = Counter(
    "supportbot_slack_messages_total",
    "Messages seen by the listeners, by outcome (enqueued, duplicate, ignored).",
    ["outcome"],
)
ACK_SECONDS = Histogram(
    "supportbot_slack_ack_seconds",
    "Time from receiving a Slack request to acknowledging it (Slack allows 3 s).",
    ["mode"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
)
JOBS = Gauge(
    "supportbot_jobs",
    "Jobs in the shared queue by status (read from the database at scrape time, at most"
    " once every few seconds).",
    ["status"],
)
JOB_OUTCOMES = Counter(
    "supportbot_job_outcomes_total",
    "Jobs finished by this process, by kind and outcome (done, retry, dead, released, lost;"
    " error: the outcome could not be recorded, the job runs again when its lease expires).",
    ["kind", "outcome"],
)
JOB_SECONDS = Histogram(
    "supportbot_job_duration_seconds",
    "Time a worker spent on one job attempt.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0),
)
JOBS_IN_FLIGHT = Gauge("supportbot_jobs_in_flight", "Jobs this process is working on now.")
FEEDBACK_VOTES = Counter(
    "supportbot_feedback_votes_total",
    "Votes on the bot's replies, new or changed (re-clicks not counted), by vote.",
    ["vote"],
)
REPLIES_POSTED = Counter(
    "supportbot_replies_posted_total",
    "Messages posted in customers' threads, by kind (answer, follow_up, already_posted).",
    ["kind"],
)
SLACK_API_ERRORS = Counter(
    "supportbot_slack_api_errors_total",
    "Slack Web API errors, by method and Slack error code.",
    ["method", "error"],
)
SLA_BREACHES = Counter(
    "supportbot_sla_breaches_total",
    "SLA targets of tickets flagged as breached (once each), by kind and priority.",
    ["kind", "priority"],
)


QUEUE_COUNTS_MAX_AGE_SECONDS = 5.0


async def refresh_queue_gauges(queue: JobQueue) -> None:
    """Set the `supportbot_jobs` gauge from the database's counts."""
    for status, count in (await queue.counts()).items():
        JOBS.labels(status=status).set(count)


class QueueGauges:
    """The `supportbot_jobs` gauge, refreshed from the database when it is `max_age` old.

    A Prometheus scrape every 15 s costs one count; anyone scraping faster (or many
    scrapers at once) shares the last one. Concurrent scrapes wait for the read in flight
    instead of starting their own. A failed read is not retried before `max_age` either:
    a database that is down is not asked again by every scrape.
    """

    def __init__(
        self,
        queue: JobQueue,
        *,
        max_age: float = QUEUE_COUNTS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.max_age = max_age
        self.clock = clock
        self.reads = 0  # counts read from the database, for tests and curious operators
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the counts unless the last read (or attempt) is fresh; raises when it fails."""
        async with self._lock:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.max_age:
                return
            self._read_at = now
            self.reads += 1
            await refresh_queue_gauges(self.queue)


def render_latest() -> tuple[bytes, str]:
    """The text exposition of every metric of this process, and its content type."""
    return _generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per scrape otherwise
        pass


def start_metrics_server(port: int, token: str | None, host: str = "0.0.0.0") -> WSGIServer:
    """`supportbot worker --metrics-port`: prometheus_client's exposition in a daemon thread,
    behind `METRICS_TOKEN` like `serve`'s `/metrics` (prometheus_client's own
    `start_http_server` has no way to ask for a token). Call `shutdown()` when done."""
    exposition = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token is not None and not bearer_token_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"unauthorized\n"]
        return exposition(environ, start_response)

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


__all__ = [
    "ACK_SECONDS",
    "EVENTS_ENQUEUED",
    "EVENTS_RECEIVED",
    "FEEDBACK_VOTES",
    "JOBS",
    "JOBS_IN_FLIGHT",
    "JOB_OUTCOMES",
    "JOB_SECONDS",
    "QUEUE_COUNTS_MAX_AGE_SECONDS",
    "REPLIES_POSTED",
    "SLACK_API_ERRORS",
    "QueueGauges",
    "refresh_queue_gauges",
    "render_latest",
    "start_metrics_server",
]
