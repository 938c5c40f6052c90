"""What customers say about the answers: one vote per reply and person (issue 15)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class ReplyVote(Base):
    """A thumbs up or down on one bot reply (its message), by one Slack user.

    One row per (reply, user): changing the vote updates it, a re-click changes nothing.
    `run_id` ties it to the trace of the pipeline run that wrote the reply.
    """

    __tablename__ = "reply_votes"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_ts", "slack_user_id"),
        Index("ix_reply_votes_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(36), default="")
    slack_user_id: Mapped[str] = mapped_column(String(32))
    vote: Mapped[str] = mapped_column(String(8))  # up | down
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["ReplyVote"]
