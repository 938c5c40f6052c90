"""Prompt chaining for /faq: questions -> answer each -> find each answer's sources.

Three focused steps, each with its own schema. In `parallel` mode every question's
answer -> sources chain runs concurrently (under the shared CallGate limits), so the
critical path is three calls whatever N is; `sequential` runs them one after another.
Parallel mode also streams the questions call: a question's chain starts as soon as its
string is complete in the partial answer, so the first answers are under way while the
model is still writing the list, and the requests are not all built at the same moment.
Cited titles are checked against the given documents: an invented title is dropped.
`ChainState` is what an attempt finished (the question list, each answered question); a
caller that saves it (the /faq job, in its row) hands it back to a retry, which then asks
only what is still open instead of starting the whole chain again.
The document block comes first in every prompt so the provider's prefix cache applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from pipelines.faq import MAX_QUESTIONS
from pipelines.llm.budget import BudgetExceeded
from pipelines.prompts import FAQ_ANSWER, FAQ_QUESTIONS, FAQ_SOURCES, fence
from pipelines.steps import PipelineContext, StepFailed, watch_list
from pipelines.support.schemas import FaqAnswer, QuestionList, SourceList

Mode = Literal["parallel", "sequential"]
Progress = Callable[[str, int, int], Awaitable[None]]
DOCUMENT_BUDGET_CHARS = 400_000  # about 100k tokens for all documents together


@dataclass(frozen=True)
class SourceDocument:
    title: str
    text: str


class FaqItem(BaseModel):
    question: str
    answer: str
    sources: list[str]


class Answered(BaseModel):
    item: FaqItem
    invented: list[str] = []  # cited titles that were dropped


class ChainState(BaseModel):
    """What attempts of one FAQ have finished; a retry resumes from it."""

    questions: list[str] | None = None
    answered: dict[str, Answered] = {}


SaveState = Callable[[ChainState], Awaitable[None]]


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

    async def generate_questions(
        self, n: int, on_questions: Callable[[list[str]], None] | None = None
    ) -> list[str]:
        """Up to n distinct questions; `on_questions` sees the complete ones as they stream.

        What `on_questions` gets is unvalidated (the whole answer may still fail its schema
        and be repaired), and may repeat or drop items between calls after a retry.
        """
        result = await self.ctx.step(
            FAQ_QUESTIONS,
            "faq_questions",
            QuestionList,
            {"documents": self.raw_docs, "n": n},
            {"documents": self.block, "n": str(n)},
            on_partial=watch_list("questions", on_questions) if on_questions else None,
        )
        return distinct_questions(result.questions, n)

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


def distinct_questions(candidates: Iterable[str], n: int) -> list[str]:
    """Stripped, non-empty, first occurrence only, at most n."""
    return list(dict.fromkeys(q.strip() for q in candidates if q.strip()))[:n]


async def build_faq(
    ctx: PipelineContext,
    docs: list[SourceDocument],
    n: int,
    mode: Mode = "parallel",
    progress: Progress | None = None,
    *,
    stream: bool = True,
    document_chars: int = DOCUMENT_BUDGET_CHARS,
    resume: ChainState | None = None,
    save_state: SaveState | None = None,
) -> FaqResult:
    """Run the chain; `progress(stage, done, total)` is awaited as questions complete.

    `stream=False` waits for the whole question list in parallel mode too (benchmarks
    compare both); sequential mode never streams, as nothing could start early.
    `document_chars` caps all documents together (smaller for non-agents, `limits`).
    `save_state(state)` is awaited after the question list and after each answer; a later
    call with `resume=state` skips what that state holds.
    """
    n = max(1, min(n, MAX_QUESTIONS))
    fitted, notes = fit_to_budget(docs, document_chars)
    chain = FaqChain(ctx, fitted)
    state = resume.model_copy(deep=True) if resume else ChainState()
    answering = _Answering(chain, notes, progress, total=n, state=state, save_state=save_state)
    if progress:
        await progress("questions", 0, n)
    if mode == "parallel":
        outcomes = await answering.in_parallel(n, stream)
    else:
        questions = await answering.questions(n, None)
        answering.total = len(questions)
        outcomes = [await answering.one(q) for q in questions]
    items: list[FaqItem] = []
    for outcome in outcomes:
        if outcome is None:
            continue
        item, invented = outcome
        items.append(item)
        notes.extend(f"dropped invented source '{t[:80]}'" for t in invented)
    return FaqResult(items=items, notes=notes)


Outcome = tuple[FaqItem, list[str]] | None


@dataclass
class _Answering:
    """Answer -> sources for each question, counting progress and noting skipped ones."""

    chain: FaqChain
    notes: list[str]
    progress: Progress | None
    total: int
    state: ChainState
    save_state: SaveState | None = None
    done: int = 0

    async def questions(
        self, n: int, on_questions: Callable[[list[str]], None] | None
    ) -> list[str]:
        """The question list: an earlier attempt's, or asked for now (and saved)."""
        if self.state.questions is None:
            self.state.questions = await self.chain.generate_questions(n, on_questions)
            await self._save()
        return self.state.questions

    async def one(self, question: str) -> Outcome:
        if (earlier := self.state.answered.get(question)) is not None:
            outcome: Outcome = (earlier.item, earlier.invented)
        else:
            outcome = await self._answer(question)
        self.done += 1
        if self.progress:
            await self.progress("answers", self.done, self.total)
        return outcome

    async def _answer(self, question: str) -> Outcome:
        try:
            outcome: Outcome = await self.chain.answer_with_sources(question)
        except StepFailed as exc:
            self.notes.append(f"skipped '{question[:80]}': {exc}")
            outcome = None
        except BudgetExceeded:  # spent while the FAQ was built: the rest is left out
            self.notes.append(f"left out '{question[:80]}': the daily token budget is spent")
            outcome = None
        if outcome is not None:
            self.state.answered[question] = Answered(item=outcome[0], invented=outcome[1])
            await self._save()
        return outcome

    async def _save(self) -> None:
        if self.save_state is not None:
            await self.save_state(self.state)

    async def in_parallel(self, n: int, stream: bool) -> list[Outcome]:
        """Every question's chain as a task, started as early as its question is known."""
        tasks: dict[str, asyncio.Task[Outcome]] = {}

        def start(questions: list[str]) -> None:
            for question in distinct_questions(questions, n):
                if question not in tasks and len(tasks) < n:
                    tasks[question] = asyncio.create_task(self.one(question))

        try:
            start(await self.questions(n, start if stream else None))
            self.total = len(tasks)
            return await asyncio.gather(*tasks.values())
        except BaseException:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise


def faq_markdown(title: str, result: FaqResult) -> str:
    """The FAQ as a Markdown document (CLI output and the file attached in Slack)."""
    lines = [f"# {title}", ""]
    for number, item in enumerate(result.items, 1):
        lines += [f"## {number}. {item.question}", "", item.answer, ""]
        lines += [f"*Sources: {', '.join(item.sources) or 'none found'}*", ""]
    return "\n".join(lines).rstrip() + "\n"
