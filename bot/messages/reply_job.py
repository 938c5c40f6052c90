"""The `slack_message` job: answer one customer message in its thread, exactly once.

Steps: show that the bot is working (an :eyes: reaction, or the assistant status), let
the support pipeline answer (`AnswersMessages.handle`, whose side effects are idempotent on
the message's `request_id`), post the reply in the thread, remove the reaction.

Exactly one reply, even across crashes and retries: the reply carries the job id in its
message metadata. A run that may follow an earlier partial run (`LeasedJob.is_retry`)
first looks for that metadata in the thread (`conversations.replies`) and, if the reply
is there, only settles the job. The remaining window (two workers posting at the same
instant after a lease was lost) needs a worker stalled for a whole lease; it is logged.

Slack errors are classified in `bot.slack_calls` (a persistent 429 retries after
Retry-After, errors retrying cannot fix dead-letter at once, anything else retries with
backoff); when the job finally gives up, the customer is told a person will follow up
(if the bot can post there at all), and the ticket is escalated ("repeated failure").
Where Slack allows it (`bot.messages.stream`: DMs, assistant threads, private channel
threads) the reply streams while it is written: the plan's steps as task cards, then
the checked words of the answer. The stream's ts is saved in the job's row as soon as it
exists (`stream_ts`), so a retry does not start a second one: it finishes that message.
Finishing always replaces the streamed text with the checked reply, its context line,
buttons and metadata (`chat.stopStream`, then `chat.update`); the metadata is only added
then, so a message found by it is a finished reply. Not covered: a crash between Slack
starting the stream and the checkpoint's commit leaves that preview behind, unfinished.

The reactions and the assistant status and title are cosmetic: their failures are only
logged, except an error that would stop the reply too (the bot is not in the channel).

The pipeline reads the ticket once and decides whether the bot answers at all (while a
person has the conversation it answers `silent`: the turn is recorded, nothing is
posted); it calls back (`on_working`) when it has decided to answer, and only then is the
:eyes: shown. The reply carries the ticket's snapshot, so this job reads no ticket on the
normal path (only a retry after a crash, and `give_up`, look it up).

Ticket observers (`add_observer`; the triage feature is one) hear about every answered,
escalated or silently recorded turn, with the snapshot, to refresh the ticket's triage
card. They are called after the reply is posted and their failures are only logged: a
card can never block or fail the customer's reply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.messages.line_notice import LineNotice
from bot.messages.stream import ReplyStream, stream_target
from bot.messages.views import FOLLOW_UP_TEXT, follow_up_blocks, plain_text_fallback, reply_blocks
from bot.metrics import REPLIES_POSTED
from bot.slack_calls import BLOCK_ERRORS, Mrkdwn, Refused, SlackCalls, job_tag
from bot.worker import JobFailed
from pipelines.llm import LLMUnavailable
from pipelines.support.contracts import IncomingMessage, OnWorking, SupportReply
from pipelines.support.drafts import drafting_to
from storage.conversations import ConversationStore, ThreadKey
from storage.models import Ticket
from storage.queue import LeasedJob
from storage.ticket_info import ESCALATED, TicketInfo, TicketSnapshot
from storage.tickets import TicketStore

logger = logging.getLogger(__name__)

REPLY_EVENT_TYPE = "supportbot_reply"
WORKING_REACTION = "eyes"
WORKING_STATUS = "is looking into it…"
FALLBACK_TEXT_CHARS = 3000
STREAM_TS = "stream_ts"  # the job payload's key for the message a stream started

SaveCheckpoint = Callable[[LeasedJob, dict[str, Any]], Awaitable[bool]]

# What observers are told about a ticket.
TICKET_REPLIED = "replied"
TICKET_ESCALATED = ESCALATED
TICKET_CUSTOMER_WROTE = "customer_wrote"


class AnswersMessages(Protocol):
    """The support pipeline as seen by the Slack layer (`pipelines.support.service`)."""

    async def handle(
        self, message: IncomingMessage, on_working: OnWorking | None = None
    ) -> SupportReply: ...


class ReplyObserver(Protocol):
    """Told once a reply is in the thread (with its ts), e.g. to track its cards."""

    async def reply_posted(
        self, message: IncomingMessage, reply: SupportReply, ts: str
    ) -> None: ...


class TicketObserver(Protocol):
    """Told when a turn changed a ticket (`event`: replied, escalated, customer_wrote)."""

    async def ticket_changed(self, ticket: TicketSnapshot, event: str) -> None: ...


class SlackReplyJob:
    """`JobHandler` of the `slack_message` kind."""

    def __init__(
        self,
        client: AsyncWebClient,
        service: AnswersMessages,
        conversations: ConversationStore | None = None,
        tickets: TicketStore | None = None,
        stream_replies: bool = False,
        checkpoint: SaveCheckpoint | None = None,
    ) -> None:
        """`checkpoint` stores a job's payload while its lease is held; without it
        replies never stream (a retry could not find the stream)."""
        self._slack = SlackCalls(client)
        self._service = service
        self._conversations = conversations
        self._tickets = tickets
        self._stream_replies = stream_replies and checkpoint is not None
        self._checkpoint = checkpoint
        self._observers: list[TicketObserver] = []
        self._reply_observers: list[ReplyObserver] = []

    def add_observer(self, observer: TicketObserver) -> None:
        self._observers.append(observer)

    def add_reply_observer(self, observer: ReplyObserver) -> None:
        self._reply_observers.append(observer)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        message = IncomingMessage.model_validate(job.payload["message"])
        assistant = bool(job.payload.get("assistant"))
        if job.is_retry:
            posted = await self.find_posted(message, job.id)
            if posted is not None:
                REPLIES_POSTED.labels(kind="already_posted").inc()
                await self._done_working(message)
                ticket = await self._find_ticket(message)  # a retry: read it again
                if ticket is not None:
                    await self._notify(TicketInfo.of(ticket).snapshot(), TICKET_REPLIED)
                return {"ts": posted, "already_posted": True}
        shown: list[bool] = []

        async def on_working() -> None:
            await self._show_working(message, assistant)
            shown.append(True)

        stream_ts: str | None = job.payload.get(STREAM_TS)  # an earlier attempt's stream
        stream = self._stream_for(job, message) if stream_ts is None else None
        line_notice = LineNotice(self._slack, message) if stream is None else None
        try:
            with drafting_to(stream or line_notice):
                reply = await self._service.handle(message, on_working=on_working)
        except LLMUnavailable as exc:
            raise JobFailed(f"LLM unavailable: {exc}") from exc
        finally:
            if stream is not None:
                stream_ts = await stream.close()
            if line_notice is not None:
                await line_notice.close()
        if reply.silent:
            if stream_ts is not None:  # a person took over since an earlier attempt streamed
                await self._remove_stream(message, stream_ts)
            if shown or job.is_retry:
                await self._done_working(message)
            await self._notify(reply.ticket, TICKET_CUSTOMER_WROTE)
            REPLIES_POSTED.labels(kind="silent").inc()
            return {"ticket": reply.ticket_number, "silent": True}
        if stream_ts is not None:
            ts = await self._finish_stream(message, reply, job.id, stream_ts)
        else:
            ts = await self._post_reply(message, reply, job.id)
        for observer in self._reply_observers:  # after the post: its failure loses no reply
            try:
                await observer.reply_posted(message, reply, ts)
            except Exception as exc:
                logger.warning("reply observer failed on %s: %s", reply.ticket_number, exc)
        if shown or job.is_retry:  # an earlier attempt may have reacted before crashing
            await self._done_working(message)
        if assistant:
            await self._set_title(message, reply)
        await self._notify(reply.ticket, TICKET_ESCALATED if reply.escalated else TICKET_REPLIED)
        return {
            "ts": ts,
            "ticket": reply.ticket_number,
            "run_id": reply.run_id,
            "escalated": reply.escalated,
            "provider": reply.provider,
        }

    async def give_up(self, job: LeasedJob, error: str) -> None:
        """Tell the customer a person will follow up, and flag the ticket if there is one."""
        message = IncomingMessage.model_validate(job.payload["message"])
        if await self.find_posted(message, job.id) is not None:
            return
        ticket_number, flagged = await self._flag_ticket(message, error)
        if flagged is not None:  # the card first: the post below may fail too
            await self._notify(flagged, TICKET_ESCALATED)
        stream_ts = job.payload.get(STREAM_TS)
        if stream_ts and await self._replace_stream(
            message, stream_ts, FOLLOW_UP_TEXT, follow_up_blocks(ticket_number),
            job_tag(REPLY_EVENT_TYPE, job.id).metadata(follow_up=True),
        ):  # fmt: skip
            REPLIES_POSTED.labels(kind="follow_up").inc()
            await self._done_working(message)
            return
        await self._slack.post(
            message.channel_id,
            FOLLOW_UP_TEXT,
            thread_ts=message.thread_ts,
            blocks=follow_up_blocks(ticket_number),
            metadata=job_tag(REPLY_EVENT_TYPE, job.id).metadata(follow_up=True),
        )
        REPLIES_POSTED.labels(kind="follow_up").inc()
        await self._done_working(message)

    async def find_posted(self, message: IncomingMessage, job_id: int) -> str | None:
        """The ts of this job's reply if an earlier attempt already posted it."""
        tag = job_tag(REPLY_EVENT_TYPE, job_id)
        return await self._slack.find_posted(message.channel_id, tag, thread_ts=message.thread_ts)

    async def _post_reply(self, message: IncomingMessage, reply: SupportReply, job_id: int) -> str:
        text = Mrkdwn(plain_text_fallback(reply))  # escaped by the view (`to_mrkdwn`)
        response = await self._slack.post(
            message.channel_id,
            text,
            thread_ts=message.thread_ts,
            blocks=reply_blocks(reply),
            metadata=job_tag(REPLY_EVENT_TYPE, job_id).metadata(),
            unfurl_links=False,
            tolerate=BLOCK_ERRORS,
        )
        if isinstance(response, Refused):  # Slack refused our blocks: still answer, in text
            logger.warning("blocks refused (%s); posting plain text", response.error)
            response = await self._slack.post(
                message.channel_id,
                Mrkdwn(text[:FALLBACK_TEXT_CHARS]),
                thread_ts=message.thread_ts,
                metadata=job_tag(REPLY_EVENT_TYPE, job_id).metadata(),
            )
        REPLIES_POSTED.labels(kind="answer").inc()
        return str(response.get("ts"))

    def _stream_for(self, job: LeasedJob, message: IncomingMessage) -> ReplyStream | None:
        """A stream for this reply when streaming is on and Slack allows it there."""
        if not self._stream_replies:
            return None
        target = stream_target(message)
        if target is None:
            return None

        async def remember(ts: str) -> None:
            assert self._checkpoint is not None
            if await self._checkpoint(job, {**job.payload, STREAM_TS: ts}):
                job.payload[STREAM_TS] = ts  # `give_up` finishes this message too

        return ReplyStream(self._slack, target, on_started=remember)

    async def _finish_stream(
        self, message: IncomingMessage, reply: SupportReply, job_id: int, stream_ts: str
    ) -> str:
        """Replace the streamed preview with the checked reply (one message in all)."""
        text = Mrkdwn(plain_text_fallback(reply))
        metadata = job_tag(REPLY_EVENT_TYPE, job_id).metadata()
        if await self._replace_stream(message, stream_ts, text, reply_blocks(reply), metadata):
            REPLIES_POSTED.labels(kind="streamed").inc()
            return stream_ts
        return await self._post_reply(message, reply, job_id)  # the preview is gone

    async def _replace_stream(
        self,
        message: IncomingMessage,
        stream_ts: str,
        text: str,
        blocks: list[dict[str, Any]],
        metadata: dict[str, Any],
    ) -> bool:
        """Stop the stream and give its message `text`, `blocks` and `metadata`; False
        when the message is no longer there (deleted), so the caller posts instead."""
        client = self._slack.client
        await self._slack.call(
            "chat.stopStream",
            client.chat_stopStream(channel=message.channel_id, ts=stream_ts),
            best_effort=True,  # already stopped by an earlier attempt, or by Slack
        )
        updated = await self._slack.update(
            message.channel_id,
            stream_ts,
            text,
            blocks=blocks,
            metadata=metadata,
            tolerate={"message_not_found", *BLOCK_ERRORS},
        )
        if isinstance(updated, Refused) and updated.error in BLOCK_ERRORS:
            logger.warning("blocks refused (%s); the reply is plain text", updated.error)
            updated = await self._slack.update(
                message.channel_id,
                stream_ts,
                Mrkdwn(text[:FALLBACK_TEXT_CHARS]),
                metadata=metadata,
                tolerate={"message_not_found"},
            )
        return not isinstance(updated, Refused)

    async def _remove_stream(self, message: IncomingMessage, stream_ts: str) -> None:
        await self._slack.call(
            "chat.delete",
            self._slack.client.chat_delete(channel=message.channel_id, ts=stream_ts),
            best_effort=True,
        )

    async def _show_working(self, message: IncomingMessage, assistant: bool) -> None:
        """An assistant status in AI-app threads, an :eyes: reaction elsewhere."""
        client = self._slack.client
        if assistant:
            status = await self._slack.call(
                "assistant.threads.setStatus",
                client.assistant_threads_setStatus(
                    channel_id=message.channel_id,
                    thread_ts=message.thread_ts,
                    status=WORKING_STATUS,
                ),
                best_effort=True,
            )
            if not isinstance(status, Refused):
                return
        try:
            await self._slack.call(
                "reactions.add",
                client.reactions_add(
                    channel=message.channel_id, timestamp=message.message_ts, name=WORKING_REACTION
                ),
                tolerate={"already_reacted"},
            )
        except JobFailed as failure:
            if failure.permanent:
                raise
            logger.info("could not add the working reaction: %s", failure)

    async def _done_working(self, message: IncomingMessage) -> None:
        """Remove the reaction (cosmetic: a failure is only logged). The assistant status
        clears itself when the bot replies."""
        await self._slack.call(
            "reactions.remove",
            self._slack.client.reactions_remove(
                channel=message.channel_id, timestamp=message.message_ts, name=WORKING_REACTION
            ),
            tolerate={"no_reaction"},
            best_effort=True,
        )

    async def _set_title(self, message: IncomingMessage, reply: SupportReply) -> None:
        topic = reply.intents[0].replace("_", " ") if reply.intents else "support request"
        await self._slack.call(
            "assistant.threads.setTitle",
            self._slack.client.assistant_threads_setTitle(
                channel_id=message.channel_id,
                thread_ts=message.thread_ts,
                title=f"{reply.ticket_number} · {topic.capitalize()}",
            ),
            best_effort=True,
        )

    async def _flag_ticket(
        self, message: IncomingMessage, error: str
    ) -> tuple[str | None, TicketSnapshot | None]:
        """Escalate the ticket (repeated failure): (its number, its snapshot if it was
        escalated now). A ticket a person already has is left as it is."""
        if self._tickets is None:
            return None, None
        try:
            ticket = await self._find_ticket(message)
            if ticket is None:
                return None, None
            change = await self._tickets.escalate(ticket.id, f"the bot could not answer: {error}")
            escalated = change.ticket.snapshot() if change.ok and change.ticket else None
            return ticket.ticket_number, escalated
        except Exception as exc:
            logger.warning("could not flag the ticket: %s", exc)
            return None, None

    async def _find_ticket(self, message: IncomingMessage) -> Ticket | None:
        """The thread's ticket, for cosmetic decisions only (a failure reads as None)."""
        if self._conversations is None:
            return None
        try:
            key = ThreadKey(message.team_id, message.channel_id, message.thread_ts)
            return await self._conversations.find_ticket(key)
        except Exception as exc:
            logger.info("could not look up the ticket: %s", exc)
            return None

    async def _notify(self, ticket: TicketSnapshot | None, event: str) -> None:
        """Tell the observers; a failure is logged, never raised (the reply matters more)."""
        if ticket is None:
            return
        for observer in self._observers:
            try:
                await observer.ticket_changed(ticket, event)
            except Exception as exc:
                logger.warning("ticket observer failed on %s (%s): %s", ticket.number, event, exc)


__all__ = [
    "REPLY_EVENT_TYPE",
    "TICKET_CUSTOMER_WROTE",
    "TICKET_ESCALATED",
    "TICKET_REPLIED",
    "AnswersMessages",
    "ReplyObserver",
    "SlackReplyJob",
    "TicketObserver",
]
