"""Prompt chaining for /faq: questions -> answer each -> find each answer's sources.

Three focused steps, each with its own schema. In `parallel` mode every question's
answer -> sources chain runs concurrently (under the shared CallGate limits), so the
critical path is three calls whatever N is; `sequential` runs them one after another.
Cited titles are checked against the given documents: an invented title is dropped.
The document block comes first in every prompt so the provider's prefix cache applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from pipelines.prompts import FAQ_ANSWER, FAQ_QUESTIONS, FAQ_SOURCES, fence
from pipelines.schemas import FaqAnswer, QuestionList, SourceList
from pipelines.steps import PipelineContext, StepFailed

Mode = Literal["parallel", "sequential"]
Progress = Callable[[str, int, int], Awaitable[None]]
MAX_QUESTIONS = 50
DOCUMENT_BUDGET_CHARS = 400_000  # about 100k tokens for all documents together


@dataclass(frozen=True)
class SourceDocument:
    title: str
    text: str


class FaqItem(BaseModel):
    question: str
    answer: str
    sources: list[str]


@dataclass
class FaqResult:
    items: list[FaqItem]
    notes: list[str] = field(default_factory=list)  # trimmed documents, dropped citations


def fit_to_budget(
    docs: list[SourceDocument], budget: int = DOCUMENT_BUDGET_CHARS
) -> tuple[list[SourceDocument], list[str]]:
    """Trim documents so that all of them fit the model's budget, saying which were cut."""
    total = sum(len(doc.text) for doc in docs)
    if total <= budget:
        return docs, []
    share = budget // max(1, len(docs))
    notes = [
        f"'{doc.title}' was trimmed to its first {share:,} characters (of {len(doc.text):,})"
        for doc in docs
        if len(doc.text) > share
    ]
    return [SourceDocument(doc.title, doc.text[:share]) for doc in docs], notes


def documents_block(docs: list[SourceDocument]) -> str:
    """All documents, each fenced with its title: the shared prefix of every FAQ prompt."""
    return "\n".join(fence("document", f"title: {doc.title}\n\n{doc.text}") for doc in docs)


class FaqChain:
    """The three FAQ steps over one fixed set of documents."""

    def __init__(self, ctx: PipelineContext, docs: list[SourceDocument]) -> None:
        self.ctx = ctx
        self.docs = docs
        self.block = documents_block(docs)
        self.raw_docs = [{"title": d.title, "text": d.text} for d in docs]
        self.titles = {doc.title for doc in docs}

    async def generate_questions(self, n: int) -> list[str]:
        result = await self.ctx.step(
            FAQ_QUESTIONS,
            "faq_questions",
            QuestionList,
            {"documents": self.raw_docs, "n": n},
            {"documents": self.block, "n": str(n)},
        )
        unique = dict.fromkeys(q.strip() for q in result.questions if q.strip())
        return list(unique)[:n]

    async def answer_question(self, question: str) -> str:
        result = await self.ctx.step(
            FAQ_ANSWER,
            "faq_answer",
            FaqAnswer,
            {"documents": self.raw_docs, "question": question},
            {"documents": self.block, "question": fence("question", question)},
        )
        return result.answer.strip()

    async def find_sources(self, question: str, answer: str) -> tuple[list[str], list[str]]:
        """The cited titles that exist, and the invented ones that were dropped."""
        result = await self.ctx.step(
            FAQ_SOURCES,
            "faq_sources",
            SourceList,
            {"documents": self.raw_docs, "question": question, "answer": answer},
            {
                "documents": self.block,
                "question": fence("question", question),
                "answer": fence("answer", answer),
            },
        )
        cited = list(dict.fromkeys(t.strip() for t in result.sources))
        return [t for t in cited if t in self.titles], [t for t in cited if t not in self.titles]

    async def answer_with_sources(self, question: str) -> tuple[FaqItem, list[str]]:
        answer = await self.answer_question(question)
        sources, invented = await self.find_sources(question, answer)
        return FaqItem(question=question, answer=answer, sources=sources), invented


async def build_faq(
    ctx: PipelineContext,
    docs: list[SourceDocument],
    n: int,
    mode: Mode = "parallel",
    progress: Progress | None = None,
) -> FaqResult:
    """Run the chain; `progress(stage, done, total)` is awaited as questions complete."""
    n = max(1, min(n, MAX_QUESTIONS))
    fitted, notes = fit_to_budget(docs)
    chain = FaqChain(ctx, fitted)
    if progress:
        await progress("questions", 0, n)
    questions = await chain.generate_questions(n)
    done = 0

    async def one(question: str) -> tuple[FaqItem, list[str]] | None:
        nonlocal done
        try:
            outcome: tuple[FaqItem, list[str]] | None = await chain.answer_with_sources(question)
        except StepFailed as exc:
            notes.append(f"skipped '{question[:80]}': {exc}")
            outcome = None
        done += 1
        if progress:
            await progress("answers", done, len(questions))
        return outcome

    if mode == "parallel":
        outcomes = await asyncio.gather(*(one(q) for q in questions))
    else:
        outcomes = [await one(q) for q in questions]
    items: list[FaqItem] = []
    for outcome in outcomes:
        if outcome is None:
            continue
        item, invented = outcome
        items.append(item)
        notes.extend(f"dropped invented source '{t[:80]}'" for t in invented)
    return FaqResult(items=items, notes=notes)


def faq_markdown(title: str, result: FaqResult) -> str:
    """The FAQ as a Markdown document (CLI output and the file attached in Slack)."""
    lines = [f"# {title}", ""]
    for number, item in enumerate(result.items, 1):
        lines += [f"## {number}. {item.question}", "", item.answer, ""]
        lines += [f"*Sources: {', '.join(item.sources) or 'none found'}*", ""]
    return "\n".join(lines).rstrip() + "\n"
