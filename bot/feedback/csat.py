"""CSAT on resolve: one satisfaction question in the customer's thread, stored.

When an agent resolves a ticket, a `csat_question` job (keyed by the ticket) asks the
customer "How did we do?" with Great / Okay / Bad. The question is reserved in the
database before it is posted (`storage.feedback.reserve_survey`: one per ticket, ever),
so resolving twice, a reopen and resolve, or a retried job ask once; a ticket that was
reopened before the job ran is not asked. `CSAT_SAMPLE` asks a share of the tickets
(decided from the ticket number, so every process agrees) and `CSAT_QUIET_DAYS` skips a
customer who was asked about another ticket recently. Only the customer who was asked may
answer; a click opens an optional comment modal, and another click replaces the score.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import Block, actions, button, context, escape, input_block, modal, section
from bot.interactions import Click, submitted_text, tell
from bot.slack_calls import SlackCalls, call, job_tag
from storage.feedback import answer_survey, get_survey, reserve_survey, survey_posted
from storage.models import utcnow
from storage.queue import LeasedJob
from storage.ticket_info import RESOLVED, TicketInfo
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

CSAT_JOB = "csat_question"
CSAT_EVENT_TYPE = "supportbot_csat"
CSAT_ACTION = "csat_answer"
COMMENT_MODAL = "csat_comment"
COMMENT_BLOCK, COMMENT_ACTION = "csat_comment", "text"
SCORES = {"Great": 5, "Okay": 3, "Bad": 1}
SCORE_WORDS = {5: "great", 3: "okay", 1: "bad"}
QUESTION_TEXT = "{number} is resolved. How did we do?"
THANKS_TEXT = "Thanks for telling us ({word}). It helps the support team."
NOT_YOURS_TEXT = "Only the person this conversation is with can answer that question."


def sampled(ticket_number: str, share: float) -> bool:
    """Whether `ticket_number` is in the asked share: the same answer in every process."""
    return zlib.crc32(ticket_number.encode()) / 2**32 < share


def score_buttons(number: str) -> Block:
    """The five answers; they stay under the thanks, so an answer can be changed."""
    return actions(
        *(button(label, CSAT_ACTION, f"{number}|{score}") for label, score in SCORES.items()),
        block_id="csat_question",
    )


def question_blocks(number: str) -> list[Block]:
    return [section(escape(QUESTION_TEXT.format(number=number))), score_buttons(number)]


def thanks_blocks(number: str, score: int) -> list[Block]:
    word = SCORE_WORDS.get(score, str(score))
    return [
        section(escape(THANKS_TEXT.format(word=word))),
        context(escape(f"{number} · you can still change your answer: ")),
        score_buttons(number),
    ]


def comment_modal(number: str) -> dict[str, Any]:
    element = {"type": "plain_text_input", "action_id": COMMENT_ACTION, "multiline": True,
               "max_length": 3000}  # fmt: skip
    return modal(
        "Anything to add?",
        [input_block(COMMENT_BLOCK, "Your comment (optional)", element, optional=True)],
        submit="Send",
        close="Skip",
        callback_id=COMMENT_MODAL,
        private_metadata=number,
    )


class CsatQuestionJob:
    """`JobHandler` of `csat_question`: ask one resolved ticket's customer, once."""

    def __init__(self, slack: SlackRuntime) -> None:
        self._slack = slack
        self._calls = SlackCalls(slack.client)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        settings = self._slack.settings
        sessions = self._slack.core.db.sessions
        ticket = await TicketStore(sessions).get(int(job.payload["ticket_id"]))
        if ticket is None or ticket.status != RESOLVED:
            return {"skipped": "not resolved"}
        tag = job_tag(CSAT_EVENT_TYPE, job.id)
        if job.is_retry:  # posted, then crashed before it was recorded?
            found = await self._calls.find_posted(
                ticket.channel_id, tag, thread_ts=ticket.thread_ts
            )
            if found is not None:
                return {"ts": found, "already_posted": True}
        if not sampled(ticket.number, settings.csat_sample):
            return {"skipped": "not sampled"}
        quiet = settings.csat_quiet_days
        survey = await reserve_survey(
            sessions,
            ticket_id=ticket.id,
            user_id=ticket.slack_user_id,
            channel_id=ticket.channel_id,
            quiet_since=utcnow() - dt.timedelta(days=quiet) if quiet else None,
        )
        if survey is None:  # reserved: by an earlier attempt of this job, which may not have posted
            earlier = await get_survey(sessions, ticket.id) if job.is_retry else None
            if earlier is None or earlier.message_ts is not None:
                return {"skipped": "asked already, or within the quiet period"}
            survey = earlier
        text = QUESTION_TEXT.format(number=ticket.number)
        response = await self._calls.post(
            ticket.channel_id,
            text,
            thread_ts=ticket.thread_ts,
            blocks=question_blocks(ticket.number),
            metadata=tag.metadata(),
        )
        ts = str(response.get("ts"))
        await survey_posted(sessions, survey.id, ts)
        return {"ts": ts, "ticket": ticket.number}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("satisfaction question not asked: %s", error)


async def ask_on_resolve(slack: SlackRuntime, ticket: TicketInfo) -> bool:
    """Queue the ticket's question (the job key makes it once per ticket)."""
    created: bool = await slack.submit(
        CSAT_JOB, f"{CSAT_JOB}:{ticket.id}", {"ticket_id": ticket.id}
    )
    return created


def register_csat(app: AsyncApp, slack: SlackRuntime) -> None:
    async def on_answer(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await answer_clicked(slack, body, action)

    async def on_comment(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        text = submitted_text(view, COMMENT_BLOCK, COMMENT_ACTION)
        user = str((body.get("user") or {}).get("id") or "")
        number = str(view.get("private_metadata") or "")
        ticket = await TicketStore(slack.core.db.sessions).by_number(number)
        if ticket is not None and text.strip():
            stored = await answer_survey(
                slack.core.db.sessions, ticket.id, user, comment=text.strip()
            )
            logger.info("satisfaction comment", extra={"ticket": number, "stored": bool(stored)})

    app.action(CSAT_ACTION)(on_answer)
    app.view(COMMENT_MODAL)(on_comment)


async def answer_clicked(
    slack: SlackRuntime, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    click = Click.of(body, action)
    number, _, score_text = click.value.partition("|")
    if not click.user or not score_text.isdigit():
        return
    sessions = slack.core.db.sessions
    ticket = await TicketStore(sessions).by_number(number)
    survey = None
    if ticket is not None:
        survey = await answer_survey(sessions, ticket.id, click.user, score=int(score_text))
    if survey is None or survey.score is None:
        await tell(slack.client, click.user, NOT_YOURS_TEXT, channel=click.channel, within_s=1.5)
        return
    logger.info("satisfaction answer", extra={"ticket": number, "score": survey.score})
    trigger = str(body.get("trigger_id") or "")
    if trigger:
        await call(
            "views.open",
            slack.client.views_open(trigger_id=trigger, view=comment_modal(number)),
            best_effort=True,
        )
    message_ts = str((body.get("container") or {}).get("message_ts") or "")
    if click.channel and message_ts:
        await SlackCalls(slack.client).update(
            click.channel,
            message_ts,
            THANKS_TEXT.format(word=SCORE_WORDS.get(survey.score, "")),
            blocks=thanks_blocks(number, survey.score),
            best_effort=True,
        )


__all__ = ["CSAT_ACTION", "CSAT_JOB", "CsatQuestionJob", "ask_on_resolve", "register_csat"]
