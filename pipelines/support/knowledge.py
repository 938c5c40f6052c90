"""The FAQ knowledge base: approved FAQ entries, searched lexically with BM25.

General questions are answered only from what this returns, and every citation shown to a
customer is checked against the source titles of the entries retrieved here. Only FAQs a
support agent made or approved are searched (`storage.faqs`): anyone else's `/faq` is
posted for them but teaches the bot nothing until an agent approves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.lexical import LexicalIndex
from storage.db import Sessions
from storage.faqs import EntriesVersion, entries_version, latest_entries

MAX_ENTRIES = 5000
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`|]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?"


@dataclass(frozen=True)
class KnowledgeEntry:
    question: str
    answer: str
    sources: tuple[str, ...]

    def as_text(self) -> str:
        cited = ", ".join(self.sources) or "none"
        return f"Q: {self.question}\nA: {self.answer}\nSources: {cited}"

    def links(self) -> list[str]:
        """The URLs written in this entry: the only ones an answer citing it may link to."""
        found = _URL.findall(f"{self.question}\n{self.answer}")
        return list(dict.fromkeys(url.rstrip(_URL_TAIL) for url in found))


class KnowledgeBase:
    """Search over the approved FAQ entries; the index is rebuilt when they change (an
    approval included), checked before every search so every process sees it."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._version: EntriesVersion | None = None
        self._entries: list[KnowledgeEntry] = []
        self._index = LexicalIndex([])

    async def _load(self) -> list[KnowledgeEntry]:
        version = await entries_version(self._sessions)
        if version != self._version:
            stored = await latest_entries(self._sessions, MAX_ENTRIES)
            self._entries = [KnowledgeEntry(e.question, e.answer, tuple(e.sources)) for e in stored]
            self._index = LexicalIndex([f"{e.question} {e.answer}" for e in self._entries])
            self._version = version
        return self._entries

    async def search(self, query: str, k: int = 3) -> list[KnowledgeEntry]:
        entries = await self._load()
        return [entries[i] for i, _ in self._index.search(query, k)]
