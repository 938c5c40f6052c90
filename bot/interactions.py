"""What a button click says (read once from Bolt's `body` and `action`), and how a
listener tells the person who clicked that it was refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """Who clicked, in which channel (empty in App Home), and the button's value."""

    user: str
    channel: str
    value: str

    @classmethod
    def of(cls, body: Mapping[str, Any], action: Mapping[str, Any]) -> Click:
        return cls(
            user=str((body.get("user") or {}).get("id") or ""),
            channel=str((body.get("channel") or {}).get("id") or ""),
            value=str(action.get("value") or ""),
        )


async def tell(
    client: AsyncWebClient, user: str, text: str, *, channel: str = "", within_s: float = 1.0
) -> None:
    """Tell one person something: ephemeral in `channel`, by DM without one (App Home).

    Best effort and bounded in time: listeners run before Slack's 3 s response.
    """
    if not user:
        return
    try:
        async with asyncio.timeout(within_s):
            if channel:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                await client.chat_postMessage(channel=user, text=text)
    except Exception as exc:
        logger.info("could not tell %s: %s", user, exc)


def submitted_text(view: Mapping[str, Any], block_id: str, action_id: str) -> str:
    """The value a modal submission gives one text input ("" when it is missing)."""
    values = (view.get("state") or {}).get("values") or {}
    return str(((values.get(block_id) or {}).get(action_id) or {}).get("value") or "")


__all__ = ["Click", "submitted_text", "tell"]
