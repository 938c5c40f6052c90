"""Storing FAQs with their documents and entries: the knowledge base's source of truth.

Only an approved FAQ is knowledge (`Faq.review`): one stored `approved=True` (a support
agent's, or the operator's CLI) counts at once; anyone else's is "pending" until an agent
approves or discards it with `review_faq`, one conditional UPDATE (a double click decides
once). `entries_version` includes the latest approval, so every process's cached index is
rebuilt when an approval lands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.elements import ColumnElement

from storage.models import Faq, FaqDocument, FaqEntry, utcnow

APPROVED: Final = "approved"
PENDING: Final = "pending"
DISCARDED: Final = "discarded"
Decision = Literal["approved", "discarded"]


@dataclass(frozen=True)
class StoredDocument:
    title: str
    text: str
    content_type: str = "text/plain"


@dataclass(frozen=True)
class StoredEntry:
    question: str
    answer: str
    sources: Sequence[str]


async def save_faq(
    sessions: async_sessionmaker[AsyncSession],
    *,
    title: str,
    documents: Sequence[StoredDocument],
    entries: Sequence[StoredEntry],
    mode: str,
    run_id: str | None,
    created_by: str = "",
    channel_id: str | None = None,
    request_key: str | None = None,
    approved: bool = False,
) -> int:
    """Store one FAQ in a single transaction and return its id.

    `approved` makes it knowledge at once (a support agent's or the operator's); otherwise
    it waits for an agent's review. With a `request_key`, storing the same request twice
    keeps the first FAQ.
    """
    faq = Faq(
        title=title[:200],
        created_by=created_by,
        channel_id=channel_id,
        mode=mode,
        run_id=run_id,
        request_key=request_key,
        review=APPROVED if approved else PENDING,
        reviewed_by=created_by[:32] if approved else None,
        reviewed_at=utcnow() if approved else None,
    )
    try:
        return await _insert_faq(sessions, faq, documents, entries)
    except IntegrityError:
        existing = await find_faq(sessions, request_key) if request_key else None
        if existing is None:
            raise
        return existing.id


async def find_faq(sessions: async_sessionmaker[AsyncSession], request_key: str) -> Faq | None:
    """The FAQ a request already stored, with its entries."""
    async with sessions() as session:
        return await session.scalar(
            select(Faq).options(selectinload(Faq.entries)).where(Faq.request_key == request_key)
        )


async def faq_entries(sessions: async_sessionmaker[AsyncSession], faq_id: int) -> list[StoredEntry]:
    """The entries of one stored FAQ, in their order."""
    async with sessions() as session:
        rows = await session.scalars(
            select(FaqEntry).where(FaqEntry.faq_id == faq_id).order_by(FaqEntry.position)
        )
        return [_stored_entry(row) for row in rows]


EntriesVersion = tuple[int, int, str]


async def entries_version(sessions: async_sessionmaker[AsyncSession]) -> EntriesVersion:
    """(count, highest id, latest approval) of the approved FAQ entries: changes whenever
    approved entries are added or removed, or a FAQ is approved.

    Cheap enough to ask before every search, so a cached index is rebuilt only when the
    knowledge changed.
    """
    query = select(func.count(FaqEntry.id), func.max(FaqEntry.id), func.max(Faq.reviewed_at)).join(
        Faq, FaqEntry.faq_id == Faq.id
    )
    async with sessions() as session:
        count, highest, approved_at = (await session.execute(query.where(_approved()))).one()
    return int(count or 0), int(highest or 0), str(approved_at or "")


async def latest_entries(
    sessions: async_sessionmaker[AsyncSession], limit: int
) -> list[StoredEntry]:
    """The `limit` most recently stored entries of approved FAQs, newest first."""
    query = select(FaqEntry).join(Faq, FaqEntry.faq_id == Faq.id).where(_approved())
    async with sessions() as session:
        rows = await session.scalars(query.order_by(FaqEntry.id.desc()).limit(limit))
        return [_stored_entry(row) for row in rows]


@dataclass(frozen=True)
class PendingFaq:
    """A FAQ waiting for an agent's review, as App Home lists it."""

    id: int
    title: str
    created_by: str
    created_at: dt.datetime
    questions: tuple[str, ...]


async def pending_faqs(sessions: async_sessionmaker[AsyncSession], limit: int) -> list[PendingFaq]:
    """The oldest `limit` FAQs waiting for review, with their questions."""
    query = (
        select(Faq)
        .options(selectinload(Faq.entries))
        .where(Faq.review == PENDING)
        .order_by(Faq.id)
        .limit(limit)
    )
    async with sessions() as session:
        rows = await session.scalars(query)
        return [
            PendingFaq(
                f.id, f.title, f.created_by, f.created_at, tuple(e.question for e in f.entries)
            )
            for f in rows
        ]


async def review_faq(
    sessions: async_sessionmaker[AsyncSession], faq_id: int, decision: Decision, reviewer: str
) -> bool:
    """Approve or discard a pending FAQ; False when it was not pending (already decided,
    or gone). One conditional UPDATE, so two agents (or a double click) decide once."""
    statement = (
        update(Faq)
        .where(Faq.id == faq_id, Faq.review == PENDING)
        .values(review=decision, reviewed_by=reviewer[:32], reviewed_at=utcnow())
    )
    async with sessions() as session, session.begin():
        result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def faq_review(sessions: async_sessionmaker[AsyncSession], faq_id: int) -> str | None:
    """The review state of one FAQ ("approved", "pending", "discarded"), None if unknown."""
    async with sessions() as session:
        return await session.scalar(select(Faq.review).where(Faq.id == faq_id))


def _approved() -> ColumnElement[bool]:
    return Faq.review == APPROVED


def _stored_entry(row: FaqEntry) -> StoredEntry:
    return StoredEntry(row.question, row.answer, tuple(map(str, row.sources)))


async def _insert_faq(
    sessions: async_sessionmaker[AsyncSession],
    faq: Faq,
    documents: Sequence[StoredDocument],
    entries: Sequence[StoredEntry],
) -> int:
    async with sessions() as session, session.begin():
        faq.documents = [
            FaqDocument(title=d.title[:300], text=d.text, content_type=d.content_type[:100])
            for d in documents
        ]
        faq.entries = [
            FaqEntry(position=i, question=e.question, answer=e.answer, sources=list(e.sources))
            for i, e in enumerate(entries, 1)
        ]
        session.add(faq)
        await session.flush()
        return faq.id
