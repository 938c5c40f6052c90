"""The demo catalogue and deterministic demo customers.

A Slack user seen for the first time gets a demo customer whose orders and invoices are
derived from their user id (which products, amounts, statuses) and whose record numbers
derive from the customer's primary key (unique by construction):
orders `ORD-<10000 + 10*customer_id + k>`, invoices `INV-<10000 + 10*customer_id + k>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import read_only
from storage.models import Customer, Invoice, InvoiceLine, Order, OrderLine, Product

CATALOG: list[tuple[str, str, str, int]] = [
    ("SKU-100", "Wireless Mouse", "accessories", 2999),
    ("SKU-101", "Mechanical Keyboard", "accessories", 8999),
    ("SKU-102", "USB-C Hub", "accessories", 4999),
    ("SKU-103", "27-inch 4K Monitor", "displays", 32999),
    ("SKU-104", "Noise-Cancelling Headphones", "audio", 19999),
    ("SKU-105", "HD Webcam", "video", 6999),
    ("SKU-106", "Laptop Stand", "accessories", 3999),
    ("SKU-107", "Smart Speaker", "audio", 9999),
    ("SKU-108", "Fast Phone Charger", "power", 2499),
    ("SKU-109", "Portable SSD 1TB", "storage", 11999),
    ("SKU-110", "Ergonomic Office Chair", "furniture", 24999),
    ("SKU-111", "Docking Station", "accessories", 17999),
]

ORDER_STATES: list[tuple[str, str | None]] = [
    ("shipped", "UPS"),
    ("processing", None),
    ("delivered", "FedEx"),
    ("shipped", "DHL"),
]
DEMO_EPOCH = dt.date(2026, 11, 2)
ORDERS_PER_CUSTOMER = 3
PROVISION_ATTEMPTS = 3


@dataclass(frozen=True)
class DemoIds:
    order_numbers: list[str]
    invoice_numbers: list[str]
    products: list[str]


def order_number(customer_id: int, k: int) -> str:
    return f"ORD-{10000 + 10 * customer_id + k}"


def invoice_number(customer_id: int, k: int) -> str:
    return f"INV-{10000 + 10 * customer_id + k}"


def _digest(slack_user_id: str) -> bytes:
    return hashlib.sha256(slack_user_id.encode()).digest()


async def ensure_catalog(session: AsyncSession) -> dict[str, Product]:
    """Insert the catalogue products that are missing; return them by SKU."""
    existing = {p.sku: p for p in (await session.scalars(select(Product))).all()}
    for sku, name, category, price in CATALOG:
        if sku not in existing:
            product = Product(sku=sku, name=name, category=category, price_cents=price)
            session.add(product)
            existing[sku] = product
    await session.flush()
    return existing


async def seed_catalog(sessions: async_sessionmaker[AsyncSession]) -> None:
    """`ensure_catalog` in a transaction of its own (`supportbot db seed`)."""
    async with sessions() as session, session.begin():
        await ensure_catalog(session)


async def _insert_demo_records(
    session: AsyncSession, customer: Customer, products: dict[str, Product]
) -> None:
    """A new customer's orders, invoices and their lines: one INSERT per table.

    Core inserts rather than ORM objects: on SQLite the ORM inserts rows whose key the
    database assigns one statement at a time (the dialect has no RETURNING sentinel), 22
    statements per first contact; here it is four, plus two reads of the new keys.
    """
    digest = _digest(customer.slack_user_id)
    skus = [sku for sku, *_ in CATALOG]
    orders: list[dict[str, object]] = []
    order_lines: dict[str, list[Product]] = {}
    invoices: list[dict[str, object]] = []
    invoice_lines: dict[str, list[tuple[str, int]]] = {}
    for k in range(1, ORDERS_PER_CUSTOMER + 1):
        first = products[skus[digest[k] % len(skus)]]
        second = products[skus[(digest[k] + 1 + digest[k + 8] % 5) % len(skus)]]
        status, carrier = ORDER_STATES[(digest[k + 3] + k) % len(ORDER_STATES)]
        ordered_on = DEMO_EPOCH + dt.timedelta(days=3 * k)
        number = order_number(customer.id, k)
        orders.append(
            {
                "order_number": number,
                "customer_id": customer.id,
                "status": status,
                "carrier": carrier,
                "tracking_number": f"1Z{digest[k]:03d}{customer.id:06d}{k}" if carrier else None,
                "eta": None if status == "delivered" else ordered_on + dt.timedelta(days=7),
            }
        )
        order_lines[number] = [first, second]
        lines = [(product.name, product.price_cents) for product in (first, second)]
        lines.append(("Express shipping", 1500))
        if k == 1:  # the first invoice carries a duplicated shipping fee: "looks too high"
            lines.append(("Express shipping (duplicate)", 1500))
        invoice = invoice_number(customer.id, k)
        invoices.append(
            {
                "invoice_number": invoice,
                "customer_id": customer.id,
                "order_number": number,
                "issued_on": ordered_on,
                "status": "open" if k == 1 else "paid",
                "total_cents": sum(amount for _, amount in lines),
            }
        )
        invoice_lines[invoice] = lines

    # render_nulls: one statement for all orders, not one per set of columns left empty.
    await session.execute(insert(Order).execution_options(render_nulls=True), orders)
    order_ids = await _ids(session, Order.order_number, Order.id, order_lines)
    await session.execute(
        insert(OrderLine),
        [
            {"order_id": order_ids[number], "product_id": product.id, "quantity": 1,
             "unit_price_cents": product.price_cents}
            for number, lines_of in order_lines.items()
            for product in lines_of
        ],
    )  # fmt: skip
    for row in invoices:
        row["order_id"] = order_ids[str(row.pop("order_number"))]
    await session.execute(insert(Invoice), invoices)
    invoice_ids = await _ids(session, Invoice.invoice_number, Invoice.id, invoice_lines)
    await session.execute(
        insert(InvoiceLine),
        [
            {"invoice_id": invoice_ids[number], "description": text, "amount_cents": amount}
            for number, lines_of in invoice_lines.items()
            for text, amount in lines_of
        ],
    )


async def _ids(
    session: AsyncSession, number: Any, key: Any, numbers: Iterable[str]
) -> dict[str, int]:
    """The primary keys of just-inserted records, by their (unique) number."""
    rows = await session.execute(select(number, key).where(number.in_(list(numbers))))
    return {str(found): int(id_) for found, id_ in rows.all()}


async def get_or_create_customer(
    sessions: async_sessionmaker[AsyncSession],
    slack_user_id: str,
    team_id: str = "",
    name: str | None = None,
) -> Customer:
    """The customer of a Slack user, provisioning a demo customer on first contact.

    Safe under concurrency: a second process creating the same customer hits the unique
    constraint and reads the winner's row instead. A conflict on the shared catalogue (two
    *different* users' first contacts on an empty database both inserting the products)
    leaves no customer to read, so that attempt is retried with the catalogue now present.
    """
    query = select(Customer).where(
        Customer.slack_team_id == team_id, Customer.slack_user_id == slack_user_id
    )
    async with sessions() as session:
        await read_only(session)  # most messages come from known customers: no write lock
        found = await session.scalar(query)
        if found is not None:
            return found
    for attempt in range(PROVISION_ATTEMPTS):
        try:
            async with sessions() as session, session.begin():
                products = await ensure_catalog(session)
                customer = Customer(
                    slack_team_id=team_id,
                    slack_user_id=slack_user_id,
                    name=name or f"Demo customer {slack_user_id}",
                    email=f"{slack_user_id.lower()}@demo.example",
                )
                session.add(customer)
                await session.flush()
                await _insert_demo_records(session, customer, products)
            return customer
        except IntegrityError:
            async with sessions() as session:
                await read_only(session)
                found = await session.scalar(query)
            if found is not None:
                return found
            if attempt == PROVISION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def demo_ids(sessions: async_sessionmaker[AsyncSession], customer_id: int) -> DemoIds:
    """The ids a customer can try: their orders, invoices and purchased products."""
    async with sessions() as session:
        await read_only(session)
        orders = (
            await session.scalars(
                select(Order.order_number)
                .where(Order.customer_id == customer_id)
                .order_by(Order.id)
            )
        ).all()
        invoices = (
            await session.scalars(
                select(Invoice.invoice_number)
                .where(Invoice.customer_id == customer_id)
                .order_by(Invoice.id)
            )
        ).all()
        products = (
            await session.scalars(
                select(Product.name)
                .join(OrderLine, OrderLine.product_id == Product.id)
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.customer_id == customer_id)
                .order_by(OrderLine.id)
            )
        ).all()
    return DemoIds(
        order_numbers=list(orders),
        invoice_numbers=list(invoices),
        products=list(dict.fromkeys(products)),
    )
