"""The support numbers in the agents' App Home: the last 7 and 30 days (customers see
nothing). The text of the figures is `bot.feedback.figures`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.blocks import Block, context, divider, escape, header, section
from bot.feedback.figures import confirmations_line, figures_line
from bot.home.feature import HomeViewer
from storage.db import Sessions
from storage.support_report import SupportReport, support_report

HOME_PERIODS_DAYS = (7, 30)
MAX_HOME_INTENTS = 6


def home_blocks(reports: Sequence[tuple[int, SupportReport]]) -> list[Block]:
    blocks: list[Block] = [header("Support numbers")]
    for days, report in reports:
        intents = sorted(report.by_intent.items(), key=lambda item: -item[1].tickets)
        per_intent = "\n".join(
            f"• {escape(name.replace('_', ' '))}: {escape(figures_line(f))}"
            for name, f in intents[:MAX_HOME_INTENTS]
        )
        text = f"*Last {days} days:* {escape(figures_line(report.overall))}"
        text += f"\nConfirmations: {confirmations_line(report.confirmations)}"
        blocks.append(section(text + (f"\n{per_intent}" if per_intent else "")))
    blocks += [
        context(
            "Deflected: the bot handled it with no person. First response: to the first "
            "reply. CSAT: the question asked when a ticket is resolved. "
            "`supportbot report --since 30d --json` for the same figures."
        ),
        divider(),
    ]
    return blocks


class SupportNumbersSection:
    """App Home, agents only: the last 7 and 30 days."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        if not viewer.is_agent:
            return []
        now = dt.datetime.now(dt.UTC)
        reports = [
            (days, await support_report(self._sessions, now - dt.timedelta(days=days), now))
            for days in HOME_PERIODS_DAYS
        ]
        return home_blocks(reports)


__all__ = ["SupportNumbersSection", "home_blocks"]
