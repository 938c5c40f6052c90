"""The gap loop's storage and pipeline on each backend: a resolved ticket an agent answered
is drafted once; approving the draft makes it knowledge; a discarded one never is."""

from __future__ import annotations

from pipelines.config import LLMSettings
from pipelines.knowledge.drafts import decide_draft, draft_resolved_tickets
from pipelines.knowledge.retrieval import KnowledgeBase
from pipelines.llm.offline import OfflineLLM
from storage.catalog import get_or_create_customer
from storage.conversations import ConversationStore, ThreadKey
from storage.db import Database
from storage.knowledge_drafts import pending_drafts, tickets_to_draft
from storage.tickets import TicketStore

QUESTION = "Can I pair two soundbars together?"
ANSWER = "Yes: hold the link button on both soundbars for five seconds until they beep."


async def resolved_ticket(db: Database, thread: str, *, agent_answers: bool = True) -> int:
    customer = await get_or_create_customer(db.sessions, "U0CUST")
    store = ConversationStore(db.sessions)
    ticket = await store.open_ticket(ThreadKey("T1", "D1", thread), "U0CUST", customer.id)
    await store.add_turn(ticket.id, "customer", f"{thread}.1", f"Hi! {QUESTION} Thanks", "U0CUST")
    if agent_answers:
        await store.add_turn(ticket.id, "agent", f"{thread}.2", ANSWER, "U0AGENT")
    await TicketStore(db.sessions).resolve(ticket.id, "U0AGENT")
    return ticket.id


async def test_one_draft_per_answered_ticket_and_approval_teaches_at_once(
    database: Database,
) -> None:
    answered = await resolved_ticket(database, "100.1")
    await resolved_ticket(database, "100.2", agent_answers=False)  # nothing to learn
    assert await tickets_to_draft(database.sessions) == [answered]

    llm, settings = OfflineLLM(), LLMSettings()
    assert await draft_resolved_tickets(database, llm, settings) == 1
    assert await draft_resolved_tickets(database, llm, settings) == 0
    [draft] = await pending_drafts(database.sessions)
    assert (draft.question, draft.answer) == (QUESTION, ANSWER)

    knowledge = KnowledgeBase(database.sessions)
    assert await knowledge.search("pair two soundbars", k=1) == []
    assert await decide_draft(database, draft.id, "approved", "U0AGENT") is not None
    assert await decide_draft(database, draft.id, "discarded", "U0AGENT") is None
    [hit] = await knowledge.search("pair two soundbars", k=1)
    assert hit.text == ANSWER and hit.labels == (f"Ticket {draft.ticket_number} > {QUESTION}",)
    assert await pending_drafts(database.sessions) == []


async def test_a_discarded_draft_never_teaches(database: Database) -> None:
    await resolved_ticket(database, "200.1")
    await draft_resolved_tickets(database, OfflineLLM(), LLMSettings())
    [draft] = await pending_drafts(database.sessions)
    assert await decide_draft(database, draft.id, "discarded", "U0AGENT") is not None
    assert await KnowledgeBase(database.sessions).search("pair two soundbars", k=1) == []
