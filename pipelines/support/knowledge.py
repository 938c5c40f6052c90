"""The FAQ knowledge base: stored FAQ entries, searched lexically with BM25.

General questions are answered only from what this returns, and every citation shown to a
customer is checked against the source titles of the entries retrieved here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pipelines.lexical import LexicalIndex
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


class KnowledgeBase:
    """Search over every stored FAQ entry; the index is rebuilt when entries change."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._version: tuple[int, int] | None = None
        self._entries: list[KnowledgeEntry] = []
        self._index = LexicalIndex([])

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
                self._index = LexicalIndex([f"{e.question} {e.answer}" for e in self._entries])
                self._version = version
        return self._entries

    async def search(self, query: str, k: int = 3) -> list[KnowledgeEntry]:
        entries = await self._load()
        return [entries[i] for i, _ in self._index.search(query, k)]
