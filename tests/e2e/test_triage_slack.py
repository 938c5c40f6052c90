"""Support-team triage end to end: signed events and button clicks over HTTP, the fake
Slack, the embedded worker, the real `SupportService` on the offline provider.

Cards in the triage channel, Claim (and a concurrent double claim), Resolve, Reopen,
non-agents refused, every escalation trigger, the bot's silence while a person has the
thread, agents' turns, hand-back, and the App Home of an agent and of a customer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.messages.views import FOLLOW_UP_TEXT, TALK_TO_HUMAN_ACTION
from bot.settings import Settings
from bot.triage.cards import TRIAGE_CARD_JOB, TriageCardJob
from bot.triage.feature import TriageFeature
from bot.triage.views import (
    CARD_EVENT_TYPE,
    CLAIM_ACTION,
    HANDOFF_NOTICE,
    NOT_AN_AGENT,
    REOPEN_ACTION,
    RESOLVE_ACTION,
    TRACE_ACTION,
    UNCLAIM_ACTION,
    card_text,
)
from bot.worker import JobFailed
from pipelines.llm import LLMUnavailable
from pipelines.support.contracts import IncomingMessage, OnWorking, SupportReply
from storage.catalog import demo_ids, get_or_create_customer
from storage.conversations import ConversationStore, ThreadKey
from storage.db import Database
from storage.migrate import upgrade
from storage.models import ConversationTurn, Ticket
from storage.queue import LeasedJob
from storage.ticket_info import (
    CLAIMED,
    ESCALATED,
    OPEN,
    RESOLVED,
    WAITING,
    TicketInfo,
    card_marker,
)
from storage.tickets import TicketStore
from storage.traces import TraceStore
from tests.e2e.conftest import (
    AGENT_ID,
    BOT_TOKEN,
    SUPPORT_CHANNEL,
    BotServer,
    act_at_once,
    make_settings,
    run_bot_server,
)
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import (
    SIGNING_SECRET,
    TEAM_ID,
    channel_message,
    dm_event,
    new_ts,
    signed_headers,
)

TRIAGE = "C0TRIAGE"
AGENT2 = "U0AGENT2"  # a second configured agent
STRANGER = "U0STRANGER"
CUSTOMER = "U0CUST"


@pytest.fixture
def triage_settings(fake_slack: FakeSlack, sqlite_url: str) -> Settings:
    # STRANGER has joined the triage channel: with SUPPORT_AGENT_IDS set that grants nothing
    # (membership as agent status: tests/e2e/test_triage_agents.py).
    fake_slack.channel_members[TRIAGE] = [AGENT_ID, AGENT2, STRANGER]
    return make_settings(
        fake_slack.api_url,
        sqlite_url,
        support_triage_channel=TRIAGE,
        support_agent_ids=[AGENT_ID, AGENT2],
    )


@pytest.fixture
async def bot(triage_settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as server:
        yield server


# --- helpers ----------------------------------------------------------------------------


async def idle(bot: BotServer, within: float = 15.0) -> None:
    """Wait until no job is queued or running (card jobs included), then a bit more."""
    deadline = time.monotonic() + within
    while True:
        counts = await bot.slack.queue.counts()
        if counts["queued"] == 0 and counts["running"] == 0:
            break
        assert time.monotonic() < deadline, f"queue did not drain: {counts}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.15)


def cards(fake: FakeSlack) -> list[Posted]:
    return [m for m in fake.posts(channel=TRIAGE) if m.thread_ts is None]


def card_thread(fake: FakeSlack, card: Posted) -> list[Posted]:
    return [m for m in fake.posts(channel=TRIAGE, thread_ts=card.ts) if m.ts != card.ts]


def text_of(blocks: list[dict[str, Any]] | None) -> str:
    parts: list[str] = []
    for block in blocks or []:
        parts.append(str((block.get("text") or {}).get("text", "")))
        parts += [str(field.get("text", "")) for field in block.get("fields", [])]
        for element in block.get("elements", []):
            text = element.get("text")
            parts.append(str(text.get("text", "") if isinstance(text, dict) else text or ""))
    return "\n".join(parts)


def buttons(message: Posted) -> dict[str, str]:
    """action_id -> button label (or a menu's placeholder) of a card."""
    return {
        element["action_id"]: (element.get("text") or element.get("placeholder") or {})["text"]
        for block in message.blocks or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def block_action(
    action_id: str, value: str, *, user: str, channel: str, message: Posted | None = None
) -> dict[str, Any]:
    """A `block_actions` payload as Slack sends it when a button is pressed."""
    ts = message.ts if message else new_ts()
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0TEST",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": "1111.2222.abcd",
        "channel": {"id": channel, "name": "channel"},
        "message": message.as_message(False) if message else {"ts": ts, "text": ""},
        "response_url": "https://hooks.slack.test/actions/T0TEST/1/x",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
        "is_enterprise_install": False,
    }


async def click(
    bot: BotServer, payload: dict[str, Any], *, secret: str = SIGNING_SECRET
) -> httpx.Response:
    """A signed interactivity request (form-encoded `payload=<json>`)."""
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed_headers(body, secret=secret, content_type="application/x-www-form-urlencoded")
    response = await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    if secret == SIGNING_SECRET:
        assert response.status_code == 200, response.text
    return response


async def home_opened(bot: BotServer, user: str) -> None:
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
    await bot.post_event({**event, "event_ts": new_ts()})


def ephemerals(fake: FakeSlack, user: str) -> list[str]:
    return [
        str(call.params.get("text"))
        for call in fake.calls_to("chat.postEphemeral")
        if call.params.get("user") == user
    ]


async def ticket(bot: BotServer, number: str = "T-00001") -> TicketInfo:
    found = await TicketStore(bot.slack.core.db.sessions).by_number(number)
    assert found is not None
    return found


async def turns(bot: BotServer, number: str = "T-00001") -> list[tuple[str, str]]:
    async with bot.slack.core.db.sessions() as session:
        rows = await session.execute(
            select(ConversationTurn.role, ConversationTurn.text)
            .join(Ticket, Ticket.id == ConversationTurn.ticket_id)
            .where(Ticket.ticket_number == number)
            .order_by(ConversationTurn.id)
        )
        return [(role, text) for role, text in rows.all()]


# --- cards ------------------------------------------------------------------------------


async def test_a_multi_intent_conversation_has_one_card_updated_in_place(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    act_at_once(bot)
    customer = await get_or_create_customer(bot.slack.core.db.sessions, CUSTOMER, TEAM_ID)
    ids = await demo_ids(bot.slack.core.db.sessions, customer.id)
    first = dm_event(
        f"Hi! Invoice {ids.invoice_numbers[0]} looks too high to me. Also I want to return "
        f"the {ids.products[0].lower()} because it is incompatible with my laptop, and where "
        f"is order {ids.order_numbers[1]}?"
    )
    await bot.post_event(first)
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1)
    await idle(bot)

    [card] = cards(fake_slack)
    shown = text_of(card.blocks)
    assert "T-00001" in shown and f"<@{CUSTOMER}>" in shown
    assert f"Billing inquiry — {ids.invoice_numbers[0]}" in shown
    assert f"Product return — {ids.products[0]}" in shown
    assert f"Status update — {ids.order_numbers[1]}" in shown
    assert "CASE-" in shown and "RMA-" in shown  # the actions taken
    assert "Waiting on customer" in shown
    assert set(buttons(card)) >= {CLAIM_ACTION, RESOLVE_ACTION}
    assert card.metadata and card.metadata["event_type"] == "supportbot_triage_card"
    assert "Latest message" in shown and "looks too high" in shown
    assert "triage_open_thread" not in buttons(card)  # a private DM: contact them directly

    follow_up = dm_event(
        f"Thanks! And where is order {ids.order_numbers[2]}?", thread_ts=first["ts"]
    )
    await bot.post_event(follow_up)
    await fake_slack.wait_for(lambda: len(fake_slack.posts(channel="D0CUST")) == 2)
    await idle(bot)

    assert len(cards(fake_slack)) == 1  # updated, never re-posted
    [card] = cards(fake_slack)
    assert card.edits, "the card was not updated with chat.update"
    assert f"Status update — {ids.order_numbers[2]}" in text_of(card.blocks)
    assert card_thread(fake_slack, card) == []  # nothing escalated: nobody was called


# --- buttons ----------------------------------------------------------------------------


async def test_claim_concurrent_claim_resolve_reopen_and_a_non_agent_refused(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    await bot.post_event(dm_event("Where is my order ORD-10011?"))
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1)
    await idle(bot)
    [card] = cards(fake_slack)

    forged = block_action(CLAIM_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE)
    assert (await click(bot, forged, secret="not-the-secret")).status_code == 401
    await click(bot, block_action(CLAIM_ACTION, "T-00001", user=STRANGER, channel=TRIAGE))
    assert ephemerals(fake_slack, STRANGER) == [NOT_AN_AGENT]
    assert (await ticket(bot)).status == WAITING

    # Two agents press Claim at the same instant: one wins, the other is told who.
    await asyncio.gather(
        click(bot, block_action(CLAIM_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE)),
        click(bot, block_action(CLAIM_ACTION, "T-00001", user=AGENT2, channel=TRIAGE)),
    )
    claimed = await ticket(bot)
    assert claimed.status == CLAIMED and claimed.assignee in (AGENT_ID, AGENT2)
    loser = AGENT2 if claimed.assignee == AGENT_ID else AGENT_ID
    assert ephemerals(fake_slack, loser) == [
        f"T-00001 is already claimed by <@{claimed.assignee}>."
    ]
    assert ephemerals(fake_slack, claimed.assignee or "") == []
    await idle(bot)
    [card] = cards(fake_slack)
    assert f"*Assignee*\n<@{claimed.assignee}>" in text_of(card.blocks)
    assert UNCLAIM_ACTION in buttons(card) and CLAIM_ACTION not in buttons(card)

    await click(bot, block_action(RESOLVE_ACTION, "T-00001", user=loser, channel=TRIAGE))
    assert (await ticket(bot)).status == RESOLVED
    await idle(bot)
    [card] = cards(fake_slack)
    assert "Resolved" in text_of(card.blocks)
    assert set(buttons(card)) == {REOPEN_ACTION, TRACE_ACTION}

    await click(bot, block_action(REOPEN_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE))
    reopened = await ticket(bot)
    assert (reopened.status, reopened.assignee) == (OPEN, None)
    await idle(bot)
    [card] = cards(fake_slack)
    assert CLAIM_ACTION in buttons(card)
    assert len(cards(fake_slack)) == 1 and len(card.edits) >= 3
    assert fake_slack.calls_to("conversations.members") == []  # configured agents: not asked


# --- traces -----------------------------------------------------------------------------


async def test_an_agent_reads_the_tickets_trace_in_a_modal_and_nobody_else_can(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    await bot.post_event(dm_event("Where is my order ORD-10011?"))
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1)
    await idle(bot)
    [card] = cards(fake_slack)
    assert buttons(card)[TRACE_ACTION] == "Trace"
    [run_id] = await TicketStore(bot.slack.core.db.sessions).latest_run_ids((await ticket(bot)).id)
    run = await TraceStore(bot.slack.core.db.sessions).load(run_id)
    assert run is not None and run.steps

    # The customer and a stranger are refused, and no modal is opened for them.
    for user, channel in ((STRANGER, TRIAGE), (CUSTOMER, "D0CUST")):
        await click(bot, block_action(TRACE_ACTION, "T-00001", user=user, channel=channel))
        assert ephemerals(fake_slack, user) == [NOT_AN_AGENT]
    assert fake_slack.calls_to("views.open") == []

    # An agent opens it.
    await click(bot, block_action(TRACE_ACTION, "T-00001", user=AGENT2, channel=TRIAGE))
    [opened] = fake_slack.calls_to("views.open")
    assert opened.params["trigger_id"] == "1111.2222.abcd"
    view = opened.params["view"]
    if isinstance(view, str):
        view = json.loads(view)
    assert view["type"] == "modal" and len(view["blocks"]) <= 100
    shown = text_of(view["blocks"])
    assert "T-00001" in shown and run_id in shown and f"supportbot trace {run_id}" in shown
    for step in run.steps:
        assert f"{step.seq}. {step.name}" in shown and step.model in shown
    assert ephemerals(fake_slack, AGENT2) == []

    # A ticket that does not exist: told so, nothing opened.
    await click(bot, block_action(TRACE_ACTION, "T-09999", user=AGENT_ID, channel=TRIAGE))
    assert ephemerals(fake_slack, AGENT_ID) == ["There is no ticket T-09999."]
    assert len(fake_slack.calls_to("views.open")) == 1


# --- handoff ----------------------------------------------------------------------------


async def test_talk_to_a_person_then_quiet_while_agents_talk_then_hand_back(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    root = channel_message("Where is my order ORD-10011?", channel=SUPPORT_CHANNEL)
    await bot.post_event(root)
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1)
    await idle(bot)
    [reply] = fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=root["ts"])
    assert TALK_TO_HUMAN_ACTION in buttons(reply)

    # Someone else's click is refused; the customer's escalates.
    payload = block_action(
        TALK_TO_HUMAN_ACTION, "T-00001", user=STRANGER, channel=SUPPORT_CHANNEL, message=reply
    )
    await click(bot, payload)
    assert (await ticket(bot)).status == WAITING and len(ephemerals(fake_slack, STRANGER)) == 1
    payload = block_action(
        TALK_TO_HUMAN_ACTION, "T-00001", user=CUSTOMER, channel=SUPPORT_CHANNEL, message=reply
    )
    await click(bot, payload)
    await click(bot, payload)  # a double click changes nothing more
    await idle(bot)

    escalated = await ticket(bot)
    assert escalated.status == ESCALATED
    assert escalated.escalation_reason == "the customer pressed Talk to a person"
    in_thread = fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=root["ts"])
    assert [m.text for m in in_thread[1:]] == [HANDOFF_NOTICE]  # told once
    assert TALK_TO_HUMAN_ACTION not in buttons(reply)  # the pressed button became a note
    [card] = cards(fake_slack)
    assert ":rotating_light:" in text_of(card.blocks) and "Talk to a person" in text_of(card.blocks)
    [link] = [
        e for b in card.blocks or [] if b["type"] == "actions" for e in b["elements"] if "url" in e
    ]
    assert (
        link["url"]
        == f"https://fake.slack.test/archives/{SUPPORT_CHANNEL}/p{root['ts'].replace('.', '')}"
    )
    [notice] = card_thread(fake_slack, card)
    assert f"<@{AGENT_ID}>" in notice.text and "T-00001" in notice.text

    # The customer writes again: recorded, not answered (and no "working" reaction).
    reactions_before = len(fake_slack.calls_to("reactions.add"))
    await bot.post_event(
        channel_message("Hello? Is anyone there?", channel=SUPPORT_CHANNEL, thread_ts=root["ts"])
    )
    await idle(bot)
    # A configured agent and a triage member who claimed it talk in the thread.
    await bot.post_event(
        channel_message("Hi, I'm looking at it.", user=AGENT_ID, thread_ts=root["ts"])
    )
    await click(bot, block_action(CLAIM_ACTION, "T-00001", user=AGENT2, channel=TRIAGE))
    await bot.post_event(
        channel_message("I'll take it from here.", user=AGENT2, thread_ts=root["ts"])
    )
    await idle(bot)
    assert len(fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=root["ts"])) == 2
    assert len(fake_slack.calls_to("reactions.add")) == reactions_before
    assert (await turns(bot))[-3:] == [
        ("customer", "Hello? Is anyone there?"),
        ("agent", "Hi, I'm looking at it."),
        ("agent", "I'll take it from here."),
    ]

    # Hand back: Unclaim. The bot answers the next message again.
    await click(bot, block_action(UNCLAIM_ACTION, "T-00001", user=AGENT2, channel=TRIAGE))
    assert (await ticket(bot)).status == OPEN
    await bot.post_event(channel_message("And where is order ORD-10012?", thread_ts=root["ts"]))
    await fake_slack.wait_for(
        lambda: len(fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=root["ts"])) == 3
    )
    await idle(bot)
    answer = fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=root["ts"])[-1]
    assert "ORD-10012" in answer.text
    assert (await ticket(bot)).status == WAITING


async def test_handoff_intent_low_confidence_and_urgency_escalate_and_notify(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    messages = {
        "U0HANDOFF": "I want to talk to a human please",
        "U0UNSURE": "how do i reset the wifi on my speaker",
        "U0ANGRY": "This is unacceptable!! Where is my order ORD-10011",
    }
    events = {
        user: dm_event(text, user=user, channel=f"D{user}") for user, text in messages.items()
    }
    for event in events.values():
        await bot.post_event(event)
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 3)
    await fake_slack.wait_for(
        lambda: all(card_thread(fake_slack, card) for card in cards(fake_slack))
    )
    await idle(bot)

    store = TicketStore(bot.slack.core.db.sessions)
    reasons = {t.slack_user_id: t.escalation_reason for t in await store.list_tickets([ESCALATED])}
    assert reasons["U0HANDOFF"] == "customer asked for a person"
    assert (reasons["U0UNSURE"] or "").startswith("low confidence")
    assert reasons["U0ANGRY"] == "customer sounds urgent or upset"
    for user in messages:
        [reply] = fake_slack.posts(channel=f"D{user}")
        assert "follow up" in reply.text  # the customer is told a person will follow up
        assert TALK_TO_HUMAN_ACTION not in buttons(reply)
    for card in cards(fake_slack):
        assert "Escalated" in text_of(card.blocks)
        assert len(card_thread(fake_slack, card)) == 1  # the agents were called once

    # A follow-up while escalated is recorded and not answered.
    await bot.post_event(
        dm_event(
            "hello?", user="U0HANDOFF", channel="DU0HANDOFF", thread_ts=events["U0HANDOFF"]["ts"]
        )
    )
    await idle(bot)
    assert len(fake_slack.posts(channel="DU0HANDOFF")) == 1


class FailingFollowUps:
    """The real service, except that a message containing FAIL meets an LLM outage."""

    def __init__(self) -> None:
        self.inner: Any = None

    async def handle(
        self, message: IncomingMessage, on_working: OnWorking | None = None
    ) -> SupportReply:
        if "FAIL" in message.text:
            raise LLMUnavailable("the provider kept answering 503")
        reply: SupportReply = await self.inner.handle(message, on_working)
        return reply


async def test_a_dead_reply_job_escalates_the_ticket_and_flags_the_card(
    triage_settings: Settings, fake_slack: FakeSlack
) -> None:
    service = FailingFollowUps()
    async with run_bot_server(triage_settings, service=service, features=[TriageFeature()]) as bot:
        service.inner = bot.slack.core.support
        first = dm_event("Where is my order ORD-10011?")
        await bot.post_event(first)
        await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1)
        await idle(bot)
        await bot.post_event(dm_event("FAIL please", thread_ts=first["ts"]))
        await fake_slack.wait_for(lambda: len(fake_slack.posts(channel="D0CUST")) == 2)
        await idle(bot)

        flagged = await ticket(bot)
        assert flagged.status == ESCALATED
        assert (flagged.escalation_reason or "").startswith("the bot could not answer")
        assert fake_slack.posts(channel="D0CUST")[-1].text == FOLLOW_UP_TEXT
        [card] = cards(fake_slack)
        assert "Escalated" in text_of(card.blocks) and "could not answer" in text_of(card.blocks)
        assert len(card_thread(fake_slack, card)) == 1


# --- App Home ---------------------------------------------------------------------------


async def test_app_home_for_an_agent_and_for_a_customer(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    act_at_once(bot)
    customer = await get_or_create_customer(bot.slack.core.db.sessions, CUSTOMER, TEAM_ID)
    ids = await demo_ids(bot.slack.core.db.sessions, customer.id)
    await bot.post_event(dm_event(f"I want to return the {ids.products[0]} because it is broken"))
    await bot.post_event(dm_event("I want to talk to a human", user="U0OTHER", channel="D0OTHER"))
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 2)
    await idle(bot)

    await home_opened(bot, AGENT2)
    await home_opened(bot, CUSTOMER)
    published = {
        call.params["user_id"]: call.params["view"] for call in fake_slack.calls_to("views.publish")
    }
    agent_view, customer_view = published[AGENT2], published[CUSTOMER]
    assert agent_view["type"] == customer_view["type"] == "home"

    store = TicketStore(bot.slack.core.db.sessions)
    [mine] = await store.for_user(TEAM_ID, CUSTOMER)
    [theirs] = await store.for_user(TEAM_ID, "U0OTHER")
    agent_text = text_of(agent_view["blocks"])
    assert "Escalated: waiting for a person* (1)" in agent_text
    assert "Open with the bot* (1)" in agent_text
    assert "Escalated: *1*" in agent_text and "Waiting on customer: *1*" in agent_text
    assert mine.number in agent_text and theirs.number in agent_text
    assert "customer asked for a person" in agent_text and "old" in agent_text
    assert "_unassigned_" in agent_text

    customer_text = text_of(customer_view["blocks"])
    assert "Your tickets* (1)" in customer_text and mine.number in customer_text
    assert theirs.number not in customer_text  # someone else's
    assert all(number in customer_text for number in ids.order_numbers)
    assert "Your returns* (1)" in customer_text and "RMA-" in customer_text


# --- the card job's exactly-once posting ------------------------------------------------


def card_job(job_id: int, ticket_id: int, attempts: int = 1) -> LeasedJob:
    return LeasedJob(
        id=job_id,
        kind=TRIAGE_CARD_JOB,
        dedupe_key=f"card-{job_id}",
        payload={"ticket_id": ticket_id, "event": None},
        attempts=attempts,
        max_attempts=5,
        leased_by="test",
        lease_seconds=10,
    )


async def test_card_job_posts_once_across_crashes_races_and_deleted_cards(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    db = Database(sqlite_url)
    try:
        customer = await get_or_create_customer(db.sessions, CUSTOMER, TEAM_ID)
        row = await ConversationStore(db.sessions).open_ticket(
            ThreadKey(TEAM_ID, "D0CUST", "1700000000.000100"), CUSTOMER, customer.id
        )
        store = TicketStore(db.sessions)
        client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
        job = TriageCardJob(client, store, TRIAGE, [AGENT_ID])

        # Another job's fresh reservation: wait for it (retry soon), post nothing.
        await store.reserve_card(row.id, None, card_marker("77", time.time()))
        with pytest.raises(JobFailed) as waiting:
            await job.run(card_job(1, row.id))
        assert waiting.value.retry_in == 1.0 and cards(fake_slack) == []

        # Job 77 posted the card, then died before recording it: its retry (or anyone
        # after the reservation went stale) finds the card instead of posting another.
        info = await store.get(row.id)
        assert info is not None
        response = await client.chat_postMessage(
            channel=TRIAGE,
            text=card_text(info),
            metadata={"event_type": CARD_EVENT_TYPE, "event_payload": {"ticket_id": str(row.id)}},
        )
        result = await job.run(card_job(77, row.id, attempts=2))
        assert result is not None and result["card_ts"] == response["ts"]
        [card] = cards(fake_slack)
        assert card.edits  # refreshed in place
        assert (await store.get(row.id)).card_ts == card.ts  # type: ignore[union-attr]

        # Someone deleted the card: the job forgets it, and the next attempt posts anew.
        fake_slack.messages.remove(card)
        await store.touch(row.id)
        with pytest.raises(JobFailed):
            await job.run(card_job(2, row.id))
        await job.run(card_job(2, row.id, attempts=2))
        [reposted] = cards(fake_slack)
        assert reposted.ts != card.ts
    finally:
        await db.dispose()


async def test_one_reply_reads_its_ticket_once_card_included(
    bot: BotServer, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply carries the ticket's snapshot: neither the reply job nor the triage
    observer looks the ticket up again (the card job itself renders it from the database)."""
    from storage.conversations import ConversationStore
    from storage.tickets import TicketStore

    reads: list[str] = []

    def counted(cls: Any, name: str) -> None:
        original = getattr(cls, name)

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            reads.append(name)
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counted(ConversationStore, "find_ticket")
    counted(TicketStore, "by_number")

    await bot.post_event(dm_event("Where is my order ORD-10011?", user=CUSTOMER))
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1)
    await idle(bot)

    assert reads == ["find_ticket"]  # SupportService.open_ticket, once
    assert len(fake_slack.posts(channel="D0CUST")) == 1
