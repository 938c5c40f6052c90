"""LLM tokens spent per UTC day: per Slack user, and for everyone together.

The daily budgets (`pipelines.llm.budget`) read and add to these rows. They live in the
database, not in a process, so every `serve` replica and `worker` counts into the same
totals. An increment is one atomic upsert (`INSERT ... ON CONFLICT DO UPDATE SET tokens =
tokens + :n`): concurrent calls in any number of processes never lose a count.

Every LLM call adds to the ledger, so in a burst these were a quarter of a process's write
transactions, each waiting its turn at SQLite's single writer lock. Calls charged while a
write is in progress wait for the next one and go in together (`storage.group_commit`): one upsert
of the summed rows, one commit, and each caller gets the totals just after it. A quiet
process writes each charge alone, at once.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from storage.db import conflict_insert, read_only
from storage.group_commit import GroupCommit
from storage.models import TokenSpend

EVERYONE = "*"  # the row that sums every user's spending of the day


def utc_day(now: dt.datetime | None = None) -> dt.date:
    """The budget day: budgets reset at 00:00 UTC, the same for every process."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()


@dataclass(frozen=True)
class DaySpend:
    """Tokens spent so far today by one user and by everyone."""

    user: int
    everyone: int


Key = tuple[dt.date, str]  # (day, user_id); user "" is no user: everyone's row only


@dataclass(frozen=True)
class _Charge:
    day: dt.date
    user: str
    tokens: int


class TokenLedger:
    """Reads and adds to the day's spending rows."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._charges: GroupCommit[_Charge, DaySpend] = GroupCommit(self._totals_after)

    async def spent(self, user_id: str, day: dt.date | None = None) -> DaySpend:
        """What `user_id` and everyone have spent on `day` (today by default)."""
        day = day or utc_day()
        keys = {user_id, EVERYONE}
        async with self._sessions() as session:
            await read_only(session)
            rows = await session.execute(
                select(TokenSpend.user_id, TokenSpend.tokens).where(
                    TokenSpend.day == day, TokenSpend.user_id.in_(keys)
                )
            )
            found = {user: int(tokens) for user, tokens in rows.all()}
        return DaySpend(user=found.get(user_id, 0), everyone=found.get(EVERYONE, 0))

    async def add(self, user_id: str, tokens: int, day: dt.date | None = None) -> DaySpend | None:
        """Add one call's `tokens` to `user_id`'s row (when given) and to everyone's; returns
        the totals just after (None when there was nothing to add)."""
        if tokens <= 0:
            return None
        user = user_id[:32] if user_id != EVERYONE else ""
        return await self._charges.submit(_Charge(day or utc_day(), user, tokens))

    async def _totals_after(self, batch: list[_Charge]) -> list[DaySpend]:
        """Write the batch; each charge's user and everyone's totals just after it (a
        failure reaches every caller, who logs it: `DailyBudget.charge`)."""
        totals = await self._write(batch)
        return [
            DaySpend(
                user=totals.get((charge.day, charge.user), 0) if charge.user else 0,
                everyone=totals.get((charge.day, EVERYONE), 0),
            )
            for charge in batch
        ]

    async def _write(self, batch: list[_Charge]) -> dict[Key, int]:
        """One upsert of the batch's rows, summed per (day, user); the totals after it."""
        tokens: Counter[Key] = Counter()
        calls: Counter[Key] = Counter()
        for charge in batch:
            for key in ((charge.day, charge.user), (charge.day, EVERYONE)):
                if key[1]:
                    tokens[key] += charge.tokens
                    calls[key] += 1
        rows = [{"day": day, "user_id": user, "tokens": tokens[day, user],
                 "calls": calls[day, user]} for day, user in sorted(tokens)]  # fmt: skip
        async with self._sessions() as session, session.begin():
            dialect = (await session.connection()).dialect.name
            result = await session.execute(_increment(dialect), rows)
            return {(day, user): int(total) for day, user, total in result.all()}


@functools.cache
def _increment(dialect: str) -> ReturningInsert[dt.date, str, int]:
    """`INSERT ... VALUES (row), ... ON CONFLICT (day, user_id) DO UPDATE SET tokens =
    tokens + :n, calls = calls + :k RETURNING day, user_id, tokens`, run with one parameter
    set per row: SQLAlchemy sends them as one multi-row statement ("insertmanyvalues"), in
    the order given (sorted by day and user), so concurrent writers lock rows in the same
    order. Built once and without values: rows given to `.values()` made the statement
    uncacheable, and compiling it again was most of the CPU of every charge."""
    statement = conflict_insert(dialect, TokenSpend)
    table = statement.table
    return statement.on_conflict_do_update(
        index_elements=[table.c.day, table.c.user_id],
        set_={
            "tokens": table.c.tokens + statement.excluded.tokens,
            "calls": table.c.calls + statement.excluded.calls,
        },
    ).returning(table.c.day, table.c.user_id, table.c.tokens)


__all__ = ["EVERYONE", "DaySpend", "TokenLedger", "utc_day"]
