"""The turns customers were unhappy with, for the evaluation set (`supportbot eval export`).

A thumbs-down names a reply (its run id); a low satisfaction answer names a ticket. Both
lead back to what the customer wrote and what the bot answered, which a person then
labels (intent, tasks or sources) to grow the test set from real failures.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from storage.db import Sessions, read_only
from storage.feedback_models import CsatSurvey, ReplyVote
from storage.models import ConversationTurn, Ticket

LOW_CSAT = 2  # scores at or under this (Bad = 1) count as a bad verdict


@dataclass(frozen=True)
class BadTurn:
    """One customer message and the bot's reply to it, with the verdict that flagged it."""

    verdict: str  # "thumbs down" | "CSAT 1/5" ...
    ticket_number: str
    run_id: str
    customer_text: str
    bot_text: str
    intents: list[str]


async def bad_turns(sessions: Sessions, limit: int = 1000) -> list[BadTurn]:
    """Thumbs-down replies (newest first), then the first exchange of low-CSAT tickets."""
    found: list[BadTurn] = []
    async with sessions() as session:
        await read_only(session)
        downs = await session.execute(
            select(ReplyVote.run_id, Ticket.id, Ticket.ticket_number, Ticket.intents)
            .join(Ticket, Ticket.id == ReplyVote.ticket_id)
            .where(ReplyVote.vote == "down", ReplyVote.run_id != "")
            .order_by(ReplyVote.updated_at.desc())
            .limit(limit)
        )
        for run_id, ticket_id, number, intents in downs.all():
            reply = await session.scalar(
                select(ConversationTurn).where(
                    ConversationTurn.ticket_id == ticket_id, ConversationTurn.run_id == run_id
                )
            )
            if reply is None:
                continue
            asked = await session.scalar(
                select(ConversationTurn.text).where(
                    ConversationTurn.ticket_id == ticket_id,
                    ConversationTurn.role == "customer",
                    ConversationTurn.message_ts == reply.message_ts.removeprefix("reply-to:"),
                )
            )
            if asked:
                found.append(BadTurn("thumbs down", number or "", run_id, asked, reply.text,
                                     list(intents or [])))  # fmt: skip
        low = await session.execute(
            select(CsatSurvey.score, Ticket.id, Ticket.ticket_number, Ticket.intents)
            .join(Ticket, Ticket.id == CsatSurvey.ticket_id)
            .where(CsatSurvey.score <= LOW_CSAT)
            .order_by(CsatSurvey.answered_at.desc())
            .limit(limit)
        )
        for score, ticket_id, number, intents in low.all():
            turns = (
                await session.scalars(
                    select(ConversationTurn)
                    .where(ConversationTurn.ticket_id == ticket_id)
                    .order_by(ConversationTurn.id)
                )
            ).all()
            first = next((t for t in turns if t.role == "customer"), None)
            answer = next((t for t in turns if t.role == "bot"), None)
            if first is not None:
                found.append(BadTurn(
                    f"CSAT {score}/5", number or "", (answer.run_id or "") if answer else "",
                    first.text, answer.text if answer else "", list(intents or []),
                ))  # fmt: skip
    return found[:limit]


__all__ = ["LOW_CSAT", "BadTurn", "bad_turns"]
