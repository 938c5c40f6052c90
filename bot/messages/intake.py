"""Slack event listeners: decide whether a message is for the bot, and queue it. Nothing else.

The app runs with `process_before_response=True` (see `bot.app`), so a listener finishes
before Slack gets its 200: it must stay fast, and it is. It makes one indexed lookup at
most (is this thread a ticket?) and one INSERT; the LLM work happens in `bot.worker`.

Which messages are answered (SPEC 3):
- every direct message (`message.im`);
- an @-mention anywhere the bot is (`app_mention`);
- a top-level message in a configured support channel (`message.channels`/`.groups`);
- a reply in a thread that already is a ticket (a follow-up needs no re-mention), unless
  a support agent wrote it (agents talk to the customer, not to the bot): an agent's
  reply (a configured agent id, or the agent who claimed the ticket) is recorded on the
  ticket as an `agent` turn and never answered. Whether the bot answers a customer's
  follow-up while a person has the ticket is the pipeline's call (`SupportService`).
  Only the ticket's owner has a conversation with the bot in its thread: anyone else's
  reply there is recorded as a `participant` turn (with its author) and never answered,
  never part of the owner's history; if they @-mention the bot, the pipeline tells them
  to ask in their own conversation (`SupportService`).
Never: the bot's own or another bot's messages (no loops), edits, deletions, joins and
every other subtype but plain messages, file shares and thread broadcasts. The exception:
an edit or deletion of a message in a triage card's thread queues a `relay_edit` job, so
an agent's reply relayed to the customer (or an internal note) follows it, and a
customer's edit or deletion in their ticket's thread queues a `mirror_edit` job (their
recorded turn and its mirror on the card follow).

Deduplication: the job's dedupe key is the message itself (team, channel, ts), not the
`event_id`. A redelivery (`X-Slack-Retry-Num`) carries the same message, and so does the
*other* event of a double delivery: a message that @-mentions the bot in a channel it reads
arrives both as `app_mention` and as `message.channels`, with two different event ids.
Keyed on the message, all of them collapse into one job and one answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.jobs import Jobs
from bot.metrics import EVENTS_ENQUEUED
from bot.triage.relay import MIRROR_EDIT_JOB, RELAY_EDIT_JOB, RELAY_JOB
from pipelines.support.contracts import IncomingMessage
from storage.conversations import NOTE, PARTICIPANT, ConversationStore, ThreadKey
from storage.models import Ticket

logger = logging.getLogger(__name__)

SLACK_MESSAGE_JOB = "slack_message"
AGENT_REPLY = "agent_reply"  # an agent's reply in a ticket thread: recorded, not answered
CARD_REPLY = "card_reply"  # ">" in a triage card's thread: relayed to the customer
CARD_NOTE = "card_note"  # anything else there: an internal note on the ticket

REPLY_MARKERS = (">", "&gt;")  # Slack sends ">" escaped
# someone else's reply in a customer's ticket thread: recorded, not answered
PARTICIPANT_REPLY = "participant_reply"
RECORDED_ROLES = {AGENT_REPLY: "agent", PARTICIPANT_REPLY: PARTICIPANT}
PRIVATE_CHANNEL_TYPES = frozenset({"im", "mpim", "group"})
ANSWERED_SUBTYPES: frozenset[str | None] = frozenset({None, "file_share", "thread_broadcast"})
EDITED, DELETED = "message_changed", "message_deleted"

Event = Mapping[str, Any]


@dataclass(frozen=True)
class Edit:
    """What a `message_changed` or `message_deleted` event says of the message it changed."""

    message: Mapping[str, Any]  # the message as edited (or as it was, when deleted)
    author: str | None
    source_ts: str
    thread_ts: str
    text: str  # the new text; "" when deleted
    unchanged: bool  # an edit that kept the text (an unfurl, an attachment)

    @classmethod
    def of(cls, event: Event) -> Edit:
        changed, previous = event.get("message") or {}, event.get("previous_message") or {}
        deleted = event.get("subtype") == DELETED
        return cls(
            message=changed or previous,
            author=changed.get("user") or previous.get("user"),
            source_ts=str(changed.get("ts") or event.get("deleted_ts") or previous.get("ts") or ""),
            thread_ts=str(changed.get("thread_ts") or previous.get("thread_ts") or ""),
            text="" if deleted else str(changed.get("text") or ""),
            unchanged=not deleted and changed.get("text") == previous.get("text"),
        )

    @staticmethod
    def event_ts(event: Event) -> str:
        """The edit's own time: one job per edit of a message."""
        return str(event.get("event_ts") or event.get("ts"))


@dataclass(frozen=True)
class IntakeConfig:
    support_channels: frozenset[str] = frozenset()
    agent_ids: frozenset[str] = frozenset()
    log_message_text: bool = False
    triage_channel: str | None = None  # replies in a card's thread: relayed or noted


def message_key(team_id: str, channel_id: str, message_ts: str) -> str:
    """The dedupe key and `request_id` of one Slack message (see the module docstring)."""
    return f"slack:{team_id}:{channel_id}:{message_ts}"


def is_from_a_bot(event: Event, bot_user_id: str | None) -> bool:
    return bool(
        event.get("bot_id")
        or event.get("bot_profile")
        or not event.get("user")
        or (bot_user_id is not None and event.get("user") == bot_user_id)
    )


def mentions(text: str, bot_user_id: str | None) -> bool:
    return bot_user_id is not None and f"<@{bot_user_id}" in text


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id is None:
        return text.strip()
    return re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text).strip()


def thread_root(event: Event) -> str:
    return str(event.get("thread_ts") or event["ts"])


def is_public(event: Event) -> bool:
    """Whether people other than the sender may read the channel.

    `app_mention` events carry no `channel_type`: then only a DM's id (D...) or a legacy
    private one (G...) counts as private, so an unknown channel is treated as public.
    """
    kind = event.get("channel_type")
    if kind:
        return kind not in PRIVATE_CHANNEL_TYPES
    return not str(event.get("channel") or "").startswith(("D", "G"))


def is_marked_reply(event: Event) -> bool:
    return str(event.get("text") or "").lstrip().startswith(REPLY_MARKERS)


def without_marker(text: str) -> str:
    text = text.lstrip()
    for marker in REPLY_MARKERS:
        if text.startswith(marker):
            return text[len(marker) :].strip()
    return text.strip()


def is_thread_reply(event: Event) -> bool:
    return bool(event.get("thread_ts")) and event.get("thread_ts") != event.get("ts")


def direct_reason(
    event: Event, event_type: str, bot_user_id: str | None, support_channels: Collection[str]
) -> str | None:
    """Why this message is for the bot without looking at the database, or None."""
    if event.get("subtype") not in ANSWERED_SUBTYPES or is_from_a_bot(event, bot_user_id):
        return None
    if event_type == "app_mention" or mentions(str(event.get("text") or ""), bot_user_id):
        return "mention"
    if event.get("channel_type") == "im":
        return "dm"
    if event.get("channel") in support_channels and not is_thread_reply(event):
        return "support_channel"
    return None


INGRESS_QUIET_S = 0.05  # an event in this window means Slack is sending


class Intake:
    """Turns Slack message events into queued jobs; the only thing the listeners call."""

    def __init__(self, jobs: Jobs, conversations: ConversationStore, config: IntakeConfig) -> None:
        self._jobs = jobs
        self._conversations = conversations
        self._config = config
        self._last_accepted = -INGRESS_QUIET_S

    def busy(self) -> bool:
        """True while events are arriving (one accepted in the last INGRESS_QUIET_S).

        An embedded worker shares this process's event loop: while Slack is sending, it
        runs one job at a time so that acknowledgements are not queued behind LLM and
        database work (Slack retries anything not acked within 3 s).
        """
        return time.monotonic() - self._last_accepted < INGRESS_QUIET_S

    async def reason(
        self, event: Event, event_type: str, team_id: str, bot_user_id: str | None
    ) -> str | None:
        """Why the bot should answer this message, or None to ignore it."""
        reason, _ = await self._route(event, event_type, team_id, bot_user_id)
        return None if reason in RECORDED_ROLES else reason

    async def _route(
        self, event: Event, event_type: str, team_id: str, bot_user_id: str | None
    ) -> tuple[str | None, Ticket | None]:
        """(`reason`, or a RECORDED_ROLES key for a reply recorded unanswered; the ticket)."""
        found = direct_reason(event, event_type, bot_user_id, self._config.support_channels)
        if found is not None or not is_thread_reply(event):
            return found, None
        if event.get("subtype") not in ANSWERED_SUBTYPES or is_from_a_bot(event, bot_user_id):
            return None, None
        key = ThreadKey(team_id, str(event["channel"]), thread_root(event))
        ticket = await self._conversations.find_ticket(key)
        if ticket is None and event.get("channel") == self._config.triage_channel:
            # The triage channel is the agents' (private): a reply in a card's thread is an
            # agent's, to the customer when it starts with ">", an internal note otherwise.
            ticket = await self._conversations.find_by_card(
                str(event["channel"]), thread_root(event)
            )
            if ticket is not None:
                return (CARD_REPLY if is_marked_reply(event) else CARD_NOTE), ticket
        if ticket is None:
            return None, None
        user = event.get("user")
        if user in self._config.agent_ids or (ticket.assignee == user and user is not None):
            return AGENT_REPLY, ticket
        if user != ticket.slack_user_id:
            return PARTICIPANT_REPLY, ticket
        return "follow_up", ticket

    async def _from_card(
        self, reason: str, ticket: Ticket, event: Event, team_id: str, event_id: str
    ) -> str:
        """A reply in a card's thread: a relay job (keyed by the message, so a redelivery
        relays nothing twice) or an internal note (stored once, never shown to the
        customer)."""
        user, ts = str(event.get("user") or ""), str(event["ts"])
        text = str(event.get("text") or "")
        if reason == CARD_NOTE:
            await self._conversations.add_turn(ticket.id, NOTE, ts, text, user)
            return self._count("internal_note", event, event_id, reason)
        reply = without_marker(text)
        if reply:
            await self._jobs.submit(
                RELAY_JOB,
                f"{RELAY_JOB}:{message_key(team_id, str(event['channel']), ts)}",
                {"ticket": ticket.ticket_number or "", "text": reply, "agent": user},
            )
        return self._count("card_reply", event, event_id, reason)

    async def _edited(
        self, event: Event, team_id: str, event_id: str, bot_user_id: str | None
    ) -> str:
        """An edit or deletion: in a card's thread, queue the job that follows it (no
        database read; the job finds whether the message was relayed or a note); by a
        customer in their ticket's thread, the job that follows it on the turn and card."""
        channel = str(event.get("channel") or "")
        edit = Edit.of(event)
        if (
            not edit.source_ts
            or is_from_a_bot(edit.message, bot_user_id)  # our own edits among them
            or edit.unchanged  # an unfurl
        ):
            return self._count("ignored", event, event_id)
        if channel != self._config.triage_channel:
            return await self._customer_edited(event, team_id, event_id, edit)
        if not edit.thread_ts or edit.thread_ts == edit.source_ts:
            return self._count("ignored", event, event_id)
        await self._jobs.submit(
            RELAY_EDIT_JOB,
            f"{RELAY_EDIT_JOB}:{channel}:{edit.source_ts}:{edit.event_ts(event)}",
            {
                "relay_key": f"{RELAY_JOB}:{message_key(team_id, channel, edit.source_ts)}",
                "source_ts": edit.source_ts,
                "text": without_marker(edit.text),
            },
        )
        return self._count("card_edit", event, event_id, "card_edit")

    async def _customer_edited(self, event: Event, team_id: str, event_id: str, edit: Edit) -> str:
        channel = str(event["channel"])
        ticket = await self._conversations.find_ticket(
            ThreadKey(team_id, channel, edit.thread_ts or edit.source_ts)
        )
        if ticket is None or edit.author != ticket.slack_user_id:
            return self._count("ignored", event, event_id)
        await self._jobs.submit(
            MIRROR_EDIT_JOB,
            f"{MIRROR_EDIT_JOB}:{channel}:{edit.source_ts}:{edit.event_ts(event)}",
            {"ticket_id": ticket.id, "source_ts": edit.source_ts, "text": edit.text},
        )
        return self._count("customer_edit", event, event_id, "customer_edit")

    async def accept(
        self,
        event: Event,
        *,
        event_type: str,
        team_id: str,
        bot_user_id: str | None,
        event_id: str = "",
        assistant: bool = False,
    ) -> str:
        """Queue the message when it is for the bot; the outcome, for logs and metrics."""
        self._last_accepted = time.monotonic()
        if assistant:
            reason = None if is_from_a_bot(event, bot_user_id) else "assistant"
        elif event.get("subtype") in (EDITED, DELETED):
            return await self._edited(event, team_id, event_id, bot_user_id)
        else:
            reason, ticket = await self._route(event, event_type, team_id, bot_user_id)
            if reason in (CARD_REPLY, CARD_NOTE) and ticket is not None:
                return await self._from_card(reason, ticket, event, team_id, event_id)
            if reason in RECORDED_ROLES and ticket is not None:
                role = RECORDED_ROLES[reason]
                await self._conversations.add_turn(
                    ticket.id,
                    role,
                    str(event["ts"]),
                    str(event.get("text") or ""),
                    str(event.get("user") or ""),
                )
                return self._count(f"{role}_turn", event, event_id, reason)
        if reason is None:
            return self._count("ignored", event, event_id)
        key = message_key(team_id, str(event["channel"]), str(event["ts"]))
        message = IncomingMessage(
            request_id=key,
            team_id=team_id,
            channel_id=str(event["channel"]),
            thread_ts=thread_root(event),
            message_ts=str(event["ts"]),
            user_id=str(event["user"]),
            text=strip_mention(str(event.get("text") or ""), bot_user_id),
            public=is_public(event),
        )
        payload = {
            "message": message.model_dump(mode="json"),
            "event_id": event_id,
            "event_type": event_type,
            "reason": reason,
            "assistant": assistant,
        }
        created = await self._jobs.submit(SLACK_MESSAGE_JOB, key, payload)
        return self._count("enqueued" if created else "duplicate", event, event_id, reason)

    def _count(self, outcome: str, event: Event, event_id: str, reason: str | None = None) -> str:
        EVENTS_ENQUEUED.labels(outcome=outcome).inc()
        level = logging.DEBUG if outcome in ("ignored", "enqueued") else logging.INFO
        if logger.isEnabledFor(level):  # on the ack path: build the fields only when logged
            fields = {
                "event_id": event_id,
                "channel": event.get("channel"),
                "ts": event.get("ts"),
                "subtype": event.get("subtype"),
                "reason": reason,
            }
            if self._config.log_message_text:  # never by default: texts are customer data
                fields["text"] = event.get("text")
            logger.log(level, "message %s", outcome, extra=fields)
        return outcome


def register_listeners(app: AsyncApp, intake: Intake) -> None:
    """Subscribe the intake to `app_mention` and every `message` event.

    Every `message` event is listened to, subtypes included, so that Bolt acknowledges
    edits and deletions with a 200 too (an unhandled event would be answered 404, and
    Slack would redeliver it).
    """

    # `message` first: Bolt tries the listeners in order, building every matcher's kwargs,
    # and messages are most of the traffic. The two matchers never both match.
    app.event("message")(intake_listener(intake, "message"))
    app.event("app_mention")(intake_listener(intake, "app_mention"))


def intake_listener(
    intake: Intake, event_type: str, *, assistant: bool = False
) -> Callable[[dict[str, Any], dict[str, Any], AsyncBoltContext], Awaitable[None]]:
    """A Bolt listener that hands its event to the intake (and nothing else)."""

    async def listener(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await intake.accept(
            event,
            event_type=event_type,
            team_id=_team_id(body, context),
            bot_user_id=context.bot_user_id,
            event_id=str(body.get("event_id", "")),
            assistant=assistant,
        )

    return listener


def _team_id(body: Mapping[str, Any], context: AsyncBoltContext) -> str:
    return str(body.get("team_id") or context.team_id or "")


__all__ = [
    "AGENT_REPLY",
    "PARTICIPANT_REPLY",
    "SLACK_MESSAGE_JOB",
    "Intake",
    "IntakeConfig",
    "direct_reason",
    "intake_listener",
    "is_from_a_bot",
    "is_public",
    "message_key",
    "register_listeners",
    "strip_mention",
]
