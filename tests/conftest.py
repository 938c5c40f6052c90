"""Shared fixtures: isolated environment, fresh SQLite and PostgreSQL databases.

- Every test runs in its own temporary working directory with the bot's configuration
  variables removed from the environment, so a developer's shell, `.env` or `supportbot.db`
  never leaks into a test. Mark a test `@pytest.mark.real_env` to opt out.
- `sqlite_url`: a fresh SQLite file per test.
- `postgres_url`: a fresh, empty PostgreSQL database per test, created on the server named
  by `TEST_POSTGRES_URL` and dropped afterwards; skipped when that variable is unset.
- `database_url`: parametrized over both backends (test ids `[sqlite]` and `[postgres]`).
- `database`: a migrated `storage.db.Database` on `database_url`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from tests.postgres_admin import asyncpg_dsn, create_database, drop_database

T = TypeVar("T")

POSTGRES_ENV = "TEST_POSTGRES_URL"
TEST_DATABASE_PREFIX = "sbtest_"

# Variables read by `bot.settings.Settings` (every field), plus families of variables the
# bot or its SDKs read directly. Matched case-insensitively, like pydantic-settings does.
_SETTINGS_VARIABLES = frozenset(name.lower() for name in Settings.model_fields)
_LEAKY_PREFIXES = ("slack_", "gemini_", "google_", "llm_", "model_", "support_", "supportbot_")
_LEAKY_VARIABLES = frozenset({"database_url", "port", "log_message_text", "google_api_key"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "real_env: keep the developer's environment and working directory "
        "(opts out of the autouse isolation fixture)",
    )


def _is_leaky(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in _SETTINGS_VARIABLES
        or lowered in _LEAKY_VARIABLES
        or lowered.startswith(_LEAKY_PREFIXES)
    )


@pytest.fixture(autouse=True)
def isolated_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Clear the bot's configuration variables and run in an empty temporary directory."""
    if request.node.get_closest_marker("real_env"):
        return
    for name in list(os.environ):
        if name != POSTGRES_ENV and _is_leaky(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def restored_root_logger() -> Iterator[None]:
    """Undo `bot.logs.configure_logging` after a test that ran a command in-process: its
    handler would print later tests' records into their own command output."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


# --- SQLite -----------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of its own (created on first connection)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


# --- PostgreSQL -------------------------------------------------------------------------


def _run_in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a private event loop in a worker thread.

    Keeps the database administration independent of the test's event loop, so the
    PostgreSQL fixtures work for sync and async tests alike.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_admin_url() -> URL:
    """The server from TEST_POSTGRES_URL (checked once); skips when it is unset."""
    raw = os.environ.get(POSTGRES_ENV, "").strip()
    if not raw:
        pytest.skip(
            f"{POSTGRES_ENV} is not set (e.g. "
            "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres); PostgreSQL tests skipped"
        )
    url = make_url(raw)
    if url.get_backend_name() != "postgresql":
        pytest.fail(f"{POSTGRES_ENV} must be a postgresql+asyncpg:// URL, got {url!r}")

    async def ping() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
        await connection.close()

    try:
        _run_in_own_loop(ping())
    except (OSError, asyncpg.PostgresError) as exc:
        # Set but unreachable is a broken CI setup, not a reason to skip silently.
        pytest.fail(f"{POSTGRES_ENV}={url!r} is set but the server is unreachable: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_admin_url: URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL database of its own, dropped after the test."""
    name = f"{TEST_DATABASE_PREFIX}{secrets.token_hex(6)}"
    _run_in_own_loop(create_database(postgres_admin_url, name))
    try:
        yield postgres_admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        _run_in_own_loop(drop_database(postgres_admin_url, name))


# --- either backend ---------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    """The database at `url`, migrated to the latest schema, disposed afterwards."""
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A database migrated to the latest schema, on each backend."""
    async with migrated(database_url) as db:
        yield db


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite database of its own (for tests that need one backend only)."""
    async with migrated(sqlite_url) as db:
        yield db
