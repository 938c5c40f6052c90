"""The `ticket_brief` job: brief an escalated ticket for the agents, then redraw its card.

Queued by the triage feature with each escalation (keyed by the ticket's version, so a
redelivery queues nothing new). The steps are traced like the bot's own (pipeline
`ticket_brief`, shown by the card's Trace button). A brief that cannot be written leaves
the card as it was: the conversation is one click away.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.support.brief import brief_ticket
from storage.queue import LeasedJob

if TYPE_CHECKING:
    from bot.triage.feature import TriageFeature

logger = logging.getLogger(__name__)

BRIEF_JOB = "ticket_brief"


class BriefJob:
    def __init__(self, triage: TriageFeature) -> None:
        self._triage = triage

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        core = self._triage.slack.core
        ticket_id = int(job.payload["ticket_id"])
        stored = await brief_ticket(core.db, core.llm, core.settings, ticket_id)
        ticket = await self._triage.store.touch(ticket_id)  # a new version: the card redraws
        if ticket is not None:
            await self._triage.refresh_card(ticket, "brief")
        return {"briefed": stored is not None, "draft": bool(stored and stored.draft)}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("no brief for ticket %s: %s", job.payload.get("ticket_id"), error)


__all__ = ["BRIEF_JOB", "BriefJob"]
