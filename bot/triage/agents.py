"""Who is a support agent: SUPPORT_AGENT_IDS when set, else the triage channel's members.

The triage buttons (Claim, Resolve, Trace, …) and the agents' App Home show other
customers' messages and traces, so agent status is decided here, for every click:
- **SUPPORT_AGENT_IDS set:** exactly those users (SPEC section 4: agents are configured
  user ids). Joining the triage channel grants nothing.
- **Not set:** the members of SUPPORT_TRIAGE_CHANNEL (`conversations.members`, paged),
  cached for a minute. A failed refresh keeps the last list, retried every few seconds
  rather than on every click, but only for `STALE_GRACE_SECONDS` past its expiry: after
  that the list is dropped (logged) and nobody is an agent by membership until Slack
  answers again, so a member who left cannot keep access through a Slack outage.
The fetch runs inside a listener, before the response to Slack, so it is bounded in time.

`check_triage_channel` runs once at start-up (`bot.wiring`): a public or shared triage
channel lets anyone who joins read every ticket card, and, without SUPPORT_AGENT_IDS,
become an agent; it is logged as a warning and kept in `setup_warning`.
Kept apart from `bot.triage.feature` because it is state of its own (a cache with a lock and a
clock) that the listeners only query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_calls import SLACK_CALL_ERRORS, member_pages, slack_error

logger = logging.getLogger(__name__)

MEMBER_CACHE_SECONDS = 60.0
MEMBER_RETRY_SECONDS = 5.0
# How long an expired member list may still be used while Slack cannot be asked.
STALE_GRACE_SECONDS = 120.0
# Listeners run before the response to Slack (3 s): every Slack call in them is bounded.
MEMBERS_TIMEOUT_SECONDS = 1.5
CHANNEL_CHECK_TIMEOUT_SECONDS = 5.0
MAX_PAGES = 10
SHARED_FLAGS = ("is_ext_shared", "is_shared", "is_org_shared", "is_pending_ext_shared")


def channel_exposure(channel: Mapping[str, Any]) -> list[str]:
    """What makes a triage channel readable by people who are not agents (empty: nothing)."""
    problems = []
    if not channel.get("is_private"):
        problems.append("public (anyone in the workspace can join it)")
    if any(channel.get(flag) for flag in SHARED_FLAGS):
        problems.append("shared with another workspace or organisation")
    return problems


class AgentDirectory:
    """SUPPORT_AGENT_IDS when set; otherwise the triage channel's members (cached briefly)."""

    def __init__(
        self,
        client: AsyncWebClient,
        agent_ids: Collection[str],
        triage_channel: str | None,
        *,
        ttl: float = MEMBER_CACHE_SECONDS,
        grace: float = STALE_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._agent_ids = frozenset(agent_ids)
        self._channel = triage_channel
        self._ttl = ttl
        self._grace = grace
        self._clock = clock
        self._members: frozenset[str] = frozenset()
        self._fetched_at: float | None = None  # the last successful fetch
        self._retry_at = 0.0  # after a failed fetch, the next one waits until then
        self._lock = asyncio.Lock()
        self.setup_warning: str | None = None

    @property
    def uses_membership(self) -> bool:
        """Whether membership of the triage channel makes an agent (no SUPPORT_AGENT_IDS)."""
        return not self._agent_ids and bool(self._channel)

    async def is_agent(self, user_id: str) -> bool:
        if self._agent_ids:
            return user_id in self._agent_ids
        if not self._channel:
            return False
        return user_id in await self.channel_members()

    async def channel_members(self) -> frozenset[str]:
        if self._fresh() or self._clock() < self._retry_at:
            return self._usable()
        async with self._lock:
            if self._fresh() or self._clock() < self._retry_at:
                return self._usable()
            try:
                async with asyncio.timeout(MEMBERS_TIMEOUT_SECONDS):
                    self._members = await self._fetch()
                self._fetched_at = self._clock()
            except SLACK_CALL_ERRORS as exc:
                logger.warning("could not list the triage channel's members: %s", exc)
                self._retry_at = self._clock() + MEMBER_RETRY_SECONDS
        return self._usable()

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._ttl

    def _usable(self) -> frozenset[str]:
        """The member list, unless it expired longer than the grace ago (then: nobody)."""
        if self._fetched_at is None:
            return frozenset()
        if self._clock() - self._fetched_at >= self._ttl + self._grace:
            logger.error(
                "the triage channel's members could not be refreshed for %.0f s: "
                "nobody is an agent by membership until Slack answers",
                self._clock() - self._fetched_at,
            )
            self._members, self._fetched_at = frozenset(), None
        return self._members

    async def _fetch(self) -> frozenset[str]:
        members: set[str] = set()
        async for page, _ in member_pages(self._client, self._channel or "", max_pages=MAX_PAGES):
            members.update(page)
        return frozenset(members)

    async def check_triage_channel(self) -> str | None:
        """Warn (log, and `setup_warning`) when the triage channel is public or shared."""
        if not self._channel:
            return None
        try:
            async with asyncio.timeout(CHANNEL_CHECK_TIMEOUT_SECONDS):
                response = await self._client.conversations_info(channel=self._channel)
        except SLACK_CALL_ERRORS as exc:
            logger.warning(
                "could not check SUPPORT_TRIAGE_CHANNEL %s (%s): make sure it is private",
                self._channel,
                slack_error(exc),
            )
            return None
        problems = channel_exposure(response.get("channel") or {})
        if not problems:
            return None
        who = (
            "read every ticket card (customers' messages)"
            if self._agent_ids
            else "read every ticket card and, as SUPPORT_AGENT_IDS is not set, act as an "
            "agent (buttons, traces, App Home)"
        )
        self.setup_warning = (
            f"SUPPORT_TRIAGE_CHANNEL {self._channel} is {' and '.join(problems)}: whoever "
            f"joins it can {who}. Make it a private channel of your support team"
            + ("." if self._agent_ids else " and set SUPPORT_AGENT_IDS.")
        )
        logger.warning("%s", self.setup_warning)
        return self.setup_warning


__all__ = [
    "MEMBER_CACHE_SECONDS",
    "STALE_GRACE_SECONDS",
    "AgentDirectory",
    "channel_exposure",
]
