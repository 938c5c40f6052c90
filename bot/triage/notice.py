"""The `customer_notice` job: tell a customer, once, in their thread.

When someone presses "Talk to a person", `bot.triage.feature.TriageFeature` escalates the ticket
and enqueues this job rather than posting from the listener, so the click is answered
within Slack's 3 s and a refused post is retried like any job. The notice is marked with
the job's id (message metadata), so a retried job finds its earlier post instead of
posting twice; then the pressed button is turned into a note (best effort).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import escape
from bot.slack_calls import Mrkdwn, SlackCalls, job_tag
from storage.queue import LeasedJob

logger = logging.getLogger(__name__)

CUSTOMER_NOTICE_JOB = "customer_notice"
NOTICE_EVENT_TYPE = "supportbot_notice"


class CustomerNoticeJob:
    """`JobHandler` of `customer_notice`: post one message in a customer's thread, once.

    Payload: `channel`, `thread_ts`, `text`, `ticket`, and optionally `replace`
    (`channel`, `ts`, `blocks`, `text`): a message of the bot's to edit afterwards
    (the reply whose "Talk to a person" button was pressed).
    """

    def __init__(self, client: AsyncWebClient) -> None:
        self._slack = SlackCalls(client)

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        payload = job.payload
        channel, thread_ts = str(payload["channel"]), str(payload["thread_ts"])
        tag = job_tag(NOTICE_EVENT_TYPE, job.id)
        ts = None
        if job.is_retry:
            ts = await self._slack.find_posted(channel, tag, thread_ts=thread_ts)
        if ts is None:
            text = str(payload["text"])
            blocks: list[dict[str, Any]] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}}
            ]
            if payload.get("ticket"):
                note = escape(f"Ticket {payload['ticket']} · handed to the support team")
                blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
            response = await self._slack.post(
                channel, text, thread_ts=thread_ts, blocks=blocks, metadata=tag.metadata()
            )
            ts = str(response.get("ts"))
        replace = payload.get("replace")
        if isinstance(replace, Mapping):  # cosmetic: the button turns into a note
            # Slack's copy of the bot's own message text is mrkdwn already: sent back as is.
            original = str(replace.get("text") or "")
            await self._slack.update(
                str(replace["channel"]),
                str(replace["ts"]),
                Mrkdwn(original) if original else str(payload["text"]),
                blocks=list(replace["blocks"]),
                best_effort=True,
            )
        return {"ts": ts}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("could not tell the customer (%s): %s", job.payload.get("ticket"), error)


__all__ = ["CUSTOMER_NOTICE_JOB", "CustomerNoticeJob"]
