"""What the `faq_build` job carries and remembers: its request, its checkpoint, its progress.

- `FaqJobRequest`: the validated modal submission, as queued by `bot.faq.feature`.
- `Checkpoint`: what an attempt has already done (progress message ts, stored FAQ id,
  pages posted, upload), saved in the job's own row by `save_checkpoint` only while the
  worker holds the job's lease, so a retry resumes instead of repeating side effects.
- `ProgressReporter`: edits the progress message at most once per `interval`, from a
  background task, so the FAQ chain never waits on Slack (or on its rate limits).
- `page_tag` marks every message a job posts (`bot.slack_calls.MessageTag`, with its page
  number), so a retry can find what an interrupted attempt posted before it could save
  a checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field

from bot.faq.modal import FileRef
from bot.faq.views import Page
from bot.slack_calls import MessageTag, job_tag
from bot.worker import JobFailed
from pipelines.faq.chain import ChainState, Mode
from storage.db import Database
from storage.queue import JobQueue, LeasedJob

logger = logging.getLogger(__name__)

FAQ_EVENT_TYPE = "supportbot_faq"


class FaqJobRequest(BaseModel):
    team_id: str = ""
    user_id: str
    channel_id: str
    files: list[FileRef]
    questions: int
    mode: Mode = "parallel"
    title: str = ""
    view_id: str = ""


class Checkpoint(BaseModel):
    progress_ts: str | None = None
    title: str = ""
    files: int = 0
    faq_id: int | None = None
    run_id: str | None = None
    failure: str | None = None  # set when no FAQ will be posted: why
    rejected: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    pages_posted: int = 0  # thread pages after the first
    uploaded: bool = False
    done: bool = False
    chain: ChainState | None = None  # the chain's own progress: a retry asks only the rest


async def save_checkpoint(db: Database, job: LeasedJob, point: Checkpoint) -> None:
    """Store `point` in the job's row, only while this worker holds the job's lease."""
    payload = {**job.payload, "checkpoint": point.model_dump(mode="json")}
    if not await JobQueue(db).checkpoint(job, payload):
        raise JobFailed("lease lost while saving the checkpoint", can_notify=False)
    job.payload["checkpoint"] = payload["checkpoint"]  # `give_up` sees the latest


def page_tag(job_id: int, page: int | None = None) -> MessageTag:
    """Page 0 is the progress message (later the FAQ's first page); 1.. are thread pages.
    Without `page`: any message of the job (each names its page in the payload)."""
    tag = job_tag(FAQ_EVENT_TYPE, job_id)
    return tag if page is None else MessageTag(tag.event_type, {**tag.fields, "page": str(page)})


def page_metadata(job_id: int, page: int) -> dict[str, Any]:
    """The metadata of page `page` of job `job_id`'s FAQ."""
    return page_tag(job_id).metadata(page=page)


class ProgressReporter:
    """Shows the latest progress, at most once per `interval`; `show` never waits."""

    def __init__(
        self,
        send: Callable[[Page], Awaitable[None]],
        interval: float = 1.5,
        *,
        just_sent: Page | None = None,
    ) -> None:
        self._send = send
        self._interval = interval
        self._latest: Page | None = None
        self._sent = just_sent
        self._sent_at = time.monotonic() if just_sent is not None else -interval
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sends = 0

    def show(self, page: Page) -> None:
        self._latest = page
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="faq-progress")

    async def _loop(self) -> None:
        while True:
            await self._changed.wait()
            await self._wait_turn()
            self._changed.clear()
            page = self._latest
            if page is None or page == self._sent:
                continue
            self._sent_at = time.monotonic()
            try:
                await self._send(page)
                self._sent = page
                self.sends += 1
            except Exception as exc:  # cosmetic: the final edit says how it ended
                logger.info("progress update failed: %s", exc)

    async def _wait_turn(self) -> None:
        await asyncio.sleep(max(0.0, self._sent_at + self._interval - time.monotonic()))

    async def stop(self) -> None:
        """Stop updating; returns when the next (final) edit may go out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._wait_turn()


__all__ = [
    "FAQ_EVENT_TYPE",
    "Checkpoint",
    "FaqJobRequest",
    "ProgressReporter",
    "page_metadata",
    "page_tag",
    "save_checkpoint",
]
