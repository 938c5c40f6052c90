"""Streamed replies over HTTP: signed events in, the real google-genai client streaming
from the fake Gemini endpoint, chat.startStream / appendStream / stopStream to the fake
Slack, and exactly one finished reply per message, whatever fails in between."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.messages.line_notice import LINE_NOTE
from bot.messages.reply_job import REPLY_EVENT_TYPE
from bot.settings import Settings
from pipelines.llm import LLMUnavailable
from pipelines.llm.factory import reset_shared_gate
from pipelines.support.contracts import IncomingMessage, OnWorking, SupportReply
from pipelines.support.drafts import (
    QUEUE_STEP_ID,
    QUEUE_STEP_TITLE,
    StepNote,
    reply_watcher,
    report_step,
)
from tests.e2e.conftest import BotServer, make_settings, run_bot_server
from tests.fakes.fake_gemini import FakeGemini, Fault
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.fakes.fake_slack_streams import FakeStream
from tests.fakes.gemini_scripts import StepAnswer, by_step, user_text
from tests.slack_signing import TEAM_ID, dm_event, mention_event

ORDER_REPLY = (
    "Your order ORD-10011 is on its way with the carrier and should reach you within a few "
    "days; the tracking number is in the order details."
)


def answers(reply: str) -> dict[str, StepAnswer]:
    def classify(body: dict[str, Any]) -> dict[str, Any]:
        several = "INV-" in user_text(body)
        intent = "billing_inquiry" if several else "order_status"
        return {"intent": intent, "confidence": 0.95, "multiple_requests": several}

    def plan(body: dict[str, Any]) -> dict[str, Any]:
        text = user_text(body)
        tasks: list[dict[str, Any]] = []
        if invoice := re.search(r"INV-\d+", text):
            tasks.append({"kind": "billing_inquiry", "invoice_number": invoice[0]})
        if "Keyboard" in text:
            tasks.append(
                {"kind": "product_return", "product_name": "Mechanical Keyboard", "reason": "x"}
            )
        if order := re.search(r"ORD-\d+", text):
            tasks.append({"kind": "status_update", "order_id": order[0]})
        return {"tasks": tasks}

    return {
        "classify_intent": classify,
        "plan_tasks": plan,
        "extract_concern": lambda body: {"wants_investigation": False, "concern": ""},
        "synthesize_reply": lambda body: {"reply": reply},
    }


@pytest.fixture(autouse=True)
def _fresh_gate() -> None:
    reset_shared_gate()


@pytest.fixture
def gemini_settings(fake_slack: FakeSlack, sqlite_url: str) -> Settings:
    return make_settings(
        fake_slack.api_url,
        sqlite_url,
        llm_provider="gemini",
        gemini_api_key="test-key",
        llm_fallback="none",
    )


@asynccontextmanager
async def gemini_bot(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, reply: str
) -> AsyncIterator[tuple[BotServer, FakeGemini]]:
    gemini = FakeGemini(by_step(answers(reply)), latency_s=0.6, stream_chunk_chars=12)
    async with gemini:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.base_url)
        async with run_bot_server(settings) as server:
            yield server, gemini


def finished(fake: FakeSlack, channel: str, thread_ts: str) -> list[Posted]:
    return [
        message
        for message in fake.posts(channel, thread_ts)
        if (message.metadata or {}).get("event_type") == REPLY_EVENT_TYPE
    ]


async def one_finished_reply(fake: FakeSlack, channel: str, thread_ts: str) -> Posted:
    await fake.wait_for(lambda: bool(finished(fake, channel, thread_ts)), within=20)
    await asyncio.sleep(0.3)  # a late second message would show up here
    [reply] = fake.posts(channel, thread_ts)  # the streamed message is the only one
    return reply


def the_stream(fake: FakeSlack, reply: Posted) -> FakeStream:
    assert reply.ts in fake.streams, "the reply was posted, not streamed"
    return fake.streams[reply.ts]


async def test_a_dm_reply_streams_its_plan_and_text_then_becomes_the_finished_reply(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, gemini):
        event = dm_event("Hi, where is my order ORD-10011?")
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "D0CUST", event["ts"])
        assert gemini.streamed >= 1
    stream = the_stream(fake_slack, reply)
    assert stream.start["task_display_mode"] == "plan"
    assert "recipient_user_id" not in stream.start  # a DM needs none
    assert stream.tasks() == {"task-1": ["in_progress", "complete"]}
    assert stream.chunks[0] == {"type": "plan_update", "title": "Working on your request"}
    assert any(c["type"] == "task_update" and c["title"] == "Looking up ORD-10011"
               for c in stream.chunks)  # fmt: skip
    assert stream.appends >= 1 and stream.stopped
    # The customer watched the checked words arrive: a prefix of the final answer.
    assert len(stream.text) > 20 and ORDER_REPLY.startswith(stream.text)
    assert ORDER_REPLY in reply.text and "Ticket T-" in reply.text
    assert reply.blocks is not None and any(b["type"] == "actions" for b in reply.blocks)
    assert not fake_slack.calls_to("chat.postMessage")


async def test_three_tasks_get_three_cards_and_an_invented_rma_never_shows(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    gemini_settings.confirm_actions = frozenset()  # the return is opened: its RMA is real
    invented = (
        "Invoice INV-10011 is as billed. I opened return RMA-999999 for the Mechanical "
        "Keyboard, and order ORD-10012 is on its way to you now."
    )
    async with gemini_bot(gemini_settings, monkeypatch, invented) as (server, _):
        event = dm_event(
            "Invoice INV-10011 looks wrong, I want to return the Mechanical Keyboard, "
            "and where is ORD-10012?"
        )
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "D0CUST", event["ts"])
    stream = the_stream(fake_slack, reply)
    cards = stream.tasks()
    assert sorted(cards) == ["task-1", "task-2", "task-3"]
    assert all(statuses[-1] == "complete" for statuses in cards.values()), cards
    assert "RMA-999999" not in stream.text  # held back until the check ran
    assert stream.text and invented.startswith(stream.text)
    real = re.findall(r"RMA-\d{6}", reply.text)
    assert real and "RMA-999999" not in real and "(reference pending)" in reply.text


class FailsOnceMidStream:
    """A pipeline whose first attempt dies after the stream started (a provider outage
    mid-answer); the retry answers."""

    def __init__(self, fake: FakeSlack, failures: int = 1) -> None:
        self.fake = fake
        self.failures = failures
        self.attempts = 0

    async def handle(
        self, message: IncomingMessage, on_working: OnWorking | None = None
    ) -> SupportReply:
        self.attempts += 1
        if on_working is not None:
            await on_working()
        report_step(StepNote("task-1", "Looking up ORD-10011", "in_progress"))
        watcher = reply_watcher("reply")  # a retry finishes the earlier stream: no watcher
        assert (watcher is None) == (self.attempts > 1), "watched on the first attempt only"
        if watcher is not None:
            watcher('{"reply": "Your order ORD-10011 is on its way and')
        if self.attempts <= self.failures:
            await self.fake.wait_for(lambda: bool(self.fake.streams), within=5)
            raise LLMUnavailable("the provider went away mid-answer")
        return SupportReply(
            text="Your order ORD-10011 is on its way and arrives on Friday.",
            ticket_number="T-00001",
            run_id="",
            provider="gemini",
        )


async def test_a_customer_behind_a_spent_quota_sees_they_are_in_line(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider refuses the first call for 1.5 s (429 with RetryInfo): past a second
    in the queue the thread shows a step saying the customer is in line, marked done when
    the call goes out; then the plan and the answer, in the same one message."""
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, gemini):
        gemini.fail_next([Fault(429, retry_delay_s=1.5)])
        event = dm_event("Hi, where is my order ORD-10011?")
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "D0CUST", event["ts"])
        assert gemini.rate_limited == 1
    stream = the_stream(fake_slack, reply)
    assert stream.tasks()[QUEUE_STEP_ID] == ["in_progress", "complete"]
    first = stream.chunks[1]  # after the plan's title
    assert first["id"] == QUEUE_STEP_ID and first["title"] == QUEUE_STEP_TITLE
    assert stream.tasks()["task-1"] == ["in_progress", "complete"]
    assert ORDER_REPLY in reply.text and not fake_slack.calls_to("chat.postMessage")


async def test_a_retry_after_a_failure_mid_stream_finishes_the_same_message(
    fake_slack: FakeSlack, gemini_settings: Settings
) -> None:
    service = FailsOnceMidStream(fake_slack)
    async with run_bot_server(gemini_settings, service=service) as server:
        event = dm_event("Where is ORD-10011?")
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "D0CUST", event["ts"])
    assert service.attempts == 2
    assert len(fake_slack.streams) == 1  # the retry did not start a second stream
    assert the_stream(fake_slack, reply).stopped
    assert "arrives on Friday" in reply.text
    assert not fake_slack.calls_to("chat.postMessage")


async def test_a_retry_after_slack_failed_to_finish_the_stream_gives_one_reply(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_slack.fail("chat.update", status=500)  # the finishing update fails once
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, _):
        event = dm_event("Hi, where is my order ORD-10011?")
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "D0CUST", event["ts"])
    assert len(fake_slack.streams) == 1 and len(fake_slack.calls_to("chat.update")) == 2
    assert ORDER_REPLY in reply.text
    assert not fake_slack.calls_to("chat.postMessage")


async def test_when_the_bot_gives_up_the_streamed_message_says_a_person_follows_up(
    fake_slack: FakeSlack, gemini_settings: Settings
) -> None:
    service = FailsOnceMidStream(fake_slack, failures=99)
    async with run_bot_server(gemini_settings, service=service) as server:
        event = dm_event("Where is ORD-10011?")
        await server.post_event(event)
        await fake_slack.wait_for(
            lambda: any((m.metadata or {}).get("event_payload", {}).get("follow_up")
                        for m in fake_slack.posts("D0CUST", event["ts"])),
            within=20,
        )  # fmt: skip
    [message] = fake_slack.posts("D0CUST", event["ts"])
    assert "A person from the support team will follow up" in message.text
    assert message.ts in fake_slack.streams and len(fake_slack.streams) == 1


async def test_a_private_channel_thread_streams_to_its_customer(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, _):
        event = mention_event("where is my order ORD-10011?", channel="G0PRIVATE")
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "G0PRIVATE", event["ts"])
    stream = the_stream(fake_slack, reply)
    assert stream.start["recipient_team_id"] == TEAM_ID
    assert stream.start["recipient_user_id"] == "U0CUST"


async def test_where_slack_refuses_a_stream_the_reply_is_posted_once_and_the_log_says_why(
    fake_slack: FakeSlack,
    gemini_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_slack.refuse_streams_in.add("G0PRIVATE")
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, _):
        event = mention_event("where is my order ORD-10011?", channel="G0PRIVATE")
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "G0PRIVATE", event["ts"])
    assert not fake_slack.streams
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert ORDER_REPLY in reply.text
    assert "refused the reply stream (streaming_not_supported)" in caplog.text


def public_mention() -> dict[str, Any]:
    event = mention_event("where is my order ORD-10011?", channel="C0GENERAL")
    event["channel_type"] = "channel"
    return event


async def test_a_public_channel_reply_never_streams(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither to Slack nor from Gemini (nobody watches its text), and with no wait in
    line, no note."""
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, gemini):
        event = public_mention()
        await server.post_event(event)
        await one_finished_reply(fake_slack, "C0GENERAL", event["ts"])
        assert gemini.rate_limited == 0 and gemini.streamed == 0
    assert not fake_slack.streams and len(fake_slack.calls_to("chat.postMessage")) == 1
    assert not fake_slack.calls_to("chat.postEphemeral")


async def test_a_public_channel_customer_behind_a_spent_quota_is_told_they_are_in_line(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stream in a public channel, so no task card: the customer alone gets an
    ephemeral note in the thread, once, then the reply is posted once."""
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, gemini):
        gemini.fail_next([Fault(429, retry_delay_s=1.5)])
        event = public_mention()
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "C0GENERAL", event["ts"])
        assert gemini.rate_limited == 1
    [note] = fake_slack.calls_to("chat.postEphemeral")
    assert note.params["user"] == event["user"] and note.params["thread_ts"] == event["ts"]
    assert note.params["text"] == LINE_NOTE
    assert note.at < next(c.at for c in fake_slack.calls if c.method == "chat.postMessage")
    assert ORDER_REPLY in reply.text and not fake_slack.streams


async def test_a_refused_line_note_costs_nothing_but_the_note(
    fake_slack: FakeSlack, gemini_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack refuses the ephemeral note (the customer left the channel): the reply is
    still posted, once."""
    fake_slack.fail("chat.postEphemeral", error="user_not_in_channel")
    async with gemini_bot(gemini_settings, monkeypatch, ORDER_REPLY) as (server, gemini):
        gemini.fail_next([Fault(429, retry_delay_s=1.5)])
        event = public_mention()
        await server.post_event(event)
        reply = await one_finished_reply(fake_slack, "C0GENERAL", event["ts"])
    assert len(fake_slack.calls_to("chat.postEphemeral")) == 1
    assert ORDER_REPLY in reply.text and len(fake_slack.calls_to("chat.postMessage")) == 1
