"""Erasing what the bot keeps about a person (`supportbot forget`).

Deleted, in one transaction:
- their tickets with every turn, and any turn they wrote in someone else's ticket;
- their pipeline traces (prompts and outputs quote their messages);
- every job whose payload names them, whatever its status: `slack_message` jobs carry
  their message text, and a queued one would otherwise write a new turn after the
  forget; `faq_build` jobs (the user sits in `payload.request`) carry their file list;
- the FAQs they built with /faq, with the documents' extracted text and the entries,
  which also takes that FAQ out of the knowledge base.

Blanked, not deleted: the free text of their returns and billing cases (`reason`,
`concern`). The records themselves stay, with their RMA and case numbers, amounts and
statuses, as a shop keeps its books; the text is what the customer wrote.

Kept: the customer record and its simulated orders and invoices (business records, not
conversation), and whatever is already in Slack (the bot's replies, triage cards and FAQ
posts are messages in the workspace; delete them there). A job that was running when
the forget ran is deleted too, but its worker may still finish and write one more turn:
`ForgetReport.in_flight` counts them, and forgetting again once they are done removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    BillingCase,
    ConversationTurn,
    Customer,
    Faq,
    FaqDocument,
    FaqEntry,
    Job,
    ReturnAuthorization,
    Ticket,
    TraceRun,
    TraceStep,
)
from storage.queue import RUNNING

JOB_BATCH = 500


@dataclass(frozen=True)
class ForgetReport:
    tickets: int
    turns: int
    traces: int
    jobs: int
    faqs: int = 0
    records_blanked: int = 0  # returns and billing cases whose free text was erased
    in_flight: int = 0  # jobs that were running: their worker may still write a turn

    def summary(self, user: str) -> str:
        """One line for the person who ran `supportbot forget`."""
        line = (
            f"erased {self.tickets} ticket(s), {self.turns} turn(s), {self.traces} trace(s), "
            f"{self.jobs} job(s) and {self.faqs} FAQ(s) of {user}; blanked the text of "
            f"{self.records_blanked} return(s)/case(s)"
        )
        if self.in_flight:
            line += (
                f"; {self.in_flight} job(s) were running and may still record a turn: "
                "run forget again in a minute"
            )
        return line


def _job_user(payload: dict[str, object]) -> object:
    """The Slack user a job is for: `message.user_id` (slack_message), `request.user_id`
    (faq_build) or a top-level `user_id`."""
    for key in ("message", "request"):
        nested = payload.get(key)
        if isinstance(nested, dict) and "user_id" in nested:
            return nested.get("user_id")
    return payload.get("user_id")


async def _jobs_of(session: AsyncSession, slack_user_id: str) -> list[tuple[int, str]]:
    """(id, status) of the jobs whose payload names the user (JSON queries differ per
    database: filter here, in batches)."""
    found: list[tuple[int, str]] = []
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(Job.id, Job.status, Job.payload)
                .where(Job.id > last_id)
                .order_by(Job.id)
                .limit(JOB_BATCH)
            )
        ).all()
        if not rows:
            return found
        found += [
            (row.id, row.status) for row in rows if _job_user(row.payload or {}) == slack_user_id
        ]
        last_id = rows[-1].id


async def _ids(session: AsyncSession, query: Select[int]) -> list[int]:
    return list((await session.scalars(query)).all())


async def _forget_conversations(session: AsyncSession, slack_user_id: str) -> tuple[int, int]:
    """Delete the user's tickets and turns; (tickets, turns)."""
    ticket_ids = await _ids(session, select(Ticket.id).where(Ticket.slack_user_id == slack_user_id))
    theirs = ConversationTurn.ticket_id.in_(ticket_ids) | (
        ConversationTurn.slack_user_id == slack_user_id
    )
    turns = await session.scalar(select(func.count()).select_from(ConversationTurn).where(theirs))
    await session.execute(delete(ConversationTurn).where(theirs))
    await session.execute(delete(Ticket).where(Ticket.id.in_(ticket_ids)))
    return len(ticket_ids), int(turns or 0)


async def _forget_traces(session: AsyncSession, slack_user_id: str) -> int:
    run_ids = list(
        (
            await session.scalars(
                select(TraceRun.id).where(TraceRun.slack_user_id == slack_user_id)
            )
        ).all()
    )
    await session.execute(delete(TraceStep).where(TraceStep.run_id.in_(run_ids)))
    await session.execute(delete(TraceRun).where(TraceRun.id.in_(run_ids)))
    return len(run_ids)


async def _forget_faqs(session: AsyncSession, slack_user_id: str) -> int:
    """Delete the FAQs the user built, with their documents and entries (explicitly: the
    cascade needs SQLite's foreign keys switched on, which a raw connection may not do)."""
    faq_ids = await _ids(session, select(Faq.id).where(Faq.created_by == slack_user_id))
    await session.execute(delete(FaqEntry).where(FaqEntry.faq_id.in_(faq_ids)))
    await session.execute(delete(FaqDocument).where(FaqDocument.faq_id.in_(faq_ids)))
    await session.execute(delete(Faq).where(Faq.id.in_(faq_ids)))
    return len(faq_ids)


async def _blank_free_text(session: AsyncSession, slack_user_id: str) -> int:
    """Blank what the user wrote in their returns and billing cases; keep the records."""
    customer_ids = await _ids(
        session, select(Customer.id).where(Customer.slack_user_id == slack_user_id)
    )
    blanked = 0
    for model, column in ((ReturnAuthorization, "reason"), (BillingCase, "concern")):
        result = await session.execute(
            update(model).where(model.customer_id.in_(customer_ids)).values({column: ""})
        )
        blanked += int(getattr(result, "rowcount", 0) or 0)
    return blanked


async def _forget_jobs(session: AsyncSession, slack_user_id: str) -> tuple[int, int]:
    """Delete the user's jobs; (deleted, of which were running)."""
    jobs: Sequence[tuple[int, str]] = await _jobs_of(session, slack_user_id)
    await session.execute(delete(Job).where(Job.id.in_([job_id for job_id, _ in jobs])))
    return len(jobs), sum(1 for _, status in jobs if status == RUNNING)


async def forget_user(
    sessions: async_sessionmaker[AsyncSession], slack_user_id: str
) -> ForgetReport:
    """Erase one Slack user's data (see the module docstring) in one transaction."""
    async with sessions() as session, session.begin():
        tickets, turns = await _forget_conversations(session, slack_user_id)
        traces = await _forget_traces(session, slack_user_id)
        faqs = await _forget_faqs(session, slack_user_id)
        blanked = await _blank_free_text(session, slack_user_id)
        jobs, in_flight = await _forget_jobs(session, slack_user_id)
    return ForgetReport(
        tickets=tickets,
        turns=turns,
        traces=traces,
        jobs=jobs,
        faqs=faqs,
        records_blanked=blanked,
        in_flight=in_flight,
    )
