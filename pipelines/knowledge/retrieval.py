"""Searching the knowledge: document passages and approved FAQ entries, one index.

An FAQ entry is one more kind of passage: a customer's question may be answered by an
entry, by a document's section, or both. The index is built lazily and rebuilt when
the stored knowledge changes (`storage.knowledge.knowledge_version`, `entries_version`),
which is checked before every search, so every process follows an addition, a
replacement, a removal or an approval.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pipelines.lexical import LexicalIndex
from storage.db import Sessions
from storage.faqs import entries_version, latest_entries
from storage.knowledge import knowledge_version, record_gap, searchable_passages

MAX_ENTRIES = 5_000
MAX_PASSAGES = 200_000
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`|]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?"
SECTION_MARK = " > "


@dataclass(frozen=True)
class RetrievedPassage:
    """A passage an answer may rest on, and the label(s) it is cited by.

    A document passage is cited as `Document > Section`; an FAQ entry by the titles of
    the documents its answer came from (as the FAQ chain found them).
    """

    kind: Literal["document", "faq"]
    document: str
    text: str
    section: tuple[str, ...] = ()
    question: str = ""
    sources: tuple[str, ...] = ()
    content_hash: str = field(default="", compare=False)

    @classmethod
    def faq(cls, question: str, answer: str, sources: tuple[str, ...]) -> RetrievedPassage:
        return cls("faq", sources[0] if sources else "FAQ", answer, (), question, sources)

    @property
    def labels(self) -> tuple[str, ...]:
        if self.kind == "faq":
            return self.sources
        return (SECTION_MARK.join((self.document, *self.section)),)

    def index_text(self) -> str:
        """What BM25 sees: a question twice (it is what customers ask), headings too."""
        if self.kind == "faq":
            return f"{self.question} {self.question} {self.text}"
        return " ".join((self.document, *self.section, self.text))

    def as_prompt(self) -> str:
        cited = ", ".join(self.labels) or "none"
        if self.kind == "faq":
            return f"Source: {cited}\nQ: {self.question}\nA: {self.text}"
        return f"Source: {cited}\n{self.text}"

    def as_input(self) -> dict[str, object]:
        """The raw form a step's inputs carry (the offline provider reads it)."""
        return {
            "kind": self.kind,
            "labels": list(self.labels),
            "question": self.question,
            "text": self.text,
        }

    def links(self) -> list[str]:
        """The URLs written in this passage: the only ones an answer citing it may link to."""
        found = _URL.findall(f"{self.question}\n{self.text}")
        return list(dict.fromkeys(url.rstrip(_URL_TAIL) for url in found))


class Knowledge(Protocol):
    """What the answer handlers need of the knowledge base (tests stand in for it)."""

    async def search(self, query: str, k: int = 5) -> list[RetrievedPassage]: ...

    async def log_gap(self, request_key: str, question: str, intent: str, user: str) -> None: ...


class KnowledgeBase:
    """Search over the approved FAQ entries and the searchable document passages."""

    method = "bm25"  # reported by answers and the eval

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._version: tuple[object, ...] | None = None
        self._passages: list[RetrievedPassage] = []
        self._index = LexicalIndex([])
        self._lock = asyncio.Lock()

    async def _load(self) -> list[RetrievedPassage]:
        version = (
            await entries_version(self._sessions),
            await knowledge_version(self._sessions),
        )
        if version == self._version:
            return self._passages
        async with self._lock:
            if version != self._version:
                passages = await self._read()
                self._index = await asyncio.to_thread(
                    LexicalIndex, [p.index_text() for p in passages]
                )
                self._passages = passages
                self._version = version
        return self._passages

    async def _read(self) -> list[RetrievedPassage]:
        entries = await latest_entries(self._sessions, MAX_ENTRIES)
        stored = await searchable_passages(self._sessions, MAX_PASSAGES)
        return [
            *(RetrievedPassage.faq(e.question, e.answer, tuple(e.sources)) for e in entries),
            *(
                RetrievedPassage(
                    "document", p.document, p.text, p.section, content_hash=p.content_hash
                )
                for p in stored
            ),
        ]

    async def search(self, query: str, k: int = 5) -> list[RetrievedPassage]:
        passages = await self._load()
        return [passages[i] for i, _ in self._index.search(query, k)]

    async def log_gap(self, request_key: str, question: str, intent: str, user: str) -> None:
        await record_gap(
            self._sessions,
            request_key=request_key,
            question=question,
            intent=intent,
            slack_user_id=user,
        )
