"""The parts of the /faq job that are worth testing alone: rate-limited progress, and
fetching files from (a fake) Slack with the bot token, a size cap and sign-in detection."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.faq.files import (
    SIGN_IN_REASON,
    TransientDownloadError,
    fetch_documents,
    token_may_go_to,
)
from bot.faq.modal import FileRef
from bot.faq.state import ProgressReporter
from bot.faq.views import Page
from pipelines.documents import extract as documents
from pipelines.documents.extract import MAX_FILE_BYTES, RejectedFile
from tests.fakes.fake_slack import FakeSlack
from tests.hostile_files import slow_pdf

TOKEN = "xoxb-files-test"


def page(text: str) -> Page:
    return Page(text, [])


# --- progress ---------------------------------------------------------------------------


async def test_progress_is_coalesced_to_one_edit_per_interval_and_ends_on_the_latest() -> None:
    sent: list[tuple[float, str]] = []

    async def send(p: Page) -> None:
        sent.append((time.monotonic(), p.text))

    reporter = ProgressReporter(send, interval=0.1)
    started = time.monotonic()
    for n in range(1, 41):
        reporter.show(page(f"Answered {n}/40"))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.15)
    await reporter.stop()
    texts = [text for _, text in sent]
    assert 2 <= len(sent) <= (time.monotonic() - started) / 0.1 + 1, texts
    assert texts[0] == "Answered 1/40" and texts[-1] == "Answered 40/40"
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(sent)]
    assert min(gaps) >= 0.095, gaps


async def test_progress_waits_after_the_initial_post_and_stop_waits_for_its_turn() -> None:
    sent: list[float] = []

    async def send(_: Page) -> None:
        sent.append(time.monotonic())

    started = time.monotonic()
    reporter = ProgressReporter(send, interval=0.2, just_sent=page("Reading 2 files…"))
    reporter.show(page("Reading 2 files…"))  # what is already shown is not sent again
    reporter.show(page("Generating questions…"))
    await asyncio.sleep(0.3)
    await reporter.stop()
    assert len(sent) == 1 and sent[0] - started >= 0.19
    assert time.monotonic() - sent[0] >= 0.19  # the final edit may go out now


async def test_a_failing_progress_edit_does_not_stop_the_next_ones() -> None:
    calls: list[str] = []

    async def send(p: Page) -> None:
        calls.append(p.text)
        if len(calls) == 1:
            raise RuntimeError("ratelimited")

    reporter = ProgressReporter(send, interval=0.02)
    reporter.show(page("one"))
    await asyncio.sleep(0.05)
    reporter.show(page("two"))
    await asyncio.sleep(0.05)
    await reporter.stop()
    assert calls == ["one", "two"]


# --- fetching files ---------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as slack:
        yield slack


def client(fake: FakeSlack, token: str = TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url)


def ref(file: dict) -> FileRef:
    return FileRef(
        id=file["id"],
        name=file["name"],
        mimetype=file["mimetype"],
        size=file["size"],
        url=file["url_private_download"],
    )


async def fetch(fake: FakeSlack, refs: list[FileRef], token: str = TOKEN, **kwargs: object):
    return await fetch_documents(
        client(fake, token), refs, token=token, api_url=fake.api_url, **kwargs
    )


async def test_files_are_downloaded_with_the_bot_token_and_titles_made_unique(
    fake: FakeSlack,
) -> None:
    a = fake.host_file("notes.md", b"Opening hours are nine to five.", "text/markdown")
    b = fake.host_file("notes.md", b"Parking is free for customers.", "text/markdown")
    fetched = await fetch(fake, [ref(a), ref(b)])
    assert [d.title for d in fetched.docs] == ["notes.md", "notes.md (2)"]
    assert fetched.rejected == []
    assert [d.authorization for d in fake.downloads] == [f"Bearer {TOKEN}"] * 2


async def test_a_wrong_token_gets_the_sign_in_page_which_is_not_a_document(
    fake: FakeSlack,
) -> None:
    file = fake.host_file("guide.txt", b"Real text.", "text/plain")
    fetched = await fetch(fake, [ref(file)], token="xoxb-wrong")
    assert fetched.rejected == [RejectedFile("guide.txt", SIGN_IN_REASON)]
    assert [d.status for d in fake.downloads] == [302]


async def test_size_is_capped_before_and_while_downloading(fake: FakeSlack) -> None:
    big = b"a" * (MAX_FILE_BYTES + 10)
    honest = fake.host_file("honest.txt", big, "text/plain")
    liar = fake.host_file("liar.txt", big, "text/plain", size=10)
    fetched = await fetch(fake, [ref(honest), ref(liar)])
    assert [str(r) for r in fetched.rejected] == [
        "honest.txt: larger than 10 MB (10.0 MB)",
        "liar.txt: larger than 10 MB",
    ]
    assert [d.file_id for d in fake.downloads] == [liar["id"]]  # the honest one never left


async def test_transient_failures_retry_the_job_until_its_last_attempt(fake: FakeSlack) -> None:
    file = fake.host_file("flaky.md", b"Some words here.", "text/markdown", failures=5)
    with pytest.raises(TransientDownloadError, match="503"):
        await fetch(fake, [ref(file)])
    fetched = await fetch(fake, [ref(file)], give_up_on_transient=True)
    assert [str(r) for r in fetched.rejected] == ["flaky.md: could not be downloaded (HTTP 503)"]


async def test_files_given_by_id_are_resolved_with_files_info(fake: FakeSlack) -> None:
    file = fake.host_file("faq.json", b'{"q": "Hours?", "a": "9-5"}', "application/json")
    fetched = await fetch(fake, [FileRef(id=file["id"]), FileRef(id="F404")])
    assert [d.title for d in fetched.docs] == ["faq.json"]
    assert [str(r) for r in fetched.rejected] == [
        "F404: Slack would not describe it (file_not_found)"
    ]


async def test_the_token_only_goes_to_slack(fake: FakeSlack) -> None:
    assert token_may_go_to("https://files.slack.com/files-pri/T-F/download/a.md", fake.api_url)
    assert token_may_go_to(f"{fake.root_url}/files-pri/T-F/download/a.md", fake.api_url)
    assert not token_may_go_to("https://evil.example/files-pri/a.md", fake.api_url)
    assert not token_may_go_to("http://files.slack.com/a.md", "https://slack.com/api/")
    assert not token_may_go_to("https://slack.com.evil.example/a.md", "https://slack.com/api/")
    elsewhere = FileRef(id="F1", name="a.md", url="https://evil.example/a.md")
    fetched = await fetch(fake, [elsewhere])
    assert [str(r) for r in fetched.rejected] == [
        "a.md: its download address is not a Slack address"
    ]


async def test_a_file_that_takes_too_long_to_read_is_refused_and_the_others_are_kept(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "EXTRACT_TIME_LIMIT_S", 0.5)
    slow = fake.host_file("huge.pdf", slow_pdf(1_000_000), "application/pdf")  # seconds to read
    good = fake.host_file("hours.md", b"Opening hours are nine to five.", "text/markdown")
    fetched = await fetch(fake, [ref(slow), ref(good)])
    assert [d.title for d in fetched.docs] == ["hours.md"]
    assert [str(r) for r in fetched.rejected] == [
        "huge.pdf: took longer than 0.5 s to read, so it was skipped"
    ]
