"""Read-only ticket queries, and a customer's orders and returns, for the views and the CLI.

`TicketQueries` holds the reads: one ticket (by id, number or thread), lists for the App
Home and `supportbot tickets`, counts per status, the customer's latest turn for the
triage card and the latest traced runs for the Trace modal. Each read opens its own
session and returns `TicketInfo` snapshots or plain values, never ORM rows.
`storage.tickets.TicketStore` extends it with the transitions, so callers keep one store
object; the reads live here so the transitions module is about changing state only.

`customer_records` is the App Home's other read: the customer's latest orders and returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.briefs import StoredBrief, get_brief
from storage.conversations import ThreadKey
from storage.db import read_only
from storage.feedback import VoteCounts, ticket_votes
from storage.models import (
    ConversationTurn,
    Order,
    OrderLine,
    Product,
    ReturnAuthorization,
    Ticket,
    TraceRun,
)
from storage.ticket_info import HUMAN_STATUSES, STATUSES, TicketInfo


class TicketQueries:
    """The reads of `TicketStore`: tickets as `TicketInfo` snapshots, counts, run ids."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, ticket_id: int) -> TicketInfo | None:
        async with self._sessions() as session:
            row = await session.get(Ticket, ticket_id)
            return TicketInfo.of(row) if row is not None else None

    async def by_card(self, channel: str, ts: str) -> TicketInfo | None:
        """The ticket whose triage card is the message `ts` in `channel`."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(Ticket).where(Ticket.triage_channel == channel, Ticket.triage_ts == ts)
            )
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
        self, statuses: Collection[str] | None = None, *, limit: int = 50, breached: bool = False
    ) -> list[TicketInfo]:
        """Tickets in `statuses` (all when None), most recently updated first; with
        `breached`, only those with an SLA target flagged as breached."""
        query = select(Ticket).where(Ticket.ticket_number.is_not(None))
        if statuses is not None:
            query = query.where(Ticket.status.in_(list(statuses)))
        if breached:
            query = query.where(
                Ticket.first_response_breached_at.is_not(None)
                | Ticket.resolution_breached_at.is_not(None)
            )
        query = query.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit)
        async with self._sessions() as session:
            return [TicketInfo.of(row) for row in (await session.scalars(query)).all()]

    async def sla_running(
        self, started_before: dt.datetime, *, after_id: int = 0, limit: int = 500
    ) -> list[TicketInfo]:
        """Tickets a person has whose SLA clock started before `started_before` and has a
        target not yet flagged: the only ones the SLA check can find breached. A page of
        `limit` by id after `after_id`: the check reads them all, page by page."""
        query = (
            select(Ticket)
            .where(
                Ticket.id > after_id,
                Ticket.status.in_(list(HUMAN_STATUSES)),
                Ticket.sla_started_at <= started_before,
                Ticket.first_response_breached_at.is_(None)
                | Ticket.resolution_breached_at.is_(None),
            )
            .order_by(Ticket.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            await read_only(session)  # every worker, every minute: never the write lock
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

    async def brief(self, ticket_id: int) -> StoredBrief | None:
        """The AI brief of the ticket, once escalated (`storage.briefs`)."""
        return await get_brief(self._sessions, ticket_id)

    async def votes(self, ticket_id: int) -> VoteCounts:
        """Feedback on the bot's replies in this ticket (`storage.feedback`)."""
        return await ticket_votes(self._sessions, ticket_id)

    async def latest_turn(self, ticket_id: int, role: str = "customer") -> str | None:
        """The text of the ticket's latest turn by `role` (customer, bot or agent)."""
        found = await self.latest_turn_at(ticket_id, role)
        return found[1] if found else None

    async def latest_turn_at(
        self, ticket_id: int, role: str = "customer"
    ) -> tuple[str, str] | None:
        """(message ts, text) of the ticket's latest turn by `role`."""
        query = (
            select(ConversationTurn.message_ts, ConversationTurn.text)
            .where(ConversationTurn.ticket_id == ticket_id, ConversationTurn.role == role)
            .order_by(ConversationTurn.id.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return (str(row[0]), str(row[1])) if row is not None else None

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
    "CustomerRecords",
    "OrderSummary",
    "ReturnSummary",
    "TicketQueries",
    "customer_records",
]
