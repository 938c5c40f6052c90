"""Alembic migrations are the schema: they match the models exactly, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from bot.cli import app
from storage.db import create_engine
from storage.migrate import alembic_config, apply_migrations, upgrade
from storage.models import Base

MODEL_TABLES = set(Base.metadata.tables)


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _schema_state(connection: Connection) -> dict[str, Any]:
    migration = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return {
        "tables": set(inspect(connection).get_table_names()),
        "revision": migration.get_current_revision(),
        "diff": compare_metadata(migration, Base.metadata),
    }


async def schema_state(url: str) -> dict[str, Any]:
    """Tables, Alembic revision, and the autogenerate diff between the database and models."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_schema_state)
    finally:
        await engine.dispose()


def test_there_is_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


async def test_migrations_match_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)

    state = await schema_state(database_url)

    assert state["diff"] == [], "models and migrations differ; add a migration:\n" + "\n".join(
        map(str, state["diff"])
    )
    assert state["tables"] == MODEL_TABLES | {"alembic_version"}
    assert state["revision"] == _head()


async def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    config = alembic_config(database_url)
    await asyncio.to_thread(upgrade, database_url)

    await asyncio.to_thread(command.downgrade, config, "base")
    emptied = await schema_state(database_url)
    assert emptied["tables"] <= {"alembic_version"}
    assert emptied["revision"] is None

    await asyncio.to_thread(upgrade, database_url)
    rebuilt = await schema_state(database_url)
    assert rebuilt["diff"] == []
    assert rebuilt["tables"] == MODEL_TABLES | {"alembic_version"}
    assert rebuilt["revision"] == _head()


async def test_servers_starting_at_once_on_fresh_postgres_migrate_in_turn(
    postgres_url: str,
) -> None:
    # PostgreSQL only: on SQLite the processes queue on BEGIN IMMEDIATE, and Alembic's
    # module-global context cannot run two upgrades in threads of one process.
    await asyncio.gather(*(apply_migrations(postgres_url) for _ in range(3)))

    state = await schema_state(postgres_url)
    assert state["diff"] == []
    assert state["revision"] == _head()


async def test_cli_db_upgrade_builds_a_fresh_database(database_url: str) -> None:
    runner = CliRunner()

    for _ in range(2):  # the second run finds the schema current and changes nothing
        result = await asyncio.to_thread(
            runner.invoke, app, ["db", "upgrade"], env={"DATABASE_URL": database_url}
        )
        assert result.exit_code == 0, result.output
        assert "database is at the latest schema" in result.output

    state = await schema_state(database_url)
    assert state["diff"] == []
    assert state["tables"] == MODEL_TABLES | {"alembic_version"}
    assert state["revision"] == _head()


async def test_cli_db_upgrade_defaults_to_sqlite_in_the_working_directory(
    tmp_path: Path,
) -> None:
    # The autouse fixture cleared DATABASE_URL and moved into tmp_path.
    result = await asyncio.to_thread(CliRunner().invoke, app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "supportbot.db").is_file()
    state = await schema_state(f"sqlite+aiosqlite:///{tmp_path / 'supportbot.db'}")
    assert state["tables"] == MODEL_TABLES | {"alembic_version"}
