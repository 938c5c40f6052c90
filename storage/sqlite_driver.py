"""aiosqlite with one trip to the connection's thread per statement.

aiosqlite runs every DBAPI call on a thread of its own, and SQLAlchemy's adapter makes
four such calls per statement (open a cursor, execute, fetch the rows, close). Each trip
costs the event loop a wake-up through its self-pipe and a task step, which on a local
file is more than the statement itself; under a burst of messages that was a large share
of the one core a `serve` process has. `OneTripCursor` does the four in one function on
the thread. Statements still run there, never on the event loop, so a busy wait on the
write lock or a sync of the log does not block it.

Only the default (buffered) cursor changes: server-side cursors (`stream_results`) keep
SQLAlchemy's own. It reaches into aiosqlite's `_execute` and `_conn`, as SQLAlchemy's
adapter itself does for `isolation_level`; constraints.txt pins the version it was tested
with, and every SQLite test in the suite runs through it.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

# What one statement leaves behind: description, rows (None if it returns none),
# rowcount, lastrowid.
_Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run_statement(
    connection: sqlite3.Connection, many: bool, operation: str, parameters: Any
) -> _Outcome:
    """Execute and fetch everything on aiosqlite's thread, then close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement, rows and counts come back in one trip."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No driver cursor is opened up front (the base class opens one, a trip of its own).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the driver cursor was closed on the thread."""

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._one_trip(False, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._one_trip(True, operation, seq_of_parameters)

    async def _one_trip(self, many: bool, operation: str, parameters: Any) -> None:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await driver._execute(
                _run_statement, driver._conn, many, operation, parameters
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows or ())


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI adapter, handing out `OneTripConnection`s."""

    def connect(self, *args: Any, **kwargs: Any) -> OneTripConnection:
        connection = super().connect(*args, **kwargs)
        return OneTripConnection(self, connection._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    """The `module` to give `create_async_engine` for a `sqlite+aiosqlite` URL."""
    return OneTripDBAPI(aiosqlite, sqlite3)
