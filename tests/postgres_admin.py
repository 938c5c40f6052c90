"""Creating and dropping scratch PostgreSQL databases on a server named by a SQLAlchemy
URL: the test fixtures' fresh database per test and the benchmarks' per scenario."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import URL


def asyncpg_dsn(url: URL) -> str:
    """The libpq-style DSN of a SQLAlchemy URL, for talking to the server with asyncpg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin: URL, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin), timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin: URL, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin), timeout=10)
    try:
        # Connections left open (a failed test, a killed worker) would make DROP fail.
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()
