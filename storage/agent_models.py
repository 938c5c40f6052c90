"""Support agents' own state: away or not, and when each was last given a ticket."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow


class AgentPresence(Base):
    """One row per agent who set `/support away` or was assigned a ticket."""

    __tablename__ = "agent_presence"

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    away: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_assigned_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["AgentPresence"]
