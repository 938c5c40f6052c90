"""Hybrid retrieval over the real google-genai client and the fake Gemini endpoint:
vectors batched through the gate, cached by content hash (unchanged text costs no call,
in any process), fused with BM25 by reciprocal rank; BM25 alone when there is no
embedding model or it cannot be reached."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from pipelines.config import LLMSettings
from pipelines.knowledge.embeddings import GeminiEmbedder, embedder_for
from pipelines.knowledge.library import NewDocument, add_to_knowledge
from pipelines.knowledge.retrieval import KnowledgeBase, fuse, top_rows
from pipelines.llm.factory import build_llm, reset_shared_gate
from pipelines.llm.gemini import GeminiLLM
from pipelines.llm.offline import OfflineLLM
from storage.db import Database
from tests.fakes.fake_gemini import FakeGemini

MANUAL = (
    "# Router X200\n## Resetting the admin password\nHold the pinhole button for twelve "
    "seconds.\n\n## Wireless bands\nUse 5 GHz for streaming.\n\n## Warranty\nTwo years."
)


@pytest.fixture
async def gemini(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeGemini, GeminiLLM]]:
    async with FakeGemini() as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        reset_shared_gate()
        settings = LLMSettings(gemini_api_key="k", llm_provider="gemini", llm_fallback="none")  # type: ignore[arg-type]
        llm = build_llm(settings)
        assert isinstance(llm, GeminiLLM)
        try:
            yield fake, llm
        finally:
            await llm.aclose()


def embedder(llm: GeminiLLM) -> GeminiEmbedder:
    return GeminiEmbedder(llm, "gemini-embedding-001", 64)


async def add(db: Database, text: str, name: str = "router.md") -> None:
    await add_to_knowledge(db, NewDocument(name, text), source="cli", added_by="cli")


async def test_vectors_are_batched_stored_and_never_requested_twice(
    sqlite_db: Database, gemini: tuple[FakeGemini, GeminiLLM]
) -> None:
    fake, llm = gemini
    await add(sqlite_db, MANUAL)
    await add(sqlite_db, "\n\n".join(f"# Part {i}\nItem {i} text." for i in range(150)), "big.md")
    knowledge = KnowledgeBase(sqlite_db.sessions, embedder(llm))
    [hit] = await knowledge.search("how do I reset the admin password", k=1)
    assert knowledge.method == "hybrid" and "pinhole" in hit.text
    assert fake.embedded_texts == 153 + 1  # every passage once, then the question
    assert fake.embed_calls == 2 + 1  # 100 texts a request
    [first, *_] = fake.embed_bodies
    assert first["requests"][0]["taskType"] == "RETRIEVAL_DOCUMENT"
    assert first["requests"][0]["outputDimensionality"] == 64

    # Another process (a fresh index) and a re-add of unchanged text: no passage embedded.
    again = KnowledgeBase(sqlite_db.sessions, embedder(llm))
    await add(sqlite_db, MANUAL)
    await again.search("warranty", k=1)
    assert fake.embedded_texts == 153 + 2
    # A changed section: only its passage is new.
    await add(sqlite_db, MANUAL.replace("Two years.", "Three years."))
    await again.search("warranty", k=1)
    assert fake.embedded_texts == 153 + 2 + 1 + 1


async def test_dense_ranking_finds_what_bm25_misses_and_fusion_keeps_both(
    sqlite_db: Database, gemini: tuple[FakeGemini, GeminiLLM]
) -> None:
    _, llm = gemini
    await add(sqlite_db, MANUAL)
    bm25 = KnowledgeBase(sqlite_db.sessions)
    hybrid = KnowledgeBase(sqlite_db.sessions, embedder(llm))
    # "resets" shares no token with the passage, only a stem (the fake model's "meaning").
    assert await bm25.search("resets", k=3) == []
    found = await hybrid.search("resets", k=1)
    assert found and found[0].section == ("Router X200", "Resetting the admin password")
    assert bm25.method == "bm25"


async def test_an_unreachable_embedding_model_means_bm25_alone_until_it_is_back(
    sqlite_db: Database, gemini: tuple[FakeGemini, GeminiLLM]
) -> None:
    fake, llm = gemini
    await add(sqlite_db, MANUAL)
    knowledge = KnowledgeBase(sqlite_db.sessions, embedder(llm))
    fake.fail_next([400])  # not retryable: the load gives up at once
    [hit] = await knowledge.search("warranty years", k=1)
    assert hit.section[-1] == "Warranty" and knowledge.method == "bm25"
    await knowledge.search("warranty years", k=1)  # tries again, and succeeds
    assert knowledge.method == "hybrid"


def test_the_offline_provider_has_no_embedder() -> None:
    assert embedder_for(OfflineLLM(), LLMSettings()) is None
    assert embedder_for(OfflineLLM(), LLMSettings(embedding_model="")) is None


def test_reciprocal_rank_fusion_and_top_rows() -> None:
    assert fuse([[1, 2, 3], [3, 1]]) == [1, 3, 2]
    scores = np.array([0.1, 0.9, 0.5, 0.7], dtype=np.float32)
    assert top_rows(scores, 2) == [1, 3]
    assert top_rows(scores, 10) == [1, 3, 2, 0]
