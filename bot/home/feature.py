"""App Home as a feature of its own: every feature may contribute a section.

    class MySection:                      # a `HomeSection`
        async def blocks(self, viewer: HomeViewer) -> Sequence[Block]: ...

    class MyFeature:                      # a `bot.wiring.Feature`
        def home_sections(self, slack): return [MySection()]

On `app_home_opened` the home feature asks each section, in the order of the feature list
in `bot.wiring`, for its blocks for this viewer (a section shows nothing by returning no
blocks: the agents' queue to customers, say), joins them within Slack's block limit and
publishes the view. Published inline (a few indexed reads and one Slack call, bounded by a
timeout): it is idempotent and re-published on every visit, so a failure is only logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.blocks import Block
from bot.home.customer import CustomerRecordsSection
from bot.home.views import MAX_HOME_BLOCKS, View
from bot.worker import JobHandler
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.wiring import SlackRuntime

logger = logging.getLogger(__name__)

HOME_TIMEOUT_SECONDS = 2.5  # listeners run before the response to Slack (3 s)


@dataclass(frozen=True)
class HomeViewer:
    """Who opened App Home, as every section sees it."""

    user_id: str
    team_id: str
    is_agent: bool
    now: dt.datetime


class HomeSection(Protocol):
    """A part of App Home; returns no blocks to stay hidden from this viewer."""

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]: ...


class HomeFeature:
    """The `bot.wiring.Feature` that publishes App Home from the features' sections."""

    def __init__(self) -> None:
        self._slack: SlackRuntime | None = None
        self._sections: list[HomeSection] = []

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        return {}

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        """A customer's own tickets, orders and returns (agents see the queue instead)."""
        return [CustomerRecordsSection(slack.core.db)]

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        self._slack = slack
        self._sections = [
            section for feature in slack.features for section in feature.home_sections(slack)
        ]

        async def on_home_opened(
            event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
        ) -> None:
            if event.get("tab", "home") != "home" or not event.get("user"):
                return
            team_id = str(body.get("team_id") or context.team_id or "")
            await self.publish_home(str(event["user"]), team_id)

        app.event("app_home_opened")(on_home_opened)

    async def publish_home(self, user: str, team_id: str) -> None:
        """Build and publish a user's App Home; failures are logged (it is re-published on
        the next visit), never turned into a redelivery."""
        assert self._slack is not None, "HomeFeature is not registered yet"
        try:
            async with asyncio.timeout(HOME_TIMEOUT_SECONDS):
                view = await self.home_view(user, team_id)
                await self._slack.client.views_publish(user_id=user, view=view)
        except Exception as exc:
            logger.warning("could not publish the App Home of %s: %s", user, exc)

    async def home_view(self, user: str, team_id: str) -> View:
        assert self._slack is not None, "HomeFeature is not registered yet"
        is_agent = await self._slack.agents.is_agent(user)
        viewer = HomeViewer(user, team_id, is_agent, utcnow())
        blocks: list[Block] = []
        for section in self._sections:
            blocks.extend(await section.blocks(viewer))
        return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


async def republish_home(features: Sequence[object], user: str, team_id: str) -> None:
    """Publish `user`'s App Home again after a click changed what it lists (the change
    is the confirmation), when the App Home feature is among `features`."""
    for feature in features:
        if isinstance(feature, HomeFeature):
            await feature.publish_home(user, team_id)


__all__ = ["HomeFeature", "HomeSection", "HomeViewer", "republish_home"]
