"""/faq end to end: signed slash commands and modal submissions over HTTP, a fake Slack
serving the files and taking the uploads, the embedded worker, the offline provider.

Bad files are checked by the line the uploader sees: for content problems the expected
line is what `pipelines.documents.extract.extract_text` says about the same bytes (so this file
tests the Slack side, not the wording of each parser), for download problems the line
`bot.faq.files` writes.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import docx
import httpx
import pytest
from sqlalchemy import func, select

from bot.blocks import escape
from bot.faq.feature import FaqFeature
from bot.faq.files import SIGN_IN_REASON
from bot.faq.job import FAQ_JOB
from bot.faq.modal import FileRef
from bot.faq.state import FaqJobRequest, page_metadata
from bot.faq.views import PENDING_NOTE
from bot.settings import Settings
from pipelines.documents.extract import MAX_FILE_BYTES, RejectedFile, extract_text
from pipelines.llm.base import LLMRequest, LLMResponse
from pipelines.llm.offline import OfflineLLM
from storage.models import Faq, FaqDocument, FaqEntry, Job
from storage.queue import DEAD, DONE
from tests.e2e.conftest import BotServer, make_settings, run_bot_server
from tests.fakes.fake_slack import FakeSlack, Posted
from tests.slack_signing import TEAM_ID, new_ts, signed_headers
from tests.test_documents import encrypt_pdf, make_pdf, make_zip

USER = "U0CUST"
FAQ_CHANNEL = "C0FAQ"
INTERVAL = 0.2
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

RETURNS_MD = b"""# Returns

Unused items can be sent back within 30 days of delivery for a full refund.
Refunds reach the original payment method within five business days.
Opened software cannot be taken back unless it is faulty.
"""
SHIPPING_HTML = b"""<html><body><h1>Shipping</h1>
<p>Standard shipping within Germany takes two to three business days.</p>
<p>Express parcels ordered before noon leave the warehouse the same day.</p>
<p>International deliveries are handled by DHL and take up to ten days.</p>
</body></html>"""
WARRANTY = [
    "The espresso grinder has a warranty of two years from the date of purchase.",
    "Warranty claims need the serial number printed under the bean hopper.",
    "Accidental damage such as dropped grinders is not covered by the warranty.",
    "Replacement burrs are available from our spare parts store for twelve euros.",
]


def make_docx(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class SlowLLM(OfflineLLM):
    """The offline provider, `delay` seconds per call: progress has time to show."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def generate(self, request: LLMRequest) -> LLMResponse:
        await asyncio.sleep(self.delay)
        return await super().generate(request)


# --- harness ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def requester_is_in_every_channel(fake_slack: FakeSlack) -> None:
    """/faq posts only where the requester is a member (tests/e2e/test_faq_access.py)."""
    fake_slack.default_members = [USER]


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[FaqFeature(progress_interval=INTERVAL)]) as b:
        yield b


async def post_form(bot: BotServer, fields: dict[str, str]) -> httpx.Response:
    body = urlencode(fields)
    headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
    return await bot.http.post(f"{bot.url}/slack/events", content=body, headers=headers)


async def slash_faq(bot: BotServer, text: str = "", channel: str = FAQ_CHANNEL) -> httpx.Response:
    fields = {
        "token": "legacy",
        "team_id": TEAM_ID,
        "team_domain": "fake",
        "channel_id": channel,
        "channel_name": "faq",
        "user_id": USER,
        "user_name": "customer",
        "command": "/faq",
        "text": text,
        "api_app_id": "A0TEST",
        "response_url": "https://hooks.slack.test/commands/1",
        "trigger_id": f"trigger-{new_ts()}",
    }
    response = await post_form(bot, fields)
    assert response.status_code == 200, response.text
    return response


async def interact(bot: BotServer, payload: dict[str, Any]) -> httpx.Response:
    response = await post_form(bot, {"payload": json.dumps(payload)})
    assert response.status_code == 200, response.text
    return response


async def open_modal(bot: BotServer, fake: FakeSlack, channel: str = FAQ_CHANNEL) -> dict[str, Any]:
    before = len(fake.calls_to("views.open"))
    response = await slash_faq(bot, channel=channel)
    assert response.text == ""
    opened = fake.calls_to("views.open")
    assert len(opened) == before + 1
    view: dict[str, Any] = opened[-1].params["view"]
    return view


def submission(
    view: dict[str, Any],
    *,
    view_id: str,
    files: list[dict[str, Any]] | None = None,
    questions: str = "10",
    channel: str = FAQ_CHANNEL,
    mode: str = "parallel",
) -> dict[str, Any]:
    """The view_submission Slack sends for `view` (as opened) filled in like this."""
    values: dict[str, Any] = {
        "faq_questions": {"value": {"type": "number_input", "value": questions}},
        "faq_mode": {"value": {"type": "radio_buttons", "selected_option": {"value": mode}}},
        "faq_channel": {
            "value": {"type": "conversations_select", "selected_conversation": channel}
        },
        "faq_title": {"value": {"type": "plain_text_input", "value": None}},
    }
    if any(block.get("block_id") == "faq_files" for block in view["blocks"]):
        values["faq_files"] = {"files": {"type": "file_input", "files": files or []}}
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": USER, "team_id": TEAM_ID},
        "api_app_id": "A0TEST",
        "token": "legacy",
        "trigger_id": f"trigger-{new_ts()}",
        "view": {**view, "id": view_id, "team_id": TEAM_ID, "state": {"values": values}},
    }


async def settle(bot: BotServer, within: float = 15.0) -> None:
    """Wait until no FAQ job is queued or running."""
    deadline = time.monotonic() + within
    while True:
        counts = await bot.slack.queue.counts()
        if counts["queued"] == 0 and counts["running"] == 0:
            return
        assert time.monotonic() < deadline, f"queue did not drain: {counts}"
        await asyncio.sleep(0.05)


async def count(bot: BotServer, model: Any) -> int:
    async with bot.slack.core.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def blocks_text(blocks: list[dict[str, Any]] | None) -> str:
    parts = []
    for block in blocks or []:
        for element in [block.get("text") or {}, *block.get("elements", [])]:
            parts.append(str(element.get("text", "")))
    return "\n".join(parts)


def top_level(fake: FakeSlack, channel: str) -> list[Posted]:
    return [p for p in fake.posts(channel=channel) if not p.thread_ts]


def faq_text(fake: FakeSlack, channel: str) -> str:
    """The FAQ as posted: the (edited) progress message and the pages in its thread."""
    [root] = top_level(fake, channel)
    pages = [root, *fake.posts(channel=channel, thread_ts=root.ts)]
    return "\n".join(blocks_text(p.blocks) for p in pages)


def sources_cited(text: str) -> set[str]:
    cited: set[str] = set()
    for line in text.splitlines():
        if "Sources:" in line and "none found" not in line:
            cited.update(s.strip() for s in line.split("Sources:", 1)[1].split(","))
    return cited


def three_files(fake: FakeSlack) -> list[dict[str, Any]]:
    return [
        fake.host_file("returns.md", RETURNS_MD, "text/markdown"),
        fake.host_file("shipping.html", SHIPPING_HTML, "text/html"),
        fake.host_file("warranty.docx", make_docx(WARRANTY), DOCX),
    ]


# --- the whole flow ---------------------------------------------------------------------


async def test_faq_from_three_files_posts_progress_faq_file_and_stores_it_for_review(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    files = three_files(fake_slack)
    view = await open_modal(bot, fake_slack)
    [file_block] = [b for b in view["blocks"] if b.get("block_id") == "faq_files"]
    assert file_block["element"]["type"] == "file_input"
    channel_select = next(b for b in view["blocks"] if b.get("block_id") == "faq_channel")
    assert channel_select["element"]["initial_conversation"] == FAQ_CHANNEL

    response = await interact(bot, submission(view, view_id="V0MAIN", files=files))
    assert response.json()["response_action"] == "update"
    await settle(bot)

    # Downloads used the bot token; one progress message, edited until it says done.
    assert [d.status for d in fake_slack.downloads] == [200, 200, 200]
    assert all(d.authorization == "Bearer xoxb-test-token" for d in fake_slack.downloads)
    [root] = top_level(fake_slack, FAQ_CHANNEL)
    [first_post] = [
        c for c in fake_slack.calls_to("chat.postMessage") if "thread_ts" not in c.params
    ]
    assert "Reading 3 files" in first_post.params["text"]
    updates = [c for c in fake_slack.calls_to("chat.update") if c.params["ts"] == root.ts]
    assert updates, "the progress message was never updated"
    assert "Done: 10 questions from 3 files" in blocks_text(updates[-1].params["blocks"])

    text = faq_text(fake_slack, FAQ_CHANNEL)
    for number in range(1, 11):
        assert f"*{number}. " in text
    assert "*11. " not in text
    cited = sources_cited(text)
    assert cited and cited <= {"returns.md", "shipping.html", "warranty.docx"}

    [upload] = fake_slack.uploaded_files(FAQ_CHANNEL)
    assert upload.thread_ts == root.ts and upload.filename.endswith(".md")
    assert upload.data is not None and upload.data.decode().count("\n## ") == 10

    assert await count(bot, Faq) == 1
    assert await count(bot, FaqEntry) == 10
    assert await count(bot, FaqDocument) == 3
    # The requester is not an agent: the FAQ waits for review before it answers anyone
    # else, and says so (tests/e2e/test_faq_approval.py follows it to the knowledge base).
    assert PENDING_NOTE in blocks_text(updates[-1].params["blocks"])


async def test_progress_is_shown_and_rate_limited(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    feature = FaqFeature(progress_interval=INTERVAL)
    async with run_bot_server(settings, features=[feature], llm=SlowLLM(0.03)) as bot:
        view = await open_modal(bot, fake_slack)
        payload = submission(
            view, view_id="V0SLOW", files=three_files(fake_slack), mode="sequential"
        )
        await interact(bot, payload)
        await settle(bot)
    [root] = top_level(fake_slack, FAQ_CHANNEL)
    updates = [c for c in fake_slack.calls_to("chat.update") if c.params["ts"] == root.ts]
    texts = [str(c.params["text"]) for c in updates]
    assert any("Answered" in t for t in texts[:-1]), texts
    assert "Done:" in blocks_text(updates[-1].params["blocks"])
    assert len(updates) < 15  # 21 steps, coalesced
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    assert min(gaps) >= INTERVAL * 0.5, gaps  # spaced by the reporter (less transit jitter)


# --- bad files --------------------------------------------------------------------------


def bad_files(fake: FakeSlack) -> list[tuple[dict[str, Any], str]]:
    """Each kind of bad file, hosted, with the line the uploader should see."""

    def content(name: str, data: bytes, mimetype: str | None = None) -> tuple[dict, str]:
        outcome = extract_text(name, data, mimetype)
        assert isinstance(outcome, RejectedFile), name
        return fake.host_file(name, data, mimetype), str(outcome)

    big = b"a" * (MAX_FILE_BYTES + 1)
    return [
        content("empty.txt", b"", "text/plain"),
        content("broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R", None),
        content("locked.pdf", encrypt_pdf(make_pdf(["Secret"]), user_password="pw"), None),
        content("setup.exe", b"MZ\x90\x00binary", "application/octet-stream"),
        content("scan.pdf", make_pdf(["", ""]), "application/pdf"),
        content("dense.docx", make_zip({"word/media/blank.bin": 8 * 1024 * 1024}), DOCX),
        (fake.host_file("huge.txt", big, "text/plain"), "huge.txt: larger than 10 MB (10.0 MB)"),
        (
            fake.host_file("liar.txt", big, "text/plain", size=100),
            "liar.txt: larger than 10 MB",
        ),
        (
            fake.host_file("report.pdf", make_pdf(["Hi"]), "application/pdf", login_redirect=True),
            f"report.pdf: {SIGN_IN_REASON}",
        ),
    ]


async def test_each_bad_file_alone_is_named_and_no_faq_is_posted(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    cases = bad_files(fake_slack)
    view = await open_modal(bot, fake_slack)
    for index, (file, _) in enumerate(cases):
        channel = f"C0BAD{index}"
        await interact(
            bot, submission(view, view_id=f"V0BAD{index}", files=[file], channel=channel)
        )
    await settle(bot, within=20)
    for index, (_, line) in enumerate(cases):
        channel = f"C0BAD{index}"
        [root] = top_level(fake_slack, channel)
        final = blocks_text(root.blocks)
        assert "No FAQ" in final and f"• {escape(line)}" in final.splitlines(), (line, final)
        assert not fake_slack.posts(channel=channel, thread_ts=root.ts)
        assert not fake_slack.uploaded_files(channel)
    assert await count(bot, Faq) == 0


async def test_each_bad_file_beside_a_good_one_is_named_and_the_faq_still_comes(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    cases = bad_files(fake_slack)
    view = await open_modal(bot, fake_slack)
    for index, (file, _) in enumerate(cases):
        good = fake_slack.host_file("returns.md", RETURNS_MD, "text/markdown")
        await interact(
            bot,
            submission(
                view,
                view_id=f"V0MIX{index}",
                files=[file, good],
                channel=f"C0MIX{index}",
                questions="3",
            ),
        )
    await settle(bot, within=20)
    for index, (_, line) in enumerate(cases):
        channel = f"C0MIX{index}"
        text = faq_text(fake_slack, channel)
        assert "Done: 3 questions from 2 files" in text
        assert "Skipped" in text and f"• {escape(line)}" in text.splitlines(), (line, text)
        assert sources_cited(text) <= {"returns.md"}
        assert len(fake_slack.uploaded_files(channel)) == 1
    assert await count(bot, Faq) == len(cases)


# --- the modal --------------------------------------------------------------------------


async def test_invalid_submissions_get_inline_errors_and_queue_nothing(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    view = await open_modal(bot, fake_slack)
    file = fake_slack.host_file("returns.md", RETURNS_MD, "text/markdown")

    no_files = await interact(bot, submission(view, view_id="V0ERR1", files=[]))
    assert no_files.json() == {
        "response_action": "errors",
        "errors": {"faq_files": "Attach at least one file."},
    }
    too_many = await interact(bot, submission(view, view_id="V0ERR2", files=[file], questions="51"))
    assert too_many.json()["response_action"] == "errors"
    assert set(too_many.json()["errors"]) == {"faq_questions"}
    zero = await interact(bot, submission(view, view_id="V0ERR3", files=[file], questions="0"))
    assert set(zero.json()["errors"]) == {"faq_questions"}
    assert (await bot.slack.queue.counts())["queued"] == 0
    assert await count(bot, Job) == 0


async def test_help_is_ephemeral_and_a_number_preselects_the_questions(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    response = await slash_faq(bot, "help")
    assert response.json()["response_type"] == "ephemeral"
    assert (
        "/faq" in response.json()["text"]
        and "Make an FAQ from these files" in (response.json()["text"])
    )
    assert not fake_slack.calls_to("views.open")
    await slash_faq(bot, "25")
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    questions = next(b for b in view["blocks"] if b.get("block_id") == "faq_questions")
    assert questions["element"]["initial_value"] == "25"


async def test_message_shortcut_opens_the_form_for_that_messages_files(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    files = three_files(fake_slack)[:2]
    shortcut = {
        "type": "message_action",
        "callback_id": "faq_from_message",
        "trigger_id": f"trigger-{new_ts()}",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": USER},
        "channel": {"id": "C0DOCS", "name": "docs"},
        "message": {"type": "message", "user": "U0OTHER", "ts": new_ts(), "files": files},
        "response_url": "https://hooks.slack.test/actions/1",
    }
    await interact(bot, shortcut)
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    assert "returns.md" in blocks_text(view["blocks"])
    assert not any(b.get("block_id") == "faq_files" for b in view["blocks"])

    response = await interact(bot, submission(view, view_id="V0SHORT", channel="C0DOCS"))
    assert response.json()["response_action"] == "update"
    await settle(bot)
    assert len(fake_slack.calls_to("files.info")) == 2
    text = faq_text(fake_slack, "C0DOCS")
    assert "Done: 10 questions from 2 files" not in text  # two short files: fewer questions
    assert "Done:" in text and sources_cited(text) <= {"returns.md", "shipping.html"}

    # A message without files gets a modal saying so.
    await interact(bot, {**shortcut, "trigger_id": "t2", "message": {"ts": new_ts()}})
    notice = fake_slack.calls_to("views.open")[-1].params["view"]
    assert "has no files" in blocks_text(notice["blocks"])


# --- exactly once -----------------------------------------------------------------------


async def test_a_redelivered_submission_and_a_retried_job_build_one_faq(
    database_url: str, fake_slack: FakeSlack
) -> None:
    facts = "\n\n".join(
        f"The gadget kit{n} weighs {n + 100} grams and ships in a box of size {n}."
        for n in range(1, 46)
    )
    files = [fake_slack.host_file("gadgets.md", facts.encode(), "text/markdown")]
    # 40 questions: more than a customer's default limit (tests/e2e/test_faq_limits.py)
    settings = make_settings(fake_slack.api_url, database_url, faq_max_questions_customer=50)
    async with run_bot_server(settings, features=[FaqFeature(progress_interval=INTERVAL)]) as bot:
        view = await open_modal(bot, fake_slack)
        payload = submission(view, view_id="V0ONCE", files=files, questions="40")
        fake_slack.fail("files.completeUploadExternal", status=500)  # fails after the pages

        await interact(bot, payload)
        await interact(bot, payload)  # Slack redelivers the same submission
        await settle(bot, within=20)

        async with bot.slack.core.db.sessions() as session:
            [job] = (await session.scalars(select(Job).where(Job.kind == FAQ_JOB))).all()
        assert job.status == DONE and job.attempts == 2, (job.status, job.last_error)
        assert await count(bot, Faq) == 1
    [root] = top_level(fake_slack, FAQ_CHANNEL)
    thread = fake_slack.posts(channel=FAQ_CHANNEL, thread_ts=root.ts)
    pages = [p.metadata["event_payload"]["page"] for p in thread if p.metadata]
    assert pages == [1]  # 40 questions: two pages, the second in the thread, posted once
    assert len(fake_slack.uploaded_files(FAQ_CHANNEL)) == 1
    assert faq_text(fake_slack, FAQ_CHANNEL).count("*40. ") == 1


async def test_a_retry_finds_the_progress_message_a_crashed_attempt_posted(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    """Posted, then the worker died before saving the checkpoint: no second message."""
    async with run_bot_server(
        settings, features=[FaqFeature(progress_interval=INTERVAL)], embedded_worker=False
    ) as bot:
        request = FaqJobRequest(
            user_id=USER, channel_id=FAQ_CHANNEL, files=[], questions=3, view_id="V0CRASH"
        )
        request.files = [FileRef(id=three_files(fake_slack)[0]["id"])]
        payload = {"request": request.model_dump(mode="json"), "enqueued_at": "0"}
        await bot.slack.submit(FAQ_JOB, "faq:crash", payload)
        [first] = await bot.slack.queue.claim("w1", 30)
        await bot.slack.client.chat_postMessage(
            channel=FAQ_CHANNEL, text="Reading 1 file…", metadata=page_metadata(first.id, 0)
        )
        await bot.slack.queue.fail(first, "worker died", retry_in=0)
        await asyncio.sleep(0.25)  # the queue's (test-sized) backoff
        [again] = await bot.slack.queue.claim("w2", 30)
        await bot.slack.handlers[FAQ_JOB].run(again)
    [root] = top_level(fake_slack, FAQ_CHANNEL)
    assert "Done: 3 questions from 1 file" in blocks_text(root.blocks)
    assert len(fake_slack.uploaded_files(FAQ_CHANNEL)) == 1


async def test_a_channel_the_bot_is_not_in_is_explained_to_the_user(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("chat.postMessage", error="not_in_channel")
    view = await open_modal(bot, fake_slack)
    files = three_files(fake_slack)[:1]
    await interact(bot, submission(view, view_id="V0NIC", files=files, channel="C0PRIVATE"))
    await settle(bot)
    async with bot.slack.core.db.sessions() as session:
        [job] = (await session.scalars(select(Job).where(Job.kind == FAQ_JOB))).all()
    assert job.status == DEAD and "not_in_channel" in (job.last_error or "")
    [dm] = fake_slack.posts(channel=USER)
    assert "<#C0PRIVATE>" in dm.text and "not_in_channel" in dm.text
    assert not fake_slack.downloads


async def test_a_download_that_fails_for_a_moment_retries_the_job_in_the_same_message(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    files = three_files(fake_slack)
    flaky = fake_slack.host_file(
        "flaky.md", b"Gift cards never expire.", "text/markdown", failures=1
    )
    view = await open_modal(bot, fake_slack)
    await interact(bot, submission(view, view_id="V0FLAKY", files=[*files, flaky]))
    await settle(bot)
    async with bot.slack.core.db.sessions() as session:
        [job] = (await session.scalars(select(Job).where(Job.kind == FAQ_JOB))).all()
    assert job.status == DONE and job.attempts == 2
    [root] = top_level(fake_slack, FAQ_CHANNEL)  # the retry reused the progress message
    assert "from 4 files" in blocks_text(root.blocks) and "Skipped" not in blocks_text(root.blocks)
    assert await count(bot, Faq) == 1


# --- what the notification text carries ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param("<!channel> read me.md", RETURNS_MD, id="faq-posted"),
        pytest.param("<!here> empty.md", b"", id="no-faq"),
    ],
)
async def test_a_file_name_cannot_ping_the_channel_through_the_message_text(
    bot: BotServer, fake_slack: FakeSlack, name: str, data: bytes
) -> None:
    """Blocks escape file names; the `text` of every post and edit must too (notifications
    and screen readers show it, and Slack honours `<!channel>` there)."""
    file = fake_slack.host_file(name, data, "text/markdown")
    view = await open_modal(bot, fake_slack)
    await interact(bot, submission(view, view_id="V0PING", files=[file], questions="3"))
    await settle(bot)
    calls = [*fake_slack.calls_to("chat.postMessage"), *fake_slack.calls_to("chat.update")]
    texts = [str(call.params.get("text") or "") for call in calls]
    assert texts and not [text for text in texts if "<!" in text], texts
    assert any(escape(name.removesuffix(".md")) in text for text in texts), texts
