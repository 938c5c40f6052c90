"""`supportbot report`: the support numbers for a period, per intent.

    supportbot report                 # tickets opened in the last 30 days
    supportbot report --since 7d      # 7d, 12h, 90m, or a date (2026-11-01)
    supportbot report --json          # one JSON object

Registered on the main Typer app with `register(app)`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from typing import Annotated

import typer

from bot.cli.errors import fail, load_settings
from bot.errors import SettingsError

_SPAN = re.compile(r"^(\d+)\s*([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def register(app: typer.Typer) -> None:
    """Add the `report` command to `app`."""
    app.command("report")(report_command)


def parse_since(value: str, now: dt.datetime) -> dt.datetime:
    """`30d`, `12h`, `90m` back from `now`, or an ISO date / time (UTC when naive)."""
    text = value.strip().lower()
    if match := _SPAN.match(text):
        return now - dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter("use 30d, 12h, 90m or a date like 2026-11-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def report_command(
    since: Annotated[
        str, typer.Option("--since", help="Tickets opened since: 30d, 12h, 90m or a date.")
    ] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Tickets, deflection, escalation, response and resolution times, CSAT and thumbs up,
    overall and per intent."""
    from bot.feedback.figures import report_lines
    from storage.db import Database
    from storage.support_report import ReportUnavailable, SupportReport, support_report

    now = dt.datetime.now(dt.UTC)
    start = parse_since(since, now)
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None

    async def load() -> SupportReport:
        db = Database(settings.database_url)
        try:
            return await support_report(db.sessions, start, now)
        finally:
            await db.dispose()

    # Only reads: no migration run here (it costs a third of a second on every call); a
    # database that `serve` or `supportbot db upgrade` has not migrated is said so.
    try:
        report = asyncio.run(load())
    except ReportUnavailable as exc:
        raise fail(
            f"the database is not ready for reports ({exc}); "
            "run `supportbot db upgrade` (or start `supportbot serve`) first"
        ) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    for line in report_lines(report):
        typer.echo(line)
