"""The support agents' section of App Home: ticket counts and the queue by urgency."""

from __future__ import annotations

from collections.abc import Sequence

from bot.blocks import Block
from bot.home.feature import HomeViewer
from bot.home.views import agent_home
from storage.ticket_info import ACTIVE_STATUSES
from storage.tickets import TicketStore

MAX_LISTED_TICKETS = 200


class AgentQueueSection:
    """Shown to support agents only: escalated, claimed and open tickets with counts."""

    def __init__(self, store: TicketStore) -> None:
        self._store = store

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        if not viewer.is_agent:
            return []
        tickets = await self._store.list_tickets(ACTIVE_STATUSES, limit=MAX_LISTED_TICKETS)
        return agent_home(tickets, await self._store.counts(), viewer.now)["blocks"]


__all__ = ["AgentQueueSection"]
