"""The bot over HTTP, end to end: signed Slack requests in, replies on a fake Slack out.

The real ASGI app runs under uvicorn with Bolt's signature verification, the listeners,
the SQLite queue and the embedded worker; unless a test swaps it, the real
`SupportService` answers with the offline provider.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select

from bot.settings import Settings
from pipelines.llm import LLMUnavailable
from pipelines.support.contracts import IncomingMessage, OnWorking, SupportReply
from storage.db import Database
from storage.models import Job, ReturnAuthorization, TraceStep
from storage.queue import DEAD, DONE
from tests.e2e.conftest import AGENT_ID, SUPPORT_CHANNEL, BotServer, act_at_once, run_bot_server
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import (
    BOT_USER_ID,
    bot_message,
    channel_message,
    dm_event,
    encode,
    event_callback,
    mention_event,
    message_changed,
    new_ts,
)


async def job_rows(bot: BotServer) -> list[Job]:
    async with bot.slack.core.db.sessions() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def settle(bot: BotServer, fake: FakeSlack, replies: int, within: float = 15.0) -> None:
    """Wait for `replies` posts and an idle queue, then a little longer for strays."""
    await fake.wait_for(lambda: len(fake.posts()) >= replies, within=within)

    async def idle() -> bool:
        counts = await bot.slack.queue.counts()
        return counts["queued"] == 0 and counts["running"] == 0

    deadline = time.monotonic() + within
    while not await idle():
        assert time.monotonic() < deadline, "queue did not drain"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


def blocks_text(blocks: list[dict[str, Any]] | None) -> str:
    return "\n".join(
        str(element.get("text", ""))
        for block in blocks or []
        for element in [block.get("text") or {}, *block.get("elements", [])]
    )


class SlowService:
    """Takes `delay` seconds per message, like a slow LLM."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.handled: list[str] = []

    async def handle(
        self, message: IncomingMessage, on_working: OnWorking | None = None
    ) -> SupportReply:
        if on_working is not None:
            await on_working()
        await asyncio.sleep(self.delay)
        self.handled.append(message.message_ts)
        return SupportReply(
            text=f"echo: {message.text}", ticket_number="T-00001", run_id="r1", provider="scripted"
        )


class DownService:
    def __init__(self) -> None:
        self.calls = 0

    async def handle(
        self, message: IncomingMessage, on_working: OnWorking | None = None
    ) -> SupportReply:
        self.calls += 1
        if on_working is not None:
            await on_working()
        raise LLMUnavailable("the provider kept answering 503")


# --- who gets an answer, and where -------------------------------------------------------


async def test_dm_mention_and_support_channel_each_get_one_reply_in_thread(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    dm = dm_event("Where is my order ORD-10011?")
    mention = mention_event("where is my order?", channel="C0GENERAL")
    top_level = channel_message("My invoice looks too high", channel=SUPPORT_CHANNEL)
    for event in (dm, mention, top_level):
        await bot.post_event(event)
    await settle(bot, fake_slack, replies=3)

    for event in (dm, mention, top_level):
        [reply] = fake_slack.posts(channel=event["channel"])
        assert reply.thread_ts == event["ts"]  # a new thread under the customer's message
        assert reply.metadata and reply.metadata["event_type"] == "supportbot_reply"
        assert "Ticket T-" in blocks_text(reply.blocks)
        assert reply.text  # the plain-text fallback
    assert "ORD-10011" in fake_slack.posts(channel=dm["channel"])[0].text
    # the working reaction was added, then removed again
    assert len(fake_slack.calls_to("reactions.add")) == 3
    assert fake_slack.reactions == set()
    assert {job.status for job in await job_rows(bot)} == {DONE}


async def test_a_reply_jobs_slack_calls_share_kept_alive_connections(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    """slack-sdk opens a connection per call unless it is given a session: the jobs'
    client has one per process, so a reply's calls (reaction, post, removal) reuse it."""
    before = len(fake_slack.calls)
    await bot.post_event(dm_event("Where is my order ORD-10011?"))
    await settle(bot, fake_slack, replies=1)

    calls = fake_slack.calls[before:]
    assert len(calls) >= 3 and all(call.peer for call in calls)
    assert len({call.peer for call in calls}) < len(calls)


async def test_follow_up_in_a_ticket_thread_is_answered_with_history(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    first = channel_message("Where is my order ORD-10011?")
    await bot.post_event(first)
    await settle(bot, fake_slack, replies=1)

    follow_up = channel_message("and when will it arrive?", thread_ts=first["ts"])
    await bot.post_event(follow_up)
    await settle(bot, fake_slack, replies=2)

    replies = fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=first["ts"])
    assert len(replies) == 2
    tickets = {blocks_text(reply.blocks).split("Ticket ")[1].split(" ")[0] for reply in replies}
    assert len(tickets) == 1  # the same conversation
    # the pipeline saw the earlier turns: they are in the follow-up's prompts
    [_, second_job] = await job_rows(bot)
    assert second_job.result is not None
    async with bot.slack.core.db.sessions() as session:
        prompts = (
            await session.scalars(
                select(TraceStep.prompt).where(TraceStep.run_id == second_job.result["run_id"])
            )
        ).all()
    assert any("Where is my order ORD-10011?" in prompt for prompt in prompts)


async def test_thread_replies_outside_tickets_and_from_agents_are_not_answered(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    first = channel_message("Where is my order ORD-10011?")
    await bot.post_event(first)
    await settle(bot, fake_slack, replies=1)

    stranger_thread = channel_message("chatting in someone's thread", thread_ts=new_ts())
    agent_reply = channel_message("I'm on it", user=AGENT_ID, thread_ts=first["ts"])
    not_support = channel_message("hello all", channel="C0RANDOM")
    for event in (stranger_thread, agent_reply, not_support):
        await bot.post_event(event)
    await asyncio.sleep(0.5)
    assert len(fake_slack.posts()) == 1
    assert len(await job_rows(bot)) == 1


async def test_bot_messages_and_edits_are_ignored(bot: BotServer, fake_slack: FakeSlack) -> None:
    own = bot_message("Here is your answer", own=True)
    other = bot_message("Deploy finished", own=False)
    own_by_user_id = channel_message("hi", user=BOT_USER_ID)
    edit = message_changed("edited", original_ts=new_ts())
    deleted = {**channel_message("gone"), "subtype": "message_deleted"}
    for event in (own, other, own_by_user_id, edit, deleted):
        await bot.post_event(event)  # every one acknowledged with a 200
    await asyncio.sleep(0.5)
    assert fake_slack.posts() == []
    assert await job_rows(bot) == []


# --- exactly once -------------------------------------------------------------------------


async def test_redelivered_event_gives_one_reply_and_one_side_effect(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    act_at_once(bot)
    event = dm_event("I want to return the Wireless Mouse, it is broken")
    body = encode(event_callback(event))
    for retry_num in (None, 1, 2, 3):  # the original and Slack's three redeliveries
        response = await bot.post(body, retry_num=retry_num)
        assert response.status_code == 200
    await settle(bot, fake_slack, replies=1)

    [reply] = fake_slack.posts()
    assert "RMA-" in reply.text
    assert len(await job_rows(bot)) == 1
    async with bot.slack.core.db.sessions() as session:
        returns = await session.scalar(select(func.count()).select_from(ReturnAuthorization))
    assert returns == 1


async def test_mention_delivered_as_two_events_is_answered_once(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    mention = mention_event("where is my order?", channel=SUPPORT_CHANNEL)
    as_message = {**mention, "type": "message", "channel_type": "channel"}
    await bot.post_event(as_message)  # message.channels, its own event id
    await bot.post_event(mention)  # app_mention, another event id
    await settle(bot, fake_slack, replies=1)
    assert len(fake_slack.posts()) == 1
    assert len(await job_rows(bot)) == 1


# --- request verification ------------------------------------------------------------------


async def test_bad_signature_or_stale_timestamp_is_refused(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    body = encode(event_callback(dm_event("hello")))
    forged = await bot.post(body, secret="not-the-secret")
    stale = await bot.post(body, timestamp=int(time.time()) - 6 * 60)
    unsigned = await bot.http.post(
        f"{bot.url}/slack/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert (forged.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    await asyncio.sleep(0.3)
    assert await job_rows(bot) == []
    assert fake_slack.posts() == []


async def test_url_verification_challenge(bot: BotServer) -> None:
    body = encode({"type": "url_verification", "challenge": "abc123", "token": "x"})
    response = await bot.post(body)
    assert response.status_code == 200
    assert response.json() == {"challenge": "abc123"}


# --- speed and failures -------------------------------------------------------------------


async def test_ack_is_fast_even_when_the_llm_is_slow(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    service = SlowService(delay=5.0)
    async with run_bot_server(settings, service=service) as bot:
        started = time.perf_counter()
        await bot.post_event(dm_event("slow one"))
        ack = time.perf_counter() - started
        assert ack < 1.0, f"ack took {ack:.2f}s"
        await settle(bot, fake_slack, replies=1, within=20)
    assert fake_slack.posts()[0].text.startswith("echo: slow one")


async def test_rate_limited_post_still_replies_exactly_once(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
    await bot.post_event(dm_event("Where is my order ORD-10011?"))
    await settle(bot, fake_slack, replies=1, within=20)
    assert len(fake_slack.calls_to("chat.postMessage")) == 2  # refused once, then posted
    assert len(fake_slack.posts()) == 1
    [job] = await job_rows(bot)
    assert job.status == DONE and job.attempts == 1  # the client waited it out


async def test_not_in_channel_goes_dead_at_once(bot: BotServer, fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", error="not_in_channel", times=None)
    await bot.post_event(channel_message("Where is my order ORD-10011?"))

    async def dead() -> bool:
        jobs = await job_rows(bot)
        return bool(jobs) and jobs[0].status == DEAD

    deadline = time.monotonic() + 10
    while not await dead():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # no retries follow
    [job] = await job_rows(bot)
    assert job.attempts == 1
    assert job.last_error is not None and "not_in_channel" in job.last_error
    assert "invite" in job.last_error
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_llm_outage_retries_then_a_person_will_follow_up(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    service = DownService()
    async with run_bot_server(settings, service=service) as bot:
        event = dm_event("Where is my order?")
        await bot.post_event(event)
        await settle(bot, fake_slack, replies=1, within=20)
        [job] = await job_rows(bot)
    assert service.calls == job.max_attempts  # retried with backoff, then gave up
    assert job.status == DEAD and "LLM unavailable" in (job.last_error or "")
    [follow_up] = fake_slack.posts()
    assert follow_up.thread_ts == event["ts"]
    assert "person" in follow_up.text
    assert fake_slack.reactions == set()


# --- operations ---------------------------------------------------------------------------


async def test_healthz_and_metrics(bot: BotServer, fake_slack: FakeSlack) -> None:
    await bot.post_event(dm_event("Where is my order ORD-10011?"))
    await settle(bot, fake_slack, replies=1)
    health = await bot.http.get(f"{bot.url}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    metrics = await bot.http.get(f"{bot.url}/metrics")
    assert metrics.status_code == 200
    assert 'supportbot_jobs{status="done"} 1.0' in metrics.text
    assert "supportbot_slack_ack_seconds_bucket" in metrics.text
    assert "supportbot_slack_events_received_total" in metrics.text


async def test_healthz_is_503_when_the_database_is_down(bot: BotServer, tmp_path: Any) -> None:
    good = bot.slack.core.db
    bot.slack.core.db = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    try:
        health = await bot.http.get(f"{bot.url}/healthz")
    finally:
        await bot.slack.core.db.dispose()
        bot.slack.core.db = good
    assert health.status_code == 503


# --- the AI-app surface ------------------------------------------------------------------


async def test_assistant_thread_gets_prompts_status_reply_and_title(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    thread_ts = new_ts()
    started = {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": "U0CUST",
            "channel_id": "D0ASSIST",
            "thread_ts": thread_ts,
            "context": {"channel_id": "C0GENERAL", "team_id": "T0TEST"},
        },
        "event_ts": new_ts(),
    }
    await bot.post_event(started)
    await fake_slack.wait_for(
        lambda: bool(fake_slack.calls_to("assistant.threads.setSuggestedPrompts")), within=5
    )
    [prompts] = fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
    titles = [prompt["title"] for prompt in prompts.params["prompts"]]
    assert titles == ["Where is my order?", "Return a product", "Question about an invoice"]

    question = dm_event("Where is my order ORD-10011?", channel="D0ASSIST", thread_ts=thread_ts)
    await bot.post_event(question)
    await settle(bot, fake_slack, replies=1)
    [reply] = fake_slack.posts()
    assert reply.thread_ts == thread_ts and "ORD-10011" in reply.text
    assert fake_slack.calls_to("assistant.threads.setStatus")  # instead of a reaction
    assert fake_slack.calls_to("reactions.add") == []
    [title] = fake_slack.calls_to("assistant.threads.setTitle")
    assert title.params["title"].startswith("T-")
