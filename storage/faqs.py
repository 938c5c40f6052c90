"""Storing FAQs with their documents and entries: the knowledge base's source of truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
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
