"""`supportbot faq-review`: approve or discard FAQs from a terminal, as agents do in App Home.

    supportbot faq-review               # the FAQs waiting for review
    supportbot faq-review 12 --approve  # FAQ 12 answers every customer from now on
    supportbot faq-review 12 --discard  # FAQ 12 never does

For an operator, and for a workspace with no agents configured yet (nobody could press
Approve there). Registered on the main Typer app with `register(app)`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from bot.cli.errors import fail, load_settings, one_line_errors

OPERATOR = "cli"  # recorded as the reviewer


def register(app: typer.Typer) -> None:
    """Add the `faq-review` command to `app`."""
    app.command("faq-review")(one_line_errors(faq_review_command))


def faq_review_command(
    faq_id: Annotated[int | None, typer.Argument(help="The FAQ to decide on.")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Make it knowledge.")] = False,
    discard: Annotated[bool, typer.Option("--discard", help="Never use it.")] = False,
) -> None:
    """List the FAQs waiting for review, or approve / discard one."""
    from storage.db import Database
    from storage.faqs import APPROVED, DISCARDED, Decision, pending_faqs, review_faq
    from storage.migrate import upgrade

    if faq_id is not None and approve == discard:
        raise fail("give exactly one of --approve and --discard")
    settings = load_settings()
    upgrade(settings.database_url)

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            if faq_id is None:
                for faq in await pending_faqs(db.sessions, limit=100):
                    when = faq.created_at.strftime("%Y-%m-%d %H:%M")
                    typer.echo(f"{faq.id}\t{when}\t{faq.created_by}\t{faq.title}")
                return
            decision: Decision = APPROVED if approve else DISCARDED
            if not await review_faq(db.sessions, faq_id, decision, OPERATOR):
                raise fail(f"FAQ {faq_id} is not waiting for review", code=1)
            typer.echo(f"FAQ {faq_id} {decision}")
        finally:
            await db.dispose()

    asyncio.run(run())
