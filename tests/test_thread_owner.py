"""Only the ticket's owner has a conversation in its thread (issue 18, finding 4).

Someone else's message there keeps its author, never reaches the owner's history, never
grounds an id, and in a public channel an account reply shows only the amounts and record
numbers the owner wrote.
"""

from __future__ import annotations

from bot.messages.intake import is_public
from pipelines.support.disclosure import PUBLIC_NOTE, WITHHELD, withhold_account_details
from pipelines.support.orchestrator import Task, ground_task
from pipelines.support.request import SupportRequest
from storage.backends import Actor
from storage.catalog import get_or_create_customer
from storage.conversations import PARTICIPANT, ConversationStore, ThreadKey, Turn
from storage.db import Database
from tests.slack_signing import channel_message, dm_event, mention_event

ALICE = "U0ALICE"
BOB = "U0BOB"


async def test_the_owners_history_leaves_other_peoples_messages_out(database: Database) -> None:
    store = ConversationStore(database.sessions)
    alice = await get_or_create_customer(database.sessions, ALICE)
    ticket = await store.open_ticket(ThreadKey("T1", "C1", "1.0"), ALICE, alice.id)
    await store.add_turn(ticket.id, "customer", "1.0", "a question about my bill", ALICE)
    await store.add_turn(ticket.id, "bot", "reply-to:1.0", "Which invoice?")
    await store.add_turn(ticket.id, PARTICIPANT, "1.1", "fyi INV-10011", BOB)
    # written before authors were told apart: a customer turn by someone else
    await store.add_turn(ticket.id, "customer", "1.2", "it's INV-10011", BOB)
    await store.add_turn(ticket.id, "agent", "1.3", "Looking into it", "U0AGENT")

    everything = await store.history(ticket.id)
    owners = await store.history(ticket.id, owner=ALICE)

    assert [turn.author for turn in everything] == [ALICE, "", BOB, BOB, "U0AGENT"]
    assert owners == [
        Turn("customer", "a question about my bill", ALICE),
        Turn("bot", "Which invoice?", ""),
        Turn("agent", "Looking into it", "U0AGENT"),
    ]


def test_a_participants_id_never_grounds_a_task() -> None:
    history = [
        Turn("customer", "a question about my bill", ALICE),
        Turn(PARTICIPANT, "fyi INV-10011", BOB),
    ]
    request = SupportRequest(
        request_id="r1", text="this invoice looks too high", actor=Actor(customer_id=1),
        history=history,
    )  # fmt: skip
    own = SupportRequest(
        request_id="r2", text="it's inv 10011", actor=Actor(customer_id=1), history=history
    )
    task = Task("billing_inquiry", {"invoice_number": "INV-10011"})

    assert not isinstance(ground_task(task, request), Task)
    assert ground_task(task, own) == task


def test_public_replies_keep_only_what_the_owner_wrote() -> None:
    reply = (
        "I've opened billing case *CASE-000001* to investigate invoice INV-10011 ($154.00). "
        "Order ORD-10012 ships with tracking 1Z0120000012, 30 USD refunded, 15.00 due."
    )

    shown = withhold_account_details(reply, "INV-10011 looks too high, I paid $154.00")

    assert "CASE-000001" in shown and "INV-10011" in shown and "$154.00" in shown
    assert "ORD-10012" not in shown and "1Z0120000012" not in shown and "30 USD" not in shown
    assert "15.00" not in shown and "2026-12-10" in withhold_account_details("by 2026-12-10", "")
    assert shown.count(WITHHELD) == 4 and shown.endswith(PUBLIC_NOTE)
    assert withhold_account_details("Your order is on its way.", "") == (
        "Your order is on its way."
    )


def test_which_channels_count_as_public() -> None:
    assert is_public(channel_message("hi"))
    assert is_public(mention_event("hi", channel="C0GENERAL"))  # no channel_type: unknown
    assert not is_public(dm_event("hi"))
    assert not is_public({**channel_message("hi"), "channel_type": "group"})
    assert not is_public({**mention_event("hi"), "channel": "D0CUST"})
