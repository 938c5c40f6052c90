"""What customers say about the answers: one vote per reply and person (issue 15)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
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


class CsatSurvey(Base):
    """The one satisfaction question a resolved ticket's customer is asked (issue 15).

    One row per ticket, ever (unique `ticket_id`): inserting it is what reserves the
    question, so a second resolve, a redelivered click or two workers ask once. `score`
    (1-5) and `comment` stay empty until the customer answers; a later click replaces the
    score (they changed their mind), the comment is kept.
    """

    __tablename__ = "csat_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    slack_user_id: Mapped[str] = mapped_column(String(32), index=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column()


__all__ = ["CsatSurvey", "ReplyVote"]
