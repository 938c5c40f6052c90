"""Feedback on every answer over HTTP: signed feedback-button clicks on a real reply, the
vote stored once per person and reply (changed, re-clicked), a thumbs-down offering a
person and flagging the triage card, and the votes in the agents' trace modal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.feedback.feature import SORRY_TEXT, FeedbackFeature
from bot.home.feature import HomeFeature
from bot.messages.views import FEEDBACK_ACTION, TALK_TO_HUMAN_ACTION
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from storage.feedback_models import ReplyVote
from tests.e2e.conftest import BotServer, run_bot_server
from tests.e2e.test_triage_slack import (
    block_action,
    cards,
    click,
    ephemerals,
    idle,
    text_of,
    triage_settings,  # noqa: F401 (a fixture)
)
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import dm_event


@pytest.fixture
async def bot(triage_settings: Settings) -> AsyncIterator[BotServer]:  # noqa: F811
    features = [HomeFeature(), TriageFeature(), FeedbackFeature()]
    async with run_bot_server(triage_settings, features=features) as server:
        yield server


def feedback_values(reply: Posted) -> dict[str, str]:
    [element] = [
        element
        for block in reply.blocks or []
        if block["type"] == "context_actions"
        for element in block["elements"]
    ]
    assert element["action_id"] == FEEDBACK_ACTION
    return {
        "up": element["positive_button"]["value"],
        "down": element["negative_button"]["value"],
    }


def vote_click(reply: Posted, value: str, user: str = "U0CUST") -> dict[str, Any]:
    payload = block_action(FEEDBACK_ACTION, value, user=user, channel=reply.channel, message=reply)
    payload["actions"][0]["type"] = "feedback_buttons"
    return payload


async def votes(bot: BotServer) -> list[tuple[str, str, str]]:
    async with bot.slack.core.db.sessions() as session:
        rows = await session.scalars(select(ReplyVote))
        return [(row.slack_user_id, row.vote, row.run_id) for row in rows]


async def test_a_vote_a_changed_vote_and_a_reclick_store_one_vote_and_down_flags_the_card(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    event = dm_event("Where is my order ORD-10011?")
    await bot.post_event(event)
    await fake_slack.wait_for(lambda: bool(fake_slack.posts("D0CUST", event["ts"])), within=10)
    await idle(bot)
    [reply] = fake_slack.posts("D0CUST", event["ts"])
    values = feedback_values(reply)
    run_id = values["up"].split("|")[2]
    assert run_id  # the vote is tied to the run that wrote the reply

    await click(bot, vote_click(reply, values["up"]))
    await click(bot, vote_click(reply, values["up"]))  # a re-click
    await idle(bot)
    assert await votes(bot) == [("U0CUST", "up", run_id)]
    assert not ephemerals(fake_slack, "U0CUST")
    assert "Feedback: :+1: 1 · :-1: 0" in text_of(cards(fake_slack)[0].blocks)

    await click(bot, vote_click(reply, values["down"]))  # changed: replaces the vote
    await click(bot, vote_click(reply, values["down"]))
    await idle(bot)
    assert await votes(bot) == [("U0CUST", "down", run_id)]
    assert ephemerals(fake_slack, "U0CUST") == [SORRY_TEXT]  # offered once, not per click
    offer = fake_slack.calls_to("chat.postEphemeral")[-1].params
    assert offer["thread_ts"] == event["ts"]
    assert TALK_TO_HUMAN_ACTION in str(offer["blocks"])
    card = text_of(cards(fake_slack)[0].blocks)
    assert "found an answer unhelpful" in card and "Feedback: :+1: 0 · :-1: 1" in card

    triage = next(f for f in bot.slack.features if isinstance(f, TriageFeature))
    view = await triage.trace_view(values["up"].split("|")[1])
    assert view is not None and ":-1: <@U0CUST>" in str(view["blocks"])


async def test_a_forged_feedback_value_stores_nothing(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    event = dm_event("Where is my order ORD-10011?")
    await bot.post_event(event)
    await fake_slack.wait_for(lambda: bool(fake_slack.posts("D0CUST", event["ts"])), within=10)
    [reply] = fake_slack.posts("D0CUST", event["ts"])
    await click(bot, vote_click(reply, "up|T-99999|run"))  # no such ticket
    await click(bot, vote_click(reply, "meh|T-00001|run"))  # no such vote
    await idle(bot)
    assert await votes(bot) == []
