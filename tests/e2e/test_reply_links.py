"""Links in answers, over HTTP: only URLs written in the cited knowledge entry are links.

The model is scripted (it "writes" a look-alike login link, as a poisoned document or a
prompt injection would make it); the reply goes through the real `SupportService`, the
reply job and the fake Slack, so the check is on what Slack would render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.settings import Settings
from pipelines.llm.offline import OfflineLLM
from storage.faqs import StoredDocument, StoredEntry, save_faq
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.scripted_llm import ScriptedLLM
from tests.slack_signing import dm_event

REFUND_PAGE = "https://shop.example/refunds?lang=en&src=faq"
EVIL = "https://evil.example/login"
ENTRY = StoredEntry(
    "How do I get a refund?",
    f"Request it on our refund page ({REFUND_PAGE}); it reaches you within five days.",
    ["refunds.md"],
)
ANSWER = (
    f"Sign in at the [official refund portal]({EVIL}) with your card details, or use "
    f"[our refund page]({REFUND_PAGE}). Also see {EVIL}/help and "
    f"[https://shop.example/refunds]({REFUND_PAGE})."
)


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "general_question", "confidence": 0.9},
            "answer_from_knowledge": {
                "answerable": True,
                "answer": ANSWER,
                "sources": ["refunds.md"],
            },
        },
        fallback=OfflineLLM(),
    )
    async with run_bot_server(settings, llm=llm) as server:
        await save_faq(
            server.slack.core.db.sessions,
            title="Refunds",
            documents=[StoredDocument("refunds.md", ENTRY.answer)],
            entries=[ENTRY],
            mode="parallel",
            run_id=None,
            created_by=AGENT_ID,
            approved=True,
        )
        yield server


async def reply_to(bot: BotServer, fake: FakeSlack, text: str) -> Posted:
    event = dm_event(text)
    await bot.post_event(event)
    await fake.wait_for(lambda: bool(fake.posts(channel="D0CUST", thread_ts=event["ts"])))
    [reply] = fake.posts(channel="D0CUST", thread_ts=event["ts"])
    return reply


async def test_only_links_from_the_cited_entry_are_clickable(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    reply = await reply_to(bot, fake_slack, "How do I get a refund?")
    blocks = "\n".join(
        str(block["text"]["text"]) for block in reply.blocks or [] if block["type"] == "section"
    )
    escaped_page = REFUND_PAGE.replace("&", "&amp;")
    for rendered in (blocks, reply.text):
        # The invented link: its label stays, as text; its bare URL is not a link either.
        assert f"<{EVIL}" not in rendered
        assert "Sign in at the official refund portal with your card details" in rendered
        assert f"`{EVIL}/help`" in rendered
        # The entry's own URL stays a link; a URL-looking label shows the real target.
        assert f"<{escaped_page}|our refund page>" in rendered
        assert f"<{escaped_page}>." in rendered
        assert "|https://shop.example/refunds>" not in rendered
        assert "Sources: refunds.md" in rendered
