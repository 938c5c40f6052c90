"""The brief and suggested reply of an escalated ticket: two validated, traced steps.

The agent who takes a ticket reads what the customer wants, what the bot already did,
the ids, the mood and what is still open, and a reply they may send (`bot.triage`). The
offline provider writes an extractive brief and no reply: a templated reply sent under
an agent's name would be worse than none, and the card says so.
"""

from __future__ import annotations

from pipelines.config import LLMSettings
from pipelines.llm.base import LLM
from pipelines.prompts import BRIEF_TICKET, DRAFT_AGENT_REPLY, fence
from pipelines.steps import PipelineContext, Trace
from pipelines.support.schemas import Reply, TicketBrief
from pipelines.tracing import TraceRecorder
from storage.briefs import StoredBrief, conversation, save_brief
from storage.db import Database


async def brief_ticket(
    db: Database, llm: LLM, settings: LLMSettings, ticket_id: int
) -> StoredBrief | None:
    """Brief the ticket (and draft a reply unless offline); stored for its card."""
    convo = await conversation(db.sessions, ticket_id)
    if convo is None or not convo.text:
        return None
    trace = Trace("ticket_brief", {"ticket": convo.number})
    ctx = PipelineContext(llm, settings, trace)
    raw = {"reason": convo.reason, "conversation": convo.text}
    rendered = {
        "reason": fence("reason", convo.reason or "(not given)"),
        "conversation": fence("conversation", convo.text),
    }
    try:
        brief = await ctx.step(BRIEF_TICKET, "worker", TicketBrief, raw, rendered)
        draft = None
        if llm.name != "offline":
            draft = (await ctx.step(DRAFT_AGENT_REPLY, "worker", Reply, raw, rendered)).reply
    except Exception as exc:
        await TraceRecorder(db.sessions).save(trace, status="error", error=str(exc))
        raise
    output = {"brief": brief.model_dump(), "draft": draft}
    await TraceRecorder(db.sessions).save(trace, status="ok", output=output)
    stored = StoredBrief(brief.model_dump(), draft, llm.name, trace.run_id)
    await save_brief(db.sessions, ticket_id, stored.brief, draft, llm.name, trace.run_id)
    return stored


__all__ = ["brief_ticket"]
