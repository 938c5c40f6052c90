"""Emoji actions for agents: :ticket: opens a ticket, :eyes: claims, :white_check_mark: resolves.

A `reaction_added` event is acted on only when an agent reacted (the same check as the
card's buttons); anyone else's reaction, and the bot's own :eyes: "working" reaction, do
nothing and are not errors. :eyes: and :white_check_mark: work on a ticket's card in the
triage channel and on the root message of a customer's ticket thread. :ticket: on a
message in a support channel opens a ticket for it even though the bot was not mentioned:
the ticket is keyed by the message's thread, so reacting twice (or Slack redelivering the
event) opens one ticket and one card; it is escalated for a person at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.slack_calls import call
from bot.triage.views import CLAIM_ACTION, RESOLVE_ACTION
from storage.catalog import get_or_create_customer
from storage.conversations import ConversationStore, ThreadKey

if TYPE_CHECKING:
    from bot.triage.feature import TriageFeature

logger = logging.getLogger(__name__)

CLAIM_EMOJI = "eyes"
RESOLVE_EMOJI = "white_check_mark"
TICKET_EMOJI = "ticket"
EMOJI_ACTIONS = frozenset({CLAIM_EMOJI, RESOLVE_EMOJI, TICKET_EMOJI})
EMOJI_TRIAGE_ACTIONS = {CLAIM_EMOJI: CLAIM_ACTION, RESOLVE_EMOJI: RESOLVE_ACTION}


def register_reactions(app: AsyncApp, triage: TriageFeature) -> None:
    async def on_reaction(body: dict[str, Any], event: dict[str, Any]) -> None:
        await reaction_added(triage, str(body.get("team_id") or ""), event)

    app.event("reaction_added")(on_reaction)


async def reaction_added(triage: TriageFeature, team_id: str, event: Mapping[str, Any]) -> None:
    name = str(event.get("reaction") or "").split("::")[0]  # skin tones: ":eyes::skin-tone-2:"
    item = event.get("item") or {}
    user = str(event.get("user") or "")
    channel, ts = str(item.get("channel") or ""), str(item.get("ts") or "")
    if name not in EMOJI_ACTIONS or item.get("type") != "message" or not (channel and ts):
        return
    if not await triage.directory.is_agent(user):
        return  # a customer's or the bot's own reaction: nothing to do
    if name == TICKET_EMOJI:
        await open_from_reaction(triage, team_id, channel, ts, user)
        return
    ticket = await triage.store.by_card(channel, ts) or await triage.store.find(
        ThreadKey(team_id, channel, ts)
    )  # its card, or the root of its thread
    if ticket is not None:
        await triage.act(ticket, EMOJI_TRIAGE_ACTIONS[name], user)  # silent on a refusal


async def open_from_reaction(
    triage: TriageFeature, team_id: str, channel: str, ts: str, agent: str
) -> None:
    """A ticket (escalated, with its card) for a message in a support channel."""
    if channel not in triage.slack.settings.support_channels:
        return
    history = await call(
        "conversations.history",
        triage.slack.client.conversations_history(
            channel=channel, oldest=ts, latest=ts, inclusive=True, limit=5
        ),
        best_effort=True,
    )
    messages = [] if not hasattr(history, "get") else history.get("messages") or []
    message = next((m for m in messages if m.get("ts") == ts), None)
    author = str((message or {}).get("user") or "")
    if message is None or not author or message.get("bot_id"):
        logger.info("no customer message to open a ticket for at %s/%s", channel, ts)
        return
    sessions = triage.slack.core.db.sessions
    conversations = ConversationStore(sessions)
    customer = await get_or_create_customer(sessions, author, team_id)
    ticket = await conversations.open_ticket(ThreadKey(team_id, channel, ts), author, customer.id)
    await conversations.add_turn(ticket.id, "customer", ts, str(message.get("text") or ""), author)
    result = await triage.store.escalate(ticket.id, f"opened by <@{agent}> with :ticket:")
    if result.ok and result.ticket is not None:
        await triage.refresh_card(result.ticket, "escalated")


__all__ = ["EMOJI_ACTIONS", "reaction_added", "register_reactions"]
