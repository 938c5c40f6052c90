"""`supportbot serve`, `supportbot worker` and `supportbot jobs`, added to the main CLI.

    from bot.cli.server import register
    register(app)

Kept apart from `bot.cli.main` so the running side of the bot (uvicorn, Bolt, the worker) is
imported only by the commands that run it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from bot.cli.errors import load_settings, one_line_errors


def register(app: typer.Typer) -> None:
    """Add the serving commands to `app`; each runs every feature of `bot.wiring`."""

    @app.command("serve")
    @one_line_errors
    def serve_command(
        socket: Annotated[
            bool, typer.Option("--socket", help="Socket Mode (needs SLACK_APP_TOKEN).")
        ] = False,
        no_worker: Annotated[
            bool,
            typer.Option("--no-worker", help="Only accept events; `supportbot worker` answers."),
        ] = False,
        port: Annotated[
            int | None, typer.Option("--port", help="HTTP port (default: PORT or 3000).")
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "0.0.0.0",
        concurrency: Annotated[
            int | None,
            typer.Option(
                "--concurrency",
                min=1,
                help="Embedded worker's parallel jobs (default: 2 x LLM_MAX_CONCURRENCY).",
            ),
        ] = None,
    ) -> None:
        """Run the Slack bot: HTTP mode (POST /slack/events, /healthz, /metrics) or Socket Mode."""
        from bot.server import serve

        settings = load_settings()
        from bot.logs import configure_logging

        configure_logging(settings)  # LOG_FORMAT; quiets the Slack SDKs
        asyncio.run(
            serve(
                settings,
                socket_mode=socket,
                embedded_worker=not no_worker,
                host=host,
                port=port,
                concurrency=concurrency,
            )
        )

    @app.command("worker")
    @one_line_errors
    def worker_command(
        concurrency: Annotated[
            int | None,
            typer.Option(
                "--concurrency",
                min=1,
                help="Jobs worked on in parallel (default: 2 x LLM_MAX_CONCURRENCY).",
            ),
        ] = None,
        lease_seconds: Annotated[
            float,
            typer.Option(
                "--lease-seconds",
                min=1.0,
                help="How long a claimed job is ours without a heartbeat before another "
                "worker may take it over.",
            ),
        ] = 60.0,
        metrics_port: Annotated[
            int | None, typer.Option("--metrics-port", help="Serve /metrics on this port.")
        ] = None,
    ) -> None:
        """Answer queued Slack messages (scale out: run as many as you like)."""
        from bot.server import run_worker

        settings = load_settings()
        from bot.logs import configure_logging

        configure_logging(settings)  # LOG_FORMAT; quiets the Slack SDKs
        asyncio.run(
            run_worker(
                settings,
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                metrics_port=metrics_port,
            )
        )

    @app.command("jobs")
    @one_line_errors
    def jobs_command() -> None:
        """Show how many jobs are queued, running, done and dead."""
        from storage.db import Database
        from storage.migrate import apply_migrations
        from storage.queue import JobQueue

        settings = load_settings()

        async def show() -> dict[str, int]:
            await apply_migrations(settings.database_url)
            db = Database(settings.database_url)
            try:
                return await JobQueue(db).counts()
            finally:
                await db.dispose()

        for status, count in asyncio.run(show()).items():
            typer.echo(f"{status:8} {count}")


def main() -> None:
    """`python -m bot.cli.server`: these commands alone (the `supportbot` CLI has them too)."""
    app = typer.Typer(help="Serve the Slack bot or run workers.", no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()


__all__ = ["main", "register"]
