"""What the bot prepares for people to act on: actions waiting for the customer's
confirmation (issue 15), and the brief of an escalated ticket for the agents (issue 16)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class PendingAction(Base):
    """A side effect (open a return, open a billing case) the bot prepared and the
    customer has to confirm. `status` moves once, by a conditional UPDATE, from `pending`
    to `confirmed`, `cancelled`, `changed` or `expired`; `result` says what confirming did.
    One row per (request, kind): a retried job prepares nothing twice.
    """

    __tablename__ = "pending_actions"
    __table_args__ = (
        UniqueConstraint("request_id", "kind"),
        Index("ix_pending_actions_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[str] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column()
    channel_id: Mapped[str] = mapped_column(String(32), default="")
    reply_ts: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(32))


class TicketBriefRow(Base):
    """The AI brief (and suggested reply) of an escalated ticket, for its triage card.

    One row per ticket, replaced when the ticket is escalated again.
    """

    __tablename__ = "ticket_briefs"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    brief: Mapped[dict[str, Any]] = mapped_column(default=dict)
    draft: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(32), default="")
    run_id: Mapped[str] = mapped_column(String(36), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["PendingAction", "TicketBriefRow"]
