"""The `slack_message` job: answer one customer message in its thread, exactly once.

Steps: show that the bot is working (an :eyes: reaction, or the assistant status), let
the support pipeline answer (`AnswersMessages.handle`, whose side effects are idempotent on
the message's `request_id`), post the reply in the thread, remove the reaction.

Exactly one reply, even across crashes and retries: the reply carries the job id in its
message metadata. A run that may follow an earlier partial run (`LeasedJob.is_retry`)
first looks for that metadata in the thread (`conversations.replies`) and, if the reply
is there, only settles the job. The remaining window (two workers posting at the same
instant after a lease was lost) needs a worker stalled for a whole lease; it is logged.

Slack errors are handled deliberately:
- 429 is waited out by the client's retry handler (Retry-After); if it persists, the job
  retries no sooner than Retry-After;
- errors retrying cannot fix (`not_in_channel`, `invalid_auth`, …) dead-letter the job at
  once with an explanation in `last_error`, instead of a crash loop;
- anything else retries with backoff; when the job finally gives up, the customer is
  told a person will follow up (if the bot can post there at all), and the ticket is
  escalated ("repeated failure").

While a person has the conversation (ticket escalated or claimed) the pipeline answers
`silent`: the customer's turn is recorded, nothing is posted and no :eyes: is shown.

Ticket observers (`add_observer`; the triage feature is one) hear about every answered,
escalated or silently recorded turn, to refresh the ticket's triage card. They are called
after the reply is posted and their failures are only logged: a card can never block or
fail the customer's reply.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.messages.views import FOLLOW_UP_TEXT, follow_up_blocks, plain_text_fallback, reply_blocks
from bot.metrics import REPLIES_POSTED, SLACK_API_ERRORS
from bot.worker import JobFailed
from pipelines.llm import LLMUnavailable
from pipelines.support.contracts import IncomingMessage, SupportReply
from storage.conversations import ConversationStore, ThreadKey
from storage.models import Ticket
from storage.queue import LeasedJob
from storage.ticket_info import ESCALATED, HUMAN_STATUSES
from storage.tickets import TicketStore

logger = logging.getLogger(__name__)

REPLY_EVENT_TYPE = "supportbot_reply"
WORKING_REACTION = "eyes"
WORKING_STATUS = "is looking into it…"
MAX_REPLY_PAGES = 10

# Retrying cannot fix these: dead-letter at once, with what to do about it.
FATAL_SLACK_ERRORS: dict[str, str] = {
    "not_in_channel": "invite the bot to the channel (/invite @bot)",
    "channel_not_found": "the channel is gone or the bot cannot see it",
    "is_archived": "the channel is archived",
    "invalid_auth": "SLACK_BOT_TOKEN is invalid",
    "not_authed": "SLACK_BOT_TOKEN is missing",
    "account_inactive": "the bot's account or workspace is deactivated",
    "token_revoked": "the bot token was revoked; reinstall the app",
    "token_expired": "the bot token expired",
    "missing_scope": "the app lacks an OAuth scope; see manifest.yaml and reinstall",
    "no_permission": "the bot is not allowed to post there",
    "restricted_action": "a workspace setting prevents the bot from posting there",
}
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
FALLBACK_TEXT_CHARS = 3000

# What observers are told about a ticket.
TICKET_REPLIED = "replied"
TICKET_ESCALATED = ESCALATED
TICKET_CUSTOMER_WROTE = "customer_wrote"


class AnswersMessages(Protocol):
    """The support pipeline as seen by the Slack layer (`pipelines.support.service.SupportService`)."""

    async def handle(self, message: IncomingMessage) -> SupportReply: ...


class TicketObserver(Protocol):
    """Told when a turn changed a ticket (`event`: replied, escalated, customer_wrote)."""

    async def ticket_changed(self, ticket_number: str, event: str) -> None: ...


def slack_status(exc: SlackApiError) -> int | None:
    """The HTTP status of a failed call (`status_code` on Slack's response object,
    `status` on the raw aiohttp response the SDK attaches to an unreadable body)."""
    status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", None)
    return status if isinstance(status, int) else None


def slack_error(exc: BaseException) -> str:
    """Slack's error code for a failed call, usable as a metric label.

    `error` from Slack's JSON answer; `http_<status>` when the answer carried none (a 5xx
    with an HTML or plain-text page, whose `data` is a string or empty); the exception's
    type for anything that is not a `SlackApiError` (timeouts, connection errors).
    """
    if not isinstance(exc, SlackApiError):
        return type(exc).__name__
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"http_{slack_status(exc) or 'error'}"


def to_job_failure(method: str, exc: Exception) -> JobFailed:
    """Classify a failed Slack call (see the module docstring)."""
    if not isinstance(exc, SlackApiError):
        SLACK_API_ERRORS.labels(method=method, error=type(exc).__name__).inc()
        return JobFailed(f"Slack {method}: {type(exc).__name__}: {exc}")
    error = slack_error(exc)
    SLACK_API_ERRORS.labels(method=method, error=error).inc()
    if error in FATAL_SLACK_ERRORS:
        return JobFailed(
            f"Slack {method}: {error} ({FATAL_SLACK_ERRORS[error]})",
            permanent=True,
            can_notify=False,
        )
    retry_in = None
    if error == "ratelimited" or slack_status(exc) == 429:
        retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get(
            "retry-after"
        )
        retry_in = float(retry_after) if retry_after else 30.0
    return JobFailed(f"Slack {method}: {error}", retry_in=retry_in)


SLACK_CALL_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


async def find_marked_message(
    client: AsyncWebClient,
    channel: str,
    thread_ts: str,
    event_type: str,
    job_id: int,
) -> str | None:
    """The ts of the message in this thread that job `job_id` posted (its metadata)."""
    cursor: str | None = None
    for _ in range(MAX_REPLY_PAGES):
        try:
            response = await client.conversations_replies(
                channel=channel,
                ts=thread_ts,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
        except SlackApiError as exc:
            if slack_error(exc) == "thread_not_found":
                return None
            raise to_job_failure("conversations.replies", exc) from exc
        except SLACK_CALL_ERRORS as exc:
            raise to_job_failure("conversations.replies", exc) from exc
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == event_type and str(payload.get("job_id")) == str(
                job_id
            ):
                return str(message.get("ts"))
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None


class SlackReplyJob:
    """`JobHandler` of the `slack_message` kind."""

    def __init__(
        self,
        client: AsyncWebClient,
        service: AnswersMessages,
        conversations: ConversationStore | None = None,
        tickets: TicketStore | None = None,
    ) -> None:
        self._client = client
        self._service = service
        self._conversations = conversations
        self._tickets = tickets
        self._observers: list[TicketObserver] = []

    def add_observer(self, observer: TicketObserver) -> None:
        self._observers.append(observer)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        message = IncomingMessage.model_validate(job.payload["message"])
        assistant = bool(job.payload.get("assistant"))
        if job.is_retry:
            posted = await self.find_posted(message, job.id)
            if posted is not None:
                REPLIES_POSTED.labels(kind="already_posted").inc()
                await self._done_working(message)
                ticket_number = await self._ticket_number(message)
                if ticket_number:
                    await self._notify(ticket_number, TICKET_REPLIED)
                return {"ts": posted, "already_posted": True}
        working = not await self._person_has_it(message)
        if working:
            await self._show_working(message, assistant)
        try:
            reply = await self._service.handle(message)
        except LLMUnavailable as exc:
            raise JobFailed(f"LLM unavailable: {exc}") from exc
        if reply.silent:
            if working:
                await self._done_working(message)
            await self._notify(reply.ticket_number, TICKET_CUSTOMER_WROTE)
            REPLIES_POSTED.labels(kind="silent").inc()
            return {"ticket": reply.ticket_number, "silent": True}
        ts = await self._post_reply(message, reply, job.id)
        await self._done_working(message)
        if assistant:
            await self._set_title(message, reply)
        await self._notify(
            reply.ticket_number, TICKET_ESCALATED if reply.escalated else TICKET_REPLIED
        )
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
        ticket_number, escalated = await self._flag_ticket(message, error)
        if ticket_number and escalated:  # the card first: the post below may fail too
            await self._notify(ticket_number, TICKET_ESCALATED)
        await self._call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=message.channel_id,
                thread_ts=message.thread_ts,
                text=FOLLOW_UP_TEXT,
                blocks=follow_up_blocks(ticket_number),
                metadata=self._metadata(job.id, follow_up=True),
            ),
        )
        REPLIES_POSTED.labels(kind="follow_up").inc()
        await self._done_working(message)

    async def find_posted(self, message: IncomingMessage, job_id: int) -> str | None:
        """The ts of this job's reply if an earlier attempt already posted it."""
        return await find_marked_message(
            self._client, message.channel_id, message.thread_ts, REPLY_EVENT_TYPE, job_id
        )

    async def _post_reply(self, message: IncomingMessage, reply: SupportReply, job_id: int) -> str:
        text = plain_text_fallback(reply)
        try:
            response = await self._client.chat_postMessage(
                channel=message.channel_id,
                thread_ts=message.thread_ts,
                text=text,
                blocks=reply_blocks(reply),
                metadata=self._metadata(job_id),
                unfurl_links=False,
            )
        except SlackApiError as exc:
            if slack_error(exc) not in BLOCK_ERRORS:
                raise to_job_failure("chat.postMessage", exc) from exc
            # Slack refused our blocks: still answer, in plain text.
            logger.warning("blocks refused (%s); posting plain text", slack_error(exc))
            response = await self._call(
                "chat.postMessage",
                self._client.chat_postMessage(
                    channel=message.channel_id,
                    thread_ts=message.thread_ts,
                    text=text[:FALLBACK_TEXT_CHARS],
                    metadata=self._metadata(job_id),
                ),
            )
        except SLACK_CALL_ERRORS as exc:
            raise to_job_failure("chat.postMessage", exc) from exc
        REPLIES_POSTED.labels(kind="answer").inc()
        return str(response.get("ts"))

    async def _show_working(self, message: IncomingMessage, assistant: bool) -> None:
        """An assistant status in AI-app threads, an :eyes: reaction elsewhere."""
        if assistant:
            try:
                await self._client.assistant_threads_setStatus(
                    channel_id=message.channel_id,
                    thread_ts=message.thread_ts,
                    status=WORKING_STATUS,
                )
                return
            except SLACK_CALL_ERRORS as exc:
                logger.info("assistant status unavailable (%s); reacting instead", exc)
        try:
            await self._client.reactions_add(
                channel=message.channel_id, timestamp=message.message_ts, name=WORKING_REACTION
            )
        except SlackApiError as exc:
            if slack_error(exc) == "already_reacted":
                return
            failure = to_job_failure("reactions.add", exc)
            if failure.permanent:
                raise failure from exc
            logger.info("could not add the working reaction: %s", slack_error(exc))
        except SLACK_CALL_ERRORS as exc:
            logger.info("could not add the working reaction: %s", exc)

    async def _done_working(self, message: IncomingMessage) -> None:
        """Remove the reaction (cosmetic: a failure is only logged). The assistant status
        clears itself when the bot replies."""
        try:
            await self._client.reactions_remove(
                channel=message.channel_id, timestamp=message.message_ts, name=WORKING_REACTION
            )
        except SlackApiError as exc:
            if slack_error(exc) != "no_reaction":
                SLACK_API_ERRORS.labels(method="reactions.remove", error=slack_error(exc)).inc()
                logger.info("could not remove the working reaction: %s", slack_error(exc))
        except SLACK_CALL_ERRORS as exc:
            logger.info("could not remove the working reaction: %s", exc)

    async def _set_title(self, message: IncomingMessage, reply: SupportReply) -> None:
        topic = reply.intents[0].replace("_", " ") if reply.intents else "support request"
        try:
            await self._client.assistant_threads_setTitle(
                channel_id=message.channel_id,
                thread_ts=message.thread_ts,
                title=f"{reply.ticket_number} · {topic.capitalize()}",
            )
        except SLACK_CALL_ERRORS as exc:
            logger.info("could not set the assistant thread title: %s", exc)

    async def _call(self, method: str, call: Any) -> Any:
        try:
            return await call
        except SLACK_CALL_ERRORS as exc:
            raise to_job_failure(method, exc) from exc

    async def _flag_ticket(self, message: IncomingMessage, error: str) -> tuple[str | None, bool]:
        """Escalate the ticket (repeated failure); (its number, whether it was escalated now).

        A ticket a person already has (escalated or claimed) is left as it is.
        """
        if self._tickets is None:
            return None, False
        try:
            ticket = await self._find_ticket(message)
            if ticket is None:
                return None, False
            change = await self._tickets.escalate(ticket.id, f"the bot could not answer: {error}")
            return ticket.ticket_number, change.ok
        except Exception as exc:
            logger.warning("could not flag the ticket: %s", exc)
            return None, False

    async def _person_has_it(self, message: IncomingMessage) -> bool:
        """Whether a person has this thread's ticket (then no "working" signal is shown)."""
        ticket = await self._find_ticket(message)
        return ticket is not None and ticket.status in HUMAN_STATUSES

    async def _ticket_number(self, message: IncomingMessage) -> str | None:
        ticket = await self._find_ticket(message)
        return ticket.ticket_number if ticket is not None else None

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

    async def _notify(self, ticket_number: str, event: str) -> None:
        """Tell the observers; a failure is logged, never raised (the reply matters more)."""
        if not ticket_number:
            return
        for observer in self._observers:
            try:
                await observer.ticket_changed(ticket_number, event)
            except Exception as exc:
                logger.warning("ticket observer failed on %s (%s): %s", ticket_number, event, exc)

    @staticmethod
    def _metadata(job_id: int, follow_up: bool = False) -> dict[str, Any]:
        payload: dict[str, Any] = {"job_id": str(job_id)}
        if follow_up:
            payload["follow_up"] = True
        return {"event_type": REPLY_EVENT_TYPE, "event_payload": payload}


__all__ = [
    "FATAL_SLACK_ERRORS",
    "REPLY_EVENT_TYPE",
    "SLACK_CALL_ERRORS",
    "TICKET_CUSTOMER_WROTE",
    "TICKET_ESCALATED",
    "TICKET_REPLIED",
    "AnswersMessages",
    "SlackReplyJob",
    "TicketObserver",
    "slack_error",
    "to_job_failure",
]
