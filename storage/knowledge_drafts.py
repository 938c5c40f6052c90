"""Queries of the gap loop: tickets an agent resolved become draft knowledge entries.

A ticket qualifies once it is resolved and an agent answered the customer in it (an
`agent` turn: the relayed reply of an escalated or claimed ticket). One draft per ticket
(a unique key: a retried job or two processes draft it once). A draft is knowledge only
once an agent approves it: `review_draft` is one conditional UPDATE, so a double click
decides once, and the caller then adds the approved entry to the knowledge base.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.knowledge_models import KnowledgeDraft
from storage.models import ConversationTurn, Ticket, utcnow

Sessions = async_sessionmaker[AsyncSession]
DraftDecision = Literal["approved", "discarded"]
RESOLVED = "resolved"
AGENT = "agent"
CUSTOMER = "customer"


@dataclass(frozen=True)
class ResolvedTicket:
    id: int
    number: str
    customer_words: str
    agent_words: str


@dataclass(frozen=True)
class Draft:
    id: int
    ticket_number: str
    question: str
    answer: str
    review: str
    created_at: dt.datetime


async def tickets_to_draft(sessions: Sessions, limit: int = 20) -> list[int]:
    """Resolved tickets an agent answered in, with no draft yet (oldest first)."""
    answered = exists().where(
        ConversationTurn.ticket_id == Ticket.id, ConversationTurn.role == AGENT
    )
    drafted = exists().where(KnowledgeDraft.ticket_id == Ticket.id)
    query = (
        select(Ticket.id)
        .where(Ticket.status == RESOLVED, answered, ~drafted)
        .order_by(Ticket.id)
        .limit(limit)
    )
    async with sessions() as session:
        return list(await session.scalars(query))


async def resolved_ticket(sessions: Sessions, ticket_id: int) -> ResolvedTicket | None:
    """A resolved ticket's customer and agent words, in order; None if not (or no longer)
    resolved."""
    async with sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.status != RESOLVED:
            return None
        turns = list(
            await session.scalars(
                select(ConversationTurn)
                .where(
                    ConversationTurn.ticket_id == ticket_id,
                    ConversationTurn.role.in_((CUSTOMER, AGENT)),
                )
                .order_by(ConversationTurn.id)
            )
        )
    said = lambda role: "\n".join(t.text for t in turns if t.role == role)  # noqa: E731
    return ResolvedTicket(ticket.id, ticket.ticket_number or "", said(CUSTOMER), said(AGENT))


async def save_draft(
    sessions: Sessions, *, ticket_id: int, ticket_number: str, question: str, answer: str
) -> bool:
    """Store the ticket's draft; False when it already has one."""
    draft = KnowledgeDraft(
        ticket_id=ticket_id,
        ticket_number=ticket_number[:16],
        question=question[:2000],
        answer=answer[:6000],
    )
    try:
        async with sessions() as session, session.begin():
            session.add(draft)
    except IntegrityError:
        return False
    return True


async def pending_drafts(sessions: Sessions, limit: int = 20) -> list[Draft]:
    query = (
        select(KnowledgeDraft)
        .where(KnowledgeDraft.review == "pending")
        .order_by(KnowledgeDraft.id)
        .limit(limit)
    )
    async with sessions() as session:
        return [_draft(d) for d in await session.scalars(query)]


async def get_draft(sessions: Sessions, draft_id: int) -> Draft | None:
    async with sessions() as session:
        row = await session.get(KnowledgeDraft, draft_id)
        return _draft(row) if row is not None else None


async def review_draft(
    sessions: Sessions,
    draft_id: int,
    decision: DraftDecision,
    reviewer: str,
    edited: tuple[str, str] | None = None,
) -> Draft | None:
    """Decide a pending draft once, with the reviewer's `edited` (question, answer) if
    any; the draft as decided, None when it was not pending."""
    values: dict[str, object] = {
        "review": decision, "reviewed_by": reviewer[:32], "reviewed_at": utcnow()
    }  # fmt: skip
    if edited is not None:
        values["question"], values["answer"] = edited[0][:2000], edited[1][:6000]
    statement = (
        update(KnowledgeDraft)
        .where(KnowledgeDraft.id == draft_id, KnowledgeDraft.review == "pending")
        .values(**values)
    )
    async with sessions() as session, session.begin():
        result = await session.execute(statement)
        if not getattr(result, "rowcount", 0):
            return None
        draft = await session.get(KnowledgeDraft, draft_id)
        return _draft(draft) if draft is not None else None


def _draft(row: KnowledgeDraft) -> Draft:
    return Draft(row.id, row.ticket_number, row.question, row.answer, row.review, row.created_at)
