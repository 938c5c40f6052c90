"""Done when: a question answered only in section 3 of an uploaded PDF is answered with
that document and section cited; before the upload it is declined and logged as a gap.

On the offline provider over HTTP (an agent's `/faq` upload of the PDF, a customer's DMs,
the fake Slack), and on the real google-genai client against the fake Gemini endpoint.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.faq.feature import FaqFeature
from bot.settings import Settings
from pipelines.config import LLMSettings
from pipelines.documents.extract import extract_text
from pipelines.faq.chain import SourceDocument
from pipelines.knowledge.answers import NO_KNOWLEDGE_TEXT
from pipelines.knowledge.library import NewDocument, add_to_knowledge
from pipelines.llm.factory import build_llm, reset_shared_gate
from pipelines.support.contracts import IncomingMessage
from pipelines.support.service import SupportService
from storage.db import Database
from storage.knowledge import open_gaps
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_slack import INTERVAL, USER, interact, open_modal, settle, submission
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.gemini_scripts import by_step, user_text
from tests.pdf_pages import ROUTER_MANUAL, pdf_with_lines
from tests.slack_signing import dm_event

QUESTION = "Which button do I hold to change the admin password?"
CITED = "router-x200.pdf > 3 Resetting the admin password"


@pytest.fixture(autouse=True)
def everyone_is_in_every_channel(fake_slack: FakeSlack) -> None:
    fake_slack.default_members = [USER, AGENT_ID]


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[FaqFeature(progress_interval=INTERVAL)]) as b:
        yield b


async def ask(bot: BotServer, fake: FakeSlack, text: str, channel: str) -> str:
    event = dm_event(text, user="U0ASKER", channel=channel)
    await bot.post_event(event)
    await fake.wait_for(lambda: bool(fake.posts(channel=channel, thread_ts=event["ts"])))
    [reply] = fake.posts(channel=channel, thread_ts=event["ts"])
    return reply.text


def agents_upload(view: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
    payload = submission(view, view_id="V0KB", files=files, questions="1")
    payload["user"]["id"] = AGENT_ID
    return payload


async def test_offline_a_pdf_section_answers_after_an_agents_upload_and_not_before(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    before = await ask(bot, fake_slack, QUESTION, "D0FIRST")
    assert NO_KNOWLEDGE_TEXT.split(".")[0] in before and "twelve" not in before
    [gap] = await open_gaps(bot.slack.core.db.sessions)
    assert gap.question == QUESTION and gap.slack_user_id == "U0ASKER"

    manual = fake_slack.host_file(
        "router-x200.pdf", pdf_with_lines(ROUTER_MANUAL), "application/pdf"
    )
    view = await open_modal(bot, fake_slack)
    await interact(bot, agents_upload(view, [manual]))
    await settle(bot)

    after = await ask(bot, fake_slack, QUESTION, "D0SECOND")
    assert "pinhole button" in after and "twelve seconds" in after
    assert f"Sources: {CITED}".replace(">", "&gt;") in after  # as Slack escapes it
    # The setup URL is written in the cited passage: it may stay a link.
    assert "<https://router.example/setup>" in after or "https://router.example/setup" in after
    assert len(await open_gaps(bot.slack.core.db.sessions)) == 1  # no new gap


def answer_from_passages(body: dict[str, Any]) -> dict[str, Any]:
    """A model that reads the passages it is given and cites the one it used (and, as
    models do, one it made up)."""
    text = user_text(body)
    for block in re.split(r"\n\n(?=Source: )", text):
        if "pinhole" in block:
            label = re.findall(r"Source: (.+)", block)[-1].strip()
            return {
                "answerable": True,
                "answer": "Hold the pinhole button on the back for twelve seconds.",
                "sources": [label, "router-x200.pdf > 7 Secret appendix"],
            }
    return {"answerable": False, "answer": "I don't know; a person can help.", "sources": []}


async def test_gemini_a_pdf_section_answers_after_it_is_added_and_not_before(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    responder = by_step(
        {
            "classify_intent": lambda b: {"intent": "general_question", "confidence": 0.9},
            "answer_from_knowledge": answer_from_passages,
        }
    )
    async with FakeGemini(responder) as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        reset_shared_gate()
        settings = LLMSettings(
            gemini_api_key="test-key", llm_provider="gemini", llm_fallback="none"
        )  # type: ignore[arg-type]
        service = SupportService(sqlite_db, build_llm(settings), settings)
        try:
            before = await service.handle(message(QUESTION, "8000.1"))
            document = extract_text("router-x200.pdf", pdf_with_lines(ROUTER_MANUAL))
            assert isinstance(document, SourceDocument)
            await add_to_knowledge(
                sqlite_db,
                NewDocument(document.title, document.text),
                source="cli",
                added_by="cli",
            )
            after = await service.handle(message(QUESTION, "8000.2"))
        finally:
            await service.llm.aclose()  # type: ignore[attr-defined]
    assert before.text == NO_KNOWLEDGE_TEXT and before.provider == "gemini"
    [gap] = await open_gaps(sqlite_db.sessions)
    assert gap.question == QUESTION
    assert after.text.startswith("Hold the pinhole button")
    assert after.text.endswith(f"_Sources: {CITED}_")  # the invented section is dropped
    assert after.allowed_links == ["https://router.example/setup"]


def message(text: str, ts: str) -> IncomingMessage:
    return IncomingMessage(
        request_id=f"req-{ts}",
        channel_id="D0GEM",
        thread_ts=ts,
        message_ts=ts,
        user_id="U0GEM",
        text=text,
    )
