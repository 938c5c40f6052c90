"""Feedback on every answer and CSAT on resolve, over HTTP: signed feedback-button clicks on a real reply, the
vote stored once per person and reply (changed, re-clicked), a thumbs-down offering a
person and flagging the triage card, and the votes in the agents' trace modal."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.feedback.csat import CSAT_ACTION, CSAT_EVENT_TYPE, NOT_YOURS_TEXT
from bot.feedback.feature import SORRY_TEXT, FeedbackFeature
from bot.home.feature import HomeFeature
from bot.messages.views import FEEDBACK_ACTION, TALK_TO_HUMAN_ACTION
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from bot.triage.views import REOPEN_ACTION, RESOLVE_ACTION
from pipelines.eval.data import DatasetError, parse_line
from storage.feedback_models import CsatSurvey, ReplyVote
from storage.support_report import support_report
from tests.e2e.conftest import AGENT_ID, SUPPORTBOT, BotServer, run_bot_server
from tests.e2e.test_triage_slack import (
    STRANGER,
    TRIAGE,
    block_action,
    cards,
    click,
    ephemerals,
    home_opened,
    idle,
    text_of,
    triage_settings,  # noqa: F401 (a fixture)
)
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import TEAM_ID, dm_event


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


async def test_thumbs_down_turns_export_as_unlabelled_eval_items(
    bot: BotServer,
    fake_slack: FakeSlack,
    triage_settings: Settings,  # noqa: F811
    tmp_path: Any,
) -> None:
    event = dm_event("Where is my order ORD-10011?")
    await bot.post_event(event)
    await fake_slack.wait_for(lambda: bool(fake_slack.posts("D0CUST", event["ts"])), within=10)
    [reply] = fake_slack.posts("D0CUST", event["ts"])
    await click(bot, vote_click(reply, feedback_values(reply)["down"]))
    await idle(bot)

    env = {**os.environ, "DATABASE_URL": triage_settings.database_url}
    done = await asyncio.to_thread(
        subprocess.run, [SUPPORTBOT, "eval", "export", "--feedback", "down"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    [line] = done.stdout.splitlines()
    item = json.loads(line)
    assert item["text"] == "Where is my order ORD-10011?"
    assert item["note"].startswith("thumbs down on T-00001") and "order_status" in item["note"]
    with pytest.raises(DatasetError, match="needs at least one of intent"):
        parse_line(tmp_path / "from_feedback.jsonl", 1, line)  # a person labels it first
    labelled = parse_line(tmp_path / "f.jsonl", 1, json.dumps({**item, "intent": "order_status"}))
    assert labelled.item.intent == "order_status"


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


# --- CSAT on resolve ----------------------------------------------------------------------


def csat_questions(fake: FakeSlack, channel: str, thread_ts: str) -> list[Posted]:
    return [
        m
        for m in fake.posts(channel, thread_ts)
        if (m.metadata or {}).get("event_type") == CSAT_EVENT_TYPE
    ]


def csat_value(question: Posted, label: str) -> str:
    return next(
        element["value"]
        for block in question.blocks or []
        if block["type"] == "actions"
        for element in block["elements"]
        if element["text"]["text"] == label
    )


async def survey_row(bot: BotServer) -> CsatSurvey | None:
    async with bot.slack.core.db.sessions() as session:
        return await session.scalar(select(CsatSurvey))


async def test_resolving_asks_one_csat_question_that_only_the_customer_answers(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    event = dm_event("Where is my order ORD-10011?")
    await bot.post_event(event)
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1, within=10)
    await idle(bot)
    [card] = cards(fake_slack)
    await click(bot, block_action(RESOLVE_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE))
    await idle(bot)
    [question] = csat_questions(fake_slack, "D0CUST", event["ts"])
    assert "T-00001 is resolved. How did we do?" in question.text

    great = csat_value(question, "Great")
    await click(bot, block_action(CSAT_ACTION, great, user=STRANGER, channel="D0CUST",
                                  message=question))  # fmt: skip
    assert ephemerals(fake_slack, STRANGER)[-1] == NOT_YOURS_TEXT
    survey = await survey_row(bot)
    assert survey is not None and survey.score is None

    opened = len(fake_slack.calls_to("views.open"))
    await click(bot, block_action(CSAT_ACTION, great, user="U0CUST", channel="D0CUST",
                                  message=question))  # fmt: skip
    survey = await survey_row(bot)
    assert survey is not None and survey.score == 5
    assert len(fake_slack.calls_to("views.open")) == opened + 1  # the optional comment
    modal_view = fake_slack.calls_to("views.open")[-1].params["view"]
    modal_view = json.loads(modal_view) if isinstance(modal_view, str) else modal_view
    comment = {
        "type": "view_submission",
        "team": {"id": TEAM_ID},
        "user": {"id": "U0CUST", "team_id": TEAM_ID},
        "api_app_id": "A0TEST",
        "view": {**modal_view, "id": "V0CSAT", "state": {"values": {
            "csat_comment": {"text": {"type": "plain_text_input", "value": "Quick, thanks!"}}
        }}},
    }  # fmt: skip
    await click(bot, comment)
    survey = await survey_row(bot)
    assert survey is not None and survey.comment == "Quick, thanks!" and survey.score == 5
    assert (
        "Thanks for telling us (great)" in csat_questions(fake_slack, "D0CUST", event["ts"])[0].text
    )

    # Reopened and resolved again: the ticket was asked once, it is not asked again.
    await click(bot, block_action(REOPEN_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE))
    await click(bot, block_action(RESOLVE_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE))
    await idle(bot)
    assert len(csat_questions(fake_slack, "D0CUST", event["ts"])) == 1
    assert card is not None


async def test_csat_sample_zero_asks_nobody(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    settings = triage_settings.model_copy(update={"csat_sample": 0.0})
    features = [HomeFeature(), TriageFeature(), FeedbackFeature()]
    async with run_bot_server(settings, features=features) as server:
        event = dm_event("Where is my order ORD-10011?")
        await server.post_event(event)
        await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 1, within=10)
        await idle(server)
        await click(server, block_action(RESOLVE_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE))
        await idle(server)
        assert csat_questions(fake_slack, "D0CUST", event["ts"]) == []
        assert await survey_row(server) is None


# --- the numbers ---------------------------------------------------------------------------


async def test_the_numbers_follow_real_tickets_in_app_home_and_the_cli(
    bot: BotServer,
    fake_slack: FakeSlack,
    triage_settings: Settings,  # noqa: F811
) -> None:
    answered = dm_event("Where is my order ORD-10011?")
    await bot.post_event(answered)
    escalated = dm_event("I want to talk to a person", user="U0CUST2", channel="D0CUST2")
    await bot.post_event(escalated)
    await fake_slack.wait_for(lambda: len(cards(fake_slack)) == 2, within=10)
    await idle(bot)
    await click(bot, block_action(RESOLVE_ACTION, "T-00001", user=AGENT_ID, channel=TRIAGE))
    await idle(bot)

    now = dt.datetime.now(dt.UTC)
    report = await support_report(bot.slack.core.db.sessions, now - dt.timedelta(days=1), now)
    overall = report.overall
    assert overall.tickets == 2
    assert overall.escalation_rate == 0.5 and overall.deflection_rate == 0.5
    assert overall.first_response_p50_s is not None and overall.first_response_p50_s < 30
    assert overall.resolution_p50_s is not None and overall.resolution_p90_s is not None
    assert report.by_intent["order_status"].tickets == 1

    await home_opened(bot, AGENT_ID)
    await home_opened(bot, "U0CUST")
    published = {
        c.params["user_id"]: str(c.params["view"]) for c in fake_slack.calls_to("views.publish")
    }
    assert "Support numbers" in published[AGENT_ID] and "2 tickets" in published[AGENT_ID]
    assert "Support numbers" not in published["U0CUST"]

    env = {**os.environ, "DATABASE_URL": triage_settings.database_url}
    done = await asyncio.to_thread(
        subprocess.run, [SUPPORTBOT, "report", "--since", "1d", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = json.loads(done.stdout)
    assert printed["overall"]["tickets"] == 2 and printed["overall"]["escalation_rate"] == 0.5
