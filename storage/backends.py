"""Simulated business systems: billing, returns and orders.

Every call takes the acting customer (`Actor`). A record that is not theirs raises the same
`RecordNotFound` as an id that does not exist, so nobody learns another customer's ids.
Support agents may read any record. Side effects take an idempotency key: the same key
returns the first result and writes nothing new. Case and RMA numbers derive from the row's
primary key, so they are unique by construction.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process, utils
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.db import read_only
from storage.models import BillingCase, Invoice, Order, OrderLine, Product, ReturnAuthorization

PRODUCT_MATCH_CUTOFF = 75.0
CASE_BUSINESS_DAYS = 5
RETURN_ATTEMPTS = 8  # a lost race means another writer committed a unit or this key


class Actor(BaseModel):
    """Who is asking: a customer, or a support agent acting for one."""

    customer_id: int
    slack_user_id: str = ""
    is_agent: bool = False


class RecordNotFound(LookupError):
    """Unknown id, or an id that belongs to someone else: deliberately indistinguishable."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"no {kind} {identifier} found on your account")
        self.kind = kind
        self.identifier = identifier


class InvoiceLineView(BaseModel):
    description: str
    amount_cents: int


class InvoiceView(BaseModel):
    invoice_number: str
    issued_on: dt.date
    status: str
    total_cents: int
    lines: list[InvoiceLineView]


class BillingCaseView(BaseModel):
    case_number: str
    invoice_number: str
    concern: str
    status: str
    eta: dt.date
    replayed: bool = False


class ReturnResult(BaseModel):
    authorized: bool
    product_name: str
    reason: str
    rma_number: str | None = None
    order_number: str | None = None
    instructions: str | None = None
    refusal: str | None = None
    # On refusal: the returns already open for the item, to be named to the customer.
    open_rma_numbers: list[str] = Field(default_factory=list)
    replayed: bool = False


class OrderStatusView(BaseModel):
    order_number: str
    status: str
    carrier: str | None
    tracking_number: str | None
    eta: dt.date | None
    items: list[str]


def normalize_number(prefix: str, raw: str) -> str:
    """'inv 10011', 'INV-10011' and '10011' all become 'INV-10011'."""
    digits = re.sub(r"\D", "", raw)
    return f"{prefix}-{digits}" if digits else raw.strip().upper()


def add_business_days(start: dt.date, days: int) -> dt.date:
    current = start
    while days > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _owned(actor: Actor, customer_id: int) -> bool:
    return actor.is_agent or actor.customer_id == customer_id


def _scoped(actor: Actor, idempotency_key: str) -> str:
    """Idempotency keys are per customer: one customer's key can never replay another's."""
    return f"c{actor.customer_id}:{idempotency_key}"[:200]


class BillingSystem:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _invoice(self, session: AsyncSession, actor: Actor, number: str) -> Invoice:
        number = normalize_number("INV", number)
        invoice = await session.scalar(
            select(Invoice)
            .options(selectinload(Invoice.lines))
            .where(Invoice.invoice_number == number)
        )
        if invoice is None or not _owned(actor, invoice.customer_id):
            raise RecordNotFound("invoice", number)
        return invoice

    async def get_invoice(self, actor: Actor, invoice_number: str) -> InvoiceView:
        async with self._sessions() as session:
            await read_only(session)  # a worker's lookup must not hold SQLite's write lock
            invoice = await self._invoice(session, actor, invoice_number)
            return InvoiceView(
                invoice_number=invoice.invoice_number,
                issued_on=invoice.issued_on,
                status=invoice.status,
                total_cents=invoice.total_cents,
                lines=[
                    InvoiceLineView(description=line.description, amount_cents=line.amount_cents)
                    for line in invoice.lines
                ],
            )

    async def open_case(
        self, actor: Actor, invoice_number: str, concern: str, idempotency_key: str
    ) -> BillingCaseView:
        """Open an investigation of `concern` about an invoice (once per idempotency key)."""
        idempotency_key = _scoped(actor, idempotency_key)
        try:
            async with self._sessions() as session, session.begin():
                existing = await session.scalar(
                    select(BillingCase).where(BillingCase.idempotency_key == idempotency_key)
                )
                if existing is not None:
                    return await self._case_view(session, existing, replayed=True)
                invoice = await self._invoice(session, actor, invoice_number)
                case = BillingCase(
                    idempotency_key=idempotency_key,
                    customer_id=invoice.customer_id,
                    invoice_id=invoice.id,
                    concern=concern[:2000],
                    eta=add_business_days(dt.date.today(), CASE_BUSINESS_DAYS),
                )
                session.add(case)
                await session.flush()
                case.case_number = f"CASE-{case.id:06d}"
                return await self._case_view(session, case)
        except IntegrityError:  # a concurrent call with the same key won the insert
            async with self._sessions() as session:
                winner = await session.scalar(
                    select(BillingCase).where(BillingCase.idempotency_key == idempotency_key)
                )
                if winner is None:
                    raise
                return await self._case_view(session, winner, replayed=True)

    @staticmethod
    async def _case_view(
        session: AsyncSession, case: BillingCase, replayed: bool = False
    ) -> BillingCaseView:
        number = await session.scalar(
            select(Invoice.invoice_number).where(Invoice.id == case.invoice_id)
        )
        return BillingCaseView(
            case_number=case.case_number or "",
            invoice_number=number or "",
            concern=case.concern,
            status=case.status,
            eta=case.eta,
            replayed=replayed,
        )


class ReturnsSystem:
    """Returns: at most one open return per unit of an order line.

    The idempotency key names the request; the stored key adds the order line it matched,
    so a retried job whose model wrote the product differently replays the same RMA. A
    different request for an item whose every unit already has a return is refused with
    the open RMA numbers. The (order line, unit) unique constraint makes both hold under
    concurrency on either database: a writer that loses the race retries and then sees
    the winner's row.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def authorize_return(
        self,
        actor: Actor,
        product_name: str,
        reason: str,
        idempotency_key: str,
        order_number: str | None = None,
    ) -> ReturnResult:
        """Authorise returning a product the customer bought, matched tolerant of typos."""
        for attempt in range(RETURN_ATTEMPTS):
            try:
                async with self._sessions() as session, session.begin():
                    return await self._claim(
                        session, actor, product_name, reason, idempotency_key, order_number
                    )
            except IntegrityError:
                # A concurrent writer took the unit or the key; its row is committed, so
                # the next attempt replays it, takes another unit, or refuses.
                if attempt == RETURN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _claim(
        self,
        session: AsyncSession,
        actor: Actor,
        product_name: str,
        reason: str,
        idempotency_key: str,
        order_number: str | None,
    ) -> ReturnResult:
        lines = await self._matching_lines(session, actor, product_name, order_number)
        if not lines:
            return ReturnResult(
                authorized=False,
                product_name=product_name,
                reason=reason,
                refusal=(
                    f"We could not find '{product_name}' in your orders, so we can't "
                    "authorise a return for it."
                ),
            )
        keys = {line.id: _scoped(actor, f"line{line.id}:{idempotency_key}") for line in lines}
        returns = (
            await session.scalars(
                select(ReturnAuthorization)
                .where(ReturnAuthorization.order_line_id.in_(keys))
                .order_by(ReturnAuthorization.id)
            )
        ).all()
        for existing in returns:
            if existing.idempotency_key == keys[existing.order_line_id]:
                return await self._view(session, existing, replayed=True)
        taken = {(rma.order_line_id, rma.unit) for rma in returns if rma.unit is not None}
        for line in lines:
            free = [u for u in range(1, line.quantity + 1) if (line.id, u) not in taken]
            if free:
                return await self._create(session, line, free[0], reason, keys[line.id])
        open_numbers = [rma.rma_number or "" for rma in returns if rma.unit is not None]
        return ReturnResult(
            authorized=False,
            product_name=lines[0].product.name,
            reason=reason,
            order_number=lines[0].order.order_number,
            open_rma_numbers=open_numbers,
            refusal=already_open_text(lines[0].product.name, open_numbers),
        )

    async def _create(
        self, session: AsyncSession, line: OrderLine, unit: int, reason: str, key: str
    ) -> ReturnResult:
        rma = ReturnAuthorization(
            idempotency_key=key,
            customer_id=line.order.customer_id,
            order_id=line.order_id,
            product_id=line.product_id,
            order_line_id=line.id,
            unit=unit,
            reason=reason[:2000],
        )
        session.add(rma)
        await session.flush()
        rma.rma_number = f"RMA-{rma.id:06d}"
        return await self._view(session, rma)

    async def _matching_lines(
        self, session: AsyncSession, actor: Actor, product_name: str, order_number: str | None
    ) -> list[OrderLine]:
        """The customer's order lines of the product they named, newest first."""
        query = (
            select(OrderLine)
            .join(Order, Order.id == OrderLine.order_id)
            .options(selectinload(OrderLine.product), selectinload(OrderLine.order))
            .where(Order.customer_id == actor.customer_id)
            .order_by(OrderLine.id.desc())
        )
        if order_number:
            query = query.where(Order.order_number == normalize_number("ORD", order_number))
        lines = list((await session.scalars(query)).all())
        if not lines or not product_name.strip():
            return []
        match = process.extractOne(
            product_name,
            [line.product.name for line in lines],
            scorer=fuzz.WRatio,
            processor=utils.default_process,
            score_cutoff=PRODUCT_MATCH_CUTOFF,
        )
        if not match:
            return []
        return [line for line in lines if line.product.name == match[0]]

    @staticmethod
    async def _view(
        session: AsyncSession, rma: ReturnAuthorization, replayed: bool = False
    ) -> ReturnResult:
        line = await session.scalar(
            select(OrderLine)
            .options(selectinload(OrderLine.product), selectinload(OrderLine.order))
            .where(OrderLine.id == rma.order_line_id)
        )
        product = line.product.name if line else "product"
        order = line.order.order_number if line else None
        return ReturnResult(
            authorized=True,
            product_name=product,
            reason=rma.reason,
            rma_number=rma.rma_number,
            order_number=order,
            instructions=(
                f"Pack the {product} in its original packaging, write {rma.rma_number} on the "
                "box, and drop it at any carrier point within 30 days; the prepaid label "
                "arrives by email. Your refund is issued once we receive it."
            ),
            replayed=replayed,
        )


def already_open_text(product: str, rma_numbers: list[str]) -> str:
    """Why a second return of the same item is refused, naming the return to use instead."""
    if len(rma_numbers) == 1:
        return (
            f"A return is already open for this item: {rma_numbers[0]} ({product}). Please "
            "use that RMA number; an item can only be returned once."
        )
    return (
        f"Returns are already open for every {product} you ordered: "
        f"{', '.join(rma_numbers)}. Please use those RMA numbers."
    )


class OrderSystem:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get_status(self, actor: Actor, order_number: str) -> OrderStatusView:
        number = normalize_number("ORD", order_number)
        # One row per line, columns only: loading the order, its lines and their products
        # as ORM objects (three SELECTs) was most of a status message's database CPU.
        query = (
            select(Order.order_number, Order.customer_id, Order.status, Order.carrier,
                   Order.tracking_number, Order.eta, Product.name)
            .outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .outerjoin(Product, Product.id == OrderLine.product_id)
            .where(Order.order_number == number)
            .order_by(OrderLine.id)
        )  # fmt: skip
        async with self._sessions() as session:
            await read_only(session)  # a worker's lookup must not hold SQLite's write lock
            rows = (await session.execute(query)).all()
        if not rows or not _owned(actor, rows[0].customer_id):
            raise RecordNotFound("order", number)
        order = rows[0]
        return OrderStatusView(
            order_number=order.order_number,
            status=order.status,
            carrier=order.carrier,
            tracking_number=order.tracking_number,
            eta=order.eta,
            items=[row.name for row in rows if row.name is not None],
        )


class BusinessSystems:
    """The three simulated systems over one database, as the pipelines' workers see them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.billing = BillingSystem(sessions)
        self.returns = ReturnsSystem(sessions)
        self.orders = OrderSystem(sessions)
