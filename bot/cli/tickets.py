"""`supportbot tickets`: the support tickets from a terminal.

    supportbot tickets                      # active tickets (everything not resolved)
    supportbot tickets --status escalated   # one status: open, waiting, escalated, claimed,
                                            # resolved; or `active`, `all`
    supportbot tickets --breached           # only tickets that breached an SLA target
    supportbot tickets --json               # one JSON object per line

Registered on the main Typer app with `register(app)`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated, Any

import typer

from bot.cli.errors import load_settings
from bot.errors import SettingsError
from storage.ticket_info import ACTIVE_STATUSES, HUMAN_STATUSES, STATUSES, TicketInfo

STATUS_CHOICES = (*STATUSES, "active", "all")


def register(app: typer.Typer) -> None:
    """Add the `tickets` command to `app`."""
    app.command("tickets")(tickets_command)


def tickets_command(
    status: Annotated[
        str,
        typer.Option(
            "--status",
            "-s",
            help="open, waiting, escalated, claimed, resolved; or active (not resolved), all.",
        ),
    ] = "active",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    breached: Annotated[
        bool, typer.Option("--breached", help="Only tickets that breached an SLA target.")
    ] = False,
) -> None:
    """List support tickets, most recently updated first."""
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.models import utcnow
    from storage.tickets import TicketStore

    chosen = status.strip().lower()
    if chosen not in STATUS_CHOICES:
        typer.secho(
            f"error: --status must be one of {', '.join(STATUS_CHOICES)}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    try:
        settings = load_settings()
        upgrade(settings.database_url)
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    statuses = None if chosen == "all" else ACTIVE_STATUSES if chosen == "active" else (chosen,)

    async def load() -> list[TicketInfo]:
        db = Database(settings.database_url)
        try:
            return await TicketStore(db.sessions).list_tickets(
                statuses, limit=limit, breached=breached
            )
        finally:
            await db.dispose()

    tickets = asyncio.run(load())
    now = utcnow()
    if as_json:
        for ticket in tickets:
            typer.echo(json.dumps(ticket_json(ticket)))
        return
    if not tickets:
        what = f"{chosen if chosen != 'all' else ''} {'breached' if breached else ''}"
        typer.echo(" ".join(f"no {what} tickets".split()))
        return
    for line in format_table(tickets, now):
        typer.echo(line)


def ticket_json(ticket: TicketInfo) -> dict[str, Any]:
    return {
        "ticket": ticket.number,
        "status": ticket.status,
        "assignee": ticket.assignee,
        "customer": ticket.slack_user_id,
        "channel": ticket.channel_id,
        "thread_ts": ticket.thread_ts,
        "intents": ticket.intents,
        "tasks": ticket.tasks,
        "actions": ticket.actions,
        "summary": ticket.summary,
        "escalation_reason": ticket.escalation_reason,
        "priority": ticket.priority,
        "sla_breached": {kind: _iso(at) for kind, at in ticket.sla_breaches.items()},
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def format_table(tickets: list[TicketInfo], now: dt.datetime) -> list[str]:
    """Aligned columns: ticket, status, age, assignee, customer, intents, summary."""
    from bot.triage.views import age

    header = ("TICKET", "STATUS", "AGE", "ASSIGNEE", "CUSTOMER", "INTENTS", "SUMMARY")
    rows = [
        (
            ticket.number,
            ticket.status,
            age(now - ticket.created_at),
            ticket.assignee or "-",
            ticket.slack_user_id or "-",
            ",".join(ticket.intents) or "-",
            _one_line(_summary(ticket)),
        )
        for ticket in tickets
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in [header, *rows]
    ]


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when else None


def _summary(ticket: TicketInfo) -> str:

    breached = [kind.replace("_", " ") for kind, at in ticket.sla_breaches.items() if at]
    flag = f" [SLA breached: {', '.join(breached)}]" if breached else ""
    if ticket.status in HUMAN_STATUSES and ticket.escalation_reason:
        return f"{ticket.summary or '-'} [escalated: {ticket.escalation_reason}]{flag}"
    return (ticket.summary or "-") + flag


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


__all__ = ["format_table", "register", "ticket_json", "tickets_command"]
