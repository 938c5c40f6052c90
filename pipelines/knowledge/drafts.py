"""The gap loop: what agents answered becomes knowledge, once an agent approves it.

A ticket an agent resolved after answering the customer is condensed by one step
(`draft_knowledge_entry`: the question as the next customer would ask it, the answer
without this customer's details) into a draft. An approved draft is added to the
knowledge base at once as a small document of its own, `Ticket T-00012`, whose one
section is the question: the next customer's same question is answered from it and cites
it. Drafts are stored once per ticket (`storage.knowledge_drafts`).
"""

from __future__ import annotations

from pipelines.config import LLMSettings
from pipelines.knowledge.library import NewDocument, add_to_knowledge
from pipelines.llm.base import LLM
from pipelines.prompts import DRAFT_KNOWLEDGE_ENTRY, fence
from pipelines.steps import PipelineContext, Trace
from pipelines.support.schemas import DraftEntry
from pipelines.tracing import TraceRecorder
from storage.db import Database
from storage.knowledge_drafts import (
    Draft,
    DraftDecision,
    resolved_ticket,
    review_draft,
    save_draft,
    tickets_to_draft,
)


async def draft_from_ticket(db: Database, llm: LLM, settings: LLMSettings, ticket_id: int) -> bool:
    """Draft the ticket's entry (one traced step); False when there is nothing to draft
    (not resolved, no agent answer) or it was drafted already."""
    ticket = await resolved_ticket(db.sessions, ticket_id)
    if ticket is None or not ticket.agent_words.strip() or not ticket.customer_words.strip():
        return False
    trace = Trace("kb_draft", {"ticket": ticket.number})
    ctx = PipelineContext(llm, settings, trace)
    raw = {"customer": ticket.customer_words, "agent": ticket.agent_words}
    try:
        entry = await ctx.step(
            DRAFT_KNOWLEDGE_ENTRY,
            "worker",
            DraftEntry,
            raw,
            {
                "customer": fence("customer_words", ticket.customer_words),
                "agent": fence("agent_words", ticket.agent_words),
            },
        )
    except Exception as exc:
        await TraceRecorder(db.sessions).save(trace, status="error", error=str(exc))
        raise
    await TraceRecorder(db.sessions).save(trace, status="ok", output=entry.model_dump())
    return await save_draft(
        db.sessions,
        ticket_id=ticket.id,
        ticket_number=ticket.number,
        question=entry.question,
        answer=entry.answer,
    )


async def draft_resolved_tickets(
    db: Database, llm: LLM, settings: LLMSettings, limit: int = 20
) -> int:
    """Draft every resolved ticket that waits for one (at most `limit`); how many."""
    drafted = 0
    for ticket_id in await tickets_to_draft(db.sessions, limit):
        drafted += await draft_from_ticket(db, llm, settings, ticket_id)
    return drafted


def entry_document(draft: Draft) -> NewDocument:
    name = f"Ticket {draft.ticket_number}" if draft.ticket_number else f"Draft {draft.id}"
    return NewDocument(name, f"# {draft.question}\n\n{draft.answer}")


async def decide_draft(
    db: Database,
    draft_id: int,
    decision: DraftDecision,
    reviewer: str,
    edited: tuple[str, str] | None = None,
) -> Draft | None:
    """Approve (knowledge at once, as `edited` when the agent changed the question or
    answer) or discard a pending draft; None when it was not pending."""
    draft = await review_draft(db.sessions, draft_id, decision, reviewer, edited)
    if draft is not None and decision == "approved":
        await add_to_knowledge(db, entry_document(draft), source="ticket", added_by=reviewer)
    return draft
