"""The numbers a support lead runs on, for a period and per intent (issue 15).

Three grouped queries read the tickets opened in the period per first intent (from
figures kept on the ticket as things happen: whether it was ever escalated, whether a
person took part, seconds to the first reply and to the resolve), their votes and their
satisfaction answers; percentiles are computed here from the durations. The figures are
computed here from those rows, the same on SQLite and PostgreSQL. Definitions:

- deflected: no person took part (never escalated, claimed or written in by an agent);
- first response: opened -> the first bot or agent reply;
- resolution: opened -> resolved, for tickets resolved now (a reopen clears it);
- CSAT: the average score (1-5) of answered questions, and answered / asked;
- thumbs up: up / (up + down) over the votes on replies in those tickets;
- confirmations: how the side effects customers were asked to confirm ended (confirmed,
  changed, cancelled, expired, still pending).

`tickets.created_at` is indexed, so a period of 100,000 tickets is one range scan
(`bench/report_scale.py`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import String, and_, case, cast, func, select
from sqlalchemy.exc import DBAPIError

from storage.confirmations import outcome_counts
from storage.db import Sessions
from storage.feedback_models import CsatSurvey, ReplyVote
from storage.models import Ticket

NO_INTENT = "none"


class ReportUnavailable(RuntimeError):
    """The database could not answer (not migrated to this version, unreachable)."""


@dataclass
class Figures:
    """The numbers of one group of tickets (all, or one intent)."""

    tickets: int = 0
    deflection_rate: float | None = None
    escalation_rate: float | None = None
    first_response_p50_s: float | None = None
    first_response_p90_s: float | None = None
    resolution_p50_s: float | None = None
    resolution_p90_s: float | None = None
    csat_average: float | None = None
    csat_response_rate: float | None = None
    thumbs_up_ratio: float | None = None
    sla_breached: int = 0  # tickets with an SLA target flagged as breached (`storage.sla`)


@dataclass
class SupportReport:
    since: dt.datetime
    until: dt.datetime
    overall: Figures
    by_intent: dict[str, Figures] = field(default_factory=dict)
    # How the side effects customers were asked to confirm ended (and how many wait).
    confirmations: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "overall": asdict(self.overall),
            "confirmations": dict(self.confirmations),
            "by_intent": {name: asdict(f) for name, f in self.by_intent.items()},
        }


@dataclass
class _Group:
    tickets: int = 0
    deflected: int = 0
    escalated: int = 0
    sla_breached: int = 0
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    csat_asked: int = 0
    csat_answered: int = 0
    csat_total: int = 0
    up: int = 0
    down: int = 0

    @classmethod
    def merged(cls, groups: Iterable[_Group]) -> _Group:
        total = cls()
        for group in groups:
            total.tickets += group.tickets
            total.deflected += group.deflected
            total.escalated += group.escalated
            total.sla_breached += group.sla_breached
            total.first_response += group.first_response
            total.resolution += group.resolution
            total.csat_asked += group.csat_asked
            total.csat_answered += group.csat_answered
            total.csat_total += group.csat_total
            total.up += group.up
            total.down += group.down
        return total

    def figures(self) -> Figures:
        n = self.tickets
        votes = self.up + self.down
        return Figures(
            tickets=n,
            deflection_rate=_ratio(self.deflected, n),
            escalation_rate=_ratio(self.escalated, n),
            first_response_p50_s=_pct(self.first_response, 50),
            first_response_p90_s=_pct(self.first_response, 90),
            resolution_p50_s=_pct(self.resolution, 50),
            resolution_p90_s=_pct(self.resolution, 90),
            csat_average=(
                round(self.csat_total / self.csat_answered, 2) if self.csat_answered else None
            ),
            csat_response_rate=_ratio(self.csat_answered, self.csat_asked),
            thumbs_up_ratio=_ratio(self.up, votes),
            sla_breached=self.sla_breached,
        )


async def support_report(
    sessions: Sessions, since: dt.datetime, until: dt.datetime | None = None
) -> SupportReport:
    """The figures of tickets opened in [since, until), overall and per first intent."""
    until = until or dt.datetime.now(dt.UTC)
    in_period = and_(Ticket.created_at >= since, Ticket.created_at < until)
    intent = Ticket.primary_intent
    # Grouped by intent in the database, from the ticket's own figures (kept as things
    # happen: `storage.tickets`, `storage.conversations`) and the covering index: a few
    # rows come back, the durations as one comma-separated string per intent.
    tickets = (
        select(
            intent,
            func.count(),
            func.count(Ticket.escalated_at),
            func.sum(case((Ticket.person_involved, 1), else_=0)),
            func.aggregate_strings(cast(Ticket.first_response_s, String), ","),
            func.aggregate_strings(cast(Ticket.resolution_s, String), ","),
            func.count(
                func.coalesce(Ticket.first_response_breached_at, Ticket.resolution_breached_at)
            ),
        )
        .where(in_period)
        .group_by(intent)
    )
    votes = (
        select(intent, ReplyVote.vote, func.count())
        .join(Ticket, Ticket.id == ReplyVote.ticket_id)
        .where(in_period)
        .group_by(intent, ReplyVote.vote)
    )
    surveys = (
        select(intent, func.count(), func.count(CsatSurvey.score), func.sum(CsatSurvey.score))
        .join(Ticket, Ticket.id == CsatSurvey.ticket_id)
        .where(in_period)
        .group_by(intent)
    )
    try:
        async with sessions() as session:
            connection = await session.connection()
            ticket_rows = (await connection.execute(tickets)).all()
            vote_rows = (await connection.execute(votes)).all()
            survey_rows = (await connection.execute(surveys)).all()
    except DBAPIError as exc:  # e.g. a database older than this code's migrations
        raise ReportUnavailable(type(exc.orig).__name__) from exc

    groups: dict[str, _Group] = defaultdict(_Group)
    for name, count, escalated, person, replied, resolved, breached in ticket_rows:
        group = groups[name or NO_INTENT]
        group.sla_breached += int(breached or 0)
        group.tickets += int(count)
        group.escalated += int(escalated or 0)
        group.deflected += int(count) - int(person or 0)
        group.first_response += _numbers(replied)
        group.resolution += _numbers(resolved)
    for name, vote, count in vote_rows:
        group = groups[name or NO_INTENT]
        if vote == "up":
            group.up += int(count)
        else:
            group.down += int(count)
    for name, asked, answered, total in survey_rows:
        group = groups[name or NO_INTENT]
        group.csat_asked += int(asked)
        group.csat_answered += int(answered)
        group.csat_total += int(total or 0)
    by_intent = {name: groups[name].figures() for name in sorted(groups)}
    overall = _Group.merged(groups.values()).figures()
    confirmed = await outcome_counts(sessions, since, until)
    return SupportReport(since, until, overall, by_intent, confirmed)


def _numbers(joined: str | None) -> list[float]:
    return [max(0.0, float(part)) for part in joined.split(",")] if joined else []


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(
        max(0.0, ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]), 1
    )


__all__ = ["Figures", "ReportUnavailable", "SupportReport", "support_report"]
