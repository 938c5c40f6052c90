"""Triage cards and App Home views: pure Block Kit, checked without Slack."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from bot.home.views import MAX_HOME_BLOCKS, agent_home, customer_home
from bot.messages.views import TALK_TO_HUMAN_ACTION, reply_blocks
from bot.triage.views import (
    CLAIM_ACTION,
    HAND_BACK_ACTION,
    OPEN_THREAD_ACTION,
    REASSIGN_ACTION,
    REOPEN_ACTION,
    RESOLVE_ACTION,
    TRACE_ACTION,
    UNCLAIM_ACTION,
    age,
    card_blocks,
    card_text,
    escalation_notice,
    format_task,
    refusal_text,
    thread_url_fallback,
    without_handoff_button,
)
from bot.triage.views import (
    REPLY_TO_CUSTOMER_ACTION as REPLY_ACTION,
)
from pipelines.support.contracts import SupportReply
from storage.ticket_info import (
    CLAIMED,
    ESCALATED,
    OPEN,
    RESOLVED,
    STATUSES,
    WAITING,
    TicketInfo,
)
from storage.ticket_queries import CustomerRecords, OrderSummary, ReturnSummary

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def make_ticket(**changes: Any) -> TicketInfo:
    values: dict[str, Any] = {
        "id": 12,
        "number": "T-00012",
        "team_id": "T1",
        "channel_id": "D0CUST",
        "thread_ts": "1700000000.000100",
        "slack_user_id": "U0CUST",
        "customer_id": 1,
        "intents": ["billing_inquiry", "product_return"],
        "tasks": [
            {"kind": "billing_inquiry", "invoice_number": "INV-10011"},
            {"kind": "product_return", "product_name": "USB-C Hub", "reason": "incompatible"},
        ],
        "actions": ["CASE-000001 opened", "RMA-000001 created"],
        "summary": "invoice_number=INV-10011; CASE-000001 opened",
        "status": WAITING,
        "escalation_reason": None,
        "assignee": None,
        "triage_channel": None,
        "triage_ts": None,
        "created_at": NOW - dt.timedelta(hours=3),
        "updated_at": NOW - dt.timedelta(minutes=5),
    }
    values.update(changes)
    return TicketInfo(**values)


def text_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


@pytest.mark.parametrize(
    ("status", "assignee", "expected"),
    [
        (OPEN, None, [CLAIM_ACTION, RESOLVE_ACTION, OPEN_THREAD_ACTION]),
        (WAITING, None, [CLAIM_ACTION, RESOLVE_ACTION, OPEN_THREAD_ACTION]),
        (
            ESCALATED,
            None,
            [
                CLAIM_ACTION,
                HAND_BACK_ACTION,
                REPLY_ACTION,
                REASSIGN_ACTION,
                RESOLVE_ACTION,
                OPEN_THREAD_ACTION,
            ],
        ),
        (
            CLAIMED,
            "U0AGENT",
            [UNCLAIM_ACTION, REPLY_ACTION, REASSIGN_ACTION, RESOLVE_ACTION, OPEN_THREAD_ACTION],
        ),
        (RESOLVED, "U0AGENT", [REOPEN_ACTION, OPEN_THREAD_ACTION]),
    ],
)
def test_card_buttons_follow_the_status(
    status: str, assignee: str | None, expected: list[str]
) -> None:
    ticket = make_ticket(status=status, assignee=assignee, channel_id="C0SUPPORT")
    blocks = card_blocks(ticket, "https://x.test/t")
    assert action_ids(blocks) == [*expected, TRACE_ACTION]  # Trace: on every card
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert {e.get("value") for e in buttons if e["type"] == "button"} == {"T-00012"}
    [link] = [e for b in blocks if b["type"] == "actions" for e in b["elements"] if "url" in e]
    assert link["url"] == "https://x.test/t"


def test_card_shows_tasks_actions_assignee_and_reason() -> None:
    ticket = make_ticket(
        status=CLAIMED, assignee="U0AGENT", escalation_reason="customer asked for a person"
    )
    shown = text_of(card_blocks(ticket))
    for expected in (
        "*T-00012*",
        "from <@U0CUST>",
        "Billing inquiry — INV-10011",
        "Product return — USB-C Hub (incompatible)",
        "CASE-000001 opened",
        "RMA-000001 created",
        "<@U0AGENT>",
        "customer asked for a person",
        "billing inquiry, product return",
        "a direct message",
        "<!date^",
    ):
        assert expected in shown, expected
    assert OPEN_THREAD_ACTION not in action_ids(card_blocks(ticket))  # no link, no button
    resolved = text_of(card_blocks(make_ticket(status=RESOLVED, assignee="U0AGENT")))
    assert "resolved by <@U0AGENT>" in resolved
    assert "_unassigned_" in text_of(card_blocks(make_ticket(status=ESCALATED, assignee="UOLD")))
    assert "<#C0SUPPORT>" in text_of(card_blocks(make_ticket(channel_id="C0SUPPORT")))


def test_a_dm_card_quotes_the_customer_and_has_no_thread_link() -> None:
    blocks = card_blocks(
        make_ticket(), "https://x.test/dm", latest="where is <!here> " + "x " * 400
    )
    shown = text_of(blocks)
    assert OPEN_THREAD_ACTION not in action_ids(blocks)  # agents cannot open a private DM
    assert "contact the customer directly" in shown
    assert "*Latest message*\\n>where is &lt;!here&gt; x x" in shown and "<!here>" not in shown
    [quote] = [b for b in blocks if "Latest message" in b.get("text", {}).get("text", "")]
    assert len(quote["text"]["text"]) < 600


def test_customer_and_llm_text_is_escaped_on_cards() -> None:
    hostile = make_ticket(
        summary="<!channel> click <https://evil.test|here>",
        tasks=[{"kind": "product_return", "product_name": "<@U0BOSS>", "reason": "a & b"}],
        actions=["<!here> RMA"],
        status=ESCALATED,
        escalation_reason="<!everyone>",
    )
    shown = text_of(card_blocks(hostile)) + card_text(hostile)
    for raw in ("<!channel>", "<https://evil.test", "<@U0BOSS>", "<!here>", "<!everyone>"):
        assert raw not in shown
    assert "&lt;!channel&gt;" in shown and "a &amp; b" in shown
    notice = escalation_notice(hostile, ["U0A", "U0B"])
    assert (
        notice.startswith(":rotating_light: <@U0A> <@U0B> T-00012") and "<!everyone>" not in notice
    )
    assert "<!here>" in escalation_notice(hostile, [])  # nobody configured: the channel


def test_long_lists_are_capped() -> None:
    ticket = make_ticket(actions=[f"RMA-{i:06d} created" for i in range(40)])
    [actions] = [
        b for b in card_blocks(ticket) if "Actions taken" in b.get("text", {}).get("text", "")
    ]
    assert "… and 28 more" in actions["text"]["text"]
    assert len(actions["text"]["text"]) <= 3000


def test_small_helpers() -> None:
    assert [age(dt.timedelta(seconds=s)) for s in (5, 300, 7200, 200_000)] == [
        "just now",
        "5m",
        "2h",
        "2d",
    ]
    assert format_task({"kind": "status_update", "order_id": "ORD-1"}) == "Status update — ORD-1"
    assert format_task({"kind": "mystery"}) == "Mystery"
    assert (
        thread_url_fallback("T1", "C1", "1.2") == "https://app.slack.com/client/T1/C1/thread/C1-1.2"
    )
    assert thread_url_fallback("", "C1", "1.2") is None
    claimed = make_ticket(status=CLAIMED, assignee="U0AGENT")
    assert (
        refusal_text("claimed", "T-00012", claimed) == "T-00012 is already claimed by <@U0AGENT>."
    )
    assert refusal_text("already", "T-00012", claimed) == "T-00012 is already claimed."
    assert refusal_text("odd", "T-00012", None) == "Nothing changed on T-00012."


def test_the_pressed_handoff_button_becomes_a_note() -> None:
    reply = SupportReply(
        text="Your order shipped.", ticket_number="T-00012", run_id="r", provider="offline"
    )
    blocks = reply_blocks(reply)
    assert TALK_TO_HUMAN_ACTION in action_ids(blocks)
    changed = without_handoff_button(blocks, "T-00012")
    assert TALK_TO_HUMAN_ACTION not in action_ids(changed)
    note = next(i for i, block in enumerate(blocks) if block["type"] == "actions")
    assert changed[:note] == blocks[:note] and changed[note + 1 :] == blocks[note + 1 :]
    assert "You asked for a person" in changed[note]["elements"][0]["text"]


def test_agent_home_lists_tickets_by_urgency_with_counts() -> None:
    tickets = [
        make_ticket(id=1, number="T-00001", status=ESCALATED, escalation_reason="low confidence",
                    updated_at=NOW - dt.timedelta(minutes=1)),
        make_ticket(id=2, number="T-00002", status=ESCALATED, escalation_reason="urgent",
                    updated_at=NOW - dt.timedelta(hours=2)),
        make_ticket(id=3, number="T-00003", status=CLAIMED, assignee="U0AGENT"),
        make_ticket(id=4, number="T-00004", status=OPEN),
    ]  # fmt: skip
    counts = dict.fromkeys(STATUSES, 0) | {ESCALATED: 2, CLAIMED: 1, OPEN: 1, RESOLVED: 7}
    view = agent_home(tickets, counts, NOW)
    shown = text_of(view["blocks"])
    assert view["type"] == "home"
    assert "Escalated: *2*" in shown and "Resolved: *7*" in shown
    assert shown.index("T-00002") < shown.index("T-00001")  # escalated: oldest first
    assert shown.index("T-00001") < shown.index("T-00003") < shown.index("T-00004")
    assert "3h old" in shown and "<@U0AGENT>" in shown and "low confidence" in shown
    assert "|T-00001>" not in shown  # a customer's DM: no link agents could not open
    channel = dataclasses.replace(tickets[0], channel_id="C0SUPPORT")
    linked = text_of(agent_home([channel], counts, NOW)["blocks"])
    assert (
        "https://app.slack.com/client/T1/C0SUPPORT/thread/C0SUPPORT-1700000000.000100|T-00001"
        in linked
    )


def test_home_views_fit_in_slacks_block_limit() -> None:
    many = [
        dataclasses.replace(make_ticket(), id=i, number=f"T-{i:05d}", status=STATUSES[i % 4])
        for i in range(300)
    ]
    assert len(agent_home(many, {}, NOW)["blocks"]) <= MAX_HOME_BLOCKS
    records = CustomerRecords(
        orders=[OrderSummary(f"ORD-{i}", "shipped", "UPS", "1Z", None, ["Hub"]) for i in range(50)],
        returns=[
            ReturnSummary(f"RMA-{i}", "Hub", "ORD-1", "broken", "authorized") for i in range(50)
        ],
    )
    assert len(customer_home(many, records, NOW)["blocks"]) <= MAX_HOME_BLOCKS


def test_customer_home_shows_tickets_orders_and_returns() -> None:
    records = CustomerRecords(
        orders=[
            OrderSummary("ORD-10011", "shipped", "UPS", "1Z123", dt.date(2026, 11, 12), ["USB-C Hub"]),
            OrderSummary("ORD-10012", "processing", None, None, dt.date(2026, 11, 15), []),
        ],
        returns=[ReturnSummary("RMA-000001", "USB-C Hub", "ORD-10011", "incompatible", "authorized")],
    )  # fmt: skip
    shown = text_of(customer_home([make_ticket()], records, NOW)["blocks"])
    for expected in (
        "Your tickets* (1)",
        "T-00012",
        "Waiting on customer",
        "updated 5m ago",
        "*ORD-10011* · shipped · UPS 1Z123 · ETA 2026-11-12",
        "USB-C Hub",
        "*ORD-10012* · processing · ETA 2026-11-15",
        "*RMA-000001* · authorized · USB-C Hub from ORD-10011",
    ):
        assert expected in shown, expected
    empty = text_of(customer_home([], CustomerRecords([], []), NOW)["blocks"])
    assert "No conversations yet." in empty and "No orders." in empty and "No returns." in empty


def test_the_card_shows_sla_targets_due_breached_or_met() -> None:
    from storage.sla import FIRST_RESPONSE, RESOLUTION, SlaClockView

    due = NOW + dt.timedelta(hours=1)
    views = [
        SlaClockView(FIRST_RESPONSE, due, -60, None, NOW),
        SlaClockView(RESOLUTION, due, 3 * 3600 + 20 * 60, None, None),
    ]
    ticket = make_ticket(status=ESCALATED, escalation_reason="angry", priority="urgent")
    text = text_of(card_blocks(ticket, sla=views))
    assert "First response SLA breached" in text and f"<!date^{int(due.timestamp())}^" in text
    assert "*Resolution* due" in text and "3h 20m of business time left" in text
    assert ":fire: *urgent*" in text
    met = SlaClockView(FIRST_RESPONSE, due, 600, NOW, None)
    assert "First response* met" in text_of(card_blocks(ticket, sla=[met]))
    assert "SLA" not in text_of(card_blocks(make_ticket()))  # no clock: nothing shown


def test_app_home_flags_a_breached_sla_for_agents_only() -> None:
    from bot.home.views import ticket_line

    breached = make_ticket(status=ESCALATED, escalation_reason="x", first_response_breached_at=NOW)
    assert "SLA breached" in text_of([ticket_line(breached, NOW, for_agent=True)])
    assert "SLA breached" not in text_of([ticket_line(breached, NOW, for_agent=False)])
    assert "SLA breached" not in text_of([ticket_line(make_ticket(), NOW, for_agent=True)])
