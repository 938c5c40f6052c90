"""Who may teach the bot, over HTTP: a customer's /faq is posted for them, but answers
nobody else until a support agent approves it from App Home (`bot.faq.approval`).

Signed slash command, modal submission, events and button clicks; a fake Slack serving
the files; the embedded worker; the real `SupportService` on the offline provider.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.faq.approval import APPROVE_ACTION, DISCARD_ACTION, NOT_AN_AGENT_TEXT
from bot.faq.feature import FaqFeature
from bot.home.feature import HomeFeature
from bot.settings import Settings
from pipelines.support.routing import NO_KNOWLEDGE_TEXT
from storage.models import Faq
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_slack import (
    INTERVAL,
    USER,
    interact,
    open_modal,
    settle,
    submission,
    three_files,
)
from tests.fakes.fake_slack import FakeSlack
from tests.slack_signing import TEAM_ID, dm_event, new_ts

OTHER = "U0OTHER"  # another customer, asking later
QUESTION = "How long is the warranty on the espresso grinder?"


@pytest.fixture(autouse=True)
def requester_is_in_every_channel(fake_slack: FakeSlack) -> None:
    fake_slack.default_members = [USER]


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    features = [HomeFeature(), FaqFeature(progress_interval=INTERVAL)]
    async with run_bot_server(settings, features=features) as server:
        yield server


def home_click(action_id: str, value: str, *, user: str) -> dict[str, Any]:
    """A `block_actions` payload from a button in App Home (no channel there)."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0TEST",
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": "V0HOME"},
        "trigger_id": "1111.2222.abcd",
        "view": {"id": "V0HOME", "type": "home", "blocks": []},
        "actions": [
            {
                "action_id": action_id,
                "block_id": f"faq_review_{value}",
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
        "is_enterprise_install": False,
    }


async def ask(bot: BotServer, fake: FakeSlack, text: str) -> str:
    """A DM from another customer; returns the bot's reply in that thread."""
    event = dm_event(text, user=OTHER, channel="D0OTHER")
    await bot.post_event(event)
    await fake.wait_for(lambda: bool(fake.posts(channel="D0OTHER", thread_ts=event["ts"])))
    [reply] = fake.posts(channel="D0OTHER", thread_ts=event["ts"])
    return reply.text


async def review_state(bot: BotServer) -> list[tuple[str, str | None]]:
    async with bot.slack.core.db.sessions() as session:
        rows = await session.execute(select(Faq.review, Faq.reviewed_by))
        return [(review, by) for review, by in rows]


async def agent_home(bot: BotServer, fake: FakeSlack) -> list[dict[str, Any]]:
    before = len(fake.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": AGENT_ID, "channel": "D0HOME", "tab": "home"}
    await bot.post_event({**event, "event_ts": new_ts()})
    published = fake.calls_to("views.publish")
    assert len(published) == before + 1
    assert published[-1].params["user_id"] == AGENT_ID
    blocks: list[dict[str, Any]] = published[-1].params["view"]["blocks"]
    return blocks


def review_buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {
        element["action_id"]: element["value"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] in (APPROVE_ACTION, DISCARD_ACTION)
    }


async def test_a_customers_faq_answers_others_only_after_an_agent_approves_it(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    view = await open_modal(bot, fake_slack)
    await interact(bot, submission(view, view_id="V0TEACH", files=three_files(fake_slack)))
    await settle(bot)
    assert await review_state(bot) == [("pending", None)]

    # Not knowledge yet: another customer's question on its content is declined.
    before = await ask(bot, fake_slack, QUESTION)
    assert "two years" not in before
    assert NO_KNOWLEDGE_TEXT.split(".")[0] in before

    # The agent's App Home lists it with Approve / Discard.
    buttons = review_buttons(await agent_home(bot, fake_slack))
    faq_id = buttons[APPROVE_ACTION]
    assert buttons[DISCARD_ACTION] == faq_id

    # The requester crafting the click is refused, by DM, and nothing changes.
    await interact(bot, home_click(APPROVE_ACTION, faq_id, user=USER))
    assert [p.text for p in fake_slack.posts(channel=USER)] == [NOT_AN_AGENT_TEXT]
    assert await review_state(bot) == [("pending", None)]

    # The agent approves (twice: a double click); their home no longer lists it.
    await interact(bot, home_click(APPROVE_ACTION, faq_id, user=AGENT_ID))
    await interact(bot, home_click(DISCARD_ACTION, faq_id, user=AGENT_ID))
    assert await review_state(bot) == [("approved", AGENT_ID)]
    republished = fake_slack.calls_to("views.publish")[-1]
    assert republished.params["user_id"] == AGENT_ID
    assert review_buttons(republished.params["view"]["blocks"]) == {}

    after = await ask(bot, fake_slack, QUESTION)
    assert "two years" in after
    assert "Sources: warranty.docx" in after


async def test_an_agents_faq_is_knowledge_at_once(bot: BotServer, fake_slack: FakeSlack) -> None:
    view = await open_modal(bot, fake_slack)
    payload = submission(view, view_id="V0AGENT", files=three_files(fake_slack))
    payload["user"]["id"] = AGENT_ID
    fake_slack.default_members = [AGENT_ID]
    await interact(bot, payload)
    await settle(bot)

    assert await review_state(bot) == [("approved", AGENT_ID)]
    assert review_buttons(await agent_home(bot, fake_slack)) == {}
    assert "two years" in await ask(bot, fake_slack, QUESTION)
