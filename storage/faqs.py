"""Storing FAQs with their documents and entries: the knowledge base's source of truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.models import Faq, FaqDocument, FaqEntry


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
) -> int:
    """Store one FAQ in a single transaction and return its id.

    With a `request_key`, storing the same request twice keeps the first FAQ.
    """
    try:
        return await _insert_faq(
            sessions, title, documents, entries, mode, run_id, created_by, channel_id, request_key
        )
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


async def entries_version(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """(count, highest id) of all FAQ entries: changes whenever entries are added or removed.

    Cheap enough to ask before every search, so a cached index is rebuilt only when the
    entries changed.
    """
    async with sessions() as session:
        count, highest = (
            await session.execute(select(func.count(FaqEntry.id), func.max(FaqEntry.id)))
        ).one()
    return int(count or 0), int(highest or 0)


async def latest_entries(
    sessions: async_sessionmaker[AsyncSession], limit: int
) -> list[StoredEntry]:
    """The `limit` most recently stored FAQ entries, newest first."""
    async with sessions() as session:
        rows = await session.scalars(select(FaqEntry).order_by(FaqEntry.id.desc()).limit(limit))
        return [_stored_entry(row) for row in rows]


def _stored_entry(row: FaqEntry) -> StoredEntry:
    return StoredEntry(row.question, row.answer, tuple(map(str, row.sources)))


async def _insert_faq(
    sessions: async_sessionmaker[AsyncSession],
    title: str,
    documents: Sequence[StoredDocument],
    entries: Sequence[StoredEntry],
    mode: str,
    run_id: str | None,
    created_by: str,
    channel_id: str | None,
    request_key: str | None,
) -> int:
    async with sessions() as session, session.begin():
        faq = Faq(
            title=title[:200],
            created_by=created_by,
            channel_id=channel_id,
            mode=mode,
            run_id=run_id,
            request_key=request_key,
        )
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
