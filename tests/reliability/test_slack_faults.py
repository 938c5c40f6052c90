"""Slack and infrastructure faults: Slack's Web API answering 5xx, timing out or rate
limiting; a worker restarted mid-job; the database briefly unavailable. Whatever happens,
every accepted message is answered exactly once, in its thread, once things recover.

Each test checks what the customer saw (the fake Slack), what the database holds (jobs,
tickets, turns) and what `/metrics` says (Slack error and job outcome counters; those are
process-wide, so tests compare before and after).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partialmethod
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

import bot.app
import storage.db
from bot.messages.intake import SLACK_MESSAGE_JOB
from bot.server import run_worker
from bot.triage.feature import TriageFeature
from bot.wiring import SlackRuntime
from storage.models import ConversationTurn, Job, Ticket
from storage.queue import DONE, QUEUED
from tests.e2e.conftest import BotServer, make_settings, run_bot_server, wait_until
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import channel_message, dm_event, encode, event_callback

HTML = "<html><head><title>500 Internal Server Error</title></head><body>oops</body></html>"
TRIAGE = "C0TRIAGE"
Event = dict[str, Any]
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]
SLACK_ERRORS, REPLIES = "supportbot_slack_api_errors_total", "supportbot_replies_posted_total"

# --- helpers ----------------------------------------------------------------------------


async def scrape(server: BotServer) -> Metrics:
    response = await server.http.get(f"{server.url}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def grew(before: Metrics, after: Metrics, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def outcomes(before: Metrics, after: Metrics, outcome: str, kind: str = SLACK_MESSAGE_JOB) -> float:
    return grew(before, after, "supportbot_job_outcomes_total", kind=kind, outcome=outcome)


async def jobs(server: BotServer) -> list[Job]:
    async with server.slack.core.db.sessions() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def settle(server: BotServer, fake: FakeSlack, posts: int, within: float = 20.0) -> None:
    """Wait for `posts` messages in Slack and every job done, then a little for strays."""
    await fake.wait_for(lambda: len(fake.posts()) >= posts, within=within)

    async def all_done() -> bool:
        return all(job.status == DONE for job in await jobs(server))

    await wait_until(all_done, within=within, interval=0.05)
    await asyncio.sleep(0.3)


async def answered_once(server: BotServer, fake: FakeSlack, events: list[Event]) -> list[Job]:
    """One reply in each event's thread, one done job, one ticket with two turns each."""
    for event in events:
        in_thread = fake.posts(channel=event["channel"], thread_ts=event["ts"])
        assert len(in_thread) == 1, f"{len(in_thread)} replies to {event['ts']}"
    assert len(fake.posts()) == len(events)
    assert fake.reactions == set()  # every :eyes: removed again
    done = await jobs(server)
    assert [job.status for job in done] == [DONE] * len(events)
    async with server.slack.core.db.sessions() as session:
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
        per_ticket = select(func.count(ConversationTurn.id)).group_by(ConversationTurn.ticket_id)
        turns = list((await session.scalars(per_ticket)).all())
    assert tickets == len(events)
    assert turns == [2] * len(events)  # customer + bot, no repeats
    return done


def messages(n: int, prefix: str) -> list[Event]:
    """DMs and support-channel messages from different customers (no flood limit)."""
    make = [dm_event, channel_message]
    return [
        make[i % 2](f"Where is my order ORD-1001{i % 3}?", user=f"U0{prefix}{i}",
                    channel=f"D0{prefix}{i}" if i % 2 == 0 else "C0SUPPORT")
        for i in range(n)
    ]  # fmt: skip


# --- Slack answers 5xx --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        pytest.param({"error": "internal_error"}, "internal_error", id="json-body"),
        pytest.param({"body": HTML, "content_type": "text/html"}, "http_500", id="html-body"),
        pytest.param({}, "http_500", id="plain-text-body"),
    ],
)
async def test_post_message_500s_then_recovers_one_reply_each(
    fake_slack: FakeSlack, sqlite_url: str, fault: dict[str, Any], label: str
) -> None:
    events = messages(2, "F")
    async with run_bot_server(make_settings(fake_slack.api_url, sqlite_url)) as server:
        before = await scrape(server)
        fake_slack.fail("chat.postMessage", status=500, times=3, **fault)
        for event in events:
            await server.post_event(event)
        await settle(server, fake_slack, posts=2)
        after = await scrape(server)
        done = await answered_once(server, fake_slack, events)

    assert len(fake_slack.calls_to("chat.postMessage")) == 5  # 3 refused, 2 posted
    assert sum(job.attempts for job in done) == 5
    failed = [job for job in done if job.attempts > 1]
    assert all(f"Slack chat.postMessage: {label}" in (job.last_error or "") for job in failed)
    # every refusal counted under its error code (a 5xx page used to lose the label)
    assert grew(before, after, SLACK_ERRORS, method="chat.postMessage", error=label) == 3
    assert outcomes(before, after, "retry") == 3
    assert outcomes(before, after, "done") == 2
    assert outcomes(before, after, "dead") == outcomes(before, after, "error") == 0


# --- Slack does not answer in time ----------------------------------------------------------


@pytest.mark.parametrize(
    "took_effect",
    [pytest.param(True, id="posted-answer-lost"), pytest.param(False, id="never-posted")],
)
async def test_post_message_timeout_gives_exactly_one_reply(
    fake_slack: FakeSlack, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, took_effect: bool
) -> None:
    monkeypatch.setattr(bot.app, "SLACK_TIMEOUT_SECONDS", 1)  # read per client and session
    # posted at once and answered late, or held past the end of the test (never posted)
    fake_slack.slow("chat.postMessage", 2.5 if took_effect else 30, record_first=took_effect,
                    times=1)  # fmt: skip
    [event] = messages(1, "T")
    async with run_bot_server(make_settings(fake_slack.api_url, sqlite_url)) as server:
        before = await scrape(server)
        await server.post_event(event)
        await settle(server, fake_slack, posts=1)
        after = await scrape(server)
        [job] = await answered_once(server, fake_slack, [event])

    assert job.attempts == 2 and "Slack chat.postMessage: TimeoutError" in (job.last_error or "")
    assert grew(before, after, SLACK_ERRORS, method="chat.postMessage", error="TimeoutError") == 1
    assert outcomes(before, after, "retry") == outcomes(before, after, "done") == 1
    # the retry looked in the thread first: it found the late reply, or posted the only one
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == (1 if took_effect else 2)
    assert grew(before, after, REPLIES, kind="already_posted") == (1 if took_effect else 0)
    assert grew(before, after, REPLIES, kind="answer") == (0 if took_effect else 1)


# --- Slack rate limits the reaction and the triage card's update ----------------------------


async def test_rate_limited_reaction_and_card_update_reply_once_and_card_catches_up(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    fake_slack.channel_members[TRIAGE] = ["U0AGENT"]
    settings = make_settings(fake_slack.api_url, sqlite_url, support_triage_channel=TRIAGE)
    first = channel_message("Where is my order ORD-10011?")
    follow_up = channel_message("And is ORD-10012 shipped yet?", thread_ts=first["ts"])
    async with run_bot_server(settings, features=[TriageFeature()]) as server:
        await server.post_event(first)
        await settle(server, fake_slack, posts=2)  # the reply and the card
        [card] = fake_slack.posts(channel=TRIAGE)
        before = await scrape(server)
        fake_slack.fail("reactions.add", status=429, retry_after=1, times=1)
        fake_slack.fail("chat.update", status=429, retry_after=1, times=2)
        await server.post_event(follow_up)
        await fake_slack.wait_for(lambda: bool(card.edits), within=20)
        await settle(server, fake_slack, posts=3)
        after = await scrape(server)
        all_jobs = await jobs(server)

    thread = fake_slack.posts(channel=first["channel"], thread_ts=first["ts"])
    assert len(thread) == 2  # one reply per message, both in the customer's thread
    assert fake_slack.posts(channel=TRIAGE) == [card]  # edited in place, never re-posted
    assert len(card.edits) == 1 and "ORD-10012" in str(card.blocks)  # the latest turn
    assert len(fake_slack.calls_to("chat.update")) == 3  # refused twice, waited out
    assert len(fake_slack.calls_to("reactions.add")) == 3  # first, then refused + retried
    assert fake_slack.reactions == set()
    assert {job.status for job in all_jobs} == {DONE}
    assert all(job.attempts == 1 for job in all_jobs)  # the client honoured Retry-After
    assert outcomes(before, after, "done") == 1
    assert outcomes(before, after, "done", kind="triage_card") >= 1
    assert outcomes(before, after, "retry", kind="triage_card") == 0


# --- the database is briefly unavailable ------------------------------------------------------


@asynccontextmanager
async def database_down(url: str, admin: URL | None) -> AsyncIterator[None]:
    """SQLite: another process holds the write lock. PostgreSQL: the database refuses
    connections and the open ones are terminated."""
    if admin is None:
        path = make_url(url).database or ""

        def lock() -> sqlite3.Connection:
            holder = sqlite3.connect(path, timeout=10, isolation_level=None,
                                     check_same_thread=False)  # fmt: skip
            holder.execute("BEGIN EXCLUSIVE")
            return holder

        holder = await asyncio.to_thread(lock)
        try:
            yield
        finally:
            await asyncio.to_thread(holder.close)  # rolls back, releasing the lock
        return
    name = make_url(url).database
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        try:
            yield
        finally:
            await connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await connection.close()


async def test_database_outage_refuses_new_events_then_answers_everything_once(
    fake_slack: FakeSlack,
    database_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SQLite waits out a lock for 30 s; make "down" fail fast, as a real outage would
    monkeypatch.setattr(storage.db, "SQLITE_BUSY_TIMEOUT_MS", 250)
    postgres = not database_url.startswith("sqlite")
    admin = request.getfixturevalue("postgres_admin_url") if postgres else None
    in_flight, refused = messages(2, "A"), messages(2, "B")
    settings = make_settings(fake_slack.api_url, database_url)
    async with run_bot_server(settings, lease_seconds=2) as server:
        before = await scrape(server)
        fake_slack.slow("chat.postMessage", 1.5, times=2)  # replies land during the outage
        for event in in_flight:
            await server.post_event(event)
        await fake_slack.wait_for(lambda: len(fake_slack.posts()) == 2, within=10)

        async with database_down(database_url, admin):
            assert (await server.http.get(f"{server.url}/healthz")).status_code == 503
            for event in refused:  # not stored, so not acknowledged: Slack will redeliver
                response = await server.post(encode(event_callback(event)))
                assert response.status_code == 500, response.text
            # Down well past the slowed posts' answers (1.5 s), so both completions fail
            # even on a loaded machine (1.5 s here once let one finish after the outage).
            await asyncio.sleep(2.5)

        async def healthy() -> bool:
            return (await server.http.get(f"{server.url}/healthz")).status_code == 200

        await wait_until(healthy, within=10)
        for event in refused:  # Slack's redelivery
            await server.post_event(event, retry_num=1)
        await settle(server, fake_slack, posts=4, within=30)
        after = await scrape(server)
        await answered_once(server, fake_slack, in_flight + refused)

    assert len(fake_slack.calls_to("chat.postMessage")) == 4
    assert outcomes(before, after, "done") == 4 and outcomes(before, after, "dead") == 0
    assert outcomes(before, after, "error") == 2  # completing failed; the lease expired
    # the two replies posted while the database was down were found, not posted again
    assert grew(before, after, REPLIES, kind="already_posted") == 2
    assert grew(before, after, REPLIES, kind="answer") == 4


# --- a worker is stopped gracefully mid-job ----------------------------------------------------


async def test_sigterm_releases_in_hand_jobs_and_the_next_worker_answers_once(
    fake_slack: FakeSlack, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`supportbot worker` (`run_worker`, with its own SIGTERM handler) in this process, its
    shutdown grace cut to 1 s: the jobs still in hand are released, not left to their
    30 s leases."""
    monkeypatch.setattr(
        SlackRuntime,
        "build_worker",
        partialmethod(SlackRuntime.build_worker, shutdown_grace=1.0, poll_interval=0.05),
    )
    settings = make_settings(fake_slack.api_url, sqlite_url)
    events = messages(3, "S")
    loop = asyncio.get_running_loop()

    def start_worker() -> asyncio.Task[None]:
        return asyncio.create_task(run_worker(settings, concurrency=3, lease_seconds=30))

    def in_hand() -> bool:
        return len(fake_slack.calls_to("reactions.add")) == 3 and len(fake_slack.posts()) == 1

    async def stop(worker: asyncio.Task[None]) -> None:
        # run_worker's loop handler, installed after uvicorn's, is the one that gets it
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(worker, timeout=10)

    async with run_bot_server(settings, embedded_worker=False) as server:
        for event in events:
            await server.post_event(event)
        before = await scrape(server)
        # two jobs hang on the reaction, the third's reply is posted but never confirmed
        fake_slack.slow("reactions.add", 60, times=2)
        fake_slack.slow("chat.postMessage", 60, times=1)
        first = start_worker()
        try:
            await fake_slack.wait_for(in_hand, within=10)
            await stop(first)
            released = await jobs(server)
            assert [(job.status, job.attempts) for job in released] == [(QUEUED, 0)] * 3
            assert len(fake_slack.posts()) == 1

            second = start_worker()
            await settle(server, fake_slack, posts=3, within=10)  # well within the leases
            await stop(second)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
        after = await scrape(server)
        await answered_once(server, fake_slack, events)

    assert outcomes(before, after, "released") == 3
    assert outcomes(before, after, "done") == 3
    assert grew(before, after, REPLIES, kind="already_posted") == 1  # found, not re-posted
    assert grew(before, after, REPLIES, kind="answer") == 2
