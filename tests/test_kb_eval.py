"""`supportbot eval --knowledge`: recall@5, citations and declines over eval/kb_docs, BM25
alone on the offline provider, BM25 vs hybrid over the real client and the fake Gemini
endpoint (whose "model" answers from the passage sharing most words with the question)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.eval import KNOWLEDGE_DOCS, KNOWLEDGE_ITEMS
from pipelines.config import LLMSettings
from pipelines.eval.data import DatasetError
from pipelines.eval.knowledge import evaluate_knowledge, format_knowledge, load_items
from pipelines.knowledge.embeddings import embedder_for
from pipelines.llm.factory import build_llm, reset_shared_gate
from pipelines.llm.offline import OfflineLLM
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_scripts import by_step, user_text

WORD = re.compile(r"[a-z]{4,}")


def test_the_eval_set_has_forty_questions_and_declines() -> None:
    items = load_items(KNOWLEDGE_ITEMS)
    assert len(items) >= 40
    assert sum(1 for i in items if not i.answerable) >= 5


async def test_offline_is_bm25_alone_and_says_so() -> None:
    [report] = await evaluate_knowledge(
        OfflineLLM(), LLMSettings(), None, KNOWLEDGE_ITEMS, KNOWLEDGE_DOCS
    )
    assert report.method == "bm25" and report.questions == len(load_items(KNOWLEDGE_ITEMS))
    assert report.recall_at_5 > 0.8 and report.citation_precision > 0.8
    assert report.correct_declines >= report.unanswerable // 2 and report.errors == 0
    table = format_knowledge([report], has_embedder=False)
    assert "retrieval recall@5" in table and "offline provider has no embedding model" in table


def test_an_unknown_expected_section_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "k.jsonl"
    bad.write_text('{"text": "x?", "sections": ["store-policies.md > Nowhere"]}\n')
    with pytest.raises(DatasetError, match="unknown section"):
        import asyncio

        asyncio.run(evaluate_knowledge(OfflineLLM(), LLMSettings(), None, bad, KNOWLEDGE_DOCS))


def overlap_model(body: dict[str, Any]) -> dict[str, Any]:
    """Cite the passage sharing the most words with the question (two at least)."""
    text = user_text(body)
    passages, _, question = text.rpartition("Question:")
    asked = set(WORD.findall(question.lower()))
    best, label = 0, ""
    for block in re.split(r"\n\n(?=Source: )", passages):
        found = re.findall(r"Source: (.+)", block)
        shared = len(asked & set(WORD.findall(block.lower())))
        if found and shared > best:
            best, label = shared, found[-1].strip()
    if best < 2:
        return {"answerable": False, "answer": "I don't know.", "sources": []}
    return {"answerable": True, "answer": "From our documents.", "sources": [label]}


async def test_bm25_and_hybrid_side_by_side_over_the_fake_gemini_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeGemini(by_step({"answer_from_knowledge": overlap_model})) as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        reset_shared_gate()
        settings = LLMSettings(gemini_api_key="k", llm_provider="gemini", llm_fallback="none")  # type: ignore[arg-type]
        llm = build_llm(settings)
        try:
            reports = await evaluate_knowledge(
                llm, settings, embedder_for(llm, settings), KNOWLEDGE_ITEMS, KNOWLEDGE_DOCS
            )
        finally:
            await llm.aclose()  # type: ignore[attr-defined]
        assert fake.embed_calls >= 1 + len(load_items(KNOWLEDGE_ITEMS))
    bm25, hybrid = reports
    assert (bm25.method, hybrid.method) == ("bm25", "hybrid")
    assert bm25.errors == hybrid.errors == 0
    assert hybrid.recall_at_5 >= 0.8
    table = format_knowledge(reports, has_embedder=True)
    print(table)  # the figures README quotes (pytest -s)
    assert re.search(r"retrieval recall@5\s+\d\.\d{3}\s+\d\.\d{3}", table)


def test_the_cli_prints_the_knowledge_table(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    result = CliRunner().invoke(app, ["eval", "--knowledge"])
    assert result.exit_code == 0, result.output
    assert "Knowledge base: bm25 vs hybrid" in result.output
    assert "correct declines" in result.output
