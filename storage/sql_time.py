"""`SecondsBetween`: the seconds from one timestamp to another, computed by the database.

SQLite keeps UTC timestamps as text (`julianday` reads them), PostgreSQL as timestamptz
(`EXTRACT(EPOCH ...)`); one expression for both keeps Python from parsing datetimes row
by row in reports.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType


class SecondsBetween(ColumnElement[float]):
    """`end - start` in seconds (NULL when either is NULL)."""

    inherit_cache = True
    type = Float()
    # Its operands, for SQLAlchemy's statement cache: without them every statement using
    # it was compiled again on every run ("no key").
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (typed so by SQLAlchemy)
        ("start", InternalTraversal.dp_clauseelement),
        ("end", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, start: Any, end: Any) -> None:
        self.start, self.end = start, end


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(SecondsBetween)
def _seconds_postgres(element: SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = compiler.process(element.start, **kw), compiler.process(element.end, **kw)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


__all__ = ["SecondsBetween"]
