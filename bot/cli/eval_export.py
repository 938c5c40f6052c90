"""`supportbot eval export --feedback down`: real failures as evaluation items to label.

    supportbot eval export --feedback down > eval/from_feedback.jsonl

Each thumbs-down reply and each low satisfaction answer (Bad, 1-2 of 5) becomes one line
in the `eval/` JSONL format: the customer's message as `text`, what the bot did in
`note`, and no expectation. `supportbot eval` refuses such a line ("needs at least one
of intent, tasks, sources") until a person fills in what the right answer was: the
labels come from people, never from the bot's own output.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from bot.cli.errors import fail, load_settings
from bot.errors import SettingsError

NOTE_CHARS = 600


def export_command(
    feedback: Annotated[
        str,
        typer.Option("--feedback", help="Which verdicts to export: down (thumbs down, low CSAT)."),
    ] = "down",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 1000,
) -> None:
    """Write the turns customers were unhappy with as unlabelled eval items (JSONL)."""
    from storage.db import Database
    from storage.feedback_export import bad_turns
    from storage.migrate import upgrade

    if feedback != "down":
        raise fail("--feedback takes `down` (thumbs down and low CSAT)")
    try:
        settings = load_settings()
        upgrade(settings.database_url)
    except SettingsError as exc:
        raise fail(str(exc)) from None

    async def load() -> list[Any]:
        db = Database(settings.database_url)
        try:
            return await bad_turns(db.sessions, limit)
        finally:
            await db.dispose()

    turns = asyncio.run(load())
    for number, turn in enumerate(turns, 1):
        typer.echo(json.dumps(eval_line(number, turn), ensure_ascii=False))
    typer.echo(f"exported {len(turns)} items; label each (intent, tasks or sources)", err=True)


def eval_line(number: int, turn: Any) -> dict[str, Any]:
    """One unlabelled item: the customer's words, and what happened in `note`."""
    did = " ".join(turn.bot_text.split())[:NOTE_CHARS]
    intents = ", ".join(turn.intents) or "none"
    return {
        "id": f"feedback-{number:04d}",
        "text": turn.customer_text[:4000],
        "note": (
            f"{turn.verdict} on {turn.ticket_number} (run {turn.run_id or '-'}); the bot "
            f"read it as {intents} and answered: {did}"
        ),
    }
