"""`supportbot purge`: delete what the retention settings say is too old, now.

Every worker already does this once an hour (`bot.worker`); the command is for a deployment
that runs no worker for a while, or an operator who lowered a retention setting and wants
the effect at once. It honours the same settings, with per-run overrides:

    supportbot purge                         # JOB_/TRACE_/TURN_RETENTION_DAYS
    supportbot purge --turn-days 365         # also the turns of tickets resolved a year ago

Registered on the main Typer app with `register(app)`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from bot.cli.errors import load_settings, one_line_errors

DAYS_HELP = "Days to keep (0 = forever); default: the {} setting."


def register(app: typer.Typer) -> None:
    """Add the `purge` command to `app`."""
    app.command("purge")(purge_command)


@one_line_errors
def purge_command(
    job_days: Annotated[
        int | None, typer.Option("--job-days", min=0, help=DAYS_HELP.format("JOB_RETENTION_DAYS"))
    ] = None,
    trace_days: Annotated[
        int | None,
        typer.Option("--trace-days", min=0, help=DAYS_HELP.format("TRACE_RETENTION_DAYS")),
    ] = None,
    turn_days: Annotated[
        int | None,
        typer.Option("--turn-days", min=0, help=DAYS_HELP.format("TURN_RETENTION_DAYS")),
    ] = None,
) -> None:
    """Delete finished jobs, traces and resolved tickets' turns older than the retention."""
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.retention import PurgeReport, RetentionPolicy, purge_expired

    settings = load_settings()
    configured = settings.retention
    policy = RetentionPolicy(
        job_days=configured.job_days if job_days is None else job_days,
        trace_days=configured.trace_days if trace_days is None else trace_days,
        turn_days=configured.turn_days if turn_days is None else turn_days,
    )
    if not policy.deletes_anything:
        typer.echo("retention keeps everything (all days are 0): nothing to delete")
        return
    upgrade(settings.database_url)

    async def run() -> PurgeReport:
        db = Database(settings.database_url)
        try:
            return await purge_expired(db.sessions, policy)
        finally:
            await db.dispose()

    typer.echo(asyncio.run(run()).summary())
