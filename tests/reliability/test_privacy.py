"""Privacy: `supportbot forget` erases one user's conversations, traces, jobs, FAQs and the
free text of their returns and cases, and nothing the bot logs by default contains a
message's text."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from pipelines.config import LLMSettings
from pipelines.faq.chain import SourceDocument
from pipelines.faq.runs import create_faq
from pipelines.llm.offline import OfflineLLM
from pipelines.support.contracts import IncomingMessage
from pipelines.support.service import SupportService
from storage.backends import Actor, BusinessSystems
from storage.catalog import demo_ids, get_or_create_customer
from storage.db import Database
from storage.models import (
    BillingCase,
    ConversationTurn,
    Faq,
    FaqDocument,
    FaqEntry,
    Job,
    ReturnAuthorization,
    Ticket,
    TraceRun,
    TraceStep,
)
from storage.privacy import forget_user
from storage.queue import JobQueue

SECRET_TEXT = "my card number is 4111 1111 1111 1111 and invoice INV-10011 is wrong"


@pytest.fixture
def db(database: Database) -> Database:
    """SQLite, and PostgreSQL when TEST_POSTGRES_URL is set."""
    return database


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


SECRET_DOC = (
    "Internal memo from Alice: the staff discount code is ALICE-4242. "
    "Refunds reach the original payment method within five business days. "
    "Unused items can be sent back within 30 days of delivery."
)


async def build_faq(db: Database, user: str, key: str) -> int:
    """What the `faq_build` job does for `user`: a queued job, then the stored FAQ."""
    request = {"team_id": "T1", "user_id": user, "channel_id": "C1", "files": [], "view_id": key}
    await JobQueue(db).enqueue("faq_build", f"faq:T1:{key}", {"request": request})
    run = await create_faq(
        db, OfflineLLM(), LLMSettings(), [SourceDocument(f"{user}.md", SECRET_DOC)], 3,
        created_by=user, channel_id="C1", request_key=f"faq:T1:{key}",
    )  # fmt: skip
    assert run.faq_id is not None
    return run.faq_id


async def test_forget_erases_the_users_faqs_their_documents_and_faq_jobs(db: Database) -> None:
    await build_faq(db, "UALICE", "V1")
    bobs = await build_faq(db, "UBOB", "V2")
    report = await forget_user(db.sessions, "UALICE")
    assert (report.faqs, report.jobs, report.traces) == (1, 1, 1)
    async with db.sessions() as session:
        assert (await session.scalars(select(Faq.id))).all() == [bobs]
        assert set((await session.scalars(select(FaqDocument.faq_id))).all()) == {bobs}
        assert set((await session.scalars(select(FaqEntry.faq_id))).all()) == {bobs}
        [job] = (await session.scalars(select(Job))).all()
    assert job.payload["request"]["user_id"] == "UBOB"


async def test_forget_blanks_the_text_of_returns_and_cases_and_keeps_their_numbers(
    db: Database,
) -> None:
    systems = BusinessSystems(db.sessions)
    for user in ("UALICE", "UBOB"):
        customer = await get_or_create_customer(db.sessions, user, "T1")
        ids = await demo_ids(db.sessions, customer.id)
        actor = Actor(customer_id=customer.id, slack_user_id=user)
        returned = await systems.returns.authorize_return(
            actor, ids.products[0], f"{user}: it broke when my son dropped it", f"{user}-r"
        )
        case = await systems.billing.open_case(
            actor, ids.invoice_numbers[0], f"{user}: charged twice on my card", f"{user}-c"
        )
        assert returned.rma_number and case.case_number
    report = await forget_user(db.sessions, "UALICE")
    assert report.records_blanked == 2
    async with db.sessions() as session:
        returns = (await session.execute(select(ReturnAuthorization))).scalars().all()
        cases = (await session.execute(select(BillingCase))).scalars().all()
    assert sorted(r.reason for r in returns) == ["", "UBOB: it broke when my son dropped it"]
    assert sorted(c.concern for c in cases) == ["", "UBOB: charged twice on my card"]
    assert all(r.rma_number for r in returns) and all(c.case_number for c in cases)


async def test_a_queued_message_of_the_user_is_not_answered_after_the_forget(
    db: Database,
) -> None:
    msg = message("UALICE", 7)
    queue = JobQueue(db)
    await queue.enqueue("slack_message", msg.request_id, {"message": msg.model_dump()})
    await forget_user(db.sessions, "UALICE")
    assert await queue.claim("w1", 30) == []  # nothing left to write a turn after the forget
    assert (await counts(db))["conversation_turns"] == 0


async def test_forget_counts_a_running_job_as_in_flight(db: Database) -> None:
    msg = message("UALICE", 8)
    queue = JobQueue(db)
    await queue.enqueue("slack_message", msg.request_id, {"message": msg.model_dump()})
    [running] = await queue.claim("w1", 30)
    report = await forget_user(db.sessions, "UALICE")
    assert (report.jobs, report.in_flight) == (1, 1)
    assert "run forget again" in report.summary("UALICE")
    assert await queue.complete(running) is False  # its worker finds the row gone


async def test_forget_command(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await converse(db, "UCAROL", 1)
    monkeypatch.setenv("DATABASE_URL", db.url)
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["forget", "--user", "UCAROL", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "erased 1 ticket(s), 2 turn(s), 1 trace(s), 1 job(s) and 0 FAQ(s) of UCAROL" in (
        result.output
    )
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
