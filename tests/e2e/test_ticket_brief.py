"""The brief and suggested reply on an escalated ticket's card, over HTTP: the offline
provider (extractive brief, no reply, said on the card) and the real google-genai
client against the fake Gemini endpoint (both steps), each traced."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.home.feature import HomeFeature
from bot.settings import Settings
from bot.triage.feature import TriageFeature
from pipelines.llm.factory import reset_shared_gate
from storage.models import TraceRun, TraceStep
from tests.e2e.conftest import BotServer, run_bot_server
from tests.e2e.test_triage_slack import (  # noqa: F401 (triage_settings is a fixture)
    cards,
    idle,
    text_of,
    triage_settings,
)
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.gemini_scripts import by_step
from tests.slack_signing import dm_event

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


async def escalate(bot: BotServer, fake: FakeSlack) -> str:
    await bot.post_event(dm_event(ASK))
    await fake.wait_for(
        lambda: "Brief" in text_of((cards(fake) or [None])[0] and cards(fake)[0].blocks), within=15
    )  # type: ignore[union-attr]
    await idle(bot)
    return text_of(cards(fake)[0].blocks)


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
