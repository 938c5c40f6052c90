"""Edits and deletions of an agent's '>' reply in the card's thread follow it into the
customer's thread (and the recorded turn); an edited or deleted internal note follows in
the stored note; a redelivered edit changes nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from storage.models import ConversationTurn, Job
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_ticket_brief import ASK, escalate_event
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    TRIAGE,
    cards,
    idle,
    triage_settings,
)
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import BOT_USER_ID, dm_event, new_ts, thread_edit


@dataclass
class Desk:
    """An escalated DM ticket and its card: the agents' desk these tests work at."""

    bot: BotServer
    event: dict[str, Any]
    card: Posted


@pytest.fixture
async def desk(triage_settings: Settings, fake_slack: FakeSlack) -> AsyncIterator[Desk]:  # noqa: F811
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as bot:
        event = dm_event(ASK)
        await escalate_event(bot, fake_slack, event)
        [card] = cards(fake_slack)
        yield Desk(bot, event, card)


def in_card_thread(card: Posted, text: str) -> dict[str, Any]:
    message = dm_event(text, user=AGENT_ID, channel=TRIAGE, thread_ts=card.ts)
    return message | {"channel_type": "group"}


async def turns(bot: BotServer, role: str) -> list[str]:
    async with bot.slack.core.db.sessions() as session:
        query = select(ConversationTurn.text).where(ConversationTurn.role == role)
        return list((await session.scalars(query.order_by(ConversationTurn.id))).all())


async def test_edits_and_deletions_of_relayed_replies_and_notes_follow(
    desk: Desk, fake_slack: FakeSlack
) -> None:
    bot, event, card = desk.bot, desk.event, desk.card

    reply = in_card_thread(card, "&gt; Your parcel arrives on Friday.")
    note = in_card_thread(card, "carrier says Friday")
    await bot.post_event(reply)
    await bot.post_event(note)
    await idle(bot)

    def customer_thread() -> list[str]:
        return [m.text for m in fake_slack.posts("D0CUST", event["ts"]) if "parcel" in m.text]

    assert customer_thread() == ["Your parcel arrives on Friday."]

    edit = thread_edit(reply, "&gt; Your parcel arrives on Thursday!", thread_ts=card.ts)
    await bot.post_event(edit)
    await bot.post_event(edit)  # redelivered: the same job
    await bot.post_event(thread_edit(note, "carrier says Thursday", thread_ts=card.ts))
    await idle(bot)
    assert customer_thread() == ["Your parcel arrives on Thursday!"]  # edited in place
    assert await turns(bot, "agent") == ["Your parcel arrives on Thursday!"]
    assert await turns(bot, "note") == ["carrier says Thursday"]
    edits = [c for c in fake_slack.calls_to("chat.update") if c.params.get("channel") == "D0CUST"]
    assert len(edits) == 1

    await bot.post_event(thread_edit(reply, None, thread_ts=card.ts))
    await bot.post_event(thread_edit(note, None, thread_ts=card.ts))
    await idle(bot)
    assert customer_thread() == []
    assert [m.text for m in fake_slack.deleted] == ["Your parcel arrives on Thursday!"]
    assert await turns(bot, "agent") == [] and await turns(bot, "note") == []


async def test_an_unfurl_and_bots_edits_follow_nothing(desk: Desk, fake_slack: FakeSlack) -> None:
    bot, event, card = desk.bot, desk.event, desk.card
    reply = in_card_thread(card, "&gt; On its way.")
    await bot.post_event(reply)
    await idle(bot)
    before = len(fake_slack.calls_to("chat.update"))
    await bot.post_event(thread_edit(reply, "&gt; On its way.", thread_ts=card.ts))  # unfurl
    for channel, thread in ((TRIAGE, card.ts), ("D0CUST", event["ts"])):
        ours = {"type": "message", "user": BOT_USER_ID, "text": "x", "ts": new_ts(),
                "channel": channel}  # fmt: skip
        await bot.post_event(thread_edit(ours, "y", thread_ts=thread))  # e.g. a streamed reply
    other = thread_edit({"type": "message", "user": "U0OTHERBOT", "text": "x", "ts": new_ts(),
                         "channel": TRIAGE}, "y", thread_ts=card.ts)  # fmt: skip
    other["message"]["bot_id"] = "B0OTHER"  # another integration's message, edited
    await bot.post_event(other)
    await idle(bot)
    assert len(fake_slack.calls_to("chat.update")) == before
    async with bot.slack.core.db.sessions() as session:
        kinds = set((await session.scalars(select(Job.kind))).all())
    assert "relay_to_customer" in kinds
    assert not kinds & {"relay_edit", "mirror_edit"}


async def test_a_customers_edit_and_deletion_follow_on_their_turn_and_the_cards_mirror(
    desk: Desk, fake_slack: FakeSlack
) -> None:
    bot, event, card = desk.bot, desk.event, desk.card
    answer = dm_event("Friday is fine, thanks", thread_ts=event["ts"])
    await bot.post_event(answer)
    await idle(bot)

    def mirrored() -> list[str]:
        return [m.text for m in fake_slack.posts(TRIAGE, card.ts) if "<@U0CUST>" in m.text]

    assert mirrored() == ["<@U0CUST> wrote:\n>Friday is fine, thanks"]

    edit = thread_edit(answer, "Saturday would be better", thread_ts=event["ts"])
    await bot.post_event(edit)
    await bot.post_event(edit)  # redelivered
    await idle(bot)
    assert mirrored() == ["<@U0CUST> edited their message:\n>Saturday would be better"]
    assert "Saturday would be better" in await turns(bot, "customer")
    assert "Friday is fine, thanks" not in await turns(bot, "customer")

    await bot.post_event(thread_edit(answer, None, thread_ts=event["ts"]))
    someone = thread_edit(answer | {"user": "U0OTHER"}, "hijack", thread_ts=event["ts"])
    await bot.post_event(someone)  # not the customer's edit: ignored
    await idle(bot)
    assert mirrored() == ["<@U0CUST> deleted a message."]
    assert not any("Saturday" in t or "hijack" in t for t in await turns(bot, "customer"))
