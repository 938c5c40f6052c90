""" "You're in line" where a reply does not stream: one ephemeral note to the customer.

A streamed reply shows the queue step as a task card (`ReplyStream`). A public channel's
reply never streams (its text is checked for account details before anyone sees it), nor
does one with streaming off; there the customer saw only the working reaction for as
long as a spent quota kept them waiting, a minute or more. `LineNotice` is the
`DraftWatcher` of those replies: it ignores the plan and the text, and the first time one
of the reply's LLM calls waits in line it tells the customer so in the thread, in an
ephemeral message (only they see it, and Slack keeps no copy: a retried job may say it
again, which is still true).
"""

from __future__ import annotations

import asyncio
import contextlib

from bot.slack_calls import SlackCalls
from pipelines.support.contracts import IncomingMessage
from pipelines.support.drafts import QUEUE_STEP_ID, QUEUE_STEP_TITLE, StepNote

LINE_NOTE = f"{QUEUE_STEP_TITLE}. Your answer will appear in this thread."


class LineNotice:
    """Tells the customer once that their reply waits in line; `close()` waits for it."""

    shows_text = False  # the reply is posted whole, once checked

    def __init__(self, slack: SlackCalls, message: IncomingMessage) -> None:
        self._slack = slack
        self._message = message
        self._told: asyncio.Task[None] | None = None

    def step(self, note: StepNote) -> None:
        if note.id != QUEUE_STEP_ID or note.status != "in_progress" or self._told is not None:
            return
        if not self._message.user_id:  # an ephemeral message needs its one reader
            return
        self._told = asyncio.get_running_loop().create_task(self._tell(), name="line-notice")

    def text(self, so_far: str) -> None:
        return None

    async def _tell(self) -> None:
        message = self._message
        await self._slack.call(
            "chat.postEphemeral",
            self._slack.client.chat_postEphemeral(
                channel=message.channel_id,
                user=message.user_id,
                thread_ts=message.thread_ts,
                text=LINE_NOTE,
            ),
            best_effort=True,
        )

    async def close(self) -> None:
        if self._told is not None:
            with contextlib.suppress(Exception):
                await self._told
