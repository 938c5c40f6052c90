"""The App Home tab: pure functions from tickets and records to a `home` view.

- Support agents see the counts per status and the tickets that need people: escalated
  (oldest first: they have waited longest), claimed, then the bot's open conversations,
  each with its age, assignee and a link to the customer's thread.
- Customers see their own tickets and their orders and returns.

Slack allows 100 blocks in a home view; every list is capped so the view always fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from bot.blocks import MAX_VIEW_BLOCKS, Block, View, context, divider, escape, header, home, section
from bot.triage.views import (
    STATUS_EMOJI,
    age,
    assignee_text,
    is_direct_message,
    label,
    thread_url_fallback,
)
from storage.ticket_info import (
    CLAIMED,
    ESCALATED,
    OPEN,
    RESOLVED,
    STATUS_LABELS,
    STATUSES,
    WAITING,
    TicketInfo,
)
from storage.ticket_queries import CustomerRecords

MAX_HOME_BLOCKS = MAX_VIEW_BLOCKS
MAX_TICKETS_PER_SECTION = 15
MAX_CUSTOMER_TICKETS = 10
MAX_RECORDS = 10


def ticket_line(ticket: TicketInfo, now: dt.datetime, *, for_agent: bool) -> Block:
    """One ticket: number (linked to its thread), status, age, assignee, summary."""
    emoji = STATUS_EMOJI.get(ticket.status, "")
    private = for_agent and is_direct_message(ticket)  # agents cannot open a customer's DM
    url = (
        None
        if private
        else thread_url_fallback(ticket.team_id, ticket.channel_id, ticket.thread_ts)
    )
    number = escape(ticket.number)
    name = f"<{url}|{number}>" if url else f"*{number}*"
    parts = [f"{emoji} {name}", escape(ticket.status_label), f"{age(now - ticket.created_at)} old"]
    if for_agent:
        parts.append(assignee_text(ticket))
        if ticket.slack_user_id:
            parts.append(f"from <@{ticket.slack_user_id}>")
        if ticket.status != RESOLVED and any(ticket.sla_breaches.values()):
            parts.append(":red_circle: SLA breached")
    else:
        parts.append(f"updated {age(now - ticket.updated_at)} ago")
    summary = escape(ticket.summary) if ticket.summary else "_new conversation_"
    lines = [" · ".join(parts), summary]
    if for_agent and ticket.status == ESCALATED and ticket.escalation_reason:
        lines.append(f":warning: {escape(ticket.escalation_reason)}")
    elif ticket.intents:
        lines.append(escape(", ".join(label(i) for i in ticket.intents)))
    return section("\n".join(lines))


def counts_line(counts: Mapping[str, int]) -> str:
    return " · ".join(
        f"{STATUS_EMOJI.get(status, '')} {STATUS_LABELS[status]}: *{counts.get(status, 0)}*"
        for status in STATUSES
    )


def agent_home(tickets: Sequence[TicketInfo], counts: Mapping[str, int], now: dt.datetime) -> View:
    """The home of a support agent: counts, then escalated, claimed and open tickets."""
    blocks: list[Block] = [
        header("Support tickets"),
        context(counts_line(counts)),
        divider(),
    ]
    sections = [
        (":rotating_light: Escalated: waiting for a person", (ESCALATED,), True),
        (":raising_hand: Claimed", (CLAIMED,), False),
        (":large_blue_circle: Open with the bot", (OPEN, WAITING), False),
    ]
    for title, statuses, oldest_first in sections:
        chosen = [t for t in tickets if t.status in statuses]
        chosen.sort(key=lambda t: t.updated_at, reverse=not oldest_first)
        blocks.append(section(f"*{title}* ({len(chosen)})"))
        if not chosen:
            blocks.append(context("Nothing here."))
        for ticket in chosen[:MAX_TICKETS_PER_SECTION]:
            blocks.append(ticket_line(ticket, now, for_agent=True))
        if len(chosen) > MAX_TICKETS_PER_SECTION:
            more = len(chosen) - MAX_TICKETS_PER_SECTION
            blocks.append(context(f"… and {more} more: `supportbot tickets` lists them all."))
        blocks.append(divider())
    blocks.append(context(f"Resolved so far: {counts.get(RESOLVED, 0)} · as of {_stamp(now)}"))
    return home(blocks)


def customer_home(
    tickets: Sequence[TicketInfo], records: CustomerRecords, now: dt.datetime
) -> View:
    """The home of a customer: their conversations, orders and returns."""
    blocks: list[Block] = [
        header("Your support"),
        context("Write to me in a direct message any time: orders, returns, invoices."),
        divider(),
        section(f"*Your tickets* ({len(tickets)})"),
    ]
    if not tickets:
        blocks.append(context("No conversations yet."))
    for ticket in list(tickets)[:MAX_CUSTOMER_TICKETS]:
        blocks.append(ticket_line(ticket, now, for_agent=False))
    blocks += [divider(), section(f"*Your orders* ({len(records.orders)})")]
    if not records.orders:
        blocks.append(context("No orders."))
    for order in records.orders[:MAX_RECORDS]:
        parts = [f"*{escape(order.number)}*", escape(order.status)]
        if order.carrier:
            tracking = f" {escape(order.tracking_number)}" if order.tracking_number else ""
            parts.append(f"{escape(order.carrier)}{tracking}")
        if order.eta:
            parts.append(f"ETA {order.eta.isoformat()}")
        items = escape(", ".join(order.items))
        blocks.append(section(" · ".join(parts) + (f"\n{items}" if items else "")))
    blocks += [divider(), section(f"*Your returns* ({len(records.returns)})")]
    if not records.returns:
        blocks.append(context("No returns."))
    for rma in records.returns[:MAX_RECORDS]:
        text = (
            f"*{escape(rma.rma_number)}* · {escape(rma.status)} · {escape(rma.product)} "
            f"from {escape(rma.order_number)}\n_{escape(rma.reason)}_"
        )
        blocks.append(section(text))
    blocks.append(context(f"As of {_stamp(now)}"))
    return home(blocks)


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["agent_home", "counts_line", "customer_home", "ticket_line"]
