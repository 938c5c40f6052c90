"""One FAQ run end to end: trace it, run the chain, store the FAQ as knowledge.

Its documents are kept too (`pipelines.knowledge.library`): answers can then cite what
the documents say beyond the FAQ's N questions, under the same review as the FAQ.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from pipelines.config import LLMSettings
from pipelines.faq.chain import (
    DOCUMENT_BUDGET_CHARS,
    ChainState,
    FaqItem,
    FaqResult,
    Mode,
    Progress,
    SaveState,
    SourceDocument,
    build_faq,
)
from pipelines.knowledge.library import NewDocument, keep_faq_documents
from pipelines.llm.base import LLM
from pipelines.llm.budget import DailyBudget, Spender, budgeted, spending_as
from pipelines.steps import PipelineContext, Trace
from pipelines.tracing import TraceRecorder
from storage.db import Database
from storage.faqs import (
    PENDING,
    StoredDocument,
    StoredEntry,
    faq_entries,
    faq_review,
    find_faq,
    save_faq,
)


@dataclass(frozen=True)
class FaqRun:
    result: FaqResult
    run_id: str
    faq_id: int | None


async def create_faq(
    db: Database,
    llm: LLM,
    settings: LLMSettings,
    docs: list[SourceDocument],
    n: int,
    mode: Mode = "parallel",
    progress: Progress | None = None,
    created_by: str = "",
    channel_id: str | None = None,
    title: str = "FAQ",
    request_key: str | None = None,
    approved: bool = False,
    document_chars: int = DOCUMENT_BUDGET_CHARS,
    spender: Spender | None = None,
    resume: ChainState | None = None,
    save_state: SaveState | None = None,
) -> FaqRun:
    """Build the FAQ with a saved trace; store it (and its documents) when it has entries.

    With a `request_key` (e.g. the /faq job's key), a request whose FAQ is already stored
    (a retry after a crash) gets that FAQ back instead of building and storing another.
    `resume`/`save_state` carry the chain's own progress across attempts (`build_faq`).
    Every call is charged to the daily token budgets (`pipelines.llm.budget`): to
    `spender` (the requester), else to the one the caller set, else to everyone's alone.
    """
    kept = [NewDocument(d.title, d.text) for d in docs]
    if request_key is not None and (done := await find_faq(db.sessions, request_key)):
        items = [FaqItem(question=e.question, answer=e.answer, sources=list(e.sources))
                 for e in done.entries]  # fmt: skip
        # A crash may have come between storing the FAQ and keeping its documents.
        await keep_faq_documents(db, done.id, kept, added_by=created_by, approved=approved)
        return FaqRun(result=FaqResult(items=items), run_id=done.run_id or "", faq_id=done.id)
    resumed = len(resume.answered) if resume else 0
    inputs = {"documents": [d.title for d in docs], "n": n, "mode": mode, "resumed": resumed}
    trace = Trace("faq", inputs, created_by)
    traces = TraceRecorder(db.sessions)
    budget = DailyBudget.from_settings(db.sessions, settings)
    ctx = PipelineContext(budgeted(llm, budget), settings, trace)
    try:
        with spending_as(spender.user_id, exempt=spender.exempt) if spender else nullcontext():
            result = await build_faq(
                ctx,
                docs,
                n,
                mode,
                progress,
                document_chars=document_chars,
                resume=resume,
                save_state=save_state,
            )
    except Exception as exc:
        await traces.save(trace, status="error", error=f"{type(exc).__name__}: {exc}")
        raise
    await traces.save(
        trace,
        status="ok",
        output={"questions": len(result.items), "notes": result.notes},
    )
    faq_id = None
    if result.items:
        faq_id = await save_faq(
            db.sessions,
            title=title,
            documents=[StoredDocument(d.title, d.text) for d in docs],
            entries=[StoredEntry(i.question, i.answer, i.sources) for i in result.items],
            mode=mode,
            run_id=trace.run_id,
            created_by=created_by,
            channel_id=channel_id,
            request_key=request_key,
            approved=approved,
        )
        await keep_faq_documents(db, faq_id, kept, added_by=created_by, approved=approved)
    return FaqRun(result=result, run_id=trace.run_id, faq_id=faq_id)


async def stored_faq_items(db: Database, faq_id: int) -> list[FaqItem]:
    """The items of a stored FAQ: a retried job posts them instead of building the FAQ again."""
    entries = await faq_entries(db.sessions, faq_id)
    return [FaqItem(question=e.question, answer=e.answer, sources=list(e.sources)) for e in entries]


async def faq_pending(db: Database, faq_id: int) -> bool:
    """True while a stored FAQ waits for an agent's review before it answers anyone else."""
    return await faq_review(db.sessions, faq_id) == PENDING
