"""Pydantic schemas of every step's structured output.

Kept flat and small on purpose: a provider's JSON-schema support is narrower than
Pydantic's, and a flat object with optional fields is what models fill most reliably.
Semantic checks (required parameters, cited titles) happen in code after parsing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Intent = Literal[
    "technical_support",
    "billing_inquiry",
    "product_return",
    "order_status",
    "general_question",
    "human_handoff",
]
INTENTS: tuple[Intent, ...] = (
    "technical_support",
    "billing_inquiry",
    "product_return",
    "order_status",
    "general_question",
    "human_handoff",
)
TaskKind = Literal["billing_inquiry", "product_return", "status_update"]


class IntentClassification(BaseModel):
    """Router output: one intent, how sure, and whether the message holds several requests."""

    intent: Intent
    confidence: float = Field(ge=0.0, le=1.0)
    multiple_requests: bool = Field(
        default=False, description="true when the message asks for two or more distinct things"
    )
    urgent: bool = Field(default=False, description="true when the customer is angry or urgent")


class PlannedTask(BaseModel):
    """One task found by the orchestrator; which parameters matter depends on `kind`."""

    kind: TaskKind
    invoice_number: str | None = None
    product_name: str | None = None
    reason: str | None = None
    order_id: str | None = None


class TaskPlan(BaseModel):
    tasks: list[PlannedTask] = Field(max_length=8)


class BillingConcern(BaseModel):
    """Billing worker: what the customer is worried about on one invoice."""

    wants_investigation: bool = Field(
        description="true when the customer disputes or questions an amount on the invoice"
    )
    concern: str = Field(max_length=500)


class Reply(BaseModel):
    """A message for the customer."""

    reply: str = Field(max_length=6000)


class CitedAnswer(BaseModel):
    """An answer drawn from given documents, with the titles it relies on."""

    answerable: bool
    answer: str = Field(max_length=4000)
    sources: list[str] = Field(default_factory=list, max_length=10)


class DraftEntry(BaseModel):
    """A knowledge entry drafted from a resolved ticket."""

    question: str = Field(max_length=500)
    answer: str = Field(max_length=3000)


class TicketBrief(BaseModel):
    """What an agent taking an escalated ticket needs first (`pipelines.support.brief`)."""

    wants: str = Field(max_length=500)  # what the customer wants, in one sentence
    bot_did: str = Field(max_length=500)  # what the bot already did or said
    ids: list[str] = Field(default_factory=list, max_length=20)  # orders, invoices, RMAs
    mood: Literal["calm", "confused", "frustrated", "angry", "unknown"] = "unknown"
    still_open: str = Field(max_length=500)  # what is left for the agent


class QuestionList(BaseModel):
    questions: list[str] = Field(max_length=100)


class FaqAnswer(BaseModel):
    answer: str = Field(max_length=4000)


class SourceList(BaseModel):
    sources: list[str] = Field(default_factory=list, max_length=20)
