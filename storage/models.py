"""Typed SQLAlchemy 2 models: simulated business systems, tickets, traces, FAQs and jobs.

Alembic migrations (storage/migrations) are the only way this schema is created;
`tests/test_migrations.py` proves they match these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type, so values are stored as naive UTC and handed back aware;
    PostgreSQL keeps `timestamptz`. Callers only ever see aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a plain class attribute)
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- simulated business systems -------------------------------------------------------


class Customer(Timestamped, Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("slack_team_id", "slack_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32), default="")
    slack_user_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))

    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    price_cents: Mapped[int] = mapped_column(Integer)


class Order(Timestamped, Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(32))  # processing | shipped | delivered | cancelled
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    eta: Mapped[dt.date | None] = mapped_column(Date)

    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class Invoice(Timestamped, Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32))  # open | paid | overdue
    total_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order | None] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.id")


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(Integer)


class ReturnAuthorization(Timestamped, Base):
    """A product return. `rma_number` is derived from the primary key: unique by construction.

    A return holds one `unit` (1..quantity) of one order line, and (order line, unit) is
    unique: an item can have only one open return, however many messages or concurrent
    jobs ask for it. A closed (rejected or cancelled) return gives its unit back by setting
    it to NULL, which unique constraints never compare.
    """

    __tablename__ = "returns"
    __table_args__ = (UniqueConstraint("order_line_id", "unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rma_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    unit: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="authorized")


class BillingCase(Timestamped, Base):
    """An investigation of a concern about an invoice. `case_number` derives from the key."""

    __tablename__ = "billing_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    concern: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="investigating")
    eta: Mapped[dt.date] = mapped_column(Date)


# --- support conversations --------------------------------------------------------------


class Ticket(Timestamped, Base):
    """One support conversation (one Slack thread, or one CLI chat)."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "thread_ts"),
        # `supportbot report`: a period's figures from the index alone (covering)
        Index(
            "ix_tickets_report",
            "created_at",
            "primary_intent",
            "person_involved",
            "first_response_s",
            "resolution_s",
            "escalated_at",
            "first_response_breached_at",
            "resolution_breached_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_number: Mapped[str | None] = mapped_column(String(16), unique=True)
    team_id: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    slack_user_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    intents: Mapped[list[Any]] = mapped_column(default=list)
    tasks: Mapped[list[Any]] = mapped_column(default=list)
    actions: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(24), default="open", index=True)
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(String(32))
    triage_channel: Mapped[str | None] = mapped_column(String(32))
    triage_ts: Mapped[str | None] = mapped_column(String(32))
    # For the support numbers (`storage.support_report`), kept as they happen so a report
    # over 100,000 tickets reads one row each: the first intent, the first escalation
    # (kept when handed back or reopened), whether a person took part (escalated, claimed
    # or wrote in it), seconds to the first reply, the latest resolve and its seconds.
    primary_intent: Mapped[str | None] = mapped_column(String(40))
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    person_involved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    first_response_s: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    resolution_s: Mapped[float | None] = mapped_column(Float)
    # SLAs (`storage.sla`, checked by `bot.triage.sla`): the priority, when a person was
    # first needed (the clock's start; cleared when the ticket goes back to the bot), the
    # first agent reply since, and when each target was flagged as breached (once).
    priority: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    sla_started_at: Mapped[dt.datetime | None] = mapped_column()
    agent_replied_at: Mapped[dt.datetime | None] = mapped_column()
    first_response_breached_at: Mapped[dt.datetime | None] = mapped_column()
    resolution_breached_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConversationTurn(Timestamped, Base):
    __tablename__ = "conversation_turns"
    __table_args__ = (
        UniqueConstraint("ticket_id", "role", "message_ts"),
        # per-user flood limit: a user's recent turns
        Index("ix_conversation_turns_user_recent", "slack_user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # customer | bot | agent
    slack_user_id: Mapped[str] = mapped_column(String(32), default="")
    message_ts: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(36))


# --- traces -----------------------------------------------------------------------------


class TraceRun(Timestamped, Base):
    __tablename__ = "trace_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    slack_user_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    input: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | error
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[dt.datetime | None] = mapped_column()

    steps: Mapped[list[TraceStep]] = relationship(order_by="TraceStep.seq", cascade="all")


class TraceStep(Base):
    __tablename__ = "trace_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("trace_runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text, default="")
    raw_output: Mapped[str | None] = mapped_column(Text)
    parsed_output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    tokens_cached: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- FAQs (the knowledge base) ----------------------------------------------------------


class Faq(Timestamped, Base):
    __tablename__ = "faqs"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str | None] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16), default="parallel")
    run_id: Mapped[str | None] = mapped_column(String(36))
    # The request that built it (e.g. the /faq job): a retried job finds its FAQ again
    # instead of building and storing a second one.
    request_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Who may teach the bot: only an "approved" FAQ is knowledge for every customer. A
    # support agent's is approved when stored; anyone else's waits ("pending") until an
    # agent approves or discards it (`storage.faqs.review_faq`).
    review: Mapped[str] = mapped_column(String(16), default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(String(32))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column()

    documents: Mapped[list[FaqDocument]] = relationship(order_by="FaqDocument.id", cascade="all")
    entries: Mapped[list[FaqEntry]] = relationship(order_by="FaqEntry.position", cascade="all")


class FaqDocument(Base):
    __tablename__ = "faq_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    faq_id: Mapped[int] = mapped_column(ForeignKey("faqs.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(100), default="text/plain")
    text: Mapped[str] = mapped_column(Text)


class FaqEntry(Base):
    __tablename__ = "faq_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    faq_id: Mapped[int] = mapped_column(ForeignKey("faqs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[Any]] = mapped_column(default=list)


# --- durable work queue -----------------------------------------------------------------


class Job(Timestamped, Base):
    """One unit of durable work (a Slack message to answer, an FAQ to build).

    `dedupe_key` is unique, so a redelivered Slack event inserts nothing new.
    Workers lease a job (`leased_by`, `lease_expires_at`); an expired lease is free again.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "run_after"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    leased_by: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- spending ---------------------------------------------------------------------------


class TokenSpend(Base):
    """LLM tokens spent per UTC day and Slack user; `user_id` "*" is everyone together.

    Incremented with one atomic upsert per LLM call (`storage.budgets`), so every process
    and replica counts into the same rows and the daily budgets hold across all of them.
    """

    __tablename__ = "token_spend"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)


# The knowledge base's tables live in their own module; importing it here puts them in
# `Base.metadata` wherever the models are loaded.
from storage import (  # noqa: E402
    agent_models,
    confirmation_models,
    feedback_models,
    knowledge_models,
)

__all__ = [
    "Base",
    "BillingCase",
    "ConversationTurn",
    "Customer",
    "Faq",
    "FaqDocument",
    "FaqEntry",
    "Invoice",
    "InvoiceLine",
    "Job",
    "Order",
    "OrderLine",
    "Product",
    "ReturnAuthorization",
    "Ticket",
    "TokenSpend",
    "TraceRun",
    "TraceStep",
    "agent_models",
    "confirmation_models",
    "feedback_models",
    "knowledge_models",
    "utcnow",
]
