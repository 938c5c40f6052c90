"""Round-robin assignment of escalated tickets among the agents who are not away.

`pick_agent` reads who is away, how many claimed tickets each candidate holds and when
each was last given one, and takes the least recently assigned agent under the cap, in
one transaction that also stamps the choice (on SQLite one writer at a time, so two
escalations never pick on the same stale view; on PostgreSQL two simultaneous ones may,
at worst one ticket over an agent's cap).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select

from storage.agent_models import AgentPresence
from storage.db import Sessions
from storage.models import Ticket, utcnow
from storage.ticket_info import CLAIMED

NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


async def set_away(sessions: Sessions, user_id: str, away: bool) -> None:
    async with sessions() as session, session.begin():
        row = await session.get(AgentPresence, user_id[:32])
        if row is None:
            session.add(AgentPresence(slack_user_id=user_id[:32], away=away))
        else:
            row.away = away


async def pick_agent(sessions: Sessions, candidates: Sequence[str], cap: int) -> str | None:
    """The least recently assigned candidate who is not away and holds fewer than `cap`
    claimed tickets (stamped as assigned now); None when nobody can take one."""
    if not candidates:
        return None
    async with sessions() as session, session.begin():
        rows = {
            row.slack_user_id: row
            for row in await session.scalars(
                select(AgentPresence).where(AgentPresence.slack_user_id.in_(candidates))
            )
        }
        held = dict(
            (
                await session.execute(
                    select(Ticket.assignee, func.count())
                    .where(Ticket.status == CLAIMED, Ticket.assignee.in_(candidates))
                    .group_by(Ticket.assignee)
                )
            ).all()
        )
        free = [
            user
            for user in candidates
            if not (rows.get(user) and rows[user].away) and int(held.get(user, 0)) < cap
        ]
        if not free:
            return None
        chosen = min(
            free,
            key=lambda u: (
                (rows[u].last_assigned_at or NEVER) if u in rows else NEVER,
                candidates.index(u),
            ),
        )
        if chosen in rows:
            rows[chosen].last_assigned_at = utcnow()
        else:
            session.add(AgentPresence(slack_user_id=chosen, last_assigned_at=utcnow()))
        return chosen


__all__ = ["pick_agent", "set_away"]
