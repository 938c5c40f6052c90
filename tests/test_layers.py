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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_only_downwards_and_only_storage_touches_the_database(
    package: str,
) -> None:
    assert violations(package, FORBIDDEN[package]) == []


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = (
        "import sqlalchemy.orm\n"
        "from bot.app import build_app\n"
        "from . import sibling\n"
        "def load():\n"
        "    from sqlalchemy import select\n"
    )
    found = [module for _, module in imported_modules(ast.parse(source))]
    assert found == ["sqlalchemy.orm", "bot.app", "sqlalchemy"]
