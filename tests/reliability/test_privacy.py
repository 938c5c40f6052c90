"""Privacy: `supportbot forget` erases one user's conversations and traces, and nothing
the bot logs by default contains a message's text."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from pipelines.config import LLMSettings
from pipelines.llm.offline import OfflineLLM
from pipelines.support.contracts import IncomingMessage
from pipelines.support.service import SupportService
from storage.db import Database
from storage.models import ConversationTurn, Job, Ticket, TraceRun, TraceStep
from storage.privacy import forget_user
from storage.queue import JobQueue

SECRET_TEXT = "my card number is 4111 1111 1111 1111 and invoice INV-10011 is wrong"


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def message(user: str, n: int, text: str = SECRET_TEXT) -> IncomingMessage:
    return IncomingMessage(
        request_id=f"slack:T1:D{user}:{n}.0", team_id="T1", channel_id=f"D{user}",
        thread_ts=f"{n}.0", message_ts=f"{n}.0", user_id=user, text=text,
    )  # fmt: skip


async def counts(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Ticket, ConversationTurn, TraceRun, TraceStep, Job)
        }


async def converse(db: Database, user: str, n: int) -> None:
    msg = message(user, n)
    await JobQueue(db).enqueue("slack_message", msg.request_id, {"message": msg.model_dump()})
    await SupportService(db, OfflineLLM(), LLMSettings()).handle(msg)


async def test_forget_erases_one_users_conversations_traces_and_jobs(db: Database) -> None:
    await converse(db, "UALICE", 1)
    await converse(db, "UALICE", 2)
    await converse(db, "UBOB", 3)
    before = await counts(db)
    report = await forget_user(db.sessions, "UALICE")
    after = await counts(db)
    assert (report.tickets, report.traces, report.jobs) == (2, 2, 2)
    assert report.turns == 4  # customer + bot turn per message
    assert after == {
        "tickets": 1,
        "conversation_turns": 2,
        "trace_runs": 1,
        "trace_steps": before["trace_steps"] // 3,
        "jobs": 1,
    }
    async with db.sessions() as session:
        left = (await session.scalars(select(Ticket.slack_user_id))).all()
    assert left == ["UBOB"]


async def test_forget_command(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await converse(db, "UCAROL", 1)
    monkeypatch.setenv("DATABASE_URL", db.url)
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["forget", "--user", "UCAROL", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "erased 1 ticket(s), 2 turn(s), 1 trace(s) and 1 job(s) of UCAROL" in result.output
    assert (await counts(db))["tickets"] == 0


async def test_message_text_is_not_logged_by_default(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # The default configuration logs INFO; our own modules are checked even at DEBUG.
    # (Third-party DEBUG logs, e.g. aiosqlite's SQL parameters, are off by default.)
    caplog.set_level(logging.INFO)
    for name in ("bot", "pipelines", "storage"):
        caplog.set_level(logging.DEBUG, logger=name)
    await converse(db, "UDAVE", 1)
    assert "4111" not in caplog.text
    assert SECRET_TEXT not in caplog.text
