"""Searching the knowledge: document passages and approved FAQ entries, one index.

An FAQ entry is one more kind of passage: a customer's question may be answered by an
entry, by a document's section, or both. Retrieval is hybrid when an embedding model is
available: BM25 (bm25s) and cosine similarity over the passages' vectors (numpy, vectors
from `pipelines.knowledge.embeddings`), fused by reciprocal rank; on the offline provider,
or while the embedding model cannot be reached, it is BM25 alone (`method` says which).

The indexes are built lazily and rebuilt when the stored knowledge changes
(`storage.knowledge.knowledge_version`, `entries_version`), which is checked before every
search, so every process follows an addition, a replacement, a removal or an approval.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from pipelines.knowledge.embeddings import Embedder, Matrix, vectors_for
from pipelines.knowledge.passages import content_hash, embedding_text
from pipelines.lexical import LexicalIndex
from pipelines.llm.base import LLMError
from storage.db import Sessions
from storage.faqs import entries_version, latest_entries
from storage.knowledge import knowledge_version, record_gap, searchable_passages

MAX_ENTRIES = 5_000
MAX_PASSAGES = 200_000
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`|]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?"
SECTION_MARK = " > "
POOL = 50  # candidates each ranking contributes to the fusion
RRF_K = 60  # reciprocal-rank fusion's constant (Cormack et al.)
logger = logging.getLogger(__name__)


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
        text = f"{question}\n{answer}"
        first = sources[0] if sources else "FAQ"
        return cls("faq", first, answer, (), question, sources, content_hash(text))

    def embedding_text(self) -> str:
        """What this passage's vector is computed from (its `content_hash` is of this)."""
        if self.kind == "faq":
            return f"{self.question}\n{self.text}"
        return embedding_text(self.section, self.text)

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


class PassageIndex:
    """The in-memory indexes over one snapshot of the passages: BM25, and the vectors'
    matrix (row i is passage i's) when there are vectors. Searching is synchronous and
    CPU-only: the question's vector, if any, is computed before."""

    def __init__(self, passages: list[RetrievedPassage], vectors: Matrix | None = None) -> None:
        self.passages = passages
        self.lexical = LexicalIndex([p.index_text() for p in passages])
        self.vectors = vectors

    def search(
        self, query: str, k: int, query_vector: Matrix | None = None
    ) -> list[RetrievedPassage]:
        lexical = [i for i, _ in self.lexical.search(query, POOL)]
        if self.vectors is None or query_vector is None:
            ranked = lexical
        else:
            ranked = fuse([lexical, top_rows(self.vectors @ query_vector, POOL)])
        return [self.passages[i] for i in ranked[:k]]


class KnowledgeBase:
    """Search over the approved FAQ entries and the searchable document passages."""

    def __init__(self, sessions: Sessions, embedder: Embedder | None = None) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._version: tuple[object, ...] | None = None
        self._index = PassageIndex([])
        self._lock = asyncio.Lock()

    @property
    def method(self) -> str:
        """ "hybrid" (BM25 + vectors) or "bm25" (no embedding model, or none reachable)."""
        return "hybrid" if self._index.vectors is not None else "bm25"

    async def _load(self) -> PassageIndex:
        version = (
            await entries_version(self._sessions),
            await knowledge_version(self._sessions),
        )
        if version == self._version:
            return self._index
        async with self._lock:
            if version != self._version:
                passages = await self._read()
                vectors = await self._dense(passages)
                self._index = await asyncio.to_thread(PassageIndex, passages, vectors)
                # Without the vectors it should have, the next search tries again.
                wanted = self._embedder is not None and bool(passages)
                self._version = None if wanted and vectors is None else version
        return self._index

    async def _dense(self, passages: list[RetrievedPassage]) -> Matrix | None:
        if self._embedder is None or not passages:
            return None
        texts = {p.content_hash: p.embedding_text() for p in passages}
        try:
            found = await vectors_for(self._sessions, self._embedder, texts)
        except LLMError as exc:  # LLMUnavailable included: BM25 alone until it is back
            logger.warning("knowledge vectors unavailable, searching with BM25 alone: %s", exc)
            return None
        return np.stack([found[p.content_hash] for p in passages]).astype(np.float32)

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

    async def refresh(self) -> str:
        """Load (or follow) the stored knowledge now, computing missing vectors; the
        retrieval method that results, as `describe_method` words it."""
        await self._load()
        return describe_method(self.method, self._embedder is not None)

    async def search(self, query: str, k: int = 5) -> list[RetrievedPassage]:
        index = await self._load()
        return index.search(query, k, await self._query_vector(index, query))

    async def _query_vector(self, index: PassageIndex, query: str) -> Matrix | None:
        if index.vectors is None or self._embedder is None or not query.strip():
            return None
        try:
            [vector] = await self._embedder.embed([query], "query")
        except LLMError as exc:
            logger.warning("query embedding failed, searching with BM25 alone: %s", exc)
            return None
        return vector

    async def log_gap(self, request_key: str, question: str, intent: str, user: str) -> None:
        await record_gap(
            self._sessions,
            request_key=request_key,
            question=question,
            intent=intent,
            slack_user_id=user,
        )


def describe_method(method: str, has_embedder: bool) -> str:
    if method == "hybrid":
        return "hybrid (BM25 + embedding vectors, fused by reciprocal rank)"
    if has_embedder:
        return "BM25 alone (the embedding model could not be reached; retried on next search)"
    return "BM25 alone (no embedding model: the offline provider has none)"


def top_rows(scores: Matrix, n: int) -> list[int]:
    """Indexes of the `n` highest scores, best first (argpartition: O(rows), not a sort)."""
    if scores.shape[0] <= n:
        return [int(i) for i in np.argsort(-scores)]
    best = np.argpartition(-scores, n)[:n]
    return [int(i) for i in best[np.argsort(-scores[best])]]


def fuse(rankings: list[list[int]]) -> list[int]:
    """Reciprocal-rank fusion: each ranking gives 1 / (RRF_K + rank); the sums decide."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda item: -scores[item])
