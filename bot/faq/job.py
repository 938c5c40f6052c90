"""The `faq_build` job: files -> documents -> FAQ chain -> messages in Slack, exactly once.

Steps: check that the requester is a member of the channel (`bot.faq.access`; if not,
tell them by DM and post nothing); post a progress message; fetch and extract the files
(`bot.faq.files`); run `pipelines.faq.runs.create_faq` (which stores the FAQ as
knowledge) while the progress message follows along ("Answered 4/10…"); turn the
progress message into the FAQ's first page, post further pages in its thread, attach
the FAQ as a Markdown file.

Exactly once across retries: after each side effect the job saves a checkpoint in its own
row (`jobs.payload["checkpoint"]`, written only while this worker holds the lease): the
progress message's ts, the stored FAQ's id, the pages posted, the upload. A retry resumes
from there: it edits the same progress message, reuses the stored FAQ instead of building
a second one, and skips what was posted. Pages also carry the job id in their metadata,
which a retry checks for the pages a crash left out of the checkpoint.

Progress edits are rate-limited (`ProgressReporter`): at most one `chat.update` per
`interval` (1.5 s), sent from a background task so a slow or rate-limited Slack never
holds up the chain; the final edit is always sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import escape
from bot.faq.access import not_a_member_text, requester_membership
from bot.faq.files import TransientDownloadError, fetch_documents
from bot.faq.modal import default_title
from bot.faq.state import (
    Checkpoint,
    FaqJobRequest,
    ProgressReporter,
    page_metadata,
    page_tag,
    save_checkpoint,
)
from bot.faq.views import Page, Progress, failure_page, faq_pages, progress_page
from bot.slack_calls import Mrkdwn, SlackCalls, slack_error
from bot.worker import JobFailed
from pipelines.config import LLMSettings
from pipelines.faq.chain import ChainState, FaqItem, FaqResult, faq_markdown
from pipelines.faq.limits import FAQ_BUDGET_TEXT, FaqLimits
from pipelines.faq.runs import create_faq, faq_pending, stored_faq_items
from pipelines.llm import LLMUnavailable
from pipelines.llm.base import LLM
from pipelines.llm.budget import BudgetExceeded, DailyBudget, Spender
from pipelines.log_context import bind
from storage.db import Database
from storage.queue import LeasedJob

logger = logging.getLogger(__name__)

FAQ_JOB = "faq_build"
# A channel the bot cannot post in: the job gives up and tells the requester by DM.
CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "no_permission"})


class FaqJob:
    """`JobHandler` of the `faq_build` kind."""

    def __init__(
        self,
        client: AsyncWebClient,
        db: Database,
        llm: LLM,
        settings: LLMSettings,
        *,
        api_url: str,
        progress_interval: float = 1.5,
        is_agent: Callable[[str], Awaitable[bool]] | None = None,
        limits: FaqLimits | None = None,
    ) -> None:
        self._client = client
        self._limits = limits or FaqLimits()  # the job decides: a submission can be forged
        self._budget = DailyBudget.from_settings(db.sessions, settings)
        self._is_agent = is_agent  # an agent's FAQ is knowledge at once; others' wait
        self._slack = SlackCalls(client, notify_on=CHANNEL_ERRORS)
        self._db = db
        self._llm = llm
        self._settings = settings
        self._api_url = api_url
        self._interval = progress_interval

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        request = FaqJobRequest.model_validate(job.payload["request"])
        point = Checkpoint.model_validate(job.payload.get("checkpoint") or {})
        just_sent: Page | None = None
        if not point.done:
            if point.progress_ts is None:
                if not await self._requester_is_member(request):
                    return {"refused": "not_a_member"}
                point.title = request.title or default_title(
                    [f.name for f in request.files if f.name]
                )
                point.files = len(request.files)
                if job.is_retry:  # posted, then crashed before the checkpoint?
                    point.progress_ts = await self._find_progress(job, request.channel_id)
                if point.progress_ts is None:
                    just_sent = progress_page(self._progress(request, point, "reading"))
                    point.progress_ts = await self._post_progress(request, just_sent, job.id)
                await self._save(job, point)
            if point.faq_id is None and point.failure is None:
                await self._build(job, request, point, just_sent)
            if point.failure is not None:
                page = failure_page(point.title, request.user_id, point.failure, point.rejected)
                await self._edit(request.channel_id, point.progress_ts, page, job.id)
            else:
                await self._publish(job, request, point)
            point.done = True
            await self._save(job, point)
        return point.model_dump(include={"progress_ts", "faq_id", "run_id", "failure", "rejected"})

    async def give_up(self, job: LeasedJob, error: str) -> None:
        """Say the FAQ failed: on the progress message, or in a DM when there is none."""
        request = FaqJobRequest.model_validate(job.payload["request"])
        point = Checkpoint.model_validate(job.payload.get("checkpoint") or {})
        reason = error.split(": ", 1)[-1] if error.startswith("Slack ") else error
        if point.progress_ts is not None:
            text = f"something went wrong ({reason[:300]}). Try `/faq` again."
            page = failure_page(point.title or "FAQ", request.user_id, text, point.rejected)
            await self._edit(request.channel_id, point.progress_ts, page, job.id)
            return
        text = f"I could not post your FAQ in <#{request.channel_id}>: {escape(reason[:300])}."
        await self._slack.post(request.user_id, Mrkdwn(text))

    # --- steps --------------------------------------------------------------------------

    async def _build(
        self, job: LeasedJob, request: FaqJobRequest, point: Checkpoint, just_sent: Page | None
    ) -> None:
        """Fetch the files and run the chain (which stores the FAQ), showing progress."""
        spender = Spender(request.user_id, await self._requested_by_agent(request))
        if refusal := await self._refusal(request, spender):
            point.failure = refusal  # too large for the requester, or the budget is spent
            await self._save(job, point)
            return
        ts = point.progress_ts
        reporter = ProgressReporter(
            lambda page: self._edit(request.channel_id, ts, page, job.id),
            self._interval,
            just_sent=just_sent,
        )

        async def on_progress(stage: str, done: int, total: int) -> None:
            reporter.show(progress_page(self._progress(request, point, stage, done, total)))

        reporter.show(progress_page(self._progress(request, point, "reading")))
        try:
            fetched = await fetch_documents(
                self._client,
                request.files,
                token=self._client.token or "",
                api_url=self._api_url,
                give_up_on_transient=job.is_final_attempt,
            )
            point.rejected = [str(r) for r in fetched.rejected]
            point.notes = list(fetched.notes)
            if not fetched.docs:
                count = len(request.files)
                point.failure = (
                    "the file could not be used."
                    if count == 1
                    else f"none of the {count} files could be used."
                )
                await self._save(job, point)
                return
            run = await create_faq(
                self._db,
                self._llm,
                self._settings,
                fetched.docs,
                request.questions,
                request.mode,
                on_progress,
                created_by=request.user_id,
                channel_id=request.channel_id,
                title=point.title,
                request_key=job.dedupe_key,
                approved=spender.exempt,  # an agent's
                document_chars=self._limits.document_chars(spender.exempt),
                spender=spender,
                resume=point.chain,
                save_state=self._chain_saver(job, point),
            )
        except TransientDownloadError as exc:
            raise JobFailed(f"download failed: {exc}") from exc
        except LLMUnavailable as exc:
            raise JobFailed(f"LLM unavailable: {exc}") from exc
        except BudgetExceeded as exc:  # spent before the first step (later ones: notes)
            point.failure = FAQ_BUDGET_TEXT[exc.scope]
            await self._save(job, point)
            return
        finally:
            await reporter.stop()
        point.faq_id, point.run_id = run.faq_id, run.run_id
        point.chain = None  # the stored FAQ is what a retry reuses now
        bind(run_id=run.run_id, faq_id=run.faq_id)  # on the job's later log lines
        point.notes += run.result.notes
        if run.faq_id is None:
            point.failure = "no questions could be drawn from the files."
        await self._save(job, point)

    async def _publish(self, job: LeasedJob, request: FaqJobRequest, point: Checkpoint) -> None:
        assert point.progress_ts is not None and point.faq_id is not None
        items = await stored_faq_items(self._db, point.faq_id)
        pages = faq_pages(
            point.title,
            items,
            user_id=request.user_id,
            files=point.files,
            rejected=point.rejected,
            notes=point.notes,
            run_id=point.run_id,
            pending=await faq_pending(self._db, point.faq_id),
        )
        await self._edit(request.channel_id, point.progress_ts, pages[0], job.id)
        posted = set(range(1, point.pages_posted + 1))
        if job.is_retry and point.pages_posted < len(pages) - 1:
            posted |= await self._posted_pages(request.channel_id, point.progress_ts, job.id)
        for number, page in enumerate(pages[1:], 1):
            if number not in posted:
                await self._slack.post(
                    request.channel_id,
                    page.text,
                    thread_ts=point.progress_ts,
                    blocks=page.blocks,
                    metadata=page_metadata(job.id, number),
                    unfurl_links=False,
                )
            point.pages_posted = number
            await self._save(job, point)
        if not point.uploaded:
            await self._upload(request, point, items)
            point.uploaded = True

    async def _upload(
        self, request: FaqJobRequest, point: Checkpoint, items: list[FaqItem]
    ) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", point.title).strip("-.")[:80] or "faq"
        upload = self._client.files_upload_v2(
            channel=request.channel_id,
            thread_ts=point.progress_ts,
            filename=f"{slug}.md",
            title=point.title,
            content=faq_markdown(point.title, FaqResult(items=items)),
            initial_comment="The whole FAQ as Markdown.",
        )
        try:
            await self._slack.call("files.upload", upload)
        except SlackRequestError as exc:  # the upload URL refused the bytes
            raise JobFailed(f"Slack file upload: {exc}") from exc
        except JobFailed as failure:  # the FAQ is posted: a missing file is only said
            if not failure.permanent or failure.__cause__ is None:
                raise
            logger.warning("FAQ file not attached: %s", failure)
            await self._slack.post(
                request.channel_id,
                f"I could not attach the FAQ as a file ({slack_error(failure.__cause__)}).",
                thread_ts=point.progress_ts,
                best_effort=True,
            )

    async def _requested_by_agent(self, request: FaqJobRequest) -> bool:
        return bool(self._is_agent and await self._is_agent(request.user_id))

    async def _refusal(self, request: FaqJobRequest, spender: Spender) -> str | None:
        """Why this FAQ is not built: more questions than the role allows, or no budget."""
        too_many = self._limits.questions_refusal(request.questions, spender.exempt)
        if too_many is not None:
            return too_many
        scope = await self._budget.refusal(spender)
        return None if scope is None else FAQ_BUDGET_TEXT[scope]

    # --- Slack and the database -------------------------------------------------------

    async def _requester_is_member(self, request: FaqJobRequest) -> bool:
        """Post only where the requester is a member (`bot.faq.access`); else tell them."""
        found = await self._slack.call(
            "conversations.members",
            requester_membership(self._client, request.channel_id, request.user_id),
        )
        if found.member:
            return True
        logger.info("FAQ refused: %s is not in %s", request.user_id, request.channel_id)
        text = Mrkdwn(not_a_member_text(request.channel_id, found))  # names the channel
        await self._slack.post(request.user_id, text)
        return False

    async def _post_progress(self, request: FaqJobRequest, page: Page, job_id: int) -> str:
        response = await self._slack.post(
            request.channel_id, page.text, blocks=page.blocks, metadata=page_metadata(job_id, 0)
        )
        return str(response["ts"])

    @staticmethod
    def _progress(
        request: FaqJobRequest, point: Checkpoint, stage: str, done: int = 0, total: int = 0
    ) -> Progress:
        return Progress(point.title, request.user_id, point.files, stage, done, total)

    async def _edit(self, channel: str, ts: str | None, page: Page, job_id: int) -> None:
        """Edit the progress message (its metadata is sent again: an edit replaces it)."""
        assert ts is not None
        await self._slack.update(
            channel, ts, page.text, blocks=page.blocks, metadata=page_metadata(job_id, 0)
        )

    async def _posted_pages(self, channel: str, ts: str, job_id: int) -> set[int]:
        """Pages of this job already in the thread (metadata), should the checkpoint lag."""
        found = await self._slack.find_tagged(channel, page_tag(job_id), thread_ts=ts)
        return {int(message.payload.get("page") or 0) for message in found}

    async def _find_progress(self, job: LeasedJob, channel: str) -> str | None:
        """The progress message an interrupted attempt posted (page 0 in its metadata);
        None, to post anew, also when the bot cannot look (no history scope)."""
        oldest = str(job.payload.get("enqueued_at") or "0")
        tag = page_tag(job.id, page=0)
        return await self._slack.find_posted(channel, tag, oldest=oldest, best_effort=True)

    def _chain_saver(
        self, job: LeasedJob, point: Checkpoint
    ) -> Callable[[ChainState], Awaitable[None]]:
        """Save the chain's progress in the job's row, one write at a time (answers finish
        concurrently; each write carries everything finished so far)."""
        turn = asyncio.Lock()

        async def save(state: ChainState) -> None:
            async with turn:
                point.chain = state
                await self._save(job, point)

        return save

    async def _save(self, job: LeasedJob, point: Checkpoint) -> None:
        await save_checkpoint(self._db, job, point)


__all__ = ["CHANNEL_ERRORS", "FAQ_JOB", "FaqJob"]
