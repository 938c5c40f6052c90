"""Erasing what the bot keeps about a person's conversations (`supportbot forget`).

Deleted: their tickets with every turn, their pipeline traces, and the queued or finished
jobs that still carry their message text. Kept: the simulated business records (orders,
invoices, returns, billing cases), as a shop keeps its books.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import ConversationTurn, Job, Ticket, TraceRun, TraceStep

JOB_BATCH = 500


@dataclass(frozen=True)
class ForgetReport:
    tickets: int
    turns: int
    traces: int
    jobs: int


def _job_user(payload: dict[str, object]) -> object:
    message = payload.get("message")
    return message.get("user_id") if isinstance(message, dict) else payload.get("user_id")


async def _job_ids_of(session: AsyncSession, slack_user_id: str) -> list[int]:
    """Jobs whose payload names the user (JSON queries differ per database: filter here)."""
    found: list[int] = []
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(Job.id, Job.payload)
                .where(Job.id > last_id)
                .order_by(Job.id)
                .limit(JOB_BATCH)
            )
        ).all()
        if not rows:
            return found
        found += [row.id for row in rows if _job_user(row.payload or {}) == slack_user_id]
        last_id = rows[-1].id


async def forget_user(
    sessions: async_sessionmaker[AsyncSession], slack_user_id: str
) -> ForgetReport:
    """Delete one Slack user's conversations, traces and message jobs in one transaction."""
    async with sessions() as session, session.begin():
        ticket_ids = list(
            (
                await session.scalars(
                    select(Ticket.id).where(Ticket.slack_user_id == slack_user_id)
                )
            ).all()
        )
        turns = await session.scalar(
            select(func.count())
            .select_from(ConversationTurn)
            .where(
                (ConversationTurn.ticket_id.in_(ticket_ids))
                | (ConversationTurn.slack_user_id == slack_user_id)
            )
        )
        await session.execute(
            delete(ConversationTurn).where(
                (ConversationTurn.ticket_id.in_(ticket_ids))
                | (ConversationTurn.slack_user_id == slack_user_id)
            )
        )
        await session.execute(delete(Ticket).where(Ticket.id.in_(ticket_ids)))
        run_ids = list(
            (
                await session.scalars(
                    select(TraceRun.id).where(TraceRun.slack_user_id == slack_user_id)
                )
            ).all()
        )
        await session.execute(delete(TraceStep).where(TraceStep.run_id.in_(run_ids)))
        await session.execute(delete(TraceRun).where(TraceRun.id.in_(run_ids)))
        job_ids = await _job_ids_of(session, slack_user_id)
        await session.execute(delete(Job).where(Job.id.in_(job_ids)))
    return ForgetReport(
        tickets=len(ticket_ids), turns=int(turns or 0), traces=len(run_ids), jobs=len(job_ids)
    )
