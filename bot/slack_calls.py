"""Every call a job makes to Slack's Web API: how a failure is classified, what `text` may
carry, and how a posted message is tagged so that a retry finds it instead of posting twice.

Failures (`to_job_failure`, used by `call`):
- 429 is waited out by the client's retry handler (Retry-After); if it persists, the job
  retries no sooner than Retry-After;
- errors retrying cannot fix (`FATAL_SLACK_ERRORS`: `not_in_channel`, `invalid_auth`, …)
  dead-letter the job at once with what to do about it, and tell nobody (unless the
  caller names them in `notify_on`: /faq tells its requester by DM that it cannot post);
- anything else retries with backoff. Every failure is counted in `SLACK_API_ERRORS`.

`call(method, request, ...)` awaits one call and applies that classification; the common
variants are arguments, not new try/except blocks: `tolerate` (Slack errors that are an
answer, e.g. `already_reacted`: the call returns `Refused(error)`) and `best_effort`
(cosmetic calls such as reactions, assistant status, permalinks: a failure is counted,
logged and returned as `Refused`). `SlackCalls` binds a client and those options for a job.

Text: `SlackCalls.post` and `.update` escape `text` (`bot.blocks.escape`), so a file name
like `<!channel> read me.md`, a title, a customer's words or a model's output can never
ping, mention or fake a link in a notification. Only `Mrkdwn` is sent as is: text the bot
built as mrkdwn whose untrusted parts it already escaped (mentions it means, such as
`<@U…>`, `<!here>`, `<#C…>`; the views documented as escaping, e.g.
`bot.messages.views.plain_text_fallback`, `bot.triage.views.card_text`,
`escalation_notice`). An operation on a `Mrkdwn` (slicing, `+`) gives a plain `str`, which
is then escaped again: ugly, never unsafe.

Tagged messages ("posted exactly once"): a job posts with `MessageTag.metadata()` (the job
id in the message metadata); a retry first calls `find_posted`, which pages through the
thread (`conversations.replies`) or the channel since `oldest` (`conversations.history`),
at most `MAX_PAGES` pages, and returns the earlier post's ts if an interrupted attempt
got that far.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import escape
from bot.metrics import SLACK_API_ERRORS
from bot.worker import JobFailed

logger = logging.getLogger(__name__)

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
# Slack refused the message's blocks (the text alone may still go out).
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
# What a failed call to the Web API raises through slack-sdk's aiohttp client.
SLACK_CALL_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)

MAX_PAGES = 10  # of a thread or of a channel's history, when looking for a tagged message
PAGE_SIZE = 200
MEMBERS_PAGE_SIZE = 1000  # conversations.members allows up to 1000 a page


# --- classifying failures ---------------------------------------------------------------


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


def to_job_failure(
    method: str, exc: Exception, *, notify_on: Collection[str] = frozenset()
) -> JobFailed:
    """Classify a failed Slack call (see the module docstring) and count it.

    `notify_on`: errors retrying cannot fix that are still worth the handler's `give_up`
    message (which may reach the person another way, e.g. by DM).
    """
    if not isinstance(exc, SlackApiError):
        SLACK_API_ERRORS.labels(method=method, error=type(exc).__name__).inc()
        return JobFailed(f"Slack {method}: {type(exc).__name__}: {exc}")
    error = slack_error(exc)
    SLACK_API_ERRORS.labels(method=method, error=error).inc()
    if error in FATAL_SLACK_ERRORS:
        return JobFailed(
            f"Slack {method}: {error} ({FATAL_SLACK_ERRORS[error]})",
            permanent=True,
            can_notify=error in notify_on,
        )
    retry_in = None
    if error == "ratelimited" or slack_status(exc) == 429:
        retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get(
            "retry-after"
        )
        retry_in = float(retry_after) if retry_after else 30.0
    return JobFailed(f"Slack {method}: {error}", retry_in=retry_in)


@dataclass(frozen=True)
class Refused:
    """A call that failed in a way its caller accepted (`tolerate`, `best_effort`);
    `error` is Slack's code, or the exception's type."""

    error: str


async def call(
    method: str,
    request: Awaitable[Any],
    *,
    tolerate: Collection[str] = (),
    best_effort: bool = False,
    notify_on: Collection[str] = frozenset(),
) -> Any:
    """Await one Web API call: its response, or `Refused` for a tolerated error (not
    counted, not logged) or any failure of a `best_effort` call (counted, logged);
    otherwise the failure is raised as `JobFailed` (`to_job_failure`)."""
    try:
        return await request
    except SLACK_CALL_ERRORS as exc:
        error = slack_error(exc)
        if error in tolerate:
            return Refused(error)
        failure = to_job_failure(method, exc, notify_on=notify_on)
        if not best_effort:
            raise failure from exc
        logger.info("Slack %s failed; going on without it: %s", method, error)
        return Refused(error)


# --- text -------------------------------------------------------------------------------


class Mrkdwn(str):
    """Text the bot built as mrkdwn, untrusted parts already escaped: sent as is."""

    __slots__ = ()


def message_text(text: str) -> str:
    """The `text` to send: `Mrkdwn` as is, anything else escaped."""
    return str(text) if isinstance(text, Mrkdwn) else escape(text)


# --- tagged messages --------------------------------------------------------------------


@dataclass(frozen=True)
class MessageTag:
    """Marks a message as posted by one job (or for one ticket) in its metadata.

    `fields` are what identifies the post (e.g. `job_id`); `metadata(**extra)` may add
    fields that describe it (a page number) without being matched.
    """

    event_type: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def metadata(self, **extra: Any) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_payload": {**self.fields, **extra}}

    def matches(self, message: Mapping[str, Any]) -> bool:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        return metadata.get("event_type") == self.event_type and all(
            str(payload.get(key)) == value for key, value in self.fields.items()
        )


def job_tag(event_type: str, job_id: int) -> MessageTag:
    """The tag of what job `job_id` posts."""
    return MessageTag(event_type, {"job_id": str(job_id)})


class Search(TypedDict, total=False):
    """Where to look for tagged messages: a thread (`thread_ts`), else the channel's top
    level since `oldest`; `best_effort`: a failure to look finds nothing."""

    thread_ts: str
    oldest: str
    best_effort: bool


@dataclass(frozen=True)
class TaggedMessage:
    """A message found by its tag: its ts and its metadata's payload (e.g. a page number)."""

    ts: str
    payload: Mapping[str, Any]


class SlackCalls:
    """One job's calls to Slack: `call` with the job's `notify_on`, posts and edits whose
    `text` is escaped, and the search for its tagged messages."""

    def __init__(self, client: AsyncWebClient, *, notify_on: Collection[str] = frozenset()) -> None:
        self.client = client
        self._notify_on = frozenset(notify_on)

    async def call(
        self,
        method: str,
        request: Awaitable[Any],
        *,
        tolerate: Collection[str] = (),
        best_effort: bool = False,
    ) -> Any:
        return await call(
            method, request, tolerate=tolerate, best_effort=best_effort, notify_on=self._notify_on
        )

    async def post(
        self,
        channel: str,
        text: str,
        *,
        tolerate: Collection[str] = (),
        best_effort: bool = False,
        **fields: Any,
    ) -> Any:
        """`chat.postMessage` (`fields`: thread_ts, blocks, metadata, unfurl_links, …)."""
        request = self.client.chat_postMessage(channel=channel, text=message_text(text), **fields)
        return await self.call(
            "chat.postMessage", request, tolerate=tolerate, best_effort=best_effort
        )

    async def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        tolerate: Collection[str] = (),
        best_effort: bool = False,
        **fields: Any,
    ) -> Any:
        """`chat.update` (`fields`: blocks, metadata, …)."""
        request = self.client.chat_update(channel=channel, ts=ts, text=message_text(text), **fields)
        return await self.call("chat.update", request, tolerate=tolerate, best_effort=best_effort)

    async def find_tagged(
        self, channel: str, tag: MessageTag, *, limit: int | None = None, **search: Unpack[Search]
    ) -> list[TaggedMessage]:
        """The messages carrying `tag` where `search` says (a thread that is gone holds
        none), at most `limit` of them, read in at most `MAX_PAGES` pages."""
        found: list[TaggedMessage] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            response = await self._read_page(channel, cursor, search)
            if isinstance(response, Refused):
                return found
            for message in response.get("messages") or []:
                if tag.matches(message):
                    payload = (message.get("metadata") or {}).get("event_payload") or {}
                    found.append(TaggedMessage(str(message.get("ts")), payload))
                    if limit is not None and len(found) >= limit:
                        return found
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found

    async def find_posted(
        self, channel: str, tag: MessageTag, **search: Unpack[Search]
    ) -> str | None:
        """The ts of the first message carrying `tag` (see `find_tagged`), or None."""
        found = await self.find_tagged(channel, tag, limit=1, **search)
        return found[0].ts if found else None

    async def post_in_thread_once(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        tag: MessageTag,
        *,
        retry: bool,
        about: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> tuple[str, bool]:
        """Post `text` in a thread tagged with `tag`, unless this is a `retry` and a message
        with the tag is there already: (its ts, whether it was posted now). `about`: extra
        metadata fields (not matched)."""
        if retry:
            found = await self.find_posted(channel, tag, thread_ts=thread_ts)
            if found is not None:
                return found, False
        response = await self.post(
            channel, text, thread_ts=thread_ts, metadata=tag.metadata(**(about or {})), **fields
        )
        return str(response.get("ts")), True

    async def _read_page(self, channel: str, cursor: str | None, search: Search) -> Any:
        page: dict[str, Any] = {
            "channel": channel,
            "include_all_metadata": True,
            "limit": PAGE_SIZE,
            "cursor": cursor,
        }
        best_effort = search.get("best_effort", False)
        if "thread_ts" in search:
            return await self.call(
                "conversations.replies",
                self.client.conversations_replies(ts=search["thread_ts"], **page),
                tolerate={"thread_not_found"},
                best_effort=best_effort,
            )
        return await self.call(
            "conversations.history",
            self.client.conversations_history(oldest=search.get("oldest"), **page),
            best_effort=best_effort,
        )


async def member_pages(
    client: AsyncWebClient, channel: str, *, max_pages: int
) -> AsyncIterator[tuple[list[str], bool]]:
    """A channel's members (`conversations.members`), a page at a time, each with whether
    more follow; at most `max_pages`. Slack's errors are left to the caller."""
    cursor: str | None = None
    for _ in range(max_pages):
        response = await client.conversations_members(
            channel=channel, limit=MEMBERS_PAGE_SIZE, cursor=cursor
        )
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        yield [str(member) for member in response.get("members") or []], cursor is not None
        if cursor is None:
            return


__all__ = [
    "BLOCK_ERRORS",
    "FATAL_SLACK_ERRORS",
    "MAX_PAGES",
    "SLACK_CALL_ERRORS",
    "MessageTag",
    "Mrkdwn",
    "Refused",
    "Search",
    "SlackCalls",
    "TaggedMessage",
    "call",
    "job_tag",
    "member_pages",
    "message_text",
    "slack_error",
    "slack_status",
    "to_job_failure",
]
