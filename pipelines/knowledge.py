"""The FAQ knowledge base: stored FAQ entries, searched lexically with BM25.

General questions are answered only from what this returns, and every citation shown to a
customer is checked against the source titles of the entries retrieved here.
"""

from __future__ import annotations

from dataclasses import dataclass

import bm25s
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import FaqEntry

MAX_ENTRIES = 5000


@dataclass(frozen=True)
class KnowledgeEntry:
    question: str
    answer: str
    sources: tuple[str, ...]

    def as_text(self) -> str:
        cited = ", ".join(self.sources) or "none"
        return f"Q: {self.question}\nA: {self.answer}\nSources: {cited}"


def rank(query: str, documents: list[str], k: int) -> list[tuple[int, float]]:
    """Indexes of the `k` best BM25 matches of `query` in `documents`, best first (score > 0)."""
    if not documents or not query.strip():
        return []
    tokens = bm25s.tokenize(documents, stopwords="en", show_progress=False)
    if not tokens.vocab or not any(len(ids) for ids in tokens.ids):
        return []  # nothing indexable (only stop words, emoji, punctuation)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    query_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
    known = set(tokens.vocab)
    if not any(word in known for word in query_tokens.vocab):
        return []
    k = min(k, len(documents))
    ids, scores = retriever.retrieve(query_tokens, k=k, show_progress=False)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


class KnowledgeBase:
    """Search over every stored FAQ entry; the index is rebuilt when entries change."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._version: tuple[int, int] | None = None
        self._entries: list[KnowledgeEntry] = []

    async def _load(self) -> list[KnowledgeEntry]:
        async with self._sessions() as session:
            version_row = (
                await session.execute(select(func.count(FaqEntry.id), func.max(FaqEntry.id)))
            ).one()
            version = (int(version_row[0] or 0), int(version_row[1] or 0))
            if version != self._version:
                rows = (
                    await session.scalars(
                        select(FaqEntry).order_by(FaqEntry.id.desc()).limit(MAX_ENTRIES)
                    )
                ).all()
                self._entries = [
                    KnowledgeEntry(row.question, row.answer, tuple(map(str, row.sources)))
                    for row in rows
                ]
                self._version = version
        return self._entries

    async def search(self, query: str, k: int = 3) -> list[KnowledgeEntry]:
        entries = await self._load()
        texts = [f"{entry.question} {entry.answer}" for entry in entries]
        return [entries[i] for i, _ in rank(query, texts, k)]
