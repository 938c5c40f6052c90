"""Who is a support agent: SUPPORT_AGENT_IDS, plus the members of the triage channel.

The triage buttons (Claim, Resolve, Trace, …) and the agents' App Home are for support
agents only. `AgentDirectory` answers `is_agent` for every click, so the channel's members
(`conversations.members`, paged) are cached for a minute, and a failed fetch keeps what
was known and is retried after a few seconds rather than on every click. The fetch runs
inside a listener, before the response to Slack, so it is bounded in time.
Kept apart from `bot.triage.feature` because it is state of its own (a cache with a lock and a
clock) that the listeners only query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from slack_sdk.web.async_client import AsyncWebClient

from bot.messages.reply_job import SLACK_CALL_ERRORS

logger = logging.getLogger(__name__)

MEMBER_CACHE_SECONDS = 60.0
MEMBER_RETRY_SECONDS = 5.0
# Listeners run before the response to Slack (3 s): every Slack call in them is bounded.
MEMBERS_TIMEOUT_SECONDS = 1.5
MAX_PAGES = 10


class AgentDirectory:
    """SUPPORT_AGENT_IDS, plus the members of the triage channel (cached briefly)."""

    def __init__(
        self,
        client: AsyncWebClient,
        agent_ids: Collection[str],
        triage_channel: str | None,
        *,
        ttl: float = MEMBER_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._agent_ids = frozenset(agent_ids)
        self._channel = triage_channel
        self._ttl = ttl
        self._clock = clock
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def is_agent(self, user_id: str) -> bool:
        if user_id in self._agent_ids:
            return True
        if not self._channel:
            return False
        return user_id in await self.channel_members()

    async def channel_members(self) -> frozenset[str]:
        if self._fresh():
            return self._members
        async with self._lock:
            if self._fresh():
                return self._members
            try:
                async with asyncio.timeout(MEMBERS_TIMEOUT_SECONDS):
                    self._members = await self._fetch()
                self._fetched_at = self._clock()
            except SLACK_CALL_ERRORS as exc:
                logger.warning("could not list the triage channel's members: %s", exc)
                # Keep what we knew; ask again in a few seconds, not on every click.
                self._fetched_at = self._clock() - self._ttl + MEMBER_RETRY_SECONDS
        return self._members

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._ttl

    async def _fetch(self) -> frozenset[str]:
        members: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            response = await self._client.conversations_members(
                channel=self._channel or "", limit=1000, cursor=cursor
            )
            members.update(str(member) for member in response.get("members") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return frozenset(members)


__all__ = ["MEMBER_CACHE_SECONDS", "AgentDirectory"]
