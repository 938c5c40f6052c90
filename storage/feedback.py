"""Votes on the bot's replies (recorded once per reply and person, counted per ticket)
and the satisfaction question asked once per resolved ticket.

A vote is an upsert keyed on (reply message, user): the first click inserts it, a click
on the other button replaces it, the same click again changes nothing and says so, so a
thumbs-down is acted on (the offer of a person, the card's flag) once per change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from storage.db import Sessions
from storage.feedback_models import CsatSurvey, ReplyVote
from storage.models import Ticket, utcnow

Vote = Literal["up", "down"]
VOTES: tuple[Vote, ...] = ("up", "down")


@dataclass(frozen=True)
class VoteCounts:
    up: int = 0
    down: int = 0


@dataclass(frozen=True)
class VoteChange:
    """What a click did: `changed` False for a re-click (or an unknown ticket)."""

    changed: bool
    ticket_id: int | None = None
    previous: str | None = None


async def record_vote(
    sessions: Sessions,
    *,
    ticket_number: str,
    channel_id: str,
    message_ts: str,
    run_id: str,
    user_id: str,
    vote: Vote,
) -> VoteChange:
    """Store `user_id`'s vote on the reply at (`channel_id`, `message_ts`)."""
    for _ in range(2):  # two first clicks at once: the loser of the insert updates
        async with sessions() as session, session.begin():
            ticket_id = await session.scalar(
                select(Ticket.id).where(Ticket.ticket_number == ticket_number)
            )
            if ticket_id is None:
                return VoteChange(False)
            row = await session.scalar(
                select(ReplyVote).where(
                    ReplyVote.channel_id == channel_id,
                    ReplyVote.message_ts == message_ts,
                    ReplyVote.slack_user_id == user_id,
                )
            )
            if row is not None:
                if row.vote == vote:
                    return VoteChange(False, ticket_id, row.vote)
                previous, row.vote, row.updated_at = row.vote, vote, utcnow()
                return VoteChange(True, ticket_id, previous)
            try:
                async with session.begin_nested():
                    session.add(
                        ReplyVote(
                            ticket_id=ticket_id, channel_id=channel_id[:32],
                            message_ts=message_ts[:32], run_id=run_id[:36],
                            slack_user_id=user_id[:32], vote=vote,
                        )
                    )  # fmt: skip
            except IntegrityError:
                continue
            return VoteChange(True, ticket_id, None)
    return VoteChange(False)


async def ticket_votes(sessions: Sessions, ticket_id: int) -> VoteCounts:
    query = (
        select(ReplyVote.vote, func.count())
        .where(ReplyVote.ticket_id == ticket_id)
        .group_by(ReplyVote.vote)
    )
    async with sessions() as session:
        counts = {str(vote): int(n) for vote, n in (await session.execute(query)).all()}
    return VoteCounts(counts.get("up", 0), counts.get("down", 0))


async def run_votes(sessions: Sessions, run_id: str) -> list[tuple[str, str]]:
    """(user, vote) of every vote on the reply a pipeline run wrote."""
    if not run_id:
        return []
    query = select(ReplyVote.slack_user_id, ReplyVote.vote).where(ReplyVote.run_id == run_id)
    async with sessions() as session:
        return [(str(u), str(v)) for u, v in (await session.execute(query)).all()]


@dataclass(frozen=True)
class Survey:
    id: int
    ticket_id: int
    slack_user_id: str
    channel_id: str
    message_ts: str | None
    score: int | None
    comment: str | None


async def reserve_survey(
    sessions: Sessions,
    *,
    ticket_id: int,
    user_id: str,
    channel_id: str,
    quiet_since: dt.datetime | None,
) -> Survey | None:
    """Reserve the ticket's one satisfaction question; None when it was asked before or
    the customer was asked about another ticket since `quiet_since` (the quiet period)."""
    async with sessions() as session, session.begin():
        if quiet_since is not None:
            recent = await session.scalar(
                select(func.count())
                .select_from(CsatSurvey)
                .where(CsatSurvey.slack_user_id == user_id, CsatSurvey.asked_at >= quiet_since)
            )
            if recent:
                return None
        row = CsatSurvey(ticket_id=ticket_id, slack_user_id=user_id[:32], channel_id=channel_id)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            return None
    return _survey(row)


async def get_survey(sessions: Sessions, ticket_id: int) -> Survey | None:
    async with sessions() as session:
        row = await session.scalar(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))
        return _survey(row) if row is not None else None


async def survey_posted(sessions: Sessions, survey_id: int, message_ts: str) -> None:
    async with sessions() as session, session.begin():
        row = await session.get(CsatSurvey, survey_id)
        if row is not None:
            row.message_ts = message_ts[:32]


async def answer_survey(
    sessions: Sessions,
    ticket_id: int,
    user_id: str,
    *,
    score: int | None = None,
    comment: str | None = None,
) -> Survey | None:
    """Store the customer's score (1-5) and/or comment; None when there is no question
    for this ticket or `user_id` is not the customer it was asked of."""
    async with sessions() as session, session.begin():
        row = await session.scalar(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))
        if row is None or row.slack_user_id != user_id:
            return None
        if score is not None:
            row.score = max(1, min(5, score))
        if comment is not None:
            row.comment = comment[:3000]
        row.answered_at = utcnow()
        return _survey(row)


def _survey(row: CsatSurvey) -> Survey:
    return Survey(
        row.id, row.ticket_id, row.slack_user_id, row.channel_id, row.message_ts, row.score,
        row.comment,
    )  # fmt: skip


__all__ = [
    "VOTES",
    "Survey",
    "Vote",
    "VoteChange",
    "VoteCounts",
    "answer_survey",
    "get_survey",
    "record_vote",
    "reserve_survey",
    "run_votes",
    "survey_posted",
    "ticket_votes",
]
