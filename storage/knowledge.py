"""Every query of the knowledge base of documents (`storage.knowledge_models`).

A document is known by its `name`. Adding one that an agent (or the operator) may teach
stores its next version and deletes the earlier ones in the same transaction: a search
sees the old passages until the new ones are committed, then only the new. Adding the
same text again changes nothing. A document that came with a non-agent's `/faq` is
stored but searched only once its FAQ is approved (`storage.faqs`), and it replaces
nothing until then: the newest approved version of a name is the one searched.

`knowledge_version` changes whenever what is searchable may have changed, so every
process's cached index (`pipelines.knowledge.retrieval`) is rebuilt when it must be.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from storage.faqs import APPROVED
from storage.knowledge_models import (
    KnowledgeDocument,
    KnowledgeGap,
    KnowledgePassage,
    KnowledgeVector,
)
from storage.models import Faq

Sessions = async_sessionmaker[AsyncSession]
AddStatus = Literal["added", "replaced", "unchanged"]
SECTION_JOIN = " > "


@dataclass(frozen=True)
class NewPassage:
    position: int
    section: tuple[str, ...]
    text: str
    content_hash: str


@dataclass(frozen=True)
class Added:
    document_id: int
    version: int
    status: AddStatus
    passages: int


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    name: str
    version: int
    source: str
    added_by: str
    created_at: dt.datetime
    passages: int
    searchable: bool  # approved and the newest approved version of its name


@dataclass(frozen=True)
class StoredPassage:
    id: int
    document: str
    section: tuple[str, ...]
    text: str
    content_hash: str


async def add_document(
    sessions: Sessions,
    *,
    name: str,
    content_hash: str,
    passages: Sequence[NewPassage],
    content_type: str = "text/plain",
    source: str = "cli",
    added_by: str = "",
    faq_id: int | None = None,
    replaces: bool = True,
) -> Added:
    """Store a document's new version with its passages (see the module docstring).

    `replaces` is for knowledge an agent or the operator adds: earlier versions go in the
    same transaction, and the same text again is "unchanged". A `/faq` document is stored
    once per FAQ (a retried job stores nothing twice).
    """
    for attempt in (1, 2):  # a concurrent add of the same name takes the version first
        try:
            return await _add(
                sessions, name[:300], content_hash, passages, content_type, source,
                added_by, faq_id, replaces,
            )  # fmt: skip
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _add(
    sessions: Sessions,
    name: str,
    content_hash: str,
    passages: Sequence[NewPassage],
    content_type: str,
    source: str,
    added_by: str,
    faq_id: int | None,
    replaces: bool,
) -> Added:
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(KnowledgeDocument, _approved_clause())
                .outerjoin(Faq, KnowledgeDocument.faq_id == Faq.id)
                .where(KnowledgeDocument.name == name)
                .order_by(KnowledgeDocument.version.desc())
            )
        ).all()
        earlier = [document for document, _ in rows]
        if faq_id is not None and (same := [d for d in earlier if d.faq_id == faq_id]):
            return Added(same[0].id, same[0].version, "unchanged", await _count(session, same[0]))
        current = next((document for document, approved in rows if approved), None)
        if replaces and current is not None and current.content_hash == content_hash:
            return Added(current.id, current.version, "unchanged", await _count(session, current))
        replaced = earlier if replaces else []
        document = KnowledgeDocument(
            name=name,
            version=(earlier[0].version + 1) if earlier else 1,
            content_hash=content_hash,
            content_type=content_type[:100],
            source=source[:16],
            added_by=added_by[:32],
            faq_id=faq_id,
            chars=sum(len(p.text) for p in passages),
            passages=[
                KnowledgePassage(
                    position=p.position,
                    section=SECTION_JOIN.join(p.section),
                    text=p.text,
                    content_hash=p.content_hash,
                )
                for p in passages
            ],
        )
        session.add(document)
        for old in replaced:
            await session.delete(old)
        await session.flush()
        status: AddStatus = "replaced" if replaced else "added"
        return Added(document.id, document.version, status, len(passages))


async def _count(session: AsyncSession, document: KnowledgeDocument) -> int:
    query = select(func.count(KnowledgePassage.id)).where(
        KnowledgePassage.document_id == document.id
    )
    return int(await session.scalar(query) or 0)


async def remove_document(sessions: Sessions, name: str) -> int:
    """Delete every version of `name` with its passages, and the vectors no passage uses
    any more; the number of versions removed."""
    async with sessions() as session, session.begin():
        found = list(
            await session.scalars(select(KnowledgeDocument).where(KnowledgeDocument.name == name))
        )
        for document in found:
            await session.delete(document)
    if found:
        await prune_vectors(sessions)
    return len(found)


async def prune_vectors(sessions: Sessions) -> int:
    """Delete the vectors of texts no stored passage has any more."""
    used = select(KnowledgePassage.content_hash)
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(KnowledgeVector).where(KnowledgeVector.content_hash.not_in(used))
        )
    return int(getattr(result, "rowcount", 0) or 0)


def _approved_clause() -> ColumnElement[bool]:
    return or_(KnowledgeDocument.faq_id.is_(None), Faq.review == APPROVED)


async def list_documents(sessions: Sessions) -> list[DocumentInfo]:
    """Every stored document version, by name then newest first."""
    counts = (
        select(KnowledgePassage.document_id, func.count(KnowledgePassage.id).label("n"))
        .group_by(KnowledgePassage.document_id)
        .subquery()
    )
    query = (
        select(KnowledgeDocument, func.coalesce(counts.c.n, 0), _approved_clause())
        .outerjoin(Faq, KnowledgeDocument.faq_id == Faq.id)
        .outerjoin(counts, counts.c.document_id == KnowledgeDocument.id)
        .order_by(KnowledgeDocument.name, KnowledgeDocument.version.desc())
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    infos: list[DocumentInfo] = []
    searched: set[str] = set()
    for document, count, approved in rows:
        searchable = bool(approved) and document.name not in searched
        if searchable:
            searched.add(document.name)
        infos.append(
            DocumentInfo(
                document.id, document.name, document.version, document.source,
                document.added_by, document.created_at, int(count), searchable,
            )
        )  # fmt: skip
    return infos


async def searchable_document_ids(sessions: Sessions) -> list[int]:
    """The documents a search reads: per name, the newest approved version."""
    return [d.id for d in await list_documents(sessions) if d.searchable]


async def document_passages(sessions: Sessions, document_id: int) -> list[StoredPassage]:
    query = (
        select(KnowledgePassage, KnowledgeDocument.name)
        .join(KnowledgeDocument, KnowledgePassage.document_id == KnowledgeDocument.id)
        .where(KnowledgePassage.document_id == document_id)
        .order_by(KnowledgePassage.position)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [_stored(passage, name) for passage, name in rows]


async def searchable_passages(sessions: Sessions, limit: int) -> list[StoredPassage]:
    """The passages of the searchable documents, at most `limit` (the newest documents'
    first), in reading order within each document."""
    ids = await searchable_document_ids(sessions)
    if not ids:
        return []
    query = (
        select(KnowledgePassage, KnowledgeDocument.name)
        .join(KnowledgeDocument, KnowledgePassage.document_id == KnowledgeDocument.id)
        .where(KnowledgePassage.document_id.in_(ids))
        .order_by(KnowledgePassage.document_id.desc(), KnowledgePassage.position)
        .limit(limit)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [_stored(passage, name) for passage, name in rows]


def _stored(passage: KnowledgePassage, name: str) -> StoredPassage:
    section = tuple(part for part in passage.section.split(SECTION_JOIN) if part)
    return StoredPassage(passage.id, name, section, passage.text, passage.content_hash)


KnowledgeVersion = tuple[int, int, str]


async def knowledge_version(sessions: Sessions) -> KnowledgeVersion:
    """(documents, highest document id, latest FAQ review): changes when a document is
    added, replaced or removed, or a FAQ (whose documents may count) is approved."""
    async with sessions() as session:
        count, highest = (
            await session.execute(
                select(func.count(KnowledgeDocument.id), func.max(KnowledgeDocument.id))
            )
        ).one()
        reviewed = await session.scalar(select(func.max(Faq.reviewed_at)))
    return int(count or 0), int(highest or 0), str(reviewed or "")


async def prune_superseded(sessions: Sessions) -> int:
    """Delete approved versions that a newer approved version of their name replaced
    (left behind when a pending /faq's documents were approved later)."""
    stale = [d.id for d in await list_documents(sessions) if not d.searchable]
    approved_stale: list[int] = []
    if stale:
        query = (
            select(KnowledgeDocument.id)
            .outerjoin(Faq, KnowledgeDocument.faq_id == Faq.id)
            .where(KnowledgeDocument.id.in_(stale), _approved_clause())
        )
        async with sessions() as session:
            approved_stale = list(await session.scalars(query))
    if approved_stale:
        async with sessions() as session, session.begin():
            for document in await session.scalars(
                select(KnowledgeDocument).where(KnowledgeDocument.id.in_(approved_stale))
            ):
                await session.delete(document)
    await prune_vectors(sessions)
    return len(approved_stale)


# --- knowledge gaps ----------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    id: int
    question: str
    intent: str
    slack_user_id: str
    created_at: dt.datetime


async def record_gap(
    sessions: Sessions, *, request_key: str, question: str, intent: str, slack_user_id: str
) -> None:
    """Log a question the knowledge base could not answer (once per request)."""
    gap = KnowledgeGap(
        request_key=request_key[:255],
        question=question[:4000],
        intent=intent[:32],
        slack_user_id=slack_user_id[:32],
    )
    try:
        async with sessions() as session, session.begin():
            session.add(gap)
    except IntegrityError:
        return  # a retried message: logged already


async def open_gaps(sessions: Sessions, limit: int = 50) -> list[Gap]:
    """The newest open gaps first."""
    query = (
        select(KnowledgeGap)
        .where(KnowledgeGap.status == "open")
        .order_by(KnowledgeGap.id.desc())
        .limit(limit)
    )
    async with sessions() as session:
        rows = await session.scalars(query)
        return [Gap(g.id, g.question, g.intent, g.slack_user_id, g.created_at) for g in rows]


# --- vectors -----------------------------------------------------------------------------


async def stored_vectors(sessions: Sessions, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
    """The stored vectors of `hashes` by `model` (those it has)."""
    found: dict[str, bytes] = {}
    unique = list(dict.fromkeys(hashes))
    async with sessions() as session:
        for start in range(0, len(unique), 500):  # under every backend's parameter limit
            chunk = unique[start : start + 500]
            rows = await session.execute(
                select(KnowledgeVector.content_hash, KnowledgeVector.vector).where(
                    KnowledgeVector.model == model, KnowledgeVector.content_hash.in_(chunk)
                )
            )
            found.update({h: bytes(v) for h, v in rows})
    return found


async def save_vectors(
    sessions: Sessions, model: str, vectors: dict[str, tuple[int, bytes]]
) -> None:
    """Store (dimensions, float32 bytes) per content hash; one already stored is kept."""
    if not vectors:
        return
    have = await stored_vectors(sessions, model, list(vectors))
    fresh = [
        KnowledgeVector(content_hash=h, model=model, dimensions=dims, vector=data)
        for h, (dims, data) in vectors.items()
        if h not in have
    ]
    if not fresh:
        return
    try:
        async with sessions() as session, session.begin():
            session.add_all(fresh)
    except IntegrityError:  # another process stored some meanwhile: add one by one
        for vector in fresh:
            try:
                async with sessions() as session, session.begin():
                    session.add(
                        KnowledgeVector(
                            content_hash=vector.content_hash, model=model,
                            dimensions=vector.dimensions, vector=vector.vector,
                        )
                    )  # fmt: skip
            except IntegrityError:
                continue
