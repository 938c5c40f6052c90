"""The knowledge base reads stored FAQ entries through `storage.faqs`, on each backend.

What matters to a customer: an FAQ stored a moment ago is searchable on the next
question (the index follows the entries), and a retried `/faq` job gets the stored FAQ's
items back in their order.
"""

from __future__ import annotations

from pipelines.faq.chain import FaqItem
from pipelines.faq.runs import stored_faq_items
from pipelines.knowledge.retrieval import KnowledgeBase, RetrievedPassage
from storage.db import Database
from storage.faqs import (
    StoredDocument,
    StoredEntry,
    entries_version,
    faq_entries,
    faq_review,
    latest_entries,
    pending_faqs,
    review_faq,
    save_faq,
)


async def store(db: Database, *entries: StoredEntry, approved: bool = True) -> int:
    return await save_faq(
        db.sessions,
        title="Help",
        documents=[StoredDocument("help.md", "…")],
        entries=list(entries),
        mode="parallel",
        run_id=None,
        created_by="U0AGENT" if approved else "U0CUST",
        approved=approved,
    )


SHIPPING = StoredEntry("How long does shipping take?", "Three to five days.", ["shipping.md"])
RETURNS = StoredEntry("Can I return a sofa?", "Within 30 days, unused.", ["returns.md"])
INVOICE = StoredEntry("Where is my invoice?", "In your account, under Orders.", ["billing.md"])


async def test_entries_version_changes_when_entries_are_stored(database: Database) -> None:
    assert await entries_version(database.sessions) == (0, 0, "")
    await store(database, SHIPPING, RETURNS)
    count, highest, _ = await entries_version(database.sessions)
    assert count == 2 and highest > 0
    await store(database, INVOICE)
    assert (await entries_version(database.sessions))[0] == 3


async def test_latest_entries_newest_first_and_bounded(database: Database) -> None:
    await store(database, SHIPPING, RETURNS)
    await store(database, INVOICE)
    latest = await latest_entries(database.sessions, limit=2)
    assert [e.question for e in latest] == [INVOICE.question, RETURNS.question]
    assert tuple(latest[0].sources) == ("billing.md",)


async def test_faq_entries_of_one_faq_in_their_order(database: Database) -> None:
    first = await store(database, SHIPPING, RETURNS)
    await store(database, INVOICE)
    assert [e.question for e in await faq_entries(database.sessions, first)] == [
        SHIPPING.question,
        RETURNS.question,
    ]
    assert await stored_faq_items(database, first) == [
        FaqItem(question=SHIPPING.question, answer=SHIPPING.answer, sources=["shipping.md"]),
        FaqItem(question=RETURNS.question, answer=RETURNS.answer, sources=["returns.md"]),
    ]


async def test_knowledge_base_finds_an_faq_stored_after_its_first_search(
    database: Database,
) -> None:
    knowledge = KnowledgeBase(database.sessions)
    assert await knowledge.search("shipping days") == []
    await store(database, SHIPPING, RETURNS)
    found = await knowledge.search("how many days does shipping take", k=1)
    assert found == [RetrievedPassage.faq(SHIPPING.question, SHIPPING.answer, ("shipping.md",))]
    await store(database, INVOICE)
    assert (await knowledge.search("invoice", k=1))[0].sources == ("billing.md",)


async def test_a_pending_faq_teaches_nothing_until_an_agent_approves_it(
    database: Database,
) -> None:
    knowledge = KnowledgeBase(database.sessions)
    await store(database, RETURNS)
    pending = await store(database, SHIPPING, approved=False)
    assert await knowledge.search("shipping", k=3) == []
    assert [f.id for f in await pending_faqs(database.sessions, 10)] == [pending]

    assert await review_faq(database.sessions, pending, "approved", "U0AGENT")
    assert not await review_faq(database.sessions, pending, "discarded", "U0AGENT2")

    found = await knowledge.search("how many days does shipping take", k=1)
    assert found == [RetrievedPassage.faq(SHIPPING.question, SHIPPING.answer, ("shipping.md",))]
    assert await faq_review(database.sessions, pending) == "approved"
    assert await pending_faqs(database.sessions, 10) == []


async def test_a_discarded_faq_never_teaches(database: Database) -> None:
    pending = await store(database, SHIPPING, approved=False)
    assert await review_faq(database.sessions, pending, "discarded", "U0AGENT")
    assert not await review_faq(database.sessions, pending, "approved", "U0AGENT")
    assert await latest_entries(database.sessions, limit=10) == []
    assert await KnowledgeBase(database.sessions).search("shipping days") == []
