"""The Slack AI-app surface (Bolt's `AsyncAssistant` middleware).

When the app has "Agents & AI Apps" enabled, a user opens an assistant thread in the side
panel. On thread start the bot offers suggested prompts; a user message in an assistant
thread is queued exactly like a direct message (same dedupe key, same worker). The worker
shows `assistant.threads.setStatus` instead of a reaction, and titles the thread after
answering (see `bot.messages.reply_job`).

Suggested prompts are set in a lazy listener, after the acknowledgement: they are
cosmetic and idempotent, and a slow Slack call must not delay the ack.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import (
    AsyncSetSuggestedPrompts,
)
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    is_assistant_event,
    is_other_message_sub_event_in_assistant_thread,
)
from slack_bolt.response import BoltResponse

from bot.messages.intake import Intake, intake_listener

logger = logging.getLogger(__name__)

SUGGESTED_PROMPTS: list[dict[str, str]] = [
    {"title": "Where is my order?", "message": "Where is my order?"},
    {"title": "Return a product", "message": "I would like to return a product."},
    {"title": "Question about an invoice", "message": "I have a question about an invoice."},
]
PROMPTS_TITLE = "How can I help?"


class PrefilteredAssistant(AsyncAssistant):
    """Bolt's `AsyncAssistant`, passing other requests on before its listener matching.

    The assistant is a global middleware: it sees every request, and for each one runs its
    five listeners' matchers, each through Bolt's kwargs injection (a ~30-entry dictionary
    built per call). On a plain direct message that was most of the cost of acknowledging
    it. The two payload checks below are the same predicates those matchers and Bolt's
    own fall-through use (`slack_bolt.request.payload_utils`), so a request that fails
    both could not have matched any listener: skipping straight to `next()` changes
    nothing but the time spent.

    One deliberate difference: Bolt's assistant acknowledges and drops edits and
    deletions in an assistant (DM) thread; here they go on to the app's `message`
    listener, so a customer's edit follows on their turn and on the card (`mirror_edit`).
    """

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt calls it with next=
    ) -> BoltResponse | None:
        if is_other_message_sub_event_in_assistant_thread(req.body):
            return await next()  # an edit or deletion: for the intake (see above)
        if is_assistant_event(req.body):
            return await super().async_process(req=req, resp=resp, next=next)
        return await next()


def build_assistant(intake: Intake) -> AsyncAssistant:
    """The assistant middleware: prompts on thread start, user messages into the queue."""
    assistant = PrefilteredAssistant()

    async def ack_thread_started() -> None:
        """Nothing to do before the ack; the prompts follow in `offer_prompts`."""

    async def offer_prompts(set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        try:
            await set_suggested_prompts(prompts=SUGGESTED_PROMPTS, title=PROMPTS_TITLE)
        except Exception as exc:  # cosmetic: never worth a redelivery
            logger.warning("could not set suggested prompts: %s", exc)

    assistant.thread_started(lazy=[offer_prompts])(ack_thread_started)  # type: ignore[list-item]
    assistant.user_message(intake_listener(intake, "message", assistant=True))
    return assistant


__all__ = ["PROMPTS_TITLE", "SUGGESTED_PROMPTS", "PrefilteredAssistant", "build_assistant"]
