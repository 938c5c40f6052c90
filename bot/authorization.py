"""Who the bot is, for every Slack request: one auth.test per process, shared.

Bolt's single-workspace authorization caches auth.test's answer, but only once it has
one: every request that arrives before then makes its own call. A burst of 40 events
to a freshly started `serve` made 40 auth.test calls (bench/slack_wait's counts), and
each event's ack waited for its own round trip to Slack, since authorization runs before
the listener that acks. Here the first request fetches and the others wait for that
answer; `serve` hands over the auth.test of its start-up token check, so no request
waits at all.

A failed fetch is not remembered, and it fails the request: Bolt answers a SlackApiError
raised here with a 200, so Slack would count an event that nobody queued as delivered.
Any other exception makes Bolt answer 500, and Slack sends the event again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse


class BotIdentityUnavailable(Exception):
    """auth.test failed: the request cannot be authorized now (Slack will retry it)."""


class SharedBotIdentity(AsyncAuthorize):
    """Bolt's `authorize` for one workspace's bot token, auth.test fetched at most once."""

    def __init__(self, token: str, identity: AsyncSlackResponse | None = None) -> None:
        self._token = token
        self._identity = identity
        self._fetching = asyncio.Lock()

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_actor: Any,
    ) -> AuthorizeResult:
        identity = self._identity if self._identity is not None else await self._fetch(context)
        return AuthorizeResult(
            enterprise_id=identity.get("enterprise_id"),
            team_id=identity.get("team_id"),
            bot_id=identity.get("bot_id"),
            bot_user_id=identity.get("user_id"),
            bot_token=self._token,
            bot_scopes=identity.headers.get("x-oauth-scopes"),
            user_id=user_id,  # the request's user, as Bolt's single-team authorization does
        )

    async def _fetch(self, context: AsyncBoltContext) -> AsyncSlackResponse:
        async with self._fetching:
            if self._identity is None:
                try:
                    self._identity = await context.client.auth_test(token=self._token)
                except SlackApiError as exc:
                    error = exc.response.get("error")
                    raise BotIdentityUnavailable(f"auth.test failed: {error}") from None
            return self._identity
