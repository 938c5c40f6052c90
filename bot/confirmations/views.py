"""Block Kit of the confirmation card: pure functions, tested directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks import Block, actions, button, context, escape, section
from pipelines.support.contracts import PendingConfirmation

CONFIRM_ACTION = "confirm_action"
CHANGE_ACTION = "change_action"
CANCEL_ACTION = "cancel_action"
DECISION_ACTIONS = (CONFIRM_ACTION, CHANGE_ACTION, CANCEL_ACTION)

DECIDED_TEXT = {
    "confirmed": ":white_check_mark: Confirmed: {summary}. Working on it…",
    "cancelled": ":x: Cancelled: {summary}. Nothing was done.",
    "changed": (
        ":pencil2: Not done: {summary}. Tell me in this thread what to change (the product, "
        "the order or the reason) and I'll prepare it again."
    ),
}
REFUSAL_TEXT = {
    "not_yours": "Only the person who asked can confirm or change this.",
    "already": "This was already {status}.",
    "expired": "This request expired, so nothing was done. Write again if you still need it.",
    "not_found": "This request is no longer there.",
}
EXPIRED_TEXT = (
    "Nothing was done about \u201c{summary}\u201d: it waited {hours:g} hours for your "
    "confirmation. Write again if you still need it."
)


def block_id(action_id: int) -> str:
    return f"confirm_{action_id}"


def confirmation_blocks(pending: Sequence[PendingConfirmation]) -> list[Block]:
    """One card per prepared side effect: what was understood, Confirm / Change / Cancel."""
    blocks: list[Block] = []
    for item in pending:
        value = str(item.id)
        blocks.append(
            section(f":hourglass_flowing_sand: *Waiting for your OK:* {escape(item.summary)}")
        )
        blocks.append(
            actions(
                button("Confirm", CONFIRM_ACTION, value, style="primary"),
                button("Change", CHANGE_ACTION, value),
                button("Cancel", CANCEL_ACTION, value, style="danger"),
                block_id=block_id(item.id),
            )
        )
    return blocks


def decided(blocks: Sequence[dict[str, Any]], action_id: int, text: str) -> list[Block]:
    """The reply's blocks with one card's buttons replaced by what was decided."""
    return [
        context(escape(text)) if block.get("block_id") == block_id(action_id) else dict(block)
        for block in blocks
    ]


__all__ = [
    "CANCEL_ACTION",
    "CHANGE_ACTION",
    "CONFIRM_ACTION",
    "DECIDED_TEXT",
    "DECISION_ACTIONS",
    "EXPIRED_TEXT",
    "REFUSAL_TEXT",
    "confirmation_blocks",
    "decided",
]
