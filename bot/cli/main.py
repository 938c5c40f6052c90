"""The `supportbot` command line (Typer).

Every command reads settings once; a settings problem is printed as one line naming the
variable, and the command exits with status 2 instead of a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot import __version__
from bot.cli.errors import fail, load_settings, one_line_errors
from bot.cli.eval import register as register_eval
from bot.cli.faq_review import register as register_faq_review
from bot.cli.kb import register as register_kb
from bot.cli.maintenance import register as register_maintenance
from bot.cli.report import register as register_report
from bot.cli.server import register as register_server
from bot.cli.tickets import register as register_tickets
from pipelines.faq import MAX_QUESTIONS

# Each command imports what it runs: `supportbot --version` and `--help` load none of it.
if TYPE_CHECKING:
    from pipelines.support.contracts import IncomingMessage, SupportReply

app = typer.Typer(help="A customer-support bot for Slack.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"supportbot {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """A customer-support bot for Slack built from small, inspectable LLM steps."""


@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply the Alembic migrations (creates a fresh database)."""
    from storage.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    typer.echo("database is at the latest schema")


@db_app.command("seed")
@one_line_errors
def db_seed(
    users: Annotated[list[str] | None, typer.Argument(help="Slack user ids to provision.")] = None,
) -> None:
    """Load the product catalogue and demo customers (idempotent)."""
    from storage.catalog import demo_ids, get_or_create_customer, seed_catalog
    from storage.db import Database
    from storage.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)

    async def seed() -> None:
        db = Database(settings.database_url)
        try:
            await seed_catalog(db.sessions)
            for user in users or ["UDEMO1", "UDEMO2"]:
                customer = await get_or_create_customer(db.sessions, user)
                ids = await demo_ids(db.sessions, customer.id)
                typer.echo(
                    f"{user}: orders {', '.join(ids.order_numbers)}; "
                    f"invoices {', '.join(ids.invoice_numbers)}"
                )
        finally:
            await db.dispose()

    asyncio.run(seed())


@app.command("demo-ids")
@one_line_errors
def demo_ids_command(
    user: Annotated[str, typer.Option("--user", help="Slack user id, e.g. U123.")] = "UCLI",
    team: Annotated[str, typer.Option("--team", help="Slack team id.")] = "",
) -> None:
    """Show the demo orders, invoices and products of a Slack user (provisioned if new)."""
    from storage.catalog import demo_ids, get_or_create_customer
    from storage.db import Database
    from storage.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)

    async def show() -> None:
        db = Database(settings.database_url)
        try:
            customer = await get_or_create_customer(db.sessions, user, team)
            ids = await demo_ids(db.sessions, customer.id)
        finally:
            await db.dispose()
        typer.echo(f"customer: {customer.name}")
        typer.echo(f"orders:   {', '.join(ids.order_numbers)}")
        typer.echo(f"invoices: {', '.join(ids.invoice_numbers)}")
        typer.echo(f"products: {', '.join(ids.products)}")

    asyncio.run(show())


def _cli_message(thread: str, user: str, text: str, turn: int) -> IncomingMessage:
    from pipelines.support.contracts import IncomingMessage

    ts = f"{time.time():.6f}"
    return IncomingMessage(
        request_id=f"cli:{thread}:{turn}",
        team_id="",
        channel_id="cli",
        thread_ts=thread,
        message_ts=ts,
        user_id=user,
        text=text,
    )


def _print_reply(reply: SupportReply) -> None:
    if reply.silent:
        typer.secho(
            f"(a person from the support team has ticket {reply.ticket_number}; "
            "the bot stays quiet)",
            dim=True,
        )
        return
    typer.echo(reply.text)
    extras = [f"ticket {reply.ticket_number}", *reply.actions]
    if reply.escalated:
        extras.append("escalated to a person")
    typer.secho(f"[{' · '.join(extras)} · run {reply.run_id} · {reply.provider}]", dim=True)


@app.command()
@one_line_errors
def ask(
    message: Annotated[str, typer.Argument(help="What the customer writes.")],
    user: Annotated[str, typer.Option("--user", help="Slack user id to act as.")] = "UCLI",
) -> None:
    """Answer one message with the support pipelines and print the reply and its run id."""
    from bot.runtime import open_runtime

    settings = load_settings()

    async def run() -> None:
        async with open_runtime(settings) as runtime:
            thread = f"ask-{time.time():.6f}"
            reply = await runtime.support.handle(_cli_message(thread, user, message, 1))
        _print_reply(reply)

    asyncio.run(run())


@app.command()
@one_line_errors
def chat(
    user: Annotated[str, typer.Option("--user", help="Slack user id to act as.")] = "UCLI",
) -> None:
    """An interactive support conversation in the terminal, with thread memory."""
    from bot.runtime import open_runtime
    from storage.catalog import demo_ids, get_or_create_customer

    settings = load_settings()

    async def run() -> None:
        async with open_runtime(settings) as runtime:
            ids = await demo_ids(
                runtime.db.sessions,
                (await get_or_create_customer(runtime.db.sessions, user)).id,
            )
            typer.echo(
                f"supportbot chat ({runtime.llm.name} provider) as {user}. Try: "
                f"'where is {ids.order_numbers[0]}?' or 'invoice {ids.invoice_numbers[0]} "
                f"looks too high'. Ctrl-D to quit."
            )
            thread = f"chat-{time.time():.6f}"
            turn = 0
            while True:
                try:
                    text = await asyncio.to_thread(input, "you> ")
                except EOFError:
                    typer.echo()
                    return
                if not text.strip():
                    continue
                turn += 1
                reply = await runtime.support.handle(_cli_message(thread, user, text, turn))
                _print_reply(reply)

    asyncio.run(run())


@app.command()
@one_line_errors
def trace(
    run_id: Annotated[str, typer.Argument(help="The run id printed with a reply.")],
    full: Annotated[bool, typer.Option("--full", help="Print whole prompts.")] = False,
) -> None:
    """Print one pipeline run step by step: prompts, outputs, latency, tokens, errors."""
    from bot.runtime import open_runtime
    from pipelines.tracing import format_trace
    from storage.traces import TraceStore

    settings = load_settings()

    async def run() -> None:
        async with open_runtime(settings) as runtime:
            found = await TraceStore(runtime.db.sessions).load(run_id)
        if found is None:
            raise fail(f"no run {run_id}", code=1)
        typer.echo(format_trace(found, full_prompts=full))

    asyncio.run(run())


@app.command()
@one_line_errors
def faq(
    files: Annotated[list[Path], typer.Argument(help="Documents to build the FAQ from.")],
    n: Annotated[int, typer.Option("-n", "--questions", min=1, max=MAX_QUESTIONS)] = 10,
    mode: Annotated[str, typer.Option("--mode", help="parallel or sequential")] = "parallel",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of Markdown.")
    ] = False,
) -> None:
    """Build a cited FAQ from files (prompt chaining: questions -> answers -> sources)."""
    from bot.runtime import open_runtime
    from pipelines.documents.extract import load_documents
    from pipelines.faq.chain import faq_markdown
    from pipelines.faq.runs import create_faq

    if mode not in ("parallel", "sequential"):
        raise fail("--mode must be parallel or sequential")
    settings = load_settings()
    docs, problems = load_documents(files)
    for problem in problems:
        typer.secho(f"skipped {problem}", fg=typer.colors.YELLOW, err=True)
    if not docs:
        raise fail("no usable document among the files given", code=1)

    async def progress(stage: str, done: int, total: int) -> None:
        if stage == "answers":
            typer.echo(f"answered {done}/{total}", err=True)

    async def run() -> None:
        async with open_runtime(settings) as runtime:
            run = await create_faq(
                runtime.db,
                runtime.llm,
                settings,
                docs,
                n,
                "parallel" if mode == "parallel" else "sequential",
                progress,
                created_by="cli",
                approved=True,  # the operator's own files
                title=f"FAQ from {', '.join(d.title for d in docs)}"[:200],
            )
        result, run_id = run.result, run.run_id
        for note in result.notes:
            typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
        if as_json:
            payload = {"run_id": run_id, "items": [i.model_dump() for i in result.items]}
            typer.echo(json.dumps(payload, indent=2))
        else:
            typer.echo(faq_markdown("FAQ", result))
            typer.secho(f"[run {run_id}]", dim=True, err=True)

    asyncio.run(run())


@app.command()
@one_line_errors
def forget(
    user: Annotated[str, typer.Option("--user", help="Slack user id whose data to erase.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a user's conversations, traces, jobs and FAQs (see `storage.privacy`)."""
    from bot.runtime import open_runtime
    from storage.privacy import ForgetReport, forget_user

    settings = load_settings()
    if not yes and not typer.confirm(f"Erase the conversations and traces of {user}?"):
        raise typer.Exit(1)

    async def run() -> ForgetReport:
        async with open_runtime(settings) as runtime:
            return await forget_user(runtime.db.sessions, user)

    report = asyncio.run(run())
    typer.echo(report.summary(user))


register_eval(app)
register_faq_review(app)
register_kb(app)
register_maintenance(app)
register_report(app)
register_server(app)
register_tickets(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
