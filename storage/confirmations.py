"""Actions waiting for the customer's confirmation: stored once, decided once.

`prepare` stores what the bot would do (once per request and kind, so a retried job
prepares nothing twice); `decide` moves a pending action to its outcome with one
conditional UPDATE, so of two clicks, a replayed interaction or a click racing the
expiry, exactly one wins; `finish` records what confirming did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError

from storage.confirmation_models import PendingAction
from storage.db import Sessions
from storage.models import Job, Ticket, utcnow
from storage.queue import new_job

PENDING = "pending"
Outcome = Literal["confirmed", "cancelled", "changed", "expired"]
OUTCOMES: tuple[Outcome, ...] = ("confirmed", "cancelled", "changed", "expired")


@dataclass(frozen=True)
class Pending:
    id: int
    ticket_id: int
    request_id: str
    kind: str
    params: dict[str, Any]
    summary: str
    requester: str
    customer_id: int | None
    channel_id: str
    reply_ts: str | None
    status: str
    result: str | None
    expires_at: dt.datetime


@dataclass(frozen=True)
class Decision:
    """`ok` when this call moved the action; otherwise `reason` says why not."""

    ok: bool
    action: Pending | None
    reason: str = ""  # not_found | not_yours | already | expired


async def prepare(
    sessions: Sessions,
    *,
    ticket_id: int,
    request_id: str,
    kind: str,
    params: dict[str, Any],
    summary: str,
    requester: str,
    customer_id: int | None,
    channel_id: str,
    expires_in: dt.timedelta,
) -> Pending:
    """Store a pending action, or return the one this request already prepared."""
    row = PendingAction(
        ticket_id=ticket_id, request_id=request_id[:200], kind=kind, params=params,
        summary=summary[:500], requester=requester[:32], customer_id=customer_id,
        channel_id=channel_id[:32], expires_at=utcnow() + expires_in,
    )  # fmt: skip
    try:
        async with sessions() as session, session.begin():
            session.add(row)
        return _pending(row)
    except IntegrityError:
        async with sessions() as session:
            existing = await session.scalar(
                select(PendingAction).where(
                    PendingAction.request_id == request_id[:200], PendingAction.kind == kind
                )
            )
            assert existing is not None
            return _pending(existing)


async def get(sessions: Sessions, action_id: int) -> Pending | None:
    async with sessions() as session:
        row = await session.get(PendingAction, action_id)
        return _pending(row) if row is not None else None


async def set_reply(sessions: Sessions, action_id: int, channel_id: str, ts: str) -> None:
    """Where the confirmation card is (the reply message), for later edits."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(PendingAction)
            .where(PendingAction.id == action_id)
            .values(channel_id=channel_id[:32], reply_ts=ts[:32])
        )


async def decide(
    sessions: Sessions,
    action_id: int,
    outcome: Outcome,
    user: str | None,
    then_job: tuple[str, str, dict[str, Any]] | None = None,
) -> Decision:
    """Move a pending action to `outcome`. `user` must be its requester (None: the
    system, for expiry); a confirmation past its expiry cannot be confirmed.

    `then_job` (kind, dedupe key, payload) is queued in the same transaction when the
    move succeeds: a confirmation is never stored without the job that carries it out,
    whatever crashes in between.
    """
    now = utcnow()
    conditions = [PendingAction.id == action_id, PendingAction.status == PENDING]
    if user is not None:
        conditions.append(PendingAction.requester == user)
    if outcome == "confirmed":
        conditions.append(PendingAction.expires_at > now)
    statement = (
        update(PendingAction)
        .where(and_(*conditions))
        .values(status=outcome, decided_at=now, decided_by=(user or "system")[:32])
    )
    async with sessions() as session, session.begin():
        result = await session.execute(statement)
        moved = getattr(result, "rowcount", 0) == 1
        if moved and then_job is not None:
            session.add(Job(**new_job(*then_job)))
        row = await session.get(PendingAction, action_id, populate_existing=True)
    action = _pending(row) if row is not None else None
    if moved:
        return Decision(True, action)
    if action is None:
        return Decision(False, None, "not_found")
    if user is not None and action.requester != user:
        return Decision(False, action, "not_yours")
    if action.status == PENDING:
        return Decision(False, action, "expired")
    return Decision(False, action, "already")


async def finish(sessions: Sessions, action_id: int, result: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(PendingAction).where(PendingAction.id == action_id).values(result=result[:500])
        )


async def outcome_counts(
    sessions: Sessions, since: dt.datetime, until: dt.datetime
) -> dict[str, int]:
    """How the confirmations of tickets opened in the period ended (and how many wait)."""
    query = (
        select(PendingAction.status, func.count())
        .join(Ticket, Ticket.id == PendingAction.ticket_id)
        .where(Ticket.created_at >= since, Ticket.created_at < until)
        .group_by(PendingAction.status)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    counts = dict.fromkeys((*OUTCOMES, PENDING), 0)
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def _pending(row: PendingAction) -> Pending:
    return Pending(
        row.id, row.ticket_id, row.request_id, row.kind, dict(row.params or {}), row.summary,
        row.requester, row.customer_id, row.channel_id, row.reply_ts, row.status, row.result,
        row.expires_at,
    )  # fmt: skip


__all__ = [
    "OUTCOMES",
    "PENDING",
    "Decision",
    "Outcome",
    "Pending",
    "decide",
    "finish",
    "get",
    "outcome_counts",
    "prepare",
    "set_reply",
]
