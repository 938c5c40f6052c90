"""Agents see the knowledge base's documents in App Home and remove one, over HTTP; a
non-agent's crafted click is refused and removes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.home.feature import HomeFeature
from bot.knowledge.feature import NOT_AN_AGENT_TEXT, REMOVE_ACTION, KnowledgeFeature
from bot.settings import Settings
from pipelines.knowledge.library import NewDocument, add_to_knowledge
from storage.knowledge import list_documents
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_approval import agent_home, home_click
from tests.e2e.test_faq_slack import USER, interact
from tests.fakes.fake_slack import FakeSlack


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[HomeFeature(), KnowledgeFeature()]) as server:
        db = server.slack.core.db
        for name in ("returns.md", "router.md"):
            await add_to_knowledge(
                db, NewDocument(name, f"# {name}\nSome text."), source="cli", added_by="cli"
            )
        yield server


def remove_buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        str(element["value"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == REMOVE_ACTION
    ]


async def test_an_agent_removes_a_document_from_app_home(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    assert remove_buttons(await agent_home(bot, fake_slack)) == ["returns.md", "router.md"]

    await interact(bot, home_click(REMOVE_ACTION, "returns.md", user=USER))
    assert [p.text for p in fake_slack.posts(channel=USER)] == [NOT_AN_AGENT_TEXT]
    assert len(await list_documents(bot.slack.core.db.sessions)) == 2

    await interact(bot, home_click(REMOVE_ACTION, "returns.md", user=AGENT_ID))
    assert [d.name for d in await list_documents(bot.slack.core.db.sessions)] == ["router.md"]
    republished = fake_slack.calls_to("views.publish")[-1]
    assert republished.params["user_id"] == AGENT_ID
    assert remove_buttons(republished.params["view"]["blocks"]) == ["router.md"]
