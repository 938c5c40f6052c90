"""Adding documents to the knowledge base: split into passages, stored by version.

The one way in for every source (`supportbot kb add`, the documents of a `/faq`), so a
document is cut the same way wherever it came from. Who may teach is the caller's
decision, passed as `replaces` and `faq_id` (see `storage.knowledge`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.knowledge.passages import content_hash, split_passages
from storage.db import Database
from storage.knowledge import Added, NewPassage, add_document


@dataclass(frozen=True)
class NewDocument:
    name: str
    text: str
    content_type: str = "text/plain"


async def add_to_knowledge(
    db: Database,
    document: NewDocument,
    *,
    source: str,
    added_by: str,
    faq_id: int | None = None,
    replaces: bool = True,
) -> Added:
    """Split `document` along its structure and store it as the name's next version."""
    passages = [
        NewPassage(p.position, p.section, p.text, p.content_hash)
        for p in split_passages(document.text)
    ]
    return await add_document(
        db.sessions,
        name=document.name,
        content_hash=content_hash(document.text),
        passages=passages,
        content_type=document.content_type,
        source=source,
        added_by=added_by,
        faq_id=faq_id,
        replaces=replaces,
    )


async def keep_faq_documents(
    db: Database, faq_id: int, documents: list[NewDocument], *, added_by: str, approved: bool
) -> None:
    """Keep a `/faq`'s documents as knowledge, tied to the FAQ's review: an agent's
    replace earlier versions at once; anyone else's count once an agent approves the FAQ.
    Safe to call again for the same FAQ (a retried job)."""
    for document in documents:
        await add_to_knowledge(
            db, document, source="faq", added_by=added_by, faq_id=faq_id, replaces=approved
        )
