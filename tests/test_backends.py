"""The simulated business systems (SPEC section 4), on SQLite and on PostgreSQL.

Ownership without existence leaks, agent access, idempotent and concurrency-safe side
effects, typo-tolerant product matching, id normalisation and demo provisioning.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from storage.backends import (
    CASE_BUSINESS_DAYS,
    Actor,
    BusinessSystems,
    RecordNotFound,
    add_business_days,
    normalize_number,
)
from storage.catalog import CATALOG, DemoIds, demo_ids, get_or_create_customer
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    BillingCase,
    Customer,
    Invoice,
    Order,
    OrderLine,
    Product,
    ReturnAuthorization,
)

# Deterministic demo data (derived from the user id): U_ALICE bought a Wireless Mouse, a
# USB-C Hub and a Laptop Stand, never Noise-Cancelling Headphones or a Smart Speaker;
# U_BOB bought Noise-Cancelling Headphones. The tests assert these preconditions.
ALICE = "U_ALICE"
BOB = "U_BOB"
ONLY_BOBS = "Noise-Cancelling Headphones"
NEVER_BOUGHT = "Smart Speaker"


def refusal_for(product: str) -> str:
    return f"We could not find '{product}' in your orders, so we can't authorise a return for it."


async def count(db: Database, model: type[Any], *where: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


@pytest.fixture
def systems(database: Database) -> BusinessSystems:
    return BusinessSystems(database.sessions)


@pytest.fixture
async def alice(database: Database) -> Customer:
    return await get_or_create_customer(database.sessions, ALICE)


@pytest.fixture
async def bob(database: Database, alice: Customer) -> Customer:
    return await get_or_create_customer(database.sessions, BOB)


@pytest.fixture
async def alice_ids(database: Database, alice: Customer) -> DemoIds:
    return await demo_ids(database.sessions, alice.id)


@pytest.fixture
async def bob_ids(database: Database, bob: Customer) -> DemoIds:
    return await demo_ids(database.sessions, bob.id)


def as_customer(customer: Customer) -> Actor:
    return Actor(customer_id=customer.id, slack_user_id=customer.slack_user_id)


# --- ownership: someone else's id is answered exactly like an unknown id -----------------


async def test_foreign_invoice_is_answered_like_an_unknown_one(
    systems: BusinessSystems, alice: Customer, alice_ids: DemoIds, bob_ids: DemoIds
) -> None:
    mine = await systems.billing.get_invoice(as_customer(alice), alice_ids.invoice_numbers[0])
    assert mine.invoice_number == alice_ids.invoice_numbers[0]

    foreign = bob_ids.invoice_numbers[0]
    with pytest.raises(RecordNotFound) as foreign_error:
        await systems.billing.get_invoice(as_customer(alice), foreign)
    with pytest.raises(RecordNotFound) as unknown_error:
        await systems.billing.get_invoice(as_customer(alice), "INV-99999")

    assert type(foreign_error.value) is type(unknown_error.value)
    assert str(foreign_error.value) == f"no invoice {foreign} found on your account"
    assert str(unknown_error.value) == "no invoice INV-99999 found on your account"
    assert (foreign_error.value.kind, foreign_error.value.identifier) == ("invoice", foreign)
    assert foreign_error.value.__cause__ is None and unknown_error.value.__cause__ is None


async def test_foreign_order_is_answered_like_an_unknown_one(
    systems: BusinessSystems, alice: Customer, alice_ids: DemoIds, bob_ids: DemoIds
) -> None:
    mine = await systems.orders.get_status(as_customer(alice), alice_ids.order_numbers[0])
    assert mine.order_number == alice_ids.order_numbers[0]

    foreign = bob_ids.order_numbers[0]
    with pytest.raises(RecordNotFound) as foreign_error:
        await systems.orders.get_status(as_customer(alice), foreign)
    with pytest.raises(RecordNotFound) as unknown_error:
        await systems.orders.get_status(as_customer(alice), "ORD-99999")

    assert type(foreign_error.value) is type(unknown_error.value)
    assert str(foreign_error.value) == f"no order {foreign} found on your account"
    assert str(unknown_error.value) == "no order ORD-99999 found on your account"


async def test_an_order_status_shows_the_order_and_its_items_in_line_order(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    """The status view (one joined query) says what the stored order and lines say."""
    async with database.sessions() as session:
        orders = (
            await session.scalars(
                select(Order)
                .options(selectinload(Order.lines).selectinload(OrderLine.product))
                .where(Order.customer_id == alice.id)
            )
        ).all()
    assert sorted(o.order_number for o in orders) == sorted(alice_ids.order_numbers)
    assert any(len(order.lines) > 1 for order in orders)
    for order in orders:
        view = await systems.orders.get_status(as_customer(alice), order.order_number)
        assert (view.order_number, view.status, view.carrier, view.tracking_number, view.eta) == (
            order.order_number, order.status, order.carrier, order.tracking_number, order.eta
        )  # fmt: skip
        assert view.items == [line.product.name for line in order.lines]


async def test_return_from_a_foreign_order_is_refused_like_an_unknown_order(
    database: Database,
    systems: BusinessSystems,
    alice: Customer,
    alice_ids: DemoIds,
    bob: Customer,
    bob_ids: DemoIds,
) -> None:
    assert ONLY_BOBS in bob_ids.products and ONLY_BOBS not in alice_ids.products
    agent = Actor(customer_id=bob.id, is_agent=True)
    bobs_orders = [await systems.orders.get_status(agent, n) for n in bob_ids.order_numbers]
    bobs_order = next(o.order_number for o in bobs_orders if ONLY_BOBS in o.items)

    results = [
        await systems.returns.authorize_return(
            as_customer(alice), ONLY_BOBS, "too loud", f"key-{i}", order_number=order
        )
        for i, order in enumerate([bobs_order, "ORD-99999", None])
    ]

    for result in results:
        assert result.authorized is False
        assert result.rma_number is None
        assert result.refusal == refusal_for(ONLY_BOBS)
    assert results[0].model_dump() == results[1].model_dump()
    assert await count(database, ReturnAuthorization) == 0


async def test_open_case_on_a_foreign_invoice_creates_nothing(
    database: Database, systems: BusinessSystems, alice: Customer, bob_ids: DemoIds
) -> None:
    foreign = bob_ids.invoice_numbers[0]
    with pytest.raises(RecordNotFound) as foreign_error:
        await systems.billing.open_case(as_customer(alice), foreign, "too high", "case-key-1")
    with pytest.raises(RecordNotFound) as unknown_error:
        await systems.billing.open_case(as_customer(alice), "INV-99999", "too high", "case-key-2")

    assert str(foreign_error.value) == f"no invoice {foreign} found on your account"
    assert str(unknown_error.value) == "no invoice INV-99999 found on your account"
    assert await count(database, BillingCase) == 0


async def test_support_agent_may_read_any_invoice_and_order(
    systems: BusinessSystems, alice: Customer, bob_ids: DemoIds
) -> None:
    agent = Actor(customer_id=alice.id, slack_user_id="UAGENT", is_agent=True)

    invoice = await systems.billing.get_invoice(agent, bob_ids.invoice_numbers[1])
    order = await systems.orders.get_status(agent, bob_ids.order_numbers[2])

    assert invoice.invoice_number == bob_ids.invoice_numbers[1]
    assert invoice.total_cents == sum(line.amount_cents for line in invoice.lines) > 0
    assert order.order_number == bob_ids.order_numbers[2]
    assert len(order.items) == 2
    with pytest.raises(RecordNotFound, match=r"^no invoice INV-99999 found on your account$"):
        await systems.billing.get_invoice(agent, "INV-99999")


# --- idempotent side effects ------------------------------------------------------------


async def test_billing_case_is_opened_once_per_idempotency_key(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    actor = as_customer(alice)
    invoice = alice_ids.invoice_numbers[0]

    first = await systems.billing.open_case(actor, invoice, "charged twice", "evt-1:0")
    again = await systems.billing.open_case(actor, invoice, "charged twice", "evt-1:0")

    assert re.fullmatch(r"CASE-\d{6}", first.case_number)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    assert first.invoice_number == invoice
    assert first.status == "investigating"
    assert await count(database, BillingCase) == 1

    other = await systems.billing.open_case(actor, invoice, "another concern", "evt-2:0")
    assert other.case_number != first.case_number and not other.replayed
    assert await count(database, BillingCase) == 2
    assert await count(database, BillingCase, BillingCase.customer_id == alice.id) == 2


async def test_return_is_authorised_once_per_idempotency_key(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    actor = as_customer(alice)

    first = await systems.returns.authorize_return(actor, "Wireless Mouse", "broken", "evt-9:1")
    again = await systems.returns.authorize_return(actor, "Wireless Mouse", "broken", "evt-9:1")

    assert first.authorized and first.rma_number is not None
    assert re.fullmatch(r"RMA-\d{6}", first.rma_number)
    assert first.rma_number in (first.instructions or "")
    assert first.order_number in alice_ids.order_numbers
    assert (first.replayed, again.replayed) == (False, True)
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    assert await count(database, ReturnAuthorization) == 1


async def test_a_second_return_of_a_one_item_line_is_refused_naming_the_open_rma(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    actor = as_customer(alice)

    first = await systems.returns.authorize_return(actor, "Wireless Mouse", "broken", "msg-1")
    second = await systems.returns.authorize_return(actor, "the mouse", "still broken", "msg-2")

    assert first.authorized and first.rma_number is not None
    assert second.authorized is False and second.rma_number is None
    assert second.instructions is None
    assert second.open_rma_numbers == [first.rma_number]
    assert second.product_name == "Wireless Mouse"
    assert second.refusal is not None
    assert f"A return is already open for this item: {first.rma_number}" in second.refusal
    assert await count(database, ReturnAuthorization) == 1


async def test_a_retried_request_worded_differently_replays_the_same_rma(
    database: Database, systems: BusinessSystems, alice: Customer
) -> None:
    actor = as_customer(alice)

    first = await systems.returns.authorize_return(actor, "Wireless Mouse", "broken", "evt-7")
    retry = await systems.returns.authorize_return(actor, "wireles mouse!", "dead", "evt-7")

    assert retry.authorized and retry.replayed
    assert retry.rma_number == first.rma_number
    assert await count(database, ReturnAuthorization) == 1


async def test_100_concurrent_requests_to_return_one_item_open_one_return(
    database: Database, systems: BusinessSystems, alice: Customer
) -> None:
    actor = as_customer(alice)
    results = await asyncio.gather(
        *(
            systems.returns.authorize_return(actor, "Wireless Mouse", "defect", f"evt-{i}")
            for i in range(100)
        )
    )

    authorized = [r for r in results if r.authorized]
    assert len(authorized) == 1 and not authorized[0].replayed
    refused = [r for r in results if not r.authorized]
    assert {tuple(r.open_rma_numbers) for r in refused} == {(authorized[0].rma_number,)}
    assert await count(database, ReturnAuthorization) == 1


async def test_concurrent_returns_of_different_items_get_distinct_rma_numbers(
    database: Database, systems: BusinessSystems
) -> None:
    customers = [await get_or_create_customer(database.sessions, f"U_RET{i}") for i in range(8)]
    requests = [
        (customer, product)
        for customer in customers
        for product in (await demo_ids(database.sessions, customer.id)).products
    ]

    results = await asyncio.gather(
        *(
            systems.returns.authorize_return(as_customer(customer), product, "defect", "evt")
            for customer, product in requests
        )
    )

    assert all(r.authorized and not r.replayed for r in results)
    assert len({r.rma_number for r in results}) == len(requests)
    assert await count(database, ReturnAuthorization) == len(requests)


async def _set_quantity(database: Database, customer: Customer, product: str, n: int) -> None:
    async with database.sessions() as session, session.begin():
        line = await session.scalar(
            select(OrderLine)
            .join(Order, Order.id == OrderLine.order_id)
            .join(Product, Product.id == OrderLine.product_id)
            .where(Order.customer_id == customer.id, Product.name == product)
        )
        assert line is not None
        line.quantity = n


async def test_a_line_of_two_units_takes_two_returns_then_refuses_with_both(
    database: Database, systems: BusinessSystems, alice: Customer
) -> None:
    await _set_quantity(database, alice, "Wireless Mouse", 2)
    actor = as_customer(alice)

    results = await asyncio.gather(
        *(
            systems.returns.authorize_return(actor, "Wireless Mouse", "defect", f"evt-{i}")
            for i in range(10)
        )
    )

    numbers = sorted(r.rma_number or "" for r in results if r.authorized)
    assert len(numbers) == 2
    refused = [r for r in results if not r.authorized]
    assert all(sorted(r.open_rma_numbers) == numbers for r in refused)
    assert all(
        (r.refusal or "").startswith("Returns are already open for every Wireless Mouse")
        for r in refused
    )


async def test_a_closed_return_frees_its_unit(
    database: Database, systems: BusinessSystems, alice: Customer
) -> None:
    actor = as_customer(alice)
    first = await systems.returns.authorize_return(actor, "Wireless Mouse", "broken", "evt-1")
    async with database.sessions() as session, session.begin():
        rma = await session.scalar(
            select(ReturnAuthorization).where(ReturnAuthorization.rma_number == first.rma_number)
        )
        assert rma is not None
        rma.status, rma.unit = "cancelled", None

    again = await systems.returns.authorize_return(actor, "Wireless Mouse", "broken", "evt-2")

    assert again.authorized and again.rma_number != first.rma_number


async def test_concurrent_replays_of_one_return_create_one_row(
    database: Database, systems: BusinessSystems, alice: Customer
) -> None:
    actor = as_customer(alice)
    results = await asyncio.gather(
        *(
            systems.returns.authorize_return(actor, "Wireless Mouse", "defect", "same-event")
            for _ in range(20)
        )
    )

    assert len({r.rma_number for r in results}) == 1
    assert results[0].rma_number is not None
    assert sum(not r.replayed for r in results) == 1
    assert await count(database, ReturnAuthorization) == 1


async def test_concurrent_replays_of_one_billing_case_create_one_row(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    actor = as_customer(alice)
    invoice = alice_ids.invoice_numbers[0]
    results = await asyncio.gather(
        *(systems.billing.open_case(actor, invoice, "too high", "same-event") for _ in range(20))
    )

    assert len({r.case_number for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await count(database, BillingCase) == 1


# --- product matching -------------------------------------------------------------------


async def test_return_of_a_product_never_bought_is_refused(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    assert NEVER_BOUGHT not in alice_ids.products
    for product in (NEVER_BOUGHT, "toaster", "   "):
        result = await systems.returns.authorize_return(
            as_customer(alice), product, "changed my mind", f"refused-{product}"
        )
        assert result.authorized is False
        assert result.rma_number is None and result.instructions is None
        assert result.refusal == refusal_for(product)
    assert await count(database, ReturnAuthorization) == 0


TYPOS = [
    ("wireles mouse", "Wireless Mouse"),
    ("WIRELESS MOUSE", "Wireless Mouse"),
    ("the mouse", "Wireless Mouse"),
    ("usbc hub", "USB-C Hub"),
    ("laptp stand", "Laptop Stand"),
]


async def test_product_matching_tolerates_typos(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    for i, (typed, product) in enumerate(TYPOS):
        assert product in alice_ids.products
        result = await systems.returns.authorize_return(
            as_customer(alice), typed, "broken", f"typo-{i}"
        )

        # A product already returned under an earlier spelling is refused, still matched.
        assert result.authorized or result.open_rma_numbers, (typed, result.refusal)
        assert result.product_name == product, typed
        number = result.rma_number or result.open_rma_numbers[0]
        async with database.sessions() as session:
            stored = await session.scalar(
                select(Product.name)
                .join(ReturnAuthorization, ReturnAuthorization.product_id == Product.id)
                .where(ReturnAuthorization.rma_number == number)
            )
        assert stored == product, typed
    assert await count(database, ReturnAuthorization) == len({p for _, p in TYPOS})


# --- id normalisation and dates ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("inv 10011", "INV-10011"),
        ("INV-10011", "INV-10011"),
        ("Inv #10011", "INV-10011"),
        ("10011", "INV-10011"),
        (" inv10011 ", "INV-10011"),
        ("no digits", "NO DIGITS"),
    ],
)
def test_normalize_number(raw: str, expected: str) -> None:
    assert normalize_number("INV", raw) == expected


async def test_lookups_accept_loosely_written_ids(
    database: Database, systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    actor = as_customer(alice)
    invoice = alice_ids.invoice_numbers[0]
    order = alice_ids.order_numbers[0]
    invoice_digits, order_digits = invoice.split("-")[1], order.split("-")[1]

    for raw in (f"inv {invoice_digits}", f"Inv #{invoice_digits}", invoice_digits, invoice):
        assert (await systems.billing.get_invoice(actor, raw)).invoice_number == invoice
    for raw in (f"ord {order_digits}", f"order #{order_digits}", order_digits, order.lower()):
        assert (await systems.orders.get_status(actor, raw)).order_number == order

    items = (await systems.orders.get_status(actor, order)).items
    result = await systems.returns.authorize_return(
        actor, items[0], "broken", "loose-order", order_number=f"ord {order_digits}"
    )
    assert result.authorized and result.order_number == order
    assert await count(database, ReturnAuthorization) == 1


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (dt.date(2026, 11, 27), 1, dt.date(2026, 11, 30)),  # Friday -> Monday
        (dt.date(2026, 11, 27), 5, dt.date(2026, 12, 4)),  # Friday -> next Friday
        (dt.date(2026, 11, 28), 1, dt.date(2026, 11, 30)),  # Saturday -> Monday
        (dt.date(2026, 11, 29), 1, dt.date(2026, 11, 30)),  # Sunday -> Monday
        (dt.date(2026, 11, 23), 5, dt.date(2026, 11, 30)),  # Monday -> next Monday
        (dt.date(2026, 11, 25), 2, dt.date(2026, 11, 27)),  # Wednesday -> Friday
        (dt.date(2026, 11, 25), 0, dt.date(2026, 11, 25)),
    ],
)
def test_business_days_skip_weekends(start: dt.date, days: int, expected: dt.date) -> None:
    assert add_business_days(start, days) == expected


async def test_billing_case_eta_is_five_business_days_out(
    systems: BusinessSystems, alice: Customer, alice_ids: DemoIds
) -> None:
    before = dt.date.today()
    case = await systems.billing.open_case(
        as_customer(alice), alice_ids.invoice_numbers[0], "too high", "eta-key"
    )
    after = dt.date.today()

    assert case.eta in {
        add_business_days(before, CASE_BUSINESS_DAYS),
        add_business_days(after, CASE_BUSINESS_DAYS),
    }
    assert case.eta.weekday() < 5


# --- demo provisioning ------------------------------------------------------------------


async def _demo_snapshot(db: Database, customer: Customer) -> dict[str, Any]:
    """A customer's demo records without the numbers (which derive from the primary key)."""
    systems = BusinessSystems(db.sessions)
    agent = Actor(customer_id=customer.id, is_agent=True)
    ids = await demo_ids(db.sessions, customer.id)
    orders = [await systems.orders.get_status(agent, n) for n in ids.order_numbers]
    invoices = [await systems.billing.get_invoice(agent, n) for n in ids.invoice_numbers]
    return {
        "products": ids.products,
        "orders": [o.model_dump(exclude={"order_number", "tracking_number"}) for o in orders],
        "invoices": [i.model_dump(exclude={"invoice_number"}) for i in invoices],
    }


async def test_demo_provisioning_is_deterministic_per_user(
    database: Database, tmp_path: Path
) -> None:
    await get_or_create_customer(database.sessions, "UFIRST")
    customer = await get_or_create_customer(database.sessions, "UDEMO1")
    again = await get_or_create_customer(database.sessions, "UDEMO1")
    assert again.id == customer.id

    ids = await demo_ids(database.sessions, customer.id)
    base = 10000 + 10 * customer.id
    assert ids.order_numbers == [f"ORD-{base + k}" for k in (1, 2, 3)]
    assert ids.invoice_numbers == [f"INV-{base + k}" for k in (1, 2, 3)]
    # The README's walkthrough relies on these: changing the derivation changes the docs.
    assert ids.products == [
        "Noise-Cancelling Headphones",
        "Fast Phone Charger",
        "Docking Station",
        "27-inch 4K Monitor",
        "Mechanical Keyboard",
        "Laptop Stand",
    ]

    # The same user provisioned first in another database gets the same records.
    other_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    await asyncio.to_thread(upgrade, other_url)
    other = Database(other_url)
    try:
        elsewhere = await get_or_create_customer(other.sessions, "UDEMO1")
        assert elsewhere.id != customer.id
        assert await _demo_snapshot(other, elsewhere) == await _demo_snapshot(database, customer)
    finally:
        await other.dispose()


async def test_concurrent_first_contacts_provision_one_customer(database: Database) -> None:
    customers = await asyncio.gather(
        *(get_or_create_customer(database.sessions, "URACE", "T1") for _ in range(10))
    )

    assert len({c.id for c in customers}) == 1
    assert await count(database, Customer) == 1
    assert await count(database, Order) == 3
    assert await count(database, Invoice) == 3
    assert await count(database, Product) == len(CATALOG)


async def test_concurrent_first_contacts_of_different_users_on_an_empty_database(
    database: Database,
) -> None:
    # Regression: all of them insert the shared catalogue; the losers must retry, not fail.
    customers = await asyncio.gather(
        *(get_or_create_customer(database.sessions, f"UNEW{i}") for i in range(10))
    )

    assert len({c.id for c in customers}) == 10
    assert await count(database, Customer) == 10
    assert await count(database, Order) == 30
    assert await count(database, Product) == len(CATALOG)
