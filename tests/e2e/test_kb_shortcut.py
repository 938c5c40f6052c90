"""The message shortcut "Add to knowledge base", over HTTP: an agent's click adds the
message's files (a PDF section then answers customers) and DMs what was added and skipped;
anyone else is told only agents may, and nothing is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.home.feature import HomeFeature
from bot.knowledge.feature import KnowledgeFeature
from bot.knowledge.shortcut import ADD_SHORTCUT, NOT_AN_AGENT_TEXT
from bot.settings import Settings
from storage.knowledge import list_documents
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_slack import USER, blocks_text, interact, settle
from tests.fakes.fake_slack import FakeSlack
from tests.pdf_pages import ROUTER_MANUAL, pdf_with_lines
from tests.slack_signing import TEAM_ID, dm_event, new_ts


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[HomeFeature(), KnowledgeFeature()]) as server:
        yield server


def shortcut(user: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": ADD_SHORTCUT,
        "trigger_id": f"trigger-{new_ts()}",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user},
        "channel": {"id": "C0DOCS", "name": "docs"},
        "message": {"type": "message", "user": "U0OTHER", "ts": new_ts(), "files": files},
        "response_url": "https://hooks.slack.test/actions/1",
    }


async def test_an_agent_adds_a_messages_files_and_a_customer_is_answered_from_them(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    files = [
        fake_slack.host_file("router-x200.pdf", pdf_with_lines(ROUTER_MANUAL), "application/pdf"),
        fake_slack.host_file("empty.txt", b"", "text/plain"),
    ]
    refs = [{"id": f["id"], "name": f["name"], "mimetype": f.get("mimetype")} for f in files]

    await interact(bot, shortcut(USER, refs))
    notice = fake_slack.calls_to("views.open")[-1].params["view"]
    assert NOT_AN_AGENT_TEXT in blocks_text(notice["blocks"])
    await settle(bot)
    assert await list_documents(bot.slack.core.db.sessions) == []

    await interact(bot, shortcut(AGENT_ID, refs))
    assert "Adding 2 file(s)" in blocks_text(
        fake_slack.calls_to("views.open")[-1].params["view"]["blocks"]
    )
    await settle(bot)
    [document] = await list_documents(bot.slack.core.db.sessions)
    assert (document.name, document.source, document.added_by) == (
        "router-x200.pdf",
        "slack",
        AGENT_ID,
    )
    [told] = fake_slack.posts(channel=AGENT_ID)
    assert "router-x200.pdf*: added, version 1, 4 passages" in told.text
    assert "skipped empty.txt: the file is empty" in told.text

    event = dm_event(
        "Which button do I hold to change the admin password?", user="U0ASK", channel="D0ASK"
    )
    await bot.post_event(event)
    await fake_slack.wait_for(
        lambda: bool(fake_slack.posts(channel="D0ASK", thread_ts=event["ts"]))
    )
    [reply] = fake_slack.posts(channel="D0ASK", thread_ts=event["ts"])
    assert "pinhole button" in reply.text and "3 Resetting the admin password" in reply.text
