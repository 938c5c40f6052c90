"""What the Slack layer hands to the pipelines and gets back. The contract between layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from storage.ticket_info import TicketSnapshot

# Called once the pipeline has decided to answer, before any LLM work: the Slack layer
# shows that the bot is working (never while a person has the ticket).
OnWorking = Callable[[], Awaitable[None]]


class IncomingMessage(BaseModel):
    """One customer message to answer.

    `request_id` is stable across redeliveries of the same Slack event (the job's dedupe
    key): every side effect's idempotency key derives from it.
    """

    request_id: str
    team_id: str = ""
    channel_id: str
    thread_ts: str
    message_ts: str
    user_id: str
    text: str
    # True when others can read the channel: account amounts and ids the customer did not
    # write are then withheld from the reply (see `pipelines.support.disclosure`).
    public: bool = False

    @property
    def written_at(self) -> float | None:
        """When the customer wrote it (epoch seconds: Slack's ts), if the ts says."""
        try:
            return float(self.message_ts)
        except ValueError:
            return None


class PendingConfirmation(BaseModel):
    """A side effect waiting for the customer's Confirm (stored: `storage.confirmations`)."""

    id: int
    kind: str
    summary: str


class SupportReply(BaseModel):
    """The answer to post in the customer's thread, and what was done."""

    text: str
    ticket_number: str
    intents: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)  # e.g. "RMA-000123 created"
    escalated: bool = False
    # True when a person has the conversation (ticket escalated or claimed): the turn was
    # recorded, and nothing is to be posted.
    silent: bool = False
    run_id: str
    provider: str  # "gemini" | "offline" | "scripted": shown honestly to the customer
    # The only URLs the reply may show as links: those in the knowledge passages it cites
    # (`pipelines.knowledge.answers`). Any other URL in `text` (a model's invention, a
    # customer's words echoed back) is shown as plain text.
    allowed_links: list[str] = Field(default_factory=list)
    # The ticket as this turn left it, so the Slack layer (card refresh, observers) need
    # not read it again; None only from stand-ins that keep no tickets.
    ticket: TicketSnapshot | None = None
    # Actions the customer has to confirm first, shown with Confirm / Change / Cancel.
    pending: list[PendingConfirmation] = Field(default_factory=list)
