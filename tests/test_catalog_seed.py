"""`supportbot db seed`: the catalogue and the demo customers, idempotent, on each backend."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli.main import app
from storage.catalog import CATALOG
from storage.db import Database
from storage.models import Customer, Product


async def test_db_seed_twice_loads_the_catalogue_and_customers_once(database_url: str) -> None:
    runner = CliRunner()
    outputs = []
    for _ in range(2):
        result = await asyncio.to_thread(
            runner.invoke, app, ["db", "seed", "UONE"], env={"DATABASE_URL": database_url}
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output)

    assert outputs[0] == outputs[1]
    assert outputs[0].startswith("UONE: orders ORD-")
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            products = await session.scalar(select(func.count(Product.id)))
            customers = await session.scalar(select(func.count(Customer.id)))
    finally:
        await db.dispose()
    assert (products, customers) == (len(CATALOG), 1)
