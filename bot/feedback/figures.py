"""The support numbers as text, for `supportbot report` and App Home: pure functions.

Kept apart from the App Home section (`bot.feedback.numbers`) so that the command
imports no Slack framework: `supportbot report` starts in well under a second.
"""

from __future__ import annotations

from storage.support_report import Figures, SupportReport


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def figures_line(f: Figures) -> str:
    """One line: tickets, deflection, escalation, first response, resolution, CSAT, 👍."""
    csat = "–" if f.csat_average is None else f"{f.csat_average:.1f}/5"
    return (
        f"{f.tickets} tickets · deflected {percent(f.deflection_rate)} · escalated "
        f"{percent(f.escalation_rate)} · first response {duration(f.first_response_p50_s)} "
        f"(p90 {duration(f.first_response_p90_s)}) · resolved in "
        f"{duration(f.resolution_p50_s)} (p90 {duration(f.resolution_p90_s)}) · CSAT {csat} "
        f"({percent(f.csat_response_rate)} answered) · thumbs up {percent(f.thumbs_up_ratio)}"
        f" · SLA breached {f.sla_breached}"
    )


def report_lines(report: SupportReport) -> list[str]:
    """`supportbot report` as text: the period, the overall line, one line per intent."""
    lines = [
        f"Tickets opened {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC",
        "all: " + figures_line(report.overall),
    ]
    lines += [f"{name}: {figures_line(f)}" for name, f in report.by_intent.items()]
    lines.append("confirmations: " + confirmations_line(report.confirmations))
    return lines


def confirmations_line(counts: dict[str, int]) -> str:
    """'3 accepted · 1 changed · 0 cancelled · 1 expired · 2 waiting'."""
    names = (("confirmed", "accepted"), ("changed", "changed"), ("cancelled", "cancelled"),
             ("expired", "expired"), ("pending", "waiting"))  # fmt: skip
    return " · ".join(f"{counts.get(key, 0)} {word}" for key, word in names)


__all__ = ["confirmations_line", "duration", "figures_line", "percent", "report_lines"]
