"""Models of the knowledge base of documents: documents by version, their passages, the
passages' vectors (keyed by content hash), and the questions it could not answer.

Imported by `storage.models`, so they are part of `Base.metadata` (and of the migrations'
comparison) wherever the models are.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models import Base, Timestamped


class KnowledgeDocument(Timestamped, Base):
    """One version of one document. `name` identifies the document across versions (a
    file's name); adding a changed document stores version n+1 in the same transaction
    that drops version n, so a search sees one or the other, never both or neither.

    A document that came with a `/faq` (`faq_id`) is knowledge only while that FAQ is
    approved (`storage.faqs`): a non-agent's upload teaches nothing until an agent
    approves it. One without a FAQ was added by an agent or the operator.
    """

    __tablename__ = "kb_documents"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(100), default="text/plain")
    source: Mapped[str] = mapped_column(String(16), default="cli")  # cli | faq | slack
    added_by: Mapped[str] = mapped_column(String(32), default="")
    faq_id: Mapped[int | None] = mapped_column(
        ForeignKey("faqs.id", ondelete="CASCADE"), index=True
    )
    chars: Mapped[int] = mapped_column(Integer, default=0)

    passages: Mapped[list[KnowledgePassage]] = relationship(
        order_by="KnowledgePassage.position", cascade="all, delete-orphan"
    )


class KnowledgePassage(Base):
    __tablename__ = "kb_passages"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    # The headings above it, joined with " > " ("Returns policy > Refund timing").
    section: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)


class KnowledgeVector(Base):
    """A passage text's embedding by one model, float32 bytes. Keyed by the text's hash,
    not the passage: re-adding or re-indexing unchanged text finds its vector here."""

    __tablename__ = "kb_vectors"

    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    dimensions: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class KnowledgeGap(Timestamped, Base):
    """A customer question the knowledge base had no answer to; agents fill gaps from
    these. `request_key` (the message's request id) keeps a retried message to one row."""

    __tablename__ = "kb_gaps"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_key: Mapped[str] = mapped_column(String(255), unique=True)
    question: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(32), default="general_question")
    slack_user_id: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    closed_at: Mapped[dt.datetime | None] = mapped_column()


class KnowledgeDraft(Timestamped, Base):
    """A knowledge entry drafted from a ticket an agent resolved: the customer's question
    and the agent's answer, condensed by one step. One per ticket (a retried job drafts
    nothing twice); knowledge only once an agent approves it (`storage.knowledge_drafts`)."""

    __tablename__ = "kb_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    ticket_number: Mapped[str] = mapped_column(String(16), default="")
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    review: Mapped[str] = mapped_column(String(16), default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(String(32))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column()


__all__ = [
    "KnowledgeDocument",
    "KnowledgeDraft",
    "KnowledgeGap",
    "KnowledgePassage",
    "KnowledgeVector",
]
