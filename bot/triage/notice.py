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
from bot.messages.reply_job import SLACK_CALL_ERRORS, find_marked_message, to_job_failure
from bot.triage.cards import marked
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
        self._client = client

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        payload = job.payload
        channel, thread_ts = str(payload["channel"]), str(payload["thread_ts"])
        ts = None
        if job.is_retry:
            ts = await find_marked_message(
                self._client, channel, thread_ts, NOTICE_EVENT_TYPE, job.id
            )
        if ts is None:
            text = str(payload["text"])
            blocks: list[dict[str, Any]] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}}
            ]
            if payload.get("ticket"):
                note = escape(f"Ticket {payload['ticket']} · handed to the support team")
                blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
            try:
                response = await self._client.chat_postMessage(
                    channel=channel,
                    thread_ts=thread_ts,
                    text=text,
                    blocks=blocks,
                    metadata=marked(NOTICE_EVENT_TYPE, job_id=str(job.id)),
                )
            except SLACK_CALL_ERRORS as exc:
                raise to_job_failure("chat.postMessage", exc) from exc
            ts = str(response.get("ts"))
        replace = payload.get("replace")
        if isinstance(replace, Mapping):
            try:  # cosmetic: the button turns into a note
                await self._client.chat_update(
                    channel=str(replace["channel"]),
                    ts=str(replace["ts"]),
                    text=str(replace.get("text") or payload["text"]),
                    blocks=list(replace["blocks"]),
                )
            except SLACK_CALL_ERRORS as exc:
                logger.info("could not remove the handoff button: %s", exc)
        return {"ts": ts}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("could not tell the customer (%s): %s", job.payload.get("ticket"), error)


__all__ = ["CUSTOMER_NOTICE_JOB", "CustomerNoticeJob"]
