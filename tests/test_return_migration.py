"""Migration 0003 on a database that already holds returns, duplicates included.

Before 0003 an item could be returned any number of times. Upgrading attaches every
existing return to its order line, numbers the duplicates so the new unique constraint
holds, and from then on the item takes no further return.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text

from storage.backends import Actor, BusinessSystems
from storage.catalog import get_or_create_customer
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Order, OrderLine, Product, ReturnAuthorization, utcnow


async def _legacy_returns(db: Database, customer_id: int, product: str, n: int) -> int:
    """Insert `n` returns of one item the way revision 0002 allowed; its order line id."""
    async with db.sessions() as session, session.begin():
        line = (
            await session.execute(
                select(OrderLine.id, OrderLine.order_id, OrderLine.product_id)
                .join(Order, Order.id == OrderLine.order_id)
                .join(Product, Product.id == OrderLine.product_id)
                .where(Order.customer_id == customer_id, Product.name == product)
            )
        ).one()
        for i in range(n):
            await session.execute(
                text(
                    "INSERT INTO returns (rma_number, idempotency_key, customer_id, order_id, "
                    "product_id, reason, status, created_at) VALUES (:rma, :key, :customer, "
                    ":order_id, :product, 'broken', 'authorized', :at)"
                ),
                {
                    "rma": f"RMA-LEGACY{i}",
                    "key": f"legacy-{i}",
                    "customer": customer_id,
                    "order_id": line.order_id,
                    "product": line.product_id,
                    "at": utcnow().replace(tzinfo=None),
                },
            )
        return int(line.id)


async def test_upgrade_attaches_existing_returns_to_their_line_and_blocks_a_new_one(
    database_url: str,
) -> None:
    await asyncio.to_thread(upgrade, database_url, "0002")
    db = Database(database_url)
    try:
        alice = await get_or_create_customer(db.sessions, "U_ALICE")
        line_id = await _legacy_returns(db, alice.id, "Wireless Mouse", 3)

        await asyncio.to_thread(upgrade, database_url)

        async with db.sessions() as session:
            rows = (
                await session.execute(
                    select(ReturnAuthorization.order_line_id, ReturnAuthorization.unit).order_by(
                        ReturnAuthorization.id
                    )
                )
            ).all()
        assert [tuple(row) for row in rows] == [(line_id, 1), (line_id, 2), (line_id, 3)]

        actor = Actor(customer_id=alice.id, slack_user_id="U_ALICE")
        result = await BusinessSystems(db.sessions).returns.authorize_return(
            actor, "Wireless Mouse", "broken", "after-upgrade"
        )
        assert not result.authorized
        assert result.open_rma_numbers == ["RMA-LEGACY0", "RMA-LEGACY1", "RMA-LEGACY2"]
    finally:
        await db.dispose()
