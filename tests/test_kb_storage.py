"""The knowledge base of documents on each backend: versions replace without duplicates,
removal takes passages and vectors, a non-agent's /faq documents wait for approval, and
every search follows what is stored."""

from __future__ import annotations

from sqlalchemy import func, select

from pipelines.knowledge.library import NewDocument, add_to_knowledge, keep_faq_documents
from pipelines.knowledge.retrieval import KnowledgeBase
from storage.db import Database
from storage.faqs import StoredDocument, StoredEntry, review_faq, save_faq
from storage.knowledge import (
    list_documents,
    open_gaps,
    prune_superseded,
    record_gap,
    remove_document,
    save_vectors,
    stored_vectors,
)
from storage.knowledge_models import KnowledgePassage, KnowledgeVector

V1 = "# Returns\n## Refund timing\nRefunds reach your card within 14 days.\n\n## Labels\nPrint it."
V2 = "# Returns\n## Refund timing\nRefunds reach your card within 5 days.\n\n## Labels\nPrint it."


async def passages_stored(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count(KnowledgePassage.id))) or 0)


async def vectors_stored(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(KnowledgeVector)) or 0)


async def add(db: Database, text: str, name: str = "returns.md") -> str:
    added = await add_to_knowledge(db, NewDocument(name, text), source="cli", added_by="cli")
    return added.status


async def test_a_changed_document_replaces_its_passages_and_the_same_one_changes_nothing(
    database: Database,
) -> None:
    knowledge = KnowledgeBase(database.sessions)
    assert await add(database, V1) == "added"
    [hit] = await knowledge.search("refund card days", k=1)
    assert "14 days" in hit.text and hit.labels == ("returns.md > Returns > Refund timing",)

    assert await add(database, V1) == "unchanged"
    assert await add(database, V2) == "replaced"
    assert await passages_stored(database) == 2  # the old version's are gone, none twice
    found = await knowledge.search("refund card days", k=5)
    assert [p.text for p in found if "days" in p.text] == ["Refunds reach your card within 5 days."]
    [document] = await list_documents(database.sessions)
    assert (document.version, document.passages, document.searchable) == (2, 2, True)


async def test_removing_a_document_removes_its_passages_and_vectors(database: Database) -> None:
    knowledge = KnowledgeBase(database.sessions)
    await add(database, V1)
    await add(database, "# Other\nA passage of another document.", name="other.md")
    async with database.sessions() as session:
        hashes = list(await session.scalars(select(KnowledgePassage.content_hash)))
    await save_vectors(database.sessions, "m", {h: (2, b"\x00" * 8) for h in hashes})
    assert await vectors_stored(database) == 3
    assert await knowledge.search("refund", k=1)

    assert await remove_document(database.sessions, "returns.md") == 1
    assert await passages_stored(database) == 1
    assert await vectors_stored(database) == 1  # the other document's vector stays
    assert await knowledge.search("refund", k=1) == []
    assert await remove_document(database.sessions, "returns.md") == 0


async def test_a_non_agents_faq_documents_teach_nothing_until_the_faq_is_approved(
    database: Database,
) -> None:
    knowledge = KnowledgeBase(database.sessions)
    await add(database, V1)
    faq_id = await save_faq(
        database.sessions,
        title="Returns FAQ",
        documents=[StoredDocument("returns.md", V2)],
        entries=[StoredEntry("Can I return?", "Yes.", ["returns.md"])],
        mode="parallel",
        run_id=None,
        created_by="U0CUST",
    )
    await keep_faq_documents(
        database, faq_id, [NewDocument("returns.md", V2)], added_by="U0CUST", approved=False
    )
    # A retried job keeps nothing twice.
    await keep_faq_documents(
        database, faq_id, [NewDocument("returns.md", V2)], added_by="U0CUST", approved=False
    )
    texts = [p.text for p in await knowledge.search("refund card days", k=5)]
    assert any("14 days" in t for t in texts) and not any("5 days" in t for t in texts)
    assert [d.searchable for d in await list_documents(database.sessions)] == [False, True]

    assert await review_faq(database.sessions, faq_id, "approved", "U0AGENT")
    texts = [p.text for p in await knowledge.search("refund card days", k=5)]
    assert any("5 days" in t for t in texts) and not any("14 days" in t for t in texts)
    assert await prune_superseded(database.sessions) == 1
    assert [d.version for d in await list_documents(database.sessions)] == [2]


async def test_vectors_are_stored_once_per_text_and_model(database: Database) -> None:
    await save_vectors(database.sessions, "m1", {"h1": (2, b"a" * 8)})
    await save_vectors(database.sessions, "m1", {"h1": (2, b"b" * 8), "h2": (2, b"c" * 8)})
    assert await stored_vectors(database.sessions, "m1", ["h1", "h2", "h3"]) == {
        "h1": b"a" * 8,
        "h2": b"c" * 8,
    }
    assert await stored_vectors(database.sessions, "m2", ["h1"]) == {}


async def test_a_gap_is_logged_once_per_request(database: Database) -> None:
    for _ in range(2):
        await record_gap(
            database.sessions,
            request_key="r1",
            question="Do you sell cars?",
            intent="general_question",
            slack_user_id="U1",
        )
    [gap] = await open_gaps(database.sessions)
    assert (gap.question, gap.intent, gap.slack_user_id) == (
        "Do you sell cars?",
        "general_question",
        "U1",
    )
