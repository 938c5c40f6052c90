"""Apply Alembic migrations programmatically.

`upgrade` for `supportbot db upgrade` and tests; `apply_migrations` for servers that
migrate on start, several of which may start at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from storage.db import create_engine, is_sqlite

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_ID = 0x5B0_7A1E  # any constant shared by every supportbot process


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (blocking; runs its own loop)."""
    command.upgrade(alembic_config(database_url), revision)


async def apply_migrations(database_url: str) -> None:
    """`upgrade`, serialised across processes.

    Several replicas starting at once on a fresh PostgreSQL database would otherwise race
    to create the same tables; a session advisory lock makes them take turns. SQLite's
    BEGIN IMMEDIATE already serialises them.
    """
    if is_sqlite(database_url):
        await asyncio.to_thread(upgrade, database_url)
        return
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
            try:
                await asyncio.to_thread(upgrade, database_url)
            finally:
                await connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
    finally:
        await engine.dispose()
