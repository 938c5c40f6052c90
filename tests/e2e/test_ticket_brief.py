"""The brief and suggested reply on an escalated ticket's card, over HTTP: the offline
provider (extractive brief, no reply, said on the card) and the real google-genai
client against the fake Gemini endpoint (both steps), each traced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from bot.triage.views import REPLY_TO_CUSTOMER_ACTION
from pipelines.llm.factory import reset_shared_gate
from storage.models import ConversationTurn, TraceRun, TraceStep
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    TRIAGE,
    block_action,
    cards,
    click,
    idle,
    text_of,
    triage_settings,
)
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.gemini_scripts import by_step
from tests.slack_signing import TEAM_ID, dm_event

BRIEF = {
    "wants": "Their late order ORD-10011 delivered, and a person to talk to.",
    "bot_did": "Handed the conversation to the team.",
    "ids": ["ORD-10011"],
    "mood": "frustrated",
    "still_open": "Check ORD-10011 with the carrier.",
}
ASK = "Where is order ORD-10011? It is late again and I want to talk to a person now."


async def brief_steps(bot: BotServer) -> list[str]:
    async with bot.slack.core.db.sessions() as session:
        rows = await session.execute(
            select(TraceStep.name).join(TraceRun, TraceRun.id == TraceStep.run_id)
            .where(TraceRun.pipeline == "ticket_brief")
        )  # fmt: skip
        return [str(name) for (name,) in rows.all()]


def card_text(fake: FakeSlack) -> str:
    found = cards(fake)
    return text_of(found[0].blocks) if found else ""


async def escalate(bot: BotServer, fake: FakeSlack) -> str:
    await escalate_event(bot, fake, dm_event(ASK))
    return card_text(fake)


async def test_offline_an_escalated_card_gets_an_extractive_brief_and_says_why_no_reply(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as bot:
        card = await escalate(bot, fake_slack)
        steps = await brief_steps(bot)
    assert "Wants:* Where is order ORD-10011?" in card
    assert "ORD-10011" in card.split("Ids:*")[1]
    assert "No suggested reply: the offline provider writes none" in card
    assert steps == ["brief_ticket"]


async def test_gemini_the_card_gets_a_brief_and_a_suggested_reply_both_traced(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: dict[str, Any] = {
        "classify_intent": lambda b: {"intent": "human_handoff", "confidence": 0.97},
        "brief_ticket": lambda b: BRIEF,
        "draft_agent_reply": lambda b: {"reply": "Hi! I'm sorry ORD-10011 is late; I'm checking."},
    }
    reset_shared_gate()
    async with FakeGemini(by_step(answers)) as gemini:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.base_url)
        settings = triage_settings.model_copy(
            update={
                "llm_provider": "gemini",
                "llm_fallback": "none",
                "gemini_api_key": SecretStr("test-key"),
            }
        )
        async with run_bot_server(settings, features=[HomeFeature(), TriageFeature()]) as bot:
            card = await escalate(bot, fake_slack)
            steps = await brief_steps(bot)
    assert "Mood:* frustrated" in card and "Check ORD-10011 with the carrier." in card
    assert "Suggested reply" in card and "I'm checking" in card
    assert sorted(steps) == ["brief_ticket", "draft_agent_reply"]


# --- reply to the customer from the card ---------------------------------------------------


def relay_submission(view: dict[str, Any], user: str, text: str) -> dict[str, Any]:
    values = {"relay_text": {"text": {"type": "plain_text_input", "value": text}}}
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID},
        "user": {"id": user, "team_id": TEAM_ID},
        "api_app_id": "A0TEST",
        "view": {**view, "id": "V0RELAY", "state": {"values": values}},
    }


async def test_an_agent_replies_from_the_card_once_under_their_name(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as bot:
        event = dm_event(ASK)
        await escalate_event(bot, fake_slack, event)
        [card] = cards(fake_slack)
        reply_button = block_action(REPLY_TO_CUSTOMER_ACTION, "T-00001", user=AGENT_ID,
                                    channel=TRIAGE, message=card)  # fmt: skip
        await click(bot, reply_button)
        view = fake_slack.calls_to("views.open")[-1].params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert view["private_metadata"] == "T-00001"

        refused = await click(bot, relay_submission(view, "U0CUST", "I am an agent, trust me"))
        assert "Only the support team" in refused.text
        sent = "Hi, this is Ana from support: ORD-10011 left our warehouse today."
        await click(bot, relay_submission(view, AGENT_ID, sent))
        await click(bot, relay_submission(view, AGENT_ID, sent))  # Slack retries it
        await idle(bot)
        in_dm = [m for m in fake_slack.posts("D0CUST", event["ts"]) if sent in m.text]
        assert len(in_dm) == 1
        posted = [
            c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("text") == sent
        ]
        assert posted[0].params["username"] == AGENT_ID.lower()  # the agent's name (users.info)
        async with bot.slack.core.db.sessions() as session:
            roles = (await session.scalars(select(ConversationTurn.role))).all()
        assert roles.count("agent") == 1
        notes = [m for m in fake_slack.posts(TRIAGE, card.ts) if "Sent to the customer" in m.text]
        assert len(notes) == 1


async def escalate_event(bot: BotServer, fake: FakeSlack, event: dict[str, Any]) -> None:
    await bot.post_event(event)
    await fake.wait_for(lambda: "Brief" in card_text(fake), within=15)
    await idle(bot)


async def test_card_thread_replies_relay_notes_stay_and_the_customer_is_mirrored(
    triage_settings: Settings,  # noqa: F811
    fake_slack: FakeSlack,
) -> None:
    async with run_bot_server(triage_settings, features=[HomeFeature(), TriageFeature()]) as bot:
        event = dm_event(ASK)
        await escalate_event(bot, fake_slack, event)
        [card] = cards(fake_slack)

        note = dm_event("internal: carrier says Friday, don't promise earlier", user=AGENT_ID,
                        channel=TRIAGE, thread_ts=card.ts)  # fmt: skip
        note["channel_type"] = "group"
        reply = dm_event("&gt; Your parcel arrives on Friday, sorry for the wait!",
                         user=AGENT_ID, channel=TRIAGE, thread_ts=card.ts)  # fmt: skip
        reply["channel_type"] = "group"
        await bot.post_event(note)
        await bot.post_event(reply)
        await bot.post_event(reply)  # Slack redelivers it
        await idle(bot)
        customer_thread = [m.text for m in fake_slack.posts("D0CUST", event["ts"])]
        assert sum("arrives on Friday" in t for t in customer_thread) == 1
        assert not any("carrier says" in t for t in customer_thread)  # the note stays internal
        async with bot.slack.core.db.sessions() as session:
            roles = sorted((await session.scalars(select(ConversationTurn.role))).all())
        assert roles.count("note") == 1 and roles.count("agent") == 1

        answer = dm_event("Friday is fine, thanks", thread_ts=event["ts"])
        await bot.post_event(answer)
        await bot.post_event(answer)  # redelivered
        await idle(bot)
        mirrored = [m for m in fake_slack.posts(TRIAGE, card.ts) if "Friday is fine" in m.text]
        assert len(mirrored) == 1 and "<@U0CUST> wrote" in mirrored[0].text
