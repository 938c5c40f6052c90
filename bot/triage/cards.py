"""The `triage_card` job: post or refresh one ticket's card in the triage channel.

`bot.triage.feature.TriageFeature` enqueues a refresh whenever a ticket changes (one job per
ticket version and event); the job renders the ticket as it is *now* in the database and
renders again if it changed meanwhile, so concurrent refreshes converge on the latest
state. A card is posted exactly once: the job reserves the ticket's `triage_ts` with a
marker (`storage.ticket_info.card_marker`, a compare-and-set in the database); a job that
finds another's fresh marker retries shortly; one that takes over a stale or its own
earlier marker first looks for an already-posted card (message metadata,
`conversations.history`). An `escalated` event also announces the escalation to the
agents in the card's thread, once.
Kept apart from `bot.triage.feature` (the listeners) because it runs in the worker, not before
the response to a click, and its reservation protocol is easiest to read on its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_calls import MessageTag, Mrkdwn, Refused, SlackCalls, job_tag
from bot.triage.views import (
    CARD_EVENT_TYPE,
    REASSIGN_ACTION,
    assigned_note,
    card_blocks,
    card_text,
    escalation_notice,
    is_direct_message,
    thread_url_fallback,
)
from bot.worker import JobFailed
from storage.models import utcnow
from storage.queue import LeasedJob
from storage.sla import SlaClockView, SlaPolicy, ticket_sla
from storage.ticket_info import (
    CLAIMED,
    ESCALATED,
    TicketInfo,
    card_marker,
    card_marker_time,
    card_marker_token,
    is_card_marker,
)
from storage.tickets import TicketStore

logger = logging.getLogger(__name__)

TRIAGE_CARD_JOB = "triage_card"
TRIAGE_EVENT_TYPE = "supportbot_triage_event"

CARD_RESERVATION_SECONDS = 60.0


def card_tag(ticket: TicketInfo) -> MessageTag:
    """A ticket's card, found again by the ticket's id."""
    return MessageTag(CARD_EVENT_TYPE, {"ticket_id": str(ticket.id)})


class TriageCardJob:
    """`JobHandler` of `triage_card`: create or refresh one ticket's card.

    Payload: `ticket_id`, and `event` (`escalated` also announces the escalation to the
    agents in the card's thread, once).
    """

    def __init__(
        self,
        client: AsyncWebClient,
        store: TicketStore,
        triage_channel: str | None,
        agent_ids: Sequence[str] = (),
        *,
        clock: Callable[[], float] = time.time,
        sla_policy: SlaPolicy | None = None,
        sla_clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._slack = SlackCalls(client)
        self._store = store
        self._channel = triage_channel
        self._agent_ids = list(agent_ids)
        self._clock = clock
        self._sla_policy = sla_policy
        self._sla_clock = sla_clock

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        if not self._channel:
            return {"skipped": "SUPPORT_TRIAGE_CHANNEL is not set"}
        ticket_id = int(job.payload["ticket_id"])
        ticket = await self._store.get(ticket_id)
        if ticket is None:
            return {"skipped": "no such ticket"}
        thread_url = None if is_direct_message(ticket) else await self.thread_url(ticket)
        channel, ts, rendered = await self._ensure_card(job, ticket, thread_url)
        await self._refresh(ticket_id, channel, ts, rendered, thread_url)
        notified = None
        event = job.payload.get("event")
        if event == ESCALATED:
            notified = await self._notify_agents(job, channel, ts, ticket_id)
        elif event == REASSIGN_ACTION:
            notified = await self._note_assignee(job, channel, ts, ticket_id)
        return {"ticket": ticket.number, "card_ts": ts, "notified": notified}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("triage card of ticket %s not updated: %s", job.payload, error)

    async def thread_url(self, ticket: TicketInfo) -> str | None:
        """The customer's thread: `chat.getPermalink`, or a link built from the ids."""
        response = await self._slack.call(
            "chat.getPermalink",
            self._slack.client.chat_getPermalink(
                channel=ticket.channel_id, message_ts=ticket.thread_ts
            ),
            best_effort=True,
        )
        if not isinstance(response, Refused) and response.get("permalink"):
            return str(response["permalink"])
        return thread_url_fallback(ticket.team_id, ticket.channel_id, ticket.thread_ts)

    async def _ensure_card(
        self, job: LeasedJob, ticket: TicketInfo, thread_url: str | None
    ) -> tuple[str, str, str | None]:
        """(channel, card ts, version rendered if the card was just posted)."""
        assert self._channel is not None
        for _ in range(4):
            current = ticket.triage_ts
            if current and not is_card_marker(current):
                return ticket.triage_channel or self._channel, current, None
            since: float | None = None
            if current:  # reserved by a job: ours from an earlier attempt, or another's
                since = card_marker_time(current) or 0.0
                mine = card_marker_token(current) == str(job.id)
                if not mine and self._clock() - since < CARD_RESERVATION_SECONDS:
                    raise JobFailed(
                        f"the card of {ticket.number} is being posted by job "
                        f"{card_marker_token(current)}",
                        retry_in=1.0,
                    )
            marker = card_marker(str(job.id), self._clock())
            if not await self._store.reserve_card(ticket.id, current, marker):
                found = await self._store.get(ticket.id)
                if found is None:
                    raise JobFailed("the ticket is gone", permanent=True, can_notify=False)
                ticket = found
                continue
            # A marker we take over may hide a card that was posted but never recorded.
            existing = await self._find_card(ticket, since) if since is not None else None
            if existing is not None:
                ts, rendered = existing, None
            else:
                ts = await self._post_card(ticket, thread_url)
                rendered = ticket.version
            if not await self._store.attach_card(ticket.id, marker, self._channel, ts):
                logger.warning("ticket %s: card reservation lost while posting", ticket.number)
            return self._channel, ts, rendered
        raise JobFailed(f"could not reserve the card of {ticket.number}", retry_in=1.0)

    async def _post_card(self, ticket: TicketInfo, thread_url: str | None) -> str:
        response = await self._slack.post(
            self._channel or "",
            Mrkdwn(card_text(ticket)),  # escaped by the view
            blocks=card_blocks(
                ticket, thread_url, await self._store.latest_turn(ticket.id), sla=self._sla(ticket)
            ),
            metadata=card_tag(ticket).metadata(ticket=ticket.number),
            unfurl_links=False,
        )
        return str(response.get("ts"))

    def _sla(self, ticket: TicketInfo) -> list[SlaClockView]:
        """The SLA lines while a person has the ticket (once resolved or handed back, the
        clock is over; its breaches stay in the figures)."""
        if self._sla_policy is None or not self._sla_policy.enabled or not ticket.bot_paused:
            return []
        return ticket_sla(ticket, self._sla_policy, self._sla_clock())

    async def _find_card(self, ticket: TicketInfo, since: float) -> str | None:
        oldest = f"{max(0.0, since - 5):.6f}"
        return await self._slack.find_posted(self._channel or "", card_tag(ticket), oldest=oldest)

    async def _refresh(
        self,
        ticket_id: int,
        channel: str,
        ts: str,
        rendered: str | None,
        thread_url: str | None,
    ) -> None:
        """Edit the card until it shows the ticket's latest version (a few rounds)."""
        for _ in range(3):
            ticket = await self._store.get(ticket_id)
            if ticket is None or ticket.version == rendered:
                return
            latest = await self._store.latest_turn(ticket_id)
            votes = await self._store.votes(ticket_id)
            brief = await self._store.brief(ticket_id)
            response = await self._slack.update(
                channel,
                ts,
                Mrkdwn(card_text(ticket)),
                blocks=card_blocks(ticket, thread_url, latest, votes, brief, self._sla(ticket)),
                tolerate={"message_not_found"},
            )
            if isinstance(response, Refused):  # someone deleted the card
                await self._store.detach_card(ticket_id, ts)
                raise JobFailed("the card was deleted; posting a new one", retry_in=0.5)
            rendered = ticket.version

    async def _notify_agents(
        self, job: LeasedJob, channel: str, card_ts: str, ticket_id: int
    ) -> str | None:
        ticket = await self._store.get(ticket_id)
        if ticket is None or ticket.status != ESCALATED:
            return None  # already claimed, handed back or resolved: nobody to call
        # Mentions the agents on purpose.
        text = escalation_notice(ticket, self._agent_ids)
        return await self._note_once(job, channel, card_ts, ticket, text)

    async def _note_assignee(
        self, job: LeasedJob, channel: str, card_ts: str, ticket_id: int
    ) -> str | None:
        ticket = await self._store.get(ticket_id)
        if ticket is None or ticket.status != CLAIMED or not ticket.assignee:
            return None  # taken back or resolved meanwhile
        text = assigned_note(ticket, str(job.payload.get("by") or ""))  # pings the assignee
        return await self._note_once(job, channel, card_ts, ticket, text)

    async def _note_once(
        self, job: LeasedJob, channel: str, card_ts: str, ticket: TicketInfo, text: str
    ) -> str:
        """Post `text` (mrkdwn, escaped by the view) in the card's thread, once per job."""
        ts, _ = await self._slack.post_in_thread_once(
            channel, card_ts, Mrkdwn(text), job_tag(TRIAGE_EVENT_TYPE, job.id),
            retry=job.is_retry, about={"ticket": ticket.number},
        )  # fmt: skip
        return ts


__all__ = ["TRIAGE_CARD_JOB", "TriageCardJob"]
