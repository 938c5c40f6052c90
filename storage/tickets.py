"""Ticket lifecycle for the support team: claim, hand back, resolve, reopen, escalate.

A ticket is one support conversation (`storage.conversations` creates it and records its
turns). This module owns what happens to it afterwards:

    open ──bot answers──> waiting ──customer writes──> (bot answers) ──> waiting …
      │                      │
      └──── escalate ────────┴──> escalated ──claim──> claimed ──resolve──> resolved
                                      │                   │                    │
                          hand back ──┘        unclaim ───┘         reopen ────┘
                          (-> open)            (-> open)            (-> open)

- `open`: new, or handed (back) to the bot; `waiting`: the bot answered, the customer has
  the next word; `escalated`: a person should take over; `claimed`: an agent has it;
  `resolved`: done (a new customer message in the thread brings it back to the bot).
- While a ticket is `escalated` or `claimed` (`HUMAN_STATUSES`) the bot does not answer
  in its thread; it records the customer's turns only.

Every transition is one conditional `UPDATE ... WHERE <expected state>`, so it is atomic
in the database on SQLite and PostgreSQL alike: of two agents pressing Claim at the same
instant exactly one row update matches `status NOT IN ('claimed', 'resolved')`, and the
other is told who won.
No read-modify-write happens in Python except in `record_outcome`, which locks the row.

The statuses and the `TicketInfo` snapshot every transition returns are in
`storage.ticket_info`; the reads `TicketStore` inherits are in `storage.ticket_queries`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, literal, null, update
from sqlalchemy.sql.elements import ColumnElement

from storage.models import Ticket, UTCDateTime, utcnow
from storage.sla import FIRST_RESPONSE, NORMAL, RESOLUTION, URGENT
from storage.sql_time import SecondsBetween
from storage.ticket_info import (
    CLAIMED,
    ESCALATED,
    HUMAN_STATUSES,
    OPEN,
    RESOLVED,
    WAITING,
    TicketInfo,
)
from storage.ticket_queries import TicketQueries

MAX_REASON_CHARS = 500
MAX_SUMMARY_CHARS = 300
# The SLA clock (`storage.sla`) runs while a person has the ticket: it starts afresh at
# each escalation, and stops (these are cleared) when the ticket goes back to the bot.
SLA_CLEARED: dict[str, Any] = {
    "sla_started_at": None,
    "agent_replied_at": None,
    "first_response_breached_at": None,
    "resolution_breached_at": None,
}


@dataclass(frozen=True)
class Transition:
    """The result of a state change: `ok`, and the ticket as it is now.

    When not `ok`, `reason` says why: `not_found`, `claimed` (someone else holds it: see
    `ticket.assignee`), `yours` (the caller already holds it), `resolved`, `not_claimed`,
    `already` (already in the target state), `busy` (a person already has it),
    `assigned` (that agent already has it), `with_bot` (no person has it).
    """

    ok: bool
    ticket: TicketInfo | None
    reason: str = ""


class TicketStore(TicketQueries):
    """Ticket state changes; the reads come from `TicketQueries`."""

    # --- the agents' transitions (each one conditional UPDATE) --------------------------

    async def claim(self, ticket_id: int, agent: str) -> Transition:
        """Take the ticket; exactly one of several concurrent claims wins."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status.not_in([CLAIMED, RESOLVED])],
            status=CLAIMED,
            assignee=agent,
            person_involved=True,
            # An escalated ticket's SLA clock runs on; one taken from the bot starts now.
            **_sla_clock(restart=Ticket.status != ESCALATED),
        )
        return await self._outcome(
            ticket_id,
            changed,
            lambda t: (
                "resolved"
                if t.status == RESOLVED
                else "yours"
                if t.assignee == agent
                else "claimed"
            ),
        )

    async def unclaim(self, ticket_id: int, agent: str) -> Transition:
        """The holder lets go: the ticket goes back to the bot (`open`)."""
        changed = await self._transition(
            ticket_id, [Ticket.status == CLAIMED, Ticket.assignee == agent], **BACK_TO_BOT
        )
        return await self._outcome(
            ticket_id, changed, lambda t: "claimed" if t.status == CLAIMED else "not_claimed"
        )

    async def assign(self, ticket_id: int, agent: str) -> Transition:
        """Give an escalated or claimed ticket to `agent` (reassign from the card); the
        SLA clock runs on, since a person had it all along."""
        changed = await self._transition(
            ticket_id,
            [
                Ticket.status.in_(list(HUMAN_STATUSES)),
                (Ticket.status == ESCALATED) | (Ticket.assignee != agent),
            ],
            status=CLAIMED,
            assignee=agent,
            person_involved=True,
        )
        refusals = {RESOLVED: "resolved", CLAIMED: "assigned"}
        return await self._outcome(ticket_id, changed, lambda t: refusals.get(t.status, "with_bot"))

    async def hand_back(self, ticket_id: int) -> Transition:
        """An escalated ticket nobody claimed goes back to the bot (`open`)."""
        changed = await self._transition(ticket_id, [Ticket.status == ESCALATED], **BACK_TO_BOT)
        return await self._outcome(
            ticket_id, changed, lambda t: "claimed" if t.status == CLAIMED else "already"
        )

    async def resolve(self, ticket_id: int, agent: str) -> Transition:
        """Close the ticket (any agent may); `assignee` records who resolved it."""
        now = utcnow()
        changed = await self._transition(
            ticket_id, [Ticket.status != RESOLVED], status=RESOLVED, assignee=agent,
            resolved_at=now, resolution_s=SecondsBetween(Ticket.created_at, literal(now, UTCDateTime())),
        )  # fmt: skip
        return await self._outcome(ticket_id, changed, lambda _: "already")

    async def reopen(self, ticket_id: int) -> Transition:
        """A resolved ticket becomes `open` again, unassigned (the bot answers it)."""
        changed = await self._transition(ticket_id, [Ticket.status == RESOLVED], **BACK_TO_BOT)
        return await self._outcome(ticket_id, changed, lambda _: "already")

    async def escalate(self, ticket_id: int, reason: str, *, urgent: bool = False) -> Transition:
        """Flag the ticket for a person, unless a person already has it; the SLA clock
        starts now (`storage.sla`), at the urgent targets when `urgent`."""
        changed = await self._transition(
            ticket_id,
            [Ticket.status.not_in(list(HUMAN_STATUSES))],
            status=ESCALATED,
            assignee=None,
            escalation_reason=reason[:MAX_REASON_CHARS],
            escalated_at=func.coalesce(Ticket.escalated_at, utcnow()),
            person_involved=True,
            priority=URGENT if urgent else NORMAL,
            **_sla_clock(restart=literal(True)),
        )
        return await self._outcome(ticket_id, changed, lambda _: "busy")

    # --- the bot's side -----------------------------------------------------------------

    async def record_outcome(
        self,
        ticket_id: int,
        *,
        intents: list[str] | None = None,
        tasks: list[dict[str, Any]] | None = None,
        actions: list[str] | None = None,
        summary: str | None = None,
        escalation_reason: str | None = None,
        urgent: bool = False,
        answered: bool = True,
    ) -> TicketInfo:
        """Merge what one answered turn found, and move the status on.

        The status becomes `escalated` (with the reason; the SLA clock starts, at the
        urgent targets when `urgent`) or `waiting` — unless a person took the ticket while
        the bot was answering: an agent's claim is never undone by the bot. The row is
        locked (`FOR UPDATE`) for the read-merge-write. `answered=False` (`add_actions`)
        merges only.
        """
        async with self._sessions() as session, session.begin():
            ticket = await session.get_one(Ticket, ticket_id, with_for_update=True)
            if intents:
                ticket.intents = list(dict.fromkeys([*ticket.intents, *intents]))
                ticket.primary_intent = ticket.primary_intent or str(ticket.intents[0])[:40]
            if tasks:
                ticket.tasks = [*ticket.tasks, *[t for t in tasks if t not in ticket.tasks]]
            if actions:
                ticket.actions = list(dict.fromkeys([*ticket.actions, *actions]))
            if summary:
                ticket.summary = summary[:MAX_SUMMARY_CHARS]
            if answered and ticket.status not in HUMAN_STATUSES:
                now = utcnow()
                for name, value in SLA_CLEARED.items():
                    setattr(ticket, name, value)
                if escalation_reason is not None:
                    ticket.status = ESCALATED
                    ticket.assignee = None
                    ticket.escalation_reason = escalation_reason[:MAX_REASON_CHARS]
                    ticket.escalated_at = ticket.escalated_at or now
                    ticket.person_involved = True
                    ticket.priority = URGENT if urgent else NORMAL
                    ticket.sla_started_at = now
                else:
                    ticket.status = WAITING
            ticket.updated_at = utcnow()
            await session.flush()
            return TicketInfo.of(ticket)

    async def add_actions(self, ticket_id: int, actions: list[str]) -> TicketInfo:
        """Record what was done outside an answered turn (a confirmed or expired action):
        the status stays, so a resolved ticket is not reopened by it."""
        return await self.record_outcome(ticket_id, actions=actions, answered=False)

    async def touch(self, ticket_id: int) -> TicketInfo | None:
        """Mark new activity (a customer's turn while a person has the ticket)."""
        return await self._transition(ticket_id, [])

    async def flag_sla_breach(
        self, ticket_id: int, kind: str, started_at: dt.datetime
    ) -> TicketInfo | None:
        """Flag one SLA target of the clock that started at `started_at` as breached.

        Conditional, so of any number of checks (workers, restarts) exactly one flags it;
        None for the others, and when the ticket moved on (resolved, handed back, a new
        clock). It changes the ticket's version, so the card is redrawn.
        """
        column = {FIRST_RESPONSE: Ticket.first_response_breached_at,
                  RESOLUTION: Ticket.resolution_breached_at}[kind]  # fmt: skip
        conditions = [
            column.is_(None),
            Ticket.sla_started_at == started_at,
            Ticket.status.in_(list(HUMAN_STATUSES)),
        ]
        if kind == FIRST_RESPONSE:
            conditions.append(Ticket.agent_replied_at.is_(None))
        return await self._transition(ticket_id, conditions, **{column.key: utcnow()})

    # --- the triage card's message ------------------------------------------------------

    async def reserve_card(self, ticket_id: int, expected: str | None, marker: str) -> bool:
        """Compare-and-set `triage_ts` from `expected` (None: no card yet) to `marker`."""
        condition = Ticket.triage_ts.is_(None) if expected is None else Ticket.triage_ts == expected
        return await self._set_card(ticket_id, condition, triage_ts=marker)

    async def attach_card(self, ticket_id: int, marker: str, channel: str, ts: str) -> bool:
        """Replace our reservation by the posted card's ts (False: we lost the marker)."""
        return await self._set_card(
            ticket_id, Ticket.triage_ts == marker, triage_channel=channel, triage_ts=ts
        )

    async def detach_card(self, ticket_id: int, ts: str) -> bool:
        """Forget a card that is gone from Slack, so the next refresh posts a new one."""
        return await self._set_card(ticket_id, Ticket.triage_ts == ts, triage_ts=None)

    # --- helpers ------------------------------------------------------------------------

    async def _transition(
        self, ticket_id: int, conditions: list[ColumnElement[bool]], **values: Any
    ) -> TicketInfo | None:
        """One conditional UPDATE; the updated ticket, or None when nothing matched."""
        statement = (
            update(Ticket)
            .where(Ticket.id == ticket_id, *conditions)
            .values(**values, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement)
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = await session.get(Ticket, ticket_id, populate_existing=True)
            return TicketInfo.of(row) if row is not None else None

    async def _outcome(
        self, ticket_id: int, changed: TicketInfo | None, refusal: Callable[[TicketInfo], str]
    ) -> Transition:
        """`ok` with the changed ticket; otherwise the ticket as it is and `refusal(it)`."""
        if changed is not None:
            return Transition(True, changed)
        current = await self.get(ticket_id)
        if current is None:
            return Transition(False, None, "not_found")
        return Transition(False, current, refusal(current))

    async def _set_card(
        self, ticket_id: int, condition: ColumnElement[bool], **values: Any
    ) -> bool:
        # Card bookkeeping is not a change of the ticket: keep `updated_at` (the version).
        statement = (
            update(Ticket)
            .where(Ticket.id == ticket_id, condition)
            .values(**values, updated_at=Ticket.updated_at)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(statement)
            return getattr(result, "rowcount", 0) == 1


# Back to the bot (unclaim, hand back, reopen): open, nobody's, and no SLA clock running.
BACK_TO_BOT: dict[str, Any] = {
    "status": OPEN,
    "assignee": None,
    "escalation_reason": None,
    "resolved_at": None,
    "resolution_s": None,
    **SLA_CLEARED,
}


def _sla_clock(restart: ColumnElement[bool]) -> dict[str, Any]:
    """Values that start the SLA clock now where `restart` holds, and keep it otherwise."""
    now = literal(utcnow(), UTCDateTime())
    values: dict[str, Any] = {"sla_started_at": case((restart, now), else_=Ticket.sla_started_at)}
    for name in SLA_CLEARED:
        if name != "sla_started_at":
            values[name] = case((restart, null()), else_=getattr(Ticket, name))
    return values


__all__ = [
    "SLA_CLEARED",
    "TicketStore",
    "Transition",
]
