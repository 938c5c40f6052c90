"""Assignment: escalated tickets go round-robin to agents who are not away.

With `SUPPORT_ASSIGNMENT=round_robin`, each escalation queues an `assign_ticket` job
(keyed by the ticket's version): it picks the least recently assigned agent who is not
away and holds fewer than `SUPPORT_MAX_OPEN_PER_AGENT` claimed tickets
(`storage.assignment`), claims the ticket for them, redraws the card and tells them by
DM. Nobody free: the ticket stays escalated for anyone to claim. `/support away` and
`/support back` (agents only) set who is away; the card's *Claim* still works for anyone.

Reassign: the card of an escalated or claimed ticket has *Assign to…* (a users_select).
An agent picks an agent; the ticket becomes theirs (one conditional UPDATE), the card is
redrawn and its thread says so, pinging the new assignee (once: the card job's note).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.interactions import Click
from bot.slack_calls import SlackCalls
from bot.triage.views import NOT_AN_AGENT, REASSIGN_ACTION, refusal_text
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
            await ack(text=NOT_AN_AGENT, response_type="ephemeral")
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


def register_reassign(app: AsyncApp, triage: TriageFeature) -> None:
    async def on_reassign(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = Click.of(body, action)
        chosen = str(action.get("selected_user") or "")
        card_ts = str((body.get("container") or {}).get("message_ts") or "")
        if not await triage.directory.is_agent(click.user):
            await triage.ephemeral(click.channel, click.user, NOT_AN_AGENT)
            return
        ticket = await triage.store.by_card(click.channel, card_ts)
        if ticket is None or not chosen:
            await triage.ephemeral(
                click.channel, click.user, refusal_text("not_found", "that ticket", None)
            )
            return
        if chosen == ticket.slack_user_id or not await triage.directory.is_agent(chosen):
            await triage.ephemeral(
                click.channel, click.user, refusal_text("not_an_agent", ticket.number, ticket)
            )
            return
        result = await triage.store.assign(ticket.id, chosen)
        logger.info(
            "reassign %s to %s by %s: %s", ticket.number, chosen, click.user, result.reason or "ok"
        )
        if result.ticket is not None:
            await triage.refresh_card(
                result.ticket, REASSIGN_ACTION if result.ok else None, click.user
            )
        if not result.ok:
            await triage.ephemeral(
                click.channel, click.user, refusal_text(result.reason, ticket.number, result.ticket)
            )

    app.action(REASSIGN_ACTION)(on_reassign)


__all__ = ["ASSIGN_JOB", "AssignJob", "register_reassign", "register_support_command"]
