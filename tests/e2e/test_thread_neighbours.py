"""A neighbour in a customer's public ticket thread, over HTTP (issue 18, finding 4).

Bob writes "fyi INV-…" in Alice's thread, then Alice writes "this invoice looks too high":
before, the bot read Bob's id as Alice's words, opened a case on her invoice and posted
its total in the public channel. Now Bob's message is recorded as his, never grounds an
action for Alice, and amounts Alice did not write stay out of the public thread.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from pipelines.support.service import NOT_YOUR_THREAD_TEXT
from storage.catalog import demo_ids
from storage.models import BillingCase, ConversationTurn, Customer
from tests.e2e.conftest import SUPPORT_CHANNEL, BotServer, act_at_once
from tests.e2e.test_slack_http import settle
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import channel_message, mention_event

ALICE = "U0ALICE"
BOB = "U0BOB"
MONEY = re.compile(r"\$\s?\d")


async def invoice_of(bot: BotServer, slack_user_id: str) -> str:
    async with bot.slack.core.db.sessions() as session:
        customer = await session.scalar(
            select(Customer).where(Customer.slack_user_id == slack_user_id)
        )
    assert customer is not None
    return (await demo_ids(bot.slack.core.db.sessions, customer.id)).invoice_numbers[0]


async def cases(bot: BotServer) -> int:
    async with bot.slack.core.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(BillingCase)) or 0)


async def test_a_neighbours_invoice_id_opens_nothing_and_no_amount_is_posted(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    act_at_once(bot)
    root = channel_message("hi, I have a question about my bill", user=ALICE)
    await bot.post_event(root)
    await settle(bot, fake_slack, replies=1)
    invoice = await invoice_of(bot, ALICE)

    # Bob, in Alice's public thread, without mentioning the bot: recorded, not answered.
    await bot.post_event(channel_message(f"fyi {invoice}", user=BOB, thread_ts=root["ts"]))
    await bot.post_event(
        channel_message("this invoice looks too high", user=ALICE, thread_ts=root["ts"])
    )
    await settle(bot, fake_slack, replies=2)

    answer = fake_slack.posts(channel=SUPPORT_CHANNEL, thread_ts=root["ts"])[-1].text
    assert await cases(bot) == 0
    assert invoice not in answer and not MONEY.search(answer), answer
    assert "invoice number" in answer

    # Bob mentions the bot there: told to ask in his own conversation, nothing looked up.
    await bot.post_event(
        mention_event(f"open a case on {invoice}", user=BOB, channel=SUPPORT_CHANNEL,
                      thread_ts=root["ts"])
    )  # fmt: skip
    await settle(bot, fake_slack, replies=3)
    assert fake_slack.posts(channel=SUPPORT_CHANNEL)[-1].text.startswith(NOT_YOUR_THREAD_TEXT)
    assert await cases(bot) == 0

    # Alice's own id still works; its total stays out of the public thread.
    await bot.post_event(channel_message(f"it's {invoice}", user=ALICE, thread_ts=root["ts"]))
    await settle(bot, fake_slack, replies=4)
    own = fake_slack.posts(channel=SUPPORT_CHANNEL)[-1].text
    assert await cases(bot) == 1
    assert re.search(r"CASE-\d{6}", own) and invoice in own, own
    assert not MONEY.search(own), own

    async with bot.slack.core.db.sessions() as session:
        turns = (
            await session.execute(
                select(ConversationTurn.role, ConversationTurn.slack_user_id)
                .where(ConversationTurn.role != "bot")
                .order_by(ConversationTurn.id)
            )
        ).all()
    assert [tuple(turn) for turn in turns] == [
        ("customer", ALICE),
        ("participant", BOB),
        ("customer", ALICE),
        ("participant", BOB),
        ("customer", ALICE),
    ]
