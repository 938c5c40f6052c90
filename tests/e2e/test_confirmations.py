"""Confirm before acting, over HTTP: a three-part DM gets its order status at once and a
card per side effect; Confirm does each exactly once (double click, replayed payload,
restart between click and job), Cancel does nothing, another user is refused, and a
confirmation nobody answers expires."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.confirmations.feature import ConfirmationsFeature
from bot.confirmations.views import CANCEL_ACTION, CONFIRM_ACTION, REFUSAL_TEXT
from bot.settings import Settings
from storage.catalog import demo_ids, get_or_create_customer
from storage.confirmation_models import PendingAction
from storage.models import BillingCase, Job, ReturnAuthorization, Ticket, utcnow
from storage.support_report import support_report
from tests.e2e.conftest import BotServer, run_bot_server
from tests.e2e.test_triage_slack import block_action, click, ephemerals
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import TEAM_ID, dm_event

CUSTOMER = "U0CUST"


async def idle(bot: BotServer, within: float = 15.0) -> None:
    """Until no job due now is queued or running (the expiry jobs wait for their hour)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with bot.slack.core.db.sessions() as session:
            busy = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.status.in_(("queued", "running")), Job.run_after <= utcnow())
            )
        if not busy:
            break
        assert asyncio.get_running_loop().time() < deadline, f"{busy} jobs still due"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.15)


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[ConfirmationsFeature()]) as server:
        yield server


async def three_part(bot: BotServer, fake: FakeSlack) -> tuple[Posted, dict[str, Any], Any]:
    sessions = bot.slack.core.db.sessions
    customer = await get_or_create_customer(sessions, CUSTOMER, TEAM_ID)
    ids = await demo_ids(sessions, customer.id)
    event = dm_event(
        f"Invoice {ids.invoice_numbers[0]} looks too high to me, I want to return the "
        f"{ids.products[0].lower()} because it is incompatible, and where is order "
        f"{ids.order_numbers[1]}?"
    )
    await bot.post_event(event)
    await fake.wait_for(lambda: bool(fake.posts("D0CUST", event["ts"])), within=10)
    await idle(bot)
    [reply] = fake.posts("D0CUST", event["ts"])
    return reply, event, ids


def card_buttons(reply: Posted) -> dict[str, dict[str, str]]:
    """summary text -> {action_id: value} of each confirmation card."""
    cards: dict[str, dict[str, str]] = {}
    blocks = reply.blocks or []
    for index, block in enumerate(blocks):
        if block["type"] == "actions" and str(block.get("block_id", "")).startswith("confirm_"):
            summary = blocks[index - 1]["text"]["text"]
            cards[summary] = {e["action_id"]: e["value"] for e in block["elements"]}
    return cards


async def count(bot: BotServer, model: Any) -> int:
    async with bot.slack.core.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_reads_at_once_and_each_side_effect_waits_for_confirm_done_exactly_once(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    reply, event, ids = await three_part(bot, fake_slack)
    assert ids.order_numbers[1] in reply.text  # the order status: answered at once
    cards = card_buttons(reply)
    assert len(cards) == 2, reply.blocks
    [return_card] = [v for k, v in cards.items() if "Open a return for the" in k]
    [case_card] = [v for k, v in cards.items() if "Open a billing case on invoice" in k]
    assert await count(bot, ReturnAuthorization) == 0 and await count(bot, BillingCase) == 0

    # Another user's click is refused and changes nothing.
    await click(bot, block_action(CONFIRM_ACTION, return_card[CONFIRM_ACTION], user="U0OTHER",
                                  channel="D0CUST", message=reply))  # fmt: skip
    assert ephemerals(fake_slack, "U0OTHER") == [REFUSAL_TEXT["not_yours"]]

    # A double click and a replayed interaction: one RMA, one message saying so.
    confirm = block_action(CONFIRM_ACTION, return_card[CONFIRM_ACTION], user=CUSTOMER,
                           channel="D0CUST", message=reply)  # fmt: skip
    await asyncio.gather(click(bot, confirm), click(bot, confirm))
    await click(bot, confirm)
    await idle(bot)
    assert await count(bot, ReturnAuthorization) == 1
    done = [m for m in fake_slack.posts("D0CUST", event["ts"]) if "Done: return" in m.text]
    assert len(done) == 1 and "RMA-" in done[0].text
    assert REFUSAL_TEXT["already"].format(status="confirmed") in ephemerals(fake_slack, CUSTOMER)

    # Cancel the billing case: none is opened, the card says so.
    await click(bot, block_action(CANCEL_ACTION, case_card[CANCEL_ACTION], user=CUSTOMER,
                                  channel="D0CUST", message=reply))  # fmt: skip
    await idle(bot)
    assert await count(bot, BillingCase) == 0
    async with bot.slack.core.db.sessions() as session:
        statuses = sorted((await session.scalars(select(PendingAction.status))).all())
        ticket = (await session.scalars(select(Ticket))).one()
    assert statuses == ["cancelled", "confirmed"]
    now = utcnow()
    report = await support_report(bot.slack.core.db.sessions, now - dt.timedelta(days=1), now)
    assert report.confirmations["confirmed"] == 1 and report.confirmations["cancelled"] == 1
    assert any(a.endswith("created") and a.startswith("RMA-") for a in ticket.actions)
    edited = [e for e in fake_slack.calls_to("chat.update") if e.params.get("ts") == reply.ts]
    assert any("Cancelled: Open a billing case" in str(e.params.get("blocks")) for e in edited)


async def test_a_restart_between_the_click_and_the_job_still_opens_one_case(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    features = [ConfirmationsFeature()]
    async with run_bot_server(settings, features=features) as first:
        reply, _, _ = await three_part(first, fake_slack)
    [case_card] = [v for k, v in card_buttons(reply).items() if "billing case" in k]
    confirm = block_action(CONFIRM_ACTION, case_card[CONFIRM_ACTION], user=CUSTOMER,
                           channel="D0CUST", message=reply)  # fmt: skip
    # The click is taken by a process whose worker never runs the job (it "crashes")...
    async with run_bot_server(settings, features=features, embedded_worker=False) as clicked:
        await click(clicked, confirm)
        await click(clicked, confirm)  # and Slack redelivers it
        assert await count(clicked, BillingCase) == 0
    # ...and the next process carries it out, once.
    async with run_bot_server(settings, features=features) as restarted:
        await idle(restarted)
        assert await count(restarted, BillingCase) == 1


async def test_an_unanswered_confirmation_expires_and_cannot_be_confirmed_after(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    soon = settings.model_copy(update={"confirm_expiry_hours": 1 / 3600})  # one second
    async with run_bot_server(soon, features=[ConfirmationsFeature()]) as bot:
        reply, event, _ = await three_part(bot, fake_slack)
        [return_card] = [v for k, v in card_buttons(reply).items() if "Open a return for the" in k]
        await fake_slack.wait_for(
            lambda: any("waited" in m.text for m in fake_slack.posts("D0CUST", event["ts"])),
            within=10,
        )
        await click(bot, block_action(CONFIRM_ACTION, return_card[CONFIRM_ACTION],
                                      user=CUSTOMER, channel="D0CUST", message=reply))  # fmt: skip
        await idle(bot)
        assert await count(bot, ReturnAuthorization) == 0
        assert REFUSAL_TEXT["already"].format(status="expired") in ephemerals(
            fake_slack, CUSTOMER
        ) or REFUSAL_TEXT["expired"] in ephemerals(fake_slack, CUSTOMER)
        async with bot.slack.core.db.sessions() as session:
            ticket = (await session.scalars(select(Ticket))).one()
        assert any(a.startswith("confirmation expired: Open a return") for a in ticket.actions)
