"""Assignment: escalated tickets go round-robin to agents who are not away.

With `SUPPORT_ASSIGNMENT=round_robin`, each escalation queues an `assign_ticket` job
(keyed by the ticket's version): it picks the least recently assigned agent who is not
away and holds fewer than `SUPPORT_MAX_OPEN_PER_AGENT` claimed tickets
(`storage.assignment`), claims the ticket for them, redraws the card and tells them by
DM. Nobody free: the ticket stays escalated for anyone to claim. `/support away` and
`/support back` (agents only) set who is away; the card's *Claim* still works for anyone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.slack_calls import SlackCalls
from storage.assignment import pick_agent, set_away
from storage.queue import LeasedJob
from storage.ticket_info import ESCALATED

if TYPE_CHECKING:
    from bot.triage.feature import TriageFeature

logger = logging.getLogger(__name__)

ASSIGN_JOB = "assign_ticket"
SUPPORT_HELP = "`/support away` stops new tickets being assigned to you; `/support back` resumes."


class AssignJob:
    def __init__(self, triage: TriageFeature) -> None:
        self._triage = triage

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        triage = self._triage
        settings = triage.slack.settings
        ticket = await triage.store.get(int(job.payload["ticket_id"]))
        if ticket is None or ticket.status != ESCALATED:
            return {"skipped": "not waiting for a person"}
        candidates = list(settings.support_agent_ids) or sorted(
            await triage.directory.channel_members()
        )
        candidates = [c for c in candidates if c != ticket.slack_user_id]
        agent = await pick_agent(
            triage.slack.core.db.sessions, candidates, settings.support_max_open_per_agent
        )
        if agent is None:
            return {"assigned": None}
        result = await triage.store.claim(ticket.id, agent)
        if not result.ok or result.ticket is None:
            return {"assigned": None, "reason": result.reason}
        await triage.refresh_card(result.ticket, "assigned")
        await SlackCalls(triage.slack.client).post(
            agent,
            f"You were assigned {ticket.number}: {ticket.escalation_reason or 'a customer needs a person'}.",
            best_effort=True,
        )
        return {"assigned": agent}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("ticket not assigned: %s", error)


def register_support_command(app: AsyncApp, triage: TriageFeature) -> None:
    async def on_support(ack: Any, command: dict[str, Any]) -> None:
        user = str(command.get("user_id") or "")
        word = str(command.get("text") or "").strip().lower()
        if not await triage.directory.is_agent(user):
            await ack(text="Only the support team can do that.", response_type="ephemeral")
            return
        if word not in ("away", "back"):
            await ack(text=SUPPORT_HELP, response_type="ephemeral")
            return
        await set_away(triage.slack.core.db.sessions, user, word == "away")
        text = (
            "You're away: no new tickets will be assigned to you."
            if word == "away"
            else "Welcome back: new tickets can be assigned to you again."
        )
        await ack(text=text, response_type="ephemeral")

    app.command("/support")(on_support)


__all__ = ["ASSIGN_JOB", "AssignJob", "register_support_command"]
