"""Hostile uploads (issue 18, finding 1): small files that are slow to read must cost the
bot nothing but a refusal.

- A 180 KB .docx with 3,000 styles and 60,000 paragraphs (python-docx used to scan the
  style list per paragraph) is read within the limit, capped with a note, or refused at it.
- Whatever happens, no thread is left in extraction code and no child process is left.
- While six hostile files are being read, host-name lookups (which aiohttp makes in the
  event loop's default executor) and the event loop itself keep flowing, and the running
  bot acknowledges Slack events as fast as before; shutting it down does not wait for them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable

from bot.faq.feature import FaqFeature
from pipelines.documents.extract import RejectedFile, extract_within
from pipelines.faq.chain import SourceDocument
from tests.e2e.conftest import make_settings, run_bot_server
from tests.e2e.test_faq_slack import DOCX, USER, interact, open_modal, submission
from tests.fakes.fake_slack import FakeSlack
from tests.hostile_files import many_styles_docx, nothing_left_reading, slow_pdf
from tests.slack_signing import dm_event

LIMIT_S = 2.0
STYLES_DOCX = many_styles_docx(60_000, 3_000)
SLOW_PDF = slow_pdf(1_000_000)  # one page, about ten seconds of pypdf
CAPPED_NOTE = "styles.docx: only the first 20,000 paragraphs were read; the rest was skipped"


async def timed(awaitable: Awaitable[object]) -> float:
    started = time.perf_counter()
    await awaitable
    return time.perf_counter() - started


async def loop_lag(samples: int = 20, interval: float = 0.01) -> list[float]:
    """How late the event loop wakes up from a short sleep, `samples` times."""
    lags = []
    for _ in range(samples):
        lags.append(await timed(asyncio.sleep(interval)) - interval)
    return lags


async def test_a_crafted_docx_is_read_within_the_limit_and_leaves_nothing_running() -> None:
    assert 100_000 < len(STYLES_DOCX) < 200_000
    await extract_within("warm.md", b"The first child also starts the fork server.")
    notes: list[str] = []
    started = time.monotonic()
    outcome = await extract_within("styles.docx", STYLES_DOCX, notes=notes, limit_s=LIMIT_S)
    assert time.monotonic() - started < LIMIT_S + 0.5
    if isinstance(outcome, SourceDocument):  # the usual case: capped, in about a second
        assert outcome.text.startswith("p0\np1\np2\n") and outcome.text.endswith("\np19999")
        assert notes == [CAPPED_NOTE]
    else:  # a machine too busy to read it in time
        assert outcome == RejectedFile(
            "styles.docx", f"took longer than {LIMIT_S:g} s to read, so it was skipped"
        )
    await nothing_left_reading()


async def test_lookups_and_the_event_loop_keep_flowing_while_hostile_files_are_read() -> None:
    loop = asyncio.get_running_loop()
    await extract_within("warm.md", b"The first child also starts the fork server.")
    calm = await loop_lag()
    hostile = [("styles.docx", STYLES_DOCX)] * 3 + [("slow.pdf", SLOW_PDF)] * 3
    readers = [
        asyncio.create_task(extract_within(name, data, limit_s=LIMIT_S)) for name, data in hostile
    ]
    await asyncio.sleep(0.3)
    assert not any(reader.done() for reader in readers), "they should be being read now"
    lookups = [
        await timed(asyncio.wait_for(loop.getaddrinfo("localhost", 443), 3)) for _ in range(5)
    ]
    busy = await loop_lag()
    outcomes = await asyncio.gather(*readers)
    assert max(lookups) < 0.25, lookups
    assert statistics.median(busy) < statistics.median(calm) + 0.01, (calm, busy)
    assert max(busy) < 0.1, busy
    reasons = {o.reason for o in outcomes if isinstance(o, RejectedFile)}
    assert reasons <= {f"took longer than {LIMIT_S:g} s to read, so it was skipped"}
    assert [o.title for o in outcomes[3:] if isinstance(o, SourceDocument)] == []
    await nothing_left_reading()


async def test_the_bot_acks_as_fast_while_hostile_files_are_read_and_stops_at_once(
    fake_slack: FakeSlack, sqlite_url: str
) -> None:
    """Three slow PDFs and three crafted .docx files in one /faq, with the default limit."""
    files = 3
    fake_slack.default_members = [USER]
    hosted = [
        fake_slack.host_file(f"slow{i}.pdf", SLOW_PDF, "application/pdf") for i in range(files)
    ]
    hosted += [fake_slack.host_file(f"styles{i}.docx", STYLES_DOCX, DOCX) for i in range(files)]
    settings = make_settings(fake_slack.api_url, sqlite_url)
    await extract_within("warm.md", b"The first child also starts the fork server.")
    async with run_bot_server(settings, features=[FaqFeature(progress_interval=0.2)]) as bot:

        async def acks(count: int) -> list[float]:
            times = []
            for i in range(count):
                times.append(await timed(bot.post_event(dm_event(f"hello {i}"))))
                await asyncio.sleep(0.02)
            return times

        calm = await acks(15)
        view = await open_modal(bot, fake_slack)
        await interact(bot, submission(view, view_id="V0HOSTILE", files=hosted))
        # four files are being read (the job's download gate); the PDFs take ten seconds
        await fake_slack.wait_for(lambda: len(fake_slack.downloads) >= 4, within=10)
        await asyncio.sleep(0.3)
        busy = await acks(15)
        stopping = time.monotonic()
    stopped_in = time.monotonic() - stopping
    assert statistics.median(busy) < 2 * statistics.median(calm) + 0.01, (calm, busy)
    assert max(busy) < 0.25, busy
    await nothing_left_reading(within=0.5)
    assert stopped_in < 2.0 + 1.0  # the worker's shutdown grace, then the children are killed
