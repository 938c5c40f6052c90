"""The customer's section of App Home: their tickets, orders and returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.blocks import Block
from bot.home.views import customer_home
from storage.catalog import get_or_create_customer
from storage.db import Database
from storage.ticket_queries import customer_records
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from bot.home.feature import HomeViewer


class CustomerRecordsSection:
    """Shown to customers only: agents see the ticket queue (`bot.triage.home`)."""

    def __init__(self, db: Database) -> None:
        self._sessions = db.sessions
        self._tickets = TicketStore(db.sessions)

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        if viewer.is_agent:
            return []
        customer = await get_or_create_customer(self._sessions, viewer.user_id, viewer.team_id)
        tickets = await self._tickets.for_user(viewer.team_id, viewer.user_id)
        records = await customer_records(self._sessions, customer.id)
        return customer_home(tickets, records, viewer.now)["blocks"]


__all__ = ["CustomerRecordsSection"]
