"""Prometheus metrics of the Slack layer and the work queue.

Counters live in each process (prometheus sums them across replicas). The queue's depth
is the database's, not a process's: `refresh_queue_gauges` reads it from the `jobs` table
when `/metrics` is scraped, so every replica reports the same, true numbers.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

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
    "Jobs in the shared queue by status (read from the database at scrape time).",
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


async def refresh_queue_gauges(queue: JobQueue) -> None:
    """Set the `supportbot_jobs` gauge from the database's counts."""
    for status, count in (await queue.counts()).items():
        JOBS.labels(status=status).set(count)


def render_latest() -> tuple[bytes, str]:
    """The text exposition of every metric of this process, and its content type."""
    return _generate_latest(REGISTRY), CONTENT_TYPE_LATEST


__all__ = [
    "ACK_SECONDS",
    "EVENTS_ENQUEUED",
    "EVENTS_RECEIVED",
    "JOBS",
    "JOBS_IN_FLIGHT",
    "JOB_OUTCOMES",
    "JOB_SECONDS",
    "REPLIES_POSTED",
    "SLACK_API_ERRORS",
    "refresh_queue_gauges",
    "render_latest",
]
