"""The brief of an escalated ticket: what the brief step reads, and where it is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from storage.confirmation_models import TicketBriefRow
from storage.conversations import NOTE
from storage.db import Sessions
from storage.models import ConversationTurn, Ticket, utcnow

MAX_CONVERSATION_CHARS = 8000


@dataclass(frozen=True)
class Conversation:
    ticket_id: int
    number: str
    reason: str
    text: str  # "customer: …\nbot: …", the newest turns kept when long


@dataclass(frozen=True)
class StoredBrief:
    brief: dict[str, Any]
    draft: str | None
    provider: str
    run_id: str


async def conversation(sessions: Sessions, ticket_id: int) -> Conversation | None:
    async with sessions() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            return None
        turns = (
            await session.scalars(
                select(ConversationTurn)
                # Internal notes never reach a prompt: the suggested reply goes to the customer.
                .where(ConversationTurn.ticket_id == ticket_id, ConversationTurn.role != NOTE)
                .order_by(ConversationTurn.id)
            )
        ).all()
    lines = [f"{turn.role}: {' '.join(turn.text.split())}" for turn in turns]
    text = "\n".join(lines)[-MAX_CONVERSATION_CHARS:]
    number = ticket.ticket_number or f"T-{ticket.id:05d}"
    return Conversation(ticket.id, number, ticket.escalation_reason or "", text)


async def save_brief(
    sessions: Sessions, ticket_id: int, brief: dict[str, Any], draft: str | None,
    provider: str, run_id: str,
) -> None:  # fmt: skip
    async with sessions() as session, session.begin():
        row = await session.get(TicketBriefRow, ticket_id)
        if row is None:
            session.add(TicketBriefRow(ticket_id=ticket_id, brief=brief, draft=draft,
                                       provider=provider, run_id=run_id))  # fmt: skip
        else:
            row.brief, row.draft, row.provider, row.run_id = brief, draft, provider, run_id
            row.created_at = utcnow()


async def get_brief(sessions: Sessions, ticket_id: int) -> StoredBrief | None:
    async with sessions() as session:
        row = await session.get(TicketBriefRow, ticket_id)
        if row is None:
            return None
        return StoredBrief(dict(row.brief or {}), row.draft, row.provider, row.run_id)


__all__ = ["Conversation", "StoredBrief", "conversation", "get_brief", "save_brief"]
