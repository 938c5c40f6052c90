"""A ticket as plain data: its statuses, the `TicketInfo` snapshot, the card marker.

`TicketInfo` is a plain snapshot of a row: views and the CLI render it without a session.
It is kept apart from the transitions (`storage.tickets`) and the reads
(`storage.ticket_queries`), which both return it, so that the Block Kit views, the CLI and
the pipelines can use the statuses and the snapshot without importing the queries.
What moves a ticket from one status to another is described in `storage.tickets`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage.sla import FIRST_RESPONSE, NORMAL, RESOLUTION

if TYPE_CHECKING:  # only a type here: the CLI lists statuses without loading SQLAlchemy
    from storage.models import Ticket

OPEN = "open"
WAITING = "waiting"
ESCALATED = "escalated"
CLAIMED = "claimed"
RESOLVED = "resolved"
STATUSES: tuple[str, ...] = (OPEN, WAITING, ESCALATED, CLAIMED, RESOLVED)
STATUS_LABELS = {
    OPEN: "Open",
    WAITING: "Waiting on customer",
    ESCALATED: "Escalated",
    CLAIMED: "Claimed",
    RESOLVED: "Resolved",
}
HUMAN_STATUSES = frozenset({ESCALATED, CLAIMED})  # a person has it: the bot stays quiet
ACTIVE_STATUSES: tuple[str, ...] = (OPEN, WAITING, ESCALATED, CLAIMED)

# While a triage card is being posted, `triage_ts` holds a reservation marker instead of a
# message ts ("p:<token>:<unix seconds>"), so two jobs never post two cards for one ticket.
CARD_MARKER_PREFIX = "p:"


def bot_stays_quiet(status: str, author_is_agent: bool) -> bool:
    """The one rule: while a person has the ticket, the bot answers nobody but agents."""
    return status in HUMAN_STATUSES and not author_is_agent


@dataclass(frozen=True)
class TicketSnapshot:
    """What a reply knows of its ticket once the turn is recorded: enough to refresh its
    card (id, version) or decide what to show (status) without reading the ticket again."""

    id: int
    number: str
    status: str
    version: str


@dataclass(frozen=True)
class TicketInfo:
    """A ticket row as plain data."""

    id: int
    number: str
    team_id: str
    channel_id: str
    thread_ts: str
    slack_user_id: str
    customer_id: int | None
    intents: list[str]
    tasks: list[dict[str, Any]]
    actions: list[str]
    summary: str
    status: str
    escalation_reason: str | None
    assignee: str | None
    triage_channel: str | None
    triage_ts: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    # SLAs (`storage.sla`): the priority and the times its clocks are computed from.
    priority: str = NORMAL
    sla_started_at: dt.datetime | None = None
    agent_replied_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    first_response_breached_at: dt.datetime | None = None
    resolution_breached_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Ticket) -> TicketInfo:
        return cls(
            id=row.id,
            number=row.ticket_number or f"T-{row.id:05d}",
            team_id=row.team_id,
            channel_id=row.channel_id,
            thread_ts=row.thread_ts,
            slack_user_id=row.slack_user_id,
            customer_id=row.customer_id,
            intents=[str(intent) for intent in row.intents or []],
            tasks=[dict(task) for task in row.tasks or [] if isinstance(task, dict)],
            actions=[str(action) for action in row.actions or []],
            summary=row.summary or "",
            status=row.status,
            escalation_reason=row.escalation_reason,
            assignee=row.assignee,
            triage_channel=row.triage_channel,
            triage_ts=row.triage_ts,
            created_at=row.created_at,
            updated_at=row.updated_at,
            priority=row.priority or NORMAL,
            sla_started_at=row.sla_started_at,
            agent_replied_at=row.agent_replied_at,
            resolved_at=row.resolved_at,
            first_response_breached_at=row.first_response_breached_at,
            resolution_breached_at=row.resolution_breached_at,
        )

    @property
    def version(self) -> str:
        """Changes with every update of the ticket (dedupe key of card refreshes)."""
        return str(int(self.updated_at.timestamp() * 1_000_000))

    def snapshot(self) -> TicketSnapshot:
        return TicketSnapshot(self.id, self.number, self.status, self.version)

    @property
    def bot_paused(self) -> bool:
        return self.status in HUMAN_STATUSES

    @property
    def card_ts(self) -> str | None:
        """The triage card's message ts, when the card exists (not while it is reserved)."""
        if self.triage_ts is None or is_card_marker(self.triage_ts):
            return None
        return self.triage_ts

    @property
    def sla_breaches(self) -> dict[str, dt.datetime | None]:
        """When each SLA target was flagged as breached (`storage.sla` kinds)."""
        return {
            FIRST_RESPONSE: self.first_response_breached_at,
            RESOLUTION: self.resolution_breached_at,
        }

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


def is_card_marker(value: str | None) -> bool:
    return bool(value) and str(value).startswith(CARD_MARKER_PREFIX)


def card_marker(token: str, at: float) -> str:
    """A reservation marker; fits the 32-character `triage_ts` column."""
    return f"{CARD_MARKER_PREFIX}{token[:18]}:{int(at)}"


def card_marker_time(marker: str) -> float | None:
    """When a marker was set (unix seconds), or None if `marker` is not one."""
    if not is_card_marker(marker):
        return None
    try:
        return float(marker.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0.0


def card_marker_token(marker: str) -> str:
    return marker[len(CARD_MARKER_PREFIX) :].rsplit(":", 1)[0]


__all__ = [
    "ACTIVE_STATUSES",
    "CLAIMED",
    "ESCALATED",
    "HUMAN_STATUSES",
    "OPEN",
    "RESOLVED",
    "STATUSES",
    "STATUS_LABELS",
    "WAITING",
    "TicketInfo",
    "TicketSnapshot",
    "bot_stays_quiet",
    "card_marker",
    "card_marker_time",
    "card_marker_token",
    "is_card_marker",
]
