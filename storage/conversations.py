"""Tickets and conversation turns: one ticket per support thread.

Idempotent by construction: a ticket is unique per (team, channel, thread) and a turn per
(ticket, role, message ts), so processing the same Slack event twice stores nothing new.

Every turn keeps its author (`slack_user_id`; empty for the bot). Roles: `customer` is the
ticket's owner (who opened it), `participant` anyone else writing in the thread (kept for
the record; never part of the owner's conversation), `agent` a support agent, `bot` us.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from storage.db import conflict_insert, read_only
from storage.models import ConversationTurn, Ticket, UTCDateTime, utcnow
from storage.sql_time import SecondsBetween

HISTORY_TURNS = 12


@dataclass(frozen=True)
class ThreadKey:
    team_id: str
    channel_id: str
    thread_ts: str


CUSTOMER = "customer"
NOTE = "note"  # an agent's internal note in the card's thread (never shown to the customer)
PARTICIPANT = "participant"


@dataclass(frozen=True)
class Turn:
    role: str  # customer | participant | bot | agent
    text: str
    author: str = ""  # the Slack user who wrote it; empty for the bot


class ConversationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def find_ticket(self, key: ThreadKey) -> Ticket | None:
        """The thread's ticket, or None. A read-only transaction: the Slack listener asks
        this on the ack path for every thread reply, and must not queue for the write lock."""
        async with self._sessions() as session:
            await read_only(session)
            return await session.scalar(_ticket_query(key))

    async def find_by_card(self, channel_id: str, card_ts: str) -> Ticket | None:
        """The ticket whose triage card is the message `card_ts` (read-only, like above)."""
        async with self._sessions() as session:
            await read_only(session)
            return await session.scalar(
                select(Ticket).where(
                    Ticket.triage_channel == channel_id, Ticket.triage_ts == card_ts
                )
            )

    async def open_ticket(self, key: ThreadKey, slack_user_id: str, customer_id: int) -> Ticket:
        """The ticket of this thread, created on first contact (race-safe)."""
        found = await self.find_ticket(key)
        if found is not None:
            return found
        try:
            async with self._sessions() as session, session.begin():
                ticket = Ticket(
                    team_id=key.team_id,
                    channel_id=key.channel_id,
                    thread_ts=key.thread_ts,
                    slack_user_id=slack_user_id,
                    customer_id=customer_id,
                )
                session.add(ticket)
                await session.flush()
                ticket.ticket_number = f"T-{ticket.id:05d}"
            return ticket
        except IntegrityError:
            found = await self.find_ticket(key)
            if found is None:
                raise
            return found

    async def add_turn(
        self,
        ticket_id: int,
        role: str,
        message_ts: str,
        text: str,
        slack_user_id: str = "",
        run_id: str | None = None,
    ) -> None:
        """Record a turn once; a replayed (ticket, role, ts) is ignored.

        One `INSERT ... ON CONFLICT DO NOTHING` on the turn's unique key: every message
        records two turns, and a look-up followed by the ORM's insert cost twice the CPU.
        """
        values = {
            "ticket_id": ticket_id,
            "role": role,
            "message_ts": message_ts,
            "text": text,
            "slack_user_id": slack_user_id,
            "run_id": run_id,
            "created_at": utcnow(),
        }
        async with self._sessions() as session, session.begin():
            dialect = (await session.connection()).dialect.name
            inserted = await session.scalar(_insert_turn_once(dialect), values)
            if inserted is not None and role in REPLY_ROLES:
                await _note_reply(session, ticket_id, role)

    async def revise_turn(
        self, role: str, message_ts: str, text: str | None, *, ticket_id: int | None = None
    ) -> int:
        """Follow an edit (new `text`) or a deletion (None) of a recorded message: the
        turns of `role` at `message_ts` (of `ticket_id`, when given). How many changed."""
        where = [ConversationTurn.role == role, ConversationTurn.message_ts == message_ts]
        if ticket_id is not None:
            where.append(ConversationTurn.ticket_id == ticket_id)
        statement = (
            delete(ConversationTurn).where(*where)
            if text is None
            else update(ConversationTurn).where(*where).values(text=text)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement.execution_options(synchronize_session=False))
            return int(getattr(result, "rowcount", 0) or 0)

    async def history(
        self,
        ticket_id: int,
        before_ts: str | None = None,
        limit: int = HISTORY_TURNS,
        owner: str | None = None,
    ) -> list[Turn]:
        """The latest turns of a ticket, oldest first, excluding the message at `before_ts`.

        Internal notes are never part of it. With `owner`, the owner's conversation only:
        the bot's and agents' turns and the owner's own words; other people's messages in
        the thread (participant turns, and customer turns another user wrote before
        authors were told apart) are left out.
        """
        # Internal notes (agents' words in the card's thread) never reach the bot's prompts.
        query = select(ConversationTurn).where(
            ConversationTurn.ticket_id == ticket_id, ConversationTurn.role != NOTE
        )
        if owner is not None:
            query = query.where(
                ConversationTurn.role.in_(("bot", "agent"))
                | ((ConversationTurn.role == CUSTOMER) & (ConversationTurn.slack_user_id == owner))
            )
        if before_ts is not None:
            query = query.where(ConversationTurn.message_ts != before_ts)
        query = query.order_by(ConversationTurn.id.desc()).limit(limit)
        async with self._sessions() as session:
            await read_only(session)
            rows = list((await session.scalars(query)).all())
        return [
            Turn(role=row.role, text=row.text, author=row.slack_user_id) for row in reversed(rows)
        ]

    async def customer_turns_since(self, slack_user_id: str, since: dt.datetime) -> int:
        """How many messages a user sent (in any thread, theirs or not) since `since`: floods."""
        async with self._sessions() as session:
            await read_only(session)
            count = await session.scalar(
                select(func.count())
                .select_from(ConversationTurn)
                .where(
                    ConversationTurn.slack_user_id == slack_user_id,
                    ConversationTurn.role.in_((CUSTOMER, PARTICIPANT)),
                    ConversationTurn.created_at >= since,
                )
            )
        return int(count or 0)


def _ticket_query(key: ThreadKey) -> Select[Ticket]:
    return select(Ticket).where(
        Ticket.team_id == key.team_id,
        Ticket.channel_id == key.channel_id,
        Ticket.thread_ts == key.thread_ts,
    )


REPLY_ROLES = frozenset({"bot", "agent"})


@functools.cache
def _insert_turn_once(dialect: str) -> ReturningInsert[int]:
    """The turn's INSERT, doing nothing when (ticket, role, ts) is already stored;
    returns the new id (none when it was). Built once: a cached statement."""
    statement = conflict_insert(dialect, ConversationTurn)
    return statement.on_conflict_do_nothing(
        index_elements=["ticket_id", "role", "message_ts"]
    ).returning(statement.table.c.id)


async def _note_reply(session: AsyncSession, ticket_id: int, role: str) -> None:
    """Keep the ticket's numbers (`storage.support_report`): the seconds to its first
    reply, and that a person took part when an agent wrote. Not a change of the ticket:
    `updated_at` (its version) stays."""
    values: dict[str, Any] = {
        "first_response_s": func.coalesce(
            Ticket.first_response_s,
            SecondsBetween(Ticket.created_at, literal(utcnow(), UTCDateTime())),
        ),
        "updated_at": Ticket.updated_at,
    }
    if role == "agent":
        values["person_involved"] = True
        # The SLA's first response (`storage.sla`): the first agent reply on its clock.
        values["agent_replied_at"] = case(
            (Ticket.sla_started_at.is_(None), Ticket.agent_replied_at),
            else_=func.coalesce(Ticket.agent_replied_at, literal(utcnow(), UTCDateTime())),
        )
    await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
