"""The layers, checked on the source: `bot -> pipelines -> storage`, and only storage
talks to the database.

A query written in `bot/` or `pipelines/` works, so nothing else would notice it; this
test does. Every way in counts: `import x`, `from x import y`, an import inside a
function or under `TYPE_CHECKING`. `bot/` and `pipelines/` reach the database only
through `storage` functions, and name session factories with `storage.db.Sessions`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATABASE_PACKAGES = frozenset({"sqlalchemy", "alembic", "asyncpg", "aiosqlite", "psycopg"})
# What each layer must not import: the database drivers above it, the layers above it.
FORBIDDEN = {
    "bot": DATABASE_PACKAGES,
    "pipelines": DATABASE_PACKAGES | {"bot"},
    "storage": frozenset({"bot", "pipelines"}),
}


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in `tree`, wherever it sits."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def violations(package: str, forbidden: frozenset[str]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported_modules(tree):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def database_handles(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) of every session opened (`sessions()`, `db.sessions()`,
    `self._sessions()`) or engine used (`db.engine`): a query needs no SQLAlchemy import
    when it goes through a `Database` or a session factory handed in."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_name(node.func).lstrip("_") == "sessions":
            yield node.lineno, "opens a session"
        elif isinstance(node, ast.Attribute) and node.attr == "engine":
            yield node.lineno, "uses the engine"


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


@pytest.mark.parametrize("package", ["bot", "pipelines"])
def test_only_storage_opens_sessions(package: str) -> None:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [
            f"{path.relative_to(ROOT)}:{line} {what}" for line, what in database_handles(tree)
        ]
    assert found == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_only_downwards_and_only_storage_touches_the_database(
    package: str,
) -> None:
    assert violations(package, FORBIDDEN[package]) == []


def test_the_check_sees_every_kind_of_import() -> None:
    source = (
        "import sqlalchemy.orm\n"
        "from bot.app import build_app\n"
        "from . import sibling\n"
        "def load():\n"
        "    from sqlalchemy import select\n"
    )
    found = [module for _, module in imported_modules(ast.parse(source))]
    assert found == ["sqlalchemy.orm", "bot.app", "sqlalchemy"]


def test_the_check_sees_sessions_and_engines_without_imports() -> None:
    source = (
        "async def load(db):\n"
        "    async with db.sessions() as session:\n"
        "        pass\n"
        "    async with db.engine.connect() as connection:\n"
        "        pass\n"
        "    async with self._sessions() as session, sessions() as other:\n"
        "        pass\n"
        "    return TicketStore(db.sessions)\n"
    )
    found = sorted(database_handles(ast.parse(source)))
    assert found == [
        (2, "opens a session"),
        (4, "uses the engine"),
        (6, "opens a session"),
        (6, "opens a session"),
    ]
