"""LLM tokens spent per UTC day: per Slack user, and for everyone together.

The daily budgets (`pipelines.llm.budget`) read and add to these rows. They live in the
database, not in a process, so every `serve` replica and `worker` counts into the same
totals. An increment is one atomic upsert (`INSERT ... ON CONFLICT DO UPDATE SET tokens =
tokens + :n`): concurrent calls in any number of processes never lose a count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from storage.db import read_only
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


class TokenLedger:
    """Reads and adds to the day's spending rows."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

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
        day = day or utc_day()
        # Always the user's row first, then everyone's: one lock order, no deadlock.
        keys = [user_id, EVERYONE] if user_id and user_id != EVERYONE else [EVERYONE]
        async with self._sessions() as session, session.begin():
            dialect = (await session.connection()).dialect.name
            rows = await session.execute(
                _increment(dialect, day, [key[:32] for key in keys], tokens).returning(
                    TokenSpend.user_id, TokenSpend.tokens
                )
            )
            found = {user: int(total) for user, total in rows.all()}
        return DaySpend(user=found.get(user_id[:32], 0), everyone=found.get(EVERYONE, 0))


def _increment(dialect: str, day: dt.date, user_ids: list[str], tokens: int) -> Insert:
    """`INSERT ... VALUES (user), (everyone) ON CONFLICT (day, user_id) DO UPDATE SET tokens
    = tokens + :n`: both rows in one statement (rows are taken in the order given)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(TokenSpend).values(
        [{"day": day, "user_id": user_id, "tokens": tokens, "calls": 1} for user_id in user_ids]
    )
    return statement.on_conflict_do_update(
        index_elements=[TokenSpend.day, TokenSpend.user_id],
        set_={
            "tokens": TokenSpend.tokens + statement.excluded.tokens,
            "calls": TokenSpend.calls + 1,
        },
    )


__all__ = ["EVERYONE", "DaySpend", "TokenLedger", "utc_day"]
