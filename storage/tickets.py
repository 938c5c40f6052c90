"""Ticket lifecycle for the support team: claim, hand back, resolve, reopen, escalate.

A ticket is one support conversation (`storage.conversations` creates it and records its
turns). This module owns what happens to it afterwards:

    open ──bot answers──> waiting ──customer writes──> (bot answers) ──> waiting …
      │                      │
      └──── escalate ────────┴──> escalated ──claim──> claimed ──resolve──> resolved
                                      │                   │                    │
                          hand back ──┘        unclaim ───┘         reopen ────┘
                          (-> open)            (-> open)            (-> open)

- `open`: new, or handed (back) to the bot; `waiting`: the bot answered, the customer has
  the next word; `escalated`: a person should take over; `claimed`: an agent has it;
  `resolved`: done (a new customer message in the thread brings it back to the bot).
- While a ticket is `escalated` or `claimed` (`HUMAN_STATUSES`) the bot does not answer
  in its thread; it records the customer's turns only.

Every transition is one conditional `UPDATE ... WHERE <expected state>`, so it is atomic
in the database on SQLite and PostgreSQL alike: of two agents pressing Claim at the same
instant exactly one row update matches `status NOT IN ('claimed', 'resolved')`, and the
other is told who won.
No read-modify-write happens in Python except in `record_outcome`, which locks the row.

`TicketInfo` is a plain snapshot of a row: views and the CLI render it without a session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.elements import ColumnElement

from storage.conversations import ThreadKey
from storage.models import (
    ConversationTurn,
    Order,
    OrderLine,
    Product,
    ReturnAuthorization,
    Ticket,
    TraceRun,
    utcnow,
)

OPEN = "open"
WAITING = "waiting"
ESCALATED = "escalated"
CLAIMED = "claimed"
RESOLVED = "resolved"
STATUSES: tuple[str, ...] = (OPEN, WAITING, ESCALATED, CLAIMED, RESOLVED)
STATUS_LABELS = {
    OPEN: "Open",
    WAITING: "Waiting on customer",
    ESCALATED: "Escalated",
    CLAIMED: "Claimed",
    RESOLVED: "Resolved",
}
HUMAN_STATUSES = frozenset({ESCALATED, CLAIMED})  # a person has it: the bot stays quiet
ACTIVE_STATUSES: tuple[str, ...] = (OPEN, WAITING, ESCALATED, CLAIMED)

MAX_REASON_CHARS = 500
MAX_SUMMARY_CHARS = 300

# While a triage card is being posted, `triage_ts` holds a reservation marker instead of a
# message ts ("p:<token>:<unix seconds>"), so two jobs never post two cards for one ticket.
CARD_MARKER_PREFIX = "p:"


@dataclass(frozen=True)
class TicketInfo:
    """A ticket row as plain data."""

    id: int
    number: str
    team_id: str
    channel_id: str
    thread_ts: str
    slack_user_id: str
    customer_id: int | None
    intents: list[str]
    tasks: list[dict[str, Any]]
    actions: list[str]
    summary: str
    status: str
    escalation_reason: str | None
    assignee: str | None
    triage_channel: str | None
    triage_ts: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Ticket) -> TicketInfo:
        return cls(
            id=row.id,
            number=row.ticket_number or f"T-{row.id:05d}",
            team_id=row.team_id,
            channel_id=row.channel_id,
            thread_ts=row.thread_ts,
            slack_user_id=row.slack_user_id,
            customer_id=row.customer_id,
            intents=[str(intent) for intent in row.intents or []],
            tasks=[dict(task) for task in row.tasks or [] if isinstance(task, dict)],
            actions=[str(action) for action in row.actions or []],
            summary=row.summary or "",
            status=row.status,
            escalation_reason=row.escalation_reason,
            assignee=row.assignee,
            triage_channel=row.triage_channel,
            triage_ts=row.triage_ts,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @property
    def version(self) -> str:
        """Changes with every update of the ticket (dedupe key of card refreshes)."""
        return str(int(self.updated_at.timestamp() * 1_000_000))

    @property
    def bot_paused(self) -> bool:
        return self.status in HUMAN_STATUSES

    @property
    def card_ts(self) -> str | None:
        """The triage card's message ts, when the card exists (not while it is reserved)."""
        if self.triage_ts is None or is_card_marker(self.triage_ts):
            return None
        return self.triage_ts

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class Transition:
    """The result of a state change: `ok`, and the ticket as it is now.

    When not `ok`, `reason` says why: `not_found`, `claimed` (someone else holds it: see
    `ticket.assignee`), `yours` (the caller already holds it), `resolved`, `not_claimed`,
    `already` (already in the target state), `busy` (a person already has it).
    """

    ok: bool
    ticket: TicketInfo | None
    reason: str = ""


@dataclass(frozen=True)
class OrderSummary:
    number: str
    status: str
    carrier: str | None
    tracking_number: str | None
    eta: dt.date | None
    items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReturnSummary:
    rma_number: str
    product: str
    order_number: str
    reason: str
    status: str


@dataclass(frozen=True)
class CustomerRecords:
    orders: list[OrderSummary]
    returns: list[ReturnSummary]


def is_card_marker(value: str | None) -> bool:
    return bool(value) and str(value).startswith(CARD_MARKER_PREFIX)


def card_marker(token: str, at: float) -> str:
    """A reservation marker; fits the 32-character `triage_ts` column."""
    return f"{CARD_MARKER_PREFIX}{token[:18]}:{int(at)}"


def card_marker_time(marker: str) -> float | None:
    """When a marker was set (unix seconds), or None if `marker` is not one."""
    if not is_card_marker(marker):
        return None
    try:
        return float(marker.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0.0


def card_marker_token(marker: str) -> str:
    return marker[len(CARD_MARKER_PREFIX) :].rsplit(":", 1)[0]


class TicketStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- reading ------------------------------------------------------------------------

    async def get(self, ticket_id: int) -> TicketInfo | None:
        async with self._sessions() as session:
            row = await session.get(Ticket, ticket_id)
            return TicketInfo.of(row) if row is not None else None

    async def by_number(self, number: str) -> TicketInfo | None:
        async with self._sessions() as session:
            row = await session.scalar(select(Ticket).where(Ticket.ticket_number == number))
            return TicketInfo.of(row) if row is not None else None

    async def find(self, key: ThreadKey) -> TicketInfo | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(Ticket).where(
                    Ticket.team_id == key.team_id,
                    Ticket.channel_id == key.channel_id,
                    Ticket.thread_ts == key.thread_ts,
                )
            )
            return TicketInfo.of(row) if row is not None else None

    async def list_tickets(
        self, statuses: Collection[str] | None = None, *, limit: int = 50
    ) -> list[TicketInfo]:
        """Tickets in `statuses` (all when None), most recently updated first."""
        query = select(Ticket).where(Ticket.ticket_number.is_not(None))
        if statuses is not None:
            query = query.where(Ticket.status.in_(list(statuses)))
        query = query.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit)
        async with self._sessions() as session:
            return [TicketInfo.of(row) for row in (await session.scalars(query)).all()]

    async def for_user(
        self, team_id: str, slack_user_id: str, *, limit: int = 20
    ) -> list[TicketInfo]:
        """The tickets a Slack user opened, most recently updated first."""
        query = (
            select(Ticket)
            .where(
                Ticket.team_id == team_id,
                Ticket.slack_user_id == slack_user_id,
                Ticket.ticket_number.is_not(None),
            )
            .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [TicketInfo.of(row) for row in (await session.scalars(query)).all()]

    async def latest_turn(self, ticket_id: int, role: str = "customer") -> str | None:
        """The text of the ticket's latest turn by `role` (customer, bot or agent)."""
        query = (
            select(ConversationTurn.text)
            .where(ConversationTurn.ticket_id == ticket_id, ConversationTurn.role == role)
            .order_by(ConversationTurn.id.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            return await session.scalar(query)

    async def latest_run_ids(self, ticket_id: int, *, limit: int = 3) -> list[str]:
        """The ids of the ticket's latest stored trace runs, newest first.

        The runs the bot's turns point at (`ConversationTurn.run_id`), plus runs that left
        no bot turn (a provider outage) but name the ticket in their input and belong to
        the ticket's customer. Run ids without a stored trace are left out.
        """
        async with self._sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return []
            answered = (
                select(TraceRun.id, TraceRun.created_at)
                .join(ConversationTurn, ConversationTurn.run_id == TraceRun.id)
                .where(ConversationTurn.ticket_id == ticket_id)
                .distinct()
                .order_by(TraceRun.created_at.desc())
                .limit(limit)
            )
            found = {run_id: at for run_id, at in (await session.execute(answered)).all()}
            if ticket.ticket_number:
                unanswered = (
                    select(TraceRun.id, TraceRun.created_at)
                    .where(
                        TraceRun.slack_user_id == ticket.slack_user_id,
                        TraceRun.input["ticket"].as_string() == ticket.ticket_number,
                    )
                    .order_by(TraceRun.created_at.desc())
                    .limit(limit)
                )
                found.update(
                    (run_id, at) for run_id, at in (await session.execute(unanswered)).all()
                )
        newest = sorted(found.items(), key=lambda item: (item[1], item[0]), reverse=True)
        return [run_id for run_id, _ in newest[:limit]]

    async def counts(self) -> dict[str, int]:
        """How many tickets are in each status (every status present, zeros included)."""
        query = select(Ticket.status, func.count()).group_by(Ticket.status)
        async with self._sessions() as session:
            found = {str(status): int(n) for status, n in (await session.execute(query)).all()}
        return {status: found.get(status, 0) for status in STATUSES} | found

    # --- the agents' transitions (each one conditional UPDATE) --------------------------

    async def claim(self, ticket_id: int, agent: str) -> Transition:
        """Take the ticket; exactly one of several concurrent claims wins."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status.not_in([CLAIMED, RESOLVED])],
            status=CLAIMED,
            assignee=agent,
        )
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        if current is None:
            return Transition(False, None, "not_found")
        if current.status == RESOLVED:
            return Transition(False, current, "resolved")
        return Transition(False, current, "yours" if current.assignee == agent else "claimed")

    async def unclaim(self, ticket_id: int, agent: str) -> Transition:
        """The holder lets go: the ticket goes back to the bot (`open`)."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status == CLAIMED, Ticket.assignee == agent],
            status=OPEN,
            assignee=None,
            escalation_reason=None,
        )
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        if current is None:
            return Transition(False, None, "not_found")
        if current.status == CLAIMED:
            return Transition(False, current, "claimed")
        return Transition(False, current, "not_claimed")

    async def hand_back(self, ticket_id: int) -> Transition:
        """An escalated ticket nobody claimed goes back to the bot (`open`)."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status == ESCALATED],
            status=OPEN,
            assignee=None,
            escalation_reason=None,
        )
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        if current is None:
            return Transition(False, None, "not_found")
        return Transition(False, current, "claimed" if current.status == CLAIMED else "already")

    async def resolve(self, ticket_id: int, agent: str) -> Transition:
        """Close the ticket (any agent may); `assignee` records who resolved it."""
        changed = await self._transition(
            ticket_id, [Ticket.status != RESOLVED], status=RESOLVED, assignee=agent
        )
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        return Transition(False, current, "already" if current else "not_found")

    async def reopen(self, ticket_id: int) -> Transition:
        """A resolved ticket becomes `open` again, unassigned (the bot answers it)."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status == RESOLVED],
            status=OPEN,
            assignee=None,
            escalation_reason=None,
        )
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        return Transition(False, current, "already" if current else "not_found")

    async def escalate(self, ticket_id: int, reason: str) -> Transition:
        """Flag the ticket for a person, unless a person already has it."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status.not_in(list(HUMAN_STATUSES))],
            status=ESCALATED,
            assignee=None,
            escalation_reason=reason[:MAX_REASON_CHARS],
        )
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        return Transition(False, current, "busy" if current else "not_found")

    # --- the bot's side -----------------------------------------------------------------

    async def record_outcome(
        self,
        ticket_id: int,
        *,
        intents: list[str] | None = None,
        tasks: list[dict[str, Any]] | None = None,
        actions: list[str] | None = None,
        summary: str | None = None,
        escalation_reason: str | None = None,
    ) -> TicketInfo:
        """Merge what one answered turn found, and move the status on.

        The status becomes `escalated` (with the reason) or `waiting` — unless a person
        took the ticket while the bot was answering: an agent's claim is never undone
        by the bot. The row is locked (`FOR UPDATE`) for the read-merge-write.
        """
        async with self._sessions() as session, session.begin():
            ticket = await session.get_one(Ticket, ticket_id, with_for_update=True)
            if intents:
                ticket.intents = list(dict.fromkeys([*ticket.intents, *intents]))
            if tasks:
                ticket.tasks = [*ticket.tasks, *[t for t in tasks if t not in ticket.tasks]]
            if actions:
                ticket.actions = list(dict.fromkeys([*ticket.actions, *actions]))
            if summary:
                ticket.summary = summary[:MAX_SUMMARY_CHARS]
            if ticket.status not in HUMAN_STATUSES:
                if escalation_reason is not None:
                    ticket.status = ESCALATED
                    ticket.assignee = None
                    ticket.escalation_reason = escalation_reason[:MAX_REASON_CHARS]
                else:
                    ticket.status = WAITING
            ticket.updated_at = utcnow()
            await session.flush()
            return TicketInfo.of(ticket)

    async def touch(self, ticket_id: int) -> TicketInfo | None:
        """Mark new activity (a customer's turn while a person has the ticket)."""
        return await self._transition(ticket_id, [])

    # --- the triage card's message ------------------------------------------------------

    async def reserve_card(self, ticket_id: int, expected: str | None, marker: str) -> bool:
        """Compare-and-set `triage_ts` from `expected` (None: no card yet) to `marker`."""
        condition = Ticket.triage_ts.is_(None) if expected is None else Ticket.triage_ts == expected
        return await self._set_card(ticket_id, condition, triage_ts=marker)

    async def attach_card(self, ticket_id: int, marker: str, channel: str, ts: str) -> bool:
        """Replace our reservation by the posted card's ts (False: we lost the marker)."""
        return await self._set_card(
            ticket_id, Ticket.triage_ts == marker, triage_channel=channel, triage_ts=ts
        )

    async def detach_card(self, ticket_id: int, ts: str) -> bool:
        """Forget a card that is gone from Slack, so the next refresh posts a new one."""
        return await self._set_card(ticket_id, Ticket.triage_ts == ts, triage_ts=None)

    # --- helpers ------------------------------------------------------------------------

    async def _transition(
        self, ticket_id: int, conditions: list[ColumnElement[bool]], **values: Any
    ) -> TicketInfo | None:
        """One conditional UPDATE; the updated ticket, or None when nothing matched."""
        statement = (
            update(Ticket)
            .where(Ticket.id == ticket_id, *conditions)
            .values(**values, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement)
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = await session.get(Ticket, ticket_id, populate_existing=True)
            return TicketInfo.of(row) if row is not None else None

    async def _set_card(
        self, ticket_id: int, condition: ColumnElement[bool], **values: Any
    ) -> bool:
        # Card bookkeeping is not a change of the ticket: keep `updated_at` (the version).
        statement = (
            update(Ticket)
            .where(Ticket.id == ticket_id, condition)
            .values(**values, updated_at=Ticket.updated_at)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement)
            return getattr(result, "rowcount", 0) == 1


async def customer_records(
    sessions: async_sessionmaker[AsyncSession], customer_id: int, *, limit: int = 10
) -> CustomerRecords:
    """A customer's latest orders and returns, for their App Home."""
    async with sessions() as session:
        orders = (
            await session.scalars(
                select(Order)
                .where(Order.customer_id == customer_id)
                .options(selectinload(Order.lines).selectinload(OrderLine.product))
                .order_by(Order.id.desc())
                .limit(limit)
            )
        ).all()
        rows = (
            await session.execute(
                select(ReturnAuthorization, Order.order_number, Product.name)
                .join(Order, Order.id == ReturnAuthorization.order_id)
                .join(Product, Product.id == ReturnAuthorization.product_id)
                .where(
                    ReturnAuthorization.customer_id == customer_id,
                    ReturnAuthorization.rma_number.is_not(None),
                )
                .order_by(ReturnAuthorization.id.desc())
                .limit(limit)
            )
        ).all()
    return CustomerRecords(
        orders=[
            OrderSummary(
                number=order.order_number,
                status=order.status,
                carrier=order.carrier,
                tracking_number=order.tracking_number,
                eta=order.eta,
                items=[line.product.name for line in order.lines],
            )
            for order in orders
        ],
        returns=[
            ReturnSummary(
                rma_number=rma.rma_number or "",
                product=product,
                order_number=order_number,
                reason=rma.reason,
                status=rma.status,
            )
            for rma, order_number, product in rows
        ],
    )


__all__ = [
    "ACTIVE_STATUSES",
    "CLAIMED",
    "ESCALATED",
    "HUMAN_STATUSES",
    "OPEN",
    "RESOLVED",
    "STATUSES",
    "STATUS_LABELS",
    "WAITING",
    "CustomerRecords",
    "OrderSummary",
    "ReturnSummary",
    "TicketInfo",
    "TicketStore",
    "Transition",
    "card_marker",
    "card_marker_time",
    "card_marker_token",
    "customer_records",
    "is_card_marker",
]
