"""`supportbot eval --knowledge`: retrieval and grounded answers over whole documents.

Each question of `eval/knowledge.jsonl` names the document section(s) that answer it, or
says it is not answered anywhere (`"answerable": false`). The documents of
`eval/kb_docs/` are split into passages exactly as `supportbot kb add` splits them; no
FAQ entry exists, so every answer has to come from a passage. Each question is run with
BM25 alone and, when the provider has an embedding model, hybrid retrieval, through the
production code: `PassageIndex` (retrieval) and `cited_answer` (the answer step and its
citation check). Scored per method:

- recall@5: the share of a question's expected sections among the 5 passages retrieved
  (averaged over the answerable questions); and how often the first passage is one;
- citation precision / recall: the sections the answer cites (after the check against
  the retrieved passages) against the expected ones, micro-averaged;
- correct declines: unanswerable questions the bot declined; answered: answerable
  questions it answered (a decline there is a miss).

Nothing touches the database; vectors are computed once per run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, model_validator

from pipelines.config import LLMSettings
from pipelines.eval.data import DatasetError, load_documents
from pipelines.eval.metrics import Counts, total
from pipelines.faq.chain import SourceDocument
from pipelines.knowledge.answers import TOP_K, cited_answer
from pipelines.knowledge.embeddings import Embedder
from pipelines.knowledge.passages import split_passages
from pipelines.knowledge.retrieval import PassageIndex, RetrievedPassage
from pipelines.llm.base import LLM, LLMError
from pipelines.steps import PipelineContext, Trace
from pipelines.support.request import SupportRequest
from storage.backends import Actor

SECTION_MARK = " > "


class KnowledgeItem(BaseModel):
    id: str = ""
    text: str
    sections: list[str] = []
    answerable: bool = True

    @model_validator(mode="after")
    def _expected(self) -> KnowledgeItem:
        if self.answerable and not self.sections:
            raise ValueError('an answerable question needs `sections` ("doc.md > Section")')
        return self

    def expected(self) -> set[tuple[str, str]]:
        return {section_key(label) for label in self.sections}


def section_key(label: str) -> tuple[str, str]:
    """("doc.md", "last section") of "doc.md > ... > last section", case-folded."""
    parts = [part.strip() for part in label.split(SECTION_MARK)]
    return parts[0].casefold(), parts[-1].casefold()


def passage_key(passage: RetrievedPassage) -> tuple[str, str]:
    return passage.document.casefold(), (passage.section[-1] if passage.section else "").casefold()


def load_items(path: Path) -> list[KnowledgeItem]:
    items: list[KnowledgeItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(KnowledgeItem.model_validate(json.loads(line)))
        except (ValueError, ValidationError) as exc:
            raise DatasetError(f"{path.name}:{number}: {exc}") from None
    return items


def document_passages(docs: Sequence[SourceDocument]) -> list[RetrievedPassage]:
    return [
        RetrievedPassage("document", doc.title, p.text, p.section, content_hash=p.content_hash)
        for doc in docs
        for p in split_passages(doc.text)
    ]


def check_sections(items: Sequence[KnowledgeItem], passages: Sequence[RetrievedPassage]) -> None:
    """Every expected section must exist, or its recall could never be 1."""
    known = {passage_key(p) for p in passages}
    for item in items:
        missing = [label for label in item.sections if section_key(label) not in known]
        if missing:
            raise DatasetError(f"{item.id or item.text!r}: unknown section {missing[0]!r}")


@dataclass
class MethodReport:
    method: str
    questions: int
    recall_at_5: float
    hit_at_1: float
    citation_precision: float
    citation_recall: float
    correct_declines: int
    unanswerable: int
    answered: int
    answerable: int
    errors: int


@dataclass(frozen=True)
class ItemOutcome:
    recall: float | None  # None for an unanswerable question
    hit_at_1: bool
    citations: Counts
    answered: bool
    error: bool = False


class EvalKnowledge:
    """One retrieval method over the eval's passages."""

    def __init__(self, index: PassageIndex, embedder: Embedder | None) -> None:
        self.index = index
        self.embedder = embedder
        self.method = "hybrid" if embedder is not None else "bm25"

    async def search(self, query: str, k: int) -> list[RetrievedPassage]:
        vector = None
        if self.embedder is not None:
            [vector] = await self.embedder.embed([query], "query")
        return self.index.search(query, k, vector)


async def score_item(
    knowledge: EvalKnowledge, llm: LLM, settings: LLMSettings, item: KnowledgeItem
) -> ItemOutcome:
    request = SupportRequest(
        request_id=f"eval-kb:{item.id}", text=item.text, actor=Actor(customer_id=0)
    )
    ctx = PipelineContext(llm, settings, Trace(f"eval-kb-{knowledge.method}", {"text": item.text}))
    try:
        found = await knowledge.search(item.text, TOP_K)
        answer = await cited_answer(ctx, request, found)
    except LLMError:
        return ItemOutcome(None, False, Counts(), False, error=True)
    expected = item.expected()
    retrieved = {passage_key(p) for p in found}
    recall = len(expected & retrieved) / len(expected) if item.answerable else None
    cited = {section_key(label) for label in answer[1]} if answer else set()
    counts = Counts(len(cited & expected), len(cited - expected), len(expected - cited))
    first = bool(found) and passage_key(found[0]) in expected
    return ItemOutcome(recall, first, counts, answer is not None)


async def evaluate_method(
    knowledge: EvalKnowledge,
    llm: LLM,
    settings: LLMSettings,
    items: Sequence[KnowledgeItem],
    concurrency: int,
) -> MethodReport:
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(item: KnowledgeItem) -> ItemOutcome:
        async with slots:
            return await score_item(knowledge, llm, settings, item)

    outcomes = list(await asyncio.gather(*(one(item) for item in items)))
    pairs = list(zip(items, outcomes, strict=True))
    recalls = [o.recall for i, o in pairs if i.answerable and o.recall is not None]
    citations = total(o.citations for i, o in pairs if i.answerable)
    return MethodReport(
        method=knowledge.method,
        questions=len(items),
        recall_at_5=sum(recalls) / len(recalls) if recalls else 0.0,
        hit_at_1=sum(1 for i, o in pairs if i.answerable and o.hit_at_1)
        / max(1, sum(1 for i in items if i.answerable)),
        citation_precision=citations.precision,
        citation_recall=citations.recall,
        correct_declines=sum(1 for i, o in pairs if not i.answerable and not o.answered),
        unanswerable=sum(1 for i in items if not i.answerable),
        answered=sum(1 for i, o in pairs if i.answerable and o.answered),
        answerable=sum(1 for i in items if i.answerable),
        errors=sum(1 for o in outcomes if o.error),
    )


async def evaluate_knowledge(
    llm: LLM,
    settings: LLMSettings,
    embedder: Embedder | None,
    items_path: Path,
    docs_folder: Path,
    concurrency: int = 8,
) -> list[MethodReport]:
    """BM25 alone, then hybrid when `embedder` is given, over the same questions."""
    items = load_items(items_path)
    passages = document_passages(load_documents(docs_folder))
    check_sections(items, passages)
    methods = [EvalKnowledge(PassageIndex(passages), None)]
    if embedder is not None:
        vectors = await embedder.embed([p.embedding_text() for p in passages], "document")
        methods.append(EvalKnowledge(PassageIndex(passages, vectors), embedder))
    return [await evaluate_method(m, llm, settings, items, concurrency) for m in methods]


def format_knowledge(reports: Sequence[MethodReport], has_embedder: bool) -> str:
    rows = [
        ("questions", lambda r: str(r.questions)),
        ("retrieval recall@5", lambda r: f"{r.recall_at_5:.3f}"),
        ("expected section first", lambda r: f"{r.hit_at_1:.3f}"),
        ("citation precision", lambda r: f"{r.citation_precision:.3f}"),
        ("citation recall", lambda r: f"{r.citation_recall:.3f}"),
        ("correct declines", lambda r: f"{r.correct_declines}/{r.unanswerable}"),
        ("answered (answerable)", lambda r: f"{r.answered}/{r.answerable}"),
        ("provider errors", lambda r: str(r.errors)),
    ]
    names = [r.method for r in reports]
    if not has_embedder:
        names.append("hybrid")
    width = max(len(label) for label, _ in rows)
    lines = ["Knowledge base: " + " vs ".join(names), ""]
    header = f"{'metric':<{width}}  " + "  ".join(f"{n:>8}" for n in names)
    lines += [header, "-" * len(header)]
    for label, get in rows:
        cells = [get(r) for r in reports] + ([] if has_embedder else ["n/a"])
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>8}" for c in cells))
    if not has_embedder:
        lines += ["", "hybrid: n/a, the offline provider has no embedding model (BM25 alone)."]
    return "\n".join(lines)


def knowledge_json(reports: Sequence[MethodReport]) -> list[dict[str, Any]]:
    return [asdict(r) for r in reports]
