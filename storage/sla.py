"""SLA policy: targets per priority, counted in business hours. Pure, no I/O.

An escalated ticket's clock starts when a person is first needed (`Ticket.sla_started_at`)
and counts only business time: the hours of `BusinessHours` on its weekdays, in its time
zone (so 17:00 on a Friday to 09:30 on Monday is 30 minutes). Two targets run on it:

- **first response**: until an agent first writes to the customer (a relayed reply, or
  a message in the customer's thread);
- **resolution**: until the ticket is resolved.

The worker's check (`bot.triage.sla`) compares these due times with the clock and flags
a breach once, in the database; nothing here keeps state, so timers survive restarts.
Public holidays are not modelled (a holiday counts as a working day).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from storage.ticket_info import TicketInfo

URGENT = "urgent"
NORMAL = "normal"
PRIORITIES = (URGENT, NORMAL)
FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
SLA_KINDS = (FIRST_RESPONSE, RESOLUTION)
SLA_LABELS = {FIRST_RESPONSE: "first response", RESOLUTION: "resolution"}

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS_SCANNED = 3660  # ten years: a due date further out is a configuration mistake
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|h)$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class SlaConfigError(ValueError):
    """A setting the SLA policy cannot read (the message names what is wrong)."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours on some weekdays in one time zone (`opens` < `closes`, minutes)."""

    zone: dt.tzinfo
    opens: int  # minutes after local midnight
    closes: int  # up to 24 * 60
    weekdays: frozenset[int]  # 0 = Monday

    def _day_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        if day.weekday() not in self.weekdays:
            return None
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
        start = midnight + dt.timedelta(minutes=self.opens)
        end = midnight + dt.timedelta(minutes=self.closes)
        # Wall-clock arithmetic in the zone, then UTC: a DST change keeps "09:00" at 09:00.
        return _utc(start), _utc(end)

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business seconds in [start, end) (0 when end <= start)."""
        if end <= start:
            return 0.0
        total = 0.0
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        for _ in range(MAX_DAYS_SCANNED):
            window = self._day_window(day)
            if window is not None:
                overlap = min(end, window[1]) - max(start, window[0])
                total += max(0.0, overlap.total_seconds())
            if day >= last:
                break
            day += dt.timedelta(days=1)
        return total

    def add(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The instant `seconds` of business time after `start`."""
        day = start.astimezone(self.zone).date()
        left = seconds
        for _ in range(MAX_DAYS_SCANNED):
            window = self._day_window(day)
            if window is not None and window[1] > start:
                begin = max(start, window[0])
                available = (window[1] - begin).total_seconds()
                if left <= available:
                    return begin + dt.timedelta(seconds=left)
                left -= available
            day += dt.timedelta(days=1)
        raise SlaConfigError("no business hours within ten years: check SLA_WEEKDAYS")

    def is_open(self, when: dt.datetime) -> bool:
        window = self._day_window(when.astimezone(self.zone).date())
        return window is not None and window[0] <= when < window[1]


@dataclass(frozen=True)
class SlaPolicy:
    """Targets in business seconds, per kind and priority; an absent target is no SLA."""

    hours: BusinessHours
    targets: dict[str, dict[str, float]]  # kind -> priority -> seconds

    def target(self, kind: str, priority: str) -> float | None:
        by_priority = self.targets.get(kind) or {}
        return by_priority.get(priority, by_priority.get(NORMAL))

    @property
    def enabled(self) -> bool:
        return any(self.targets.values())

    @property
    def shortest_target(self) -> float:
        """No ticket can breach before this much wall-clock time (a query's cut-off)."""
        values = [s for by in self.targets.values() for s in by.values()]
        return min(values) if values else 0.0


@dataclass(frozen=True)
class SlaClockView:
    """One target of one ticket, as of `now`: due when, how much business time is left."""

    kind: str
    due: dt.datetime
    left_s: float  # business seconds left; negative once overdue
    met_at: dt.datetime | None  # when it was met (first reply / resolve), if it was
    breached_at: dt.datetime | None  # when the check flagged it

    @property
    def breached(self) -> bool:
        return self.breached_at is not None or (self.met_at is None and self.left_s <= 0)


def sla_clocks(
    policy: SlaPolicy,
    *,
    priority: str,
    started_at: dt.datetime | None,
    now: dt.datetime,
    replied_at: dt.datetime | None,
    resolved_at: dt.datetime | None,
    breached: dict[str, dt.datetime | None],
) -> list[SlaClockView]:
    """The ticket's running or finished SLA targets (none before a person is needed)."""
    if started_at is None:
        return []
    views = []
    met = {FIRST_RESPONSE: replied_at, RESOLUTION: resolved_at}
    for kind in SLA_KINDS:
        target = policy.target(kind, priority)
        if target is None:
            continue
        due = policy.hours.add(started_at, target)
        stop = met[kind] or now
        left = target - policy.hours.seconds_between(started_at, stop)
        views.append(SlaClockView(kind, due, left, met[kind], breached.get(kind)))
    return views


def ticket_sla(ticket: TicketInfo, policy: SlaPolicy, now: dt.datetime) -> list[SlaClockView]:
    """A ticket's SLA targets as of `now` (its resolve counts only while it is resolved)."""
    return sla_clocks(
        policy,
        priority=ticket.priority,
        started_at=ticket.sla_started_at,
        now=now,
        replied_at=ticket.agent_replied_at,
        resolved_at=ticket.resolved_at if ticket.status == "resolved" else None,
        breached=ticket.sla_breaches,
    )


# --- reading the settings -------------------------------------------------------------


def parse_duration(text: str) -> float:
    """'30m', '4h', '1.5h' -> seconds of business time."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise SlaConfigError(f"{text!r} is not a duration like 30m or 4h")
    value, unit = float(match.group(1)), match.group(2)
    seconds = value * (3600 if unit == "h" else 60)
    if seconds <= 0:
        raise SlaConfigError(f"{text!r}: a target must be longer than zero")
    return seconds


def parse_targets(text: str) -> dict[str, float]:
    """'urgent=1h,normal=4h' -> {priority: seconds}; 'off' or '' -> {} (no SLA)."""
    if text.strip().lower() in ("", "off", "none"):
        return {}
    targets: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in PRIORITIES:
            raise SlaConfigError(f"{part.strip()!r}: write urgent=<duration>,normal=<duration>")
        targets[name] = parse_duration(value)
    return targets


def parse_weekdays(text: str) -> frozenset[int]:
    """'mon-fri', 'mon,wed,fri', 'sun-thu' -> weekday numbers (0 = Monday)."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise SlaConfigError(f"{part!r}: weekdays are {', '.join(WEEKDAYS)} (e.g. mon-fri)")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def parse_business_hours(hours: str, zone: str, weekdays: str) -> BusinessHours:
    match = _HOURS.match(hours.strip())
    if not match:
        raise SlaConfigError(f"{hours!r} is not a range like 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    opens, closes = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or opens >= closes or closes > 24 * 60:
        raise SlaConfigError(f"{hours!r}: opening must come before closing, within a day")
    tz: dt.tzinfo = dt.UTC
    try:
        if zone.strip().upper() != "UTC":  # UTC needs no time zone database
            tz = ZoneInfo(zone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise SlaConfigError(f"{zone!r} is not a time zone (e.g. Europe/Paris)") from None
    return BusinessHours(tz, opens, closes, parse_weekdays(weekdays))


def _utc(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC)


__all__ = [
    "FIRST_RESPONSE",
    "NORMAL",
    "PRIORITIES",
    "RESOLUTION",
    "SLA_KINDS",
    "SLA_LABELS",
    "URGENT",
    "BusinessHours",
    "SlaClockView",
    "SlaConfigError",
    "SlaPolicy",
    "parse_business_hours",
    "parse_duration",
    "parse_targets",
    "parse_weekdays",
    "sla_clocks",
    "ticket_sla",
]
