"""The demo catalogue and deterministic demo customers.

A Slack user seen for the first time gets a demo customer whose orders and invoices are
derived from their user id (which products, amounts, statuses) and whose record numbers
derive from the customer's primary key (unique by construction):
orders `ORD-<10000 + 10*customer_id + k>`, invoices `INV-<10000 + 10*customer_id + k>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


def _build_demo_records(
    session: AsyncSession, customer: Customer, products: dict[str, Product]
) -> None:
    digest = _digest(customer.slack_user_id)
    skus = [sku for sku, *_ in CATALOG]
    for k in range(1, ORDERS_PER_CUSTOMER + 1):
        first = products[skus[digest[k] % len(skus)]]
        second = products[skus[(digest[k] + 1 + digest[k + 8] % 5) % len(skus)]]
        status, carrier = ORDER_STATES[(digest[k + 3] + k) % len(ORDER_STATES)]
        ordered_on = DEMO_EPOCH + dt.timedelta(days=3 * k)
        number = order_number(customer.id, k)
        order = Order(
            order_number=number,
            customer_id=customer.id,
            status=status,
            carrier=carrier,
            tracking_number=f"1Z{digest[k]:03d}{customer.id:06d}{k}" if carrier else None,
            eta=None if status == "delivered" else ordered_on + dt.timedelta(days=7),
        )
        order.lines = [
            OrderLine(product=first, quantity=1, unit_price_cents=first.price_cents),
            OrderLine(product=second, quantity=1, unit_price_cents=second.price_cents),
        ]
        # The first invoice carries a duplicated shipping fee: a realistic "looks too high".
        extra = [InvoiceLine(description="Express shipping (duplicate)", amount_cents=1500)]
        lines = [
            InvoiceLine(description=line.product.name, amount_cents=line.unit_price_cents)
            for line in order.lines
        ] + [InvoiceLine(description="Express shipping", amount_cents=1500)]
        if k == 1:
            lines += extra
        invoice = Invoice(
            invoice_number=invoice_number(customer.id, k),
            customer_id=customer.id,
            order=order,
            issued_on=ordered_on,
            status="open" if k == 1 else "paid",
            total_cents=sum(line.amount_cents for line in lines),
        )
        invoice.lines = lines
        session.add_all([order, invoice])


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
                _build_demo_records(session, customer, products)
            return customer
        except IntegrityError:
            async with sessions() as session:
                found = await session.scalar(query)
            if found is not None:
                return found
            if attempt == PROVISION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def demo_ids(sessions: async_sessionmaker[AsyncSession], customer_id: int) -> DemoIds:
    """The ids a customer can try: their orders, invoices and purchased products."""
    async with sessions() as session:
        orders = (
            await session.scalars(
                select(Order).where(Order.customer_id == customer_id).order_by(Order.id)
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
        order_numbers=[o.order_number for o in orders],
        invoice_numbers=list(invoices),
        products=list(dict.fromkeys(products)),
    )
