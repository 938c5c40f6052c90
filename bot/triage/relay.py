"""Reply to the customer from the triage card, and the customer's words back on the card.

Two ways to reply: *Reply to customer* on the card (a modal), or a message in the card's
thread starting with ">" (`bot.messages.intake`; anything else there is an internal
note, stored on the ticket and never shown to the customer). While a person has the
ticket, what the customer writes is mirrored into the card's thread (`MirrorJob`).

The card of an escalated or claimed ticket has *Reply to customer* (agents only). It
opens a modal holding the suggested reply of the ticket's brief, if there is one, to
send as is or edit. The submission queues a `relay_to_customer` job keyed by the modal's
view id, so a replayed submission sends nothing twice; the job posts into the customer's
thread (DMs with the bot included) under the agent's name and picture
(`chat:write.customize`), tags the message with the job id (a retry finds it), records
it as the agent's turn, and says so in the card's thread.

Edits and deletions follow: when an agent edits or deletes a ">" message in the card's
thread, intake queues a `relay_edit` job (keyed by the event), which finds the relayed
copy through the relay job's result and updates or deletes it in the customer's thread,
and the agent's recorded turn with it (an edited or deleted internal note: its stored
note). A reply sent from the modal has no source message, so nothing can edit it. The
other way, a customer's edit or deletion updates their recorded turn and its mirror on
the card (`mirror_edit`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.blocks import escape, input_block, modal
from bot.interactions import Click, submitted_text, tell
from bot.slack_calls import MessageTag, Mrkdwn, Refused, SlackCalls, call, job_tag
from bot.triage.views import NOT_AN_AGENT, REPLY_TO_CUSTOMER_ACTION
from bot.worker import JobFailed
from storage.conversations import CUSTOMER, NOTE, ConversationStore
from storage.queue import DEAD, DONE, LeasedJob

if TYPE_CHECKING:
    from bot.triage.feature import TriageFeature

logger = logging.getLogger(__name__)

RELAY_MODAL = "triage_relay"
RELAY_JOB = "relay_to_customer"
RELAY_EVENT_TYPE = "supportbot_relay"
RELAY_EDIT_JOB = "relay_edit"
MIRROR_JOB = "mirror_to_card"
MIRROR_EDIT_JOB = "mirror_edit"
MIRROR_EVENT_TYPE = "supportbot_mirror"
TEXT_BLOCK, TEXT_ACTION = "relay_text", "text"
MAX_REPLY_CHARS = 3000


def relay_modal(number: str, draft: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": TEXT_ACTION,
                               "multiline": True, "max_length": MAX_REPLY_CHARS}  # fmt: skip
    if draft:
        element["initial_value"] = draft[:MAX_REPLY_CHARS]
    return modal(
        f"Reply on {number}"[:24],
        [input_block(TEXT_BLOCK, "Your reply (sent under your name)", element)],
        submit="Send",
        close="Cancel",
        callback_id=RELAY_MODAL,
        private_metadata=number,
    )


def quoted(text: str, limit: int = 2500) -> str:
    """Someone's words on one line, escaped and cut, for a `>` quote in the card's thread."""
    return escape(" ".join(text.split()))[:limit]


def register_relay(app: AsyncApp, triage: TriageFeature) -> None:
    async def on_reply(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = Click.of(body, action)
        if not await triage.directory.is_agent(click.user):
            await tell(triage.slack.client, click.user, NOT_AN_AGENT,
                       channel=click.channel, within_s=1.5)  # fmt: skip
            return
        ticket = await triage.store.by_number(click.value)
        trigger = str(body.get("trigger_id") or "")
        if ticket is None or not trigger:
            return
        brief = await triage.store.brief(ticket.id)
        view = relay_modal(ticket.number, brief.draft if brief else None)
        await call("views.open", triage.slack.client.views_open(trigger_id=trigger, view=view),
                   best_effort=True)  # fmt: skip

    async def on_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = submitted_text(view, TEXT_BLOCK, TEXT_ACTION)
        user = str((body.get("user") or {}).get("id") or "")
        if not text.strip():
            await ack(response_action="errors", errors={TEXT_BLOCK: "Write the reply first."})
            return
        if not await triage.directory.is_agent(user):
            await ack(response_action="errors",
                      errors={TEXT_BLOCK: "Only the support team can reply from a card."})  # fmt: skip
            return
        await ack()
        number = str(view.get("private_metadata") or "")
        await triage.slack.submit(
            RELAY_JOB,
            f"{RELAY_JOB}:{view.get('id') or number}",
            {"ticket": number, "text": text.strip()[:MAX_REPLY_CHARS], "agent": user},
        )

    app.action(REPLY_TO_CUSTOMER_ACTION)(on_reply)
    app.view(RELAY_MODAL)(on_submit)


class RelayJob:
    """`JobHandler` of `relay_to_customer`: post an agent's reply in the customer's thread."""

    def __init__(self, triage: TriageFeature) -> None:
        self._triage = triage

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        triage = self._triage
        slack = SlackCalls(triage.slack.client)
        ticket = await triage.store.by_number(str(job.payload["ticket"]))
        if ticket is None:
            return {"skipped": "no such ticket"}
        agent, text = str(job.payload["agent"]), str(job.payload["text"])
        tag = job_tag(RELAY_EVENT_TYPE, job.id)
        ts = None
        if job.is_retry:
            ts = await slack.find_posted(ticket.channel_id, tag, thread_ts=ticket.thread_ts)
        if ts is None:
            name, icon = await self._who(agent)
            sender: dict[str, Any] = {"username": name}
            if icon:
                sender["icon_url"] = icon
            response = await slack.post(
                ticket.channel_id, text, thread_ts=ticket.thread_ts, metadata=tag.metadata(),
                **sender,
            )  # fmt: skip
            ts = str(response.get("ts"))
        sessions = triage.slack.core.db.sessions
        await ConversationStore(sessions).add_turn(ticket.id, "agent", ts, text, agent)
        if ticket.triage_channel and ticket.card_ts:
            await slack.post(
                ticket.triage_channel,
                f"Sent to the customer by <@{agent}>:\n>{quoted(text, 1500)}",
                thread_ts=ticket.card_ts,
                best_effort=True,
            )
        return {"ts": ts}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("an agent's reply was not delivered: %s", error)

    async def _who(self, agent: str) -> tuple[str, str | None]:
        info = await call("users.info", self._triage.slack.client.users_info(user=agent),
                          best_effort=True)  # fmt: skip
        user = info.get("user") if hasattr(info, "get") else None
        profile = (user or {}).get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or (user or {}).get("name")
        return str(name or "Support team"), profile.get("image_72")


class RelayEditJob:
    """`JobHandler` of `relay_edit`: an edited or deleted card-thread message, followed.

    Payload: `relay_key` (the dedupe key a ">" message's relay job has), `source_ts`
    (the message in the card's thread), `text` (the new text without the marker; empty
    when deleted or emptied: the customer's copy is deleted).
    """

    def __init__(self, triage: TriageFeature) -> None:
        self._triage = triage

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        triage = self._triage
        text = str(job.payload.get("text") or "").strip()[:MAX_REPLY_CHARS]
        conversations = ConversationStore(triage.slack.core.db.sessions)
        relay = await triage.slack.queue.by_dedupe_key(str(job.payload["relay_key"]))
        if relay is None:  # never relayed: an internal note (or nothing of ours)
            noted = await conversations.revise_turn(
                NOTE, str(job.payload["source_ts"]), text or None
            )
            return {"notes": noted}
        if relay.status != DONE:
            if relay.status == DEAD:
                return {"skipped": "the reply was never delivered"}
            raise JobFailed("the reply is still being sent", retry_in=1.0)
        relayed_ts = str((relay.result or {}).get("ts") or "")
        ticket = await triage.store.by_number(str(relay.payload.get("ticket") or ""))
        if ticket is None or not relayed_ts:
            return {"skipped": "no relayed message"}
        slack = SlackCalls(triage.slack.client)
        if text:
            response = await slack.update(ticket.channel_id, relayed_ts, text,
                                          tolerate={"message_not_found"})  # fmt: skip
        else:
            response = await slack.call(
                "chat.delete",
                slack.client.chat_delete(channel=ticket.channel_id, ts=relayed_ts),
                tolerate={"message_not_found"},
            )
        gone = isinstance(response, Refused)  # the customer's copy was deleted already
        await conversations.revise_turn("agent", relayed_ts, text or None)
        return {"relayed_ts": relayed_ts, "edited" if text else "deleted": not gone}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("an edit of an agent's reply did not reach the customer: %s", error)


class MirrorEditJob:
    """`JobHandler` of `mirror_edit`: a customer edited or deleted a message in their
    thread. The recorded turn follows (the bot's history is what they now say), and so
    does its mirror in the card's thread, found by its `source_ts` metadata.

    Payload: `ticket_id`, `source_ts`, `text` (empty: deleted).
    """

    def __init__(self, triage: TriageFeature) -> None:
        self._triage = triage

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        triage = self._triage
        source_ts = str(job.payload["source_ts"])
        text = str(job.payload.get("text") or "").strip()
        conversations = ConversationStore(triage.slack.core.db.sessions)
        ticket_id = int(job.payload["ticket_id"])
        revised = await conversations.revise_turn(
            CUSTOMER, source_ts, text or None, ticket_id=ticket_id
        )
        ticket = await triage.store.get(ticket_id)
        if ticket is None or not ticket.triage_channel or not ticket.card_ts:
            return {"turns": revised, "mirror": None}
        slack = SlackCalls(triage.slack.client)
        mirror_tag = MessageTag(MIRROR_EVENT_TYPE, {"source_ts": source_ts})
        found = await slack.find_tagged(
            ticket.triage_channel, mirror_tag, limit=1, thread_ts=ticket.card_ts
        )
        if not found:
            return {"turns": revised, "mirror": None}
        who = f"<@{ticket.slack_user_id}>"
        update = (
            f"{who} edited their message:\n>{quoted(text)}" if text else f"{who} deleted a message."
        )
        await slack.update(ticket.triage_channel, found[0].ts, Mrkdwn(update),
                           tolerate={"message_not_found"})  # fmt: skip
        return {"turns": revised, "mirror": found[0].ts}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("a customer's edit was not followed on the card: %s", error)


class MirrorJob:
    """`JobHandler` of `mirror_to_card`: the customer's latest words, in the card's thread.

    Queued when the customer writes while a person has the ticket (keyed by the ticket's
    version, which each such message changes), so the agent follows the conversation on
    the card; tagged with the job id, so a retry posts nothing twice.
    """

    def __init__(self, triage: TriageFeature) -> None:
        self._triage = triage

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        triage = self._triage
        ticket = await triage.store.get(int(job.payload["ticket_id"]))
        if ticket is None or not ticket.triage_channel or not ticket.card_ts:
            return {"skipped": "no card"}
        latest = await triage.store.latest_turn_at(ticket.id)
        if latest is None or not latest[1]:
            return {"skipped": "nothing written"}
        source_ts, text = latest
        _, posted = await SlackCalls(triage.slack.client).post_in_thread_once(
            ticket.triage_channel,
            ticket.card_ts,
            Mrkdwn(f"<@{ticket.slack_user_id}> wrote:\n>{quoted(text)}"),
            job_tag(MIRROR_EVENT_TYPE, job.id),
            retry=job.is_retry,
            about={"source_ts": source_ts},  # what a later edit of it finds (MirrorEditJob)
        )
        return {"mirrored": ticket.number, "already_posted": not posted}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("a customer's message was not mirrored to the card: %s", error)


__all__ = [
    "MIRROR_EDIT_JOB",
    "MIRROR_JOB",
    "RELAY_EDIT_JOB",
    "RELAY_JOB",
    "MirrorEditJob",
    "MirrorJob",
    "RelayEditJob",
    "RelayJob",
    "register_relay",
    "relay_modal",
]
