"""SLA breaches: found by the worker's check, flagged once, announced once.

The targets and business hours are `storage.sla`; the clock's times are on the ticket
(`storage.tickets` starts it at escalation and stops it when the ticket goes back to the
bot; `storage.conversations` stamps the first agent reply). Nothing is held in memory:
every `SLA_CHECK_SECONDS`, each worker runs `SlaCheck` (a `bot.worker.PeriodicCheck`),
which reads the tickets a person has, computes their due times at the clock's *now*, and
for a target past due:

1. queues an `sla_breach` job keyed by (ticket, target, clock start), so however many
   checks, workers and restarts see the breach, one job exists;
2. flags the target on the ticket with a conditional UPDATE (`flag_sla_breach`): exactly
   one check wins, counts it (`supportbot_sla_breaches_total`) and redraws the card.

The job then posts one message in the card's thread, mentioning the assignee (or the
agents), tagged with the job id so a retry finds it instead of posting twice. Enqueue
comes before the flag: a crash between the two leaves a job whose flag the next check
sets; the other order could leave a flag that nobody announces.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.metrics import SLA_BREACHES
from bot.slack_calls import Mrkdwn, SlackCalls, job_tag
from bot.triage.views import sla_breach_notice
from bot.worker import JobFailed, PeriodicCheck
from storage.queue import LeasedJob
from storage.sla import FIRST_RESPONSE, SlaClockView, SlaPolicy, ticket_sla
from storage.ticket_info import HUMAN_STATUSES, TicketInfo

if TYPE_CHECKING:
    from bot.triage.feature import TriageFeature

logger = logging.getLogger(__name__)

SLA_BREACH_JOB = "sla_breach"
SLA_EVENT_TYPE = "supportbot_sla"

Clock = Callable[[], dt.datetime]


def clock_key(ticket: TicketInfo, kind: str) -> str:
    started = ticket.sla_started_at
    assert started is not None
    return f"{SLA_BREACH_JOB}:{ticket.id}:{kind}:{int(started.timestamp() * 1_000_000)}"


class SlaCheck:
    """The worker's periodic SLA check (see the module docstring)."""

    def __init__(self, triage: TriageFeature, policy: SlaPolicy, clock: Clock) -> None:
        self._triage = triage
        self._policy = policy
        self._clock = clock

    def periodic(self, interval: float) -> PeriodicCheck:
        return PeriodicCheck("SLA check", interval, self.run)

    async def run(self) -> str | None:
        if not self._policy.enabled:
            return None
        now = self._clock()
        # Business time never runs faster than the wall clock: younger clocks cannot be due.
        cutoff = now - dt.timedelta(seconds=self._policy.shortest_target)
        flagged, after = 0, 0
        while page := await self._triage.store.sla_running(cutoff, after_id=after):
            for ticket in page:
                for view in ticket_sla(ticket, self._policy, now):
                    if view.breached_at is None and view.met_at is None and view.left_s <= 0:
                        flagged += await self._breach(ticket, view)
            after = page[-1].id
        return f"{flagged} target(s) breached" if flagged else None

    async def _breach(self, ticket: TicketInfo, view: SlaClockView) -> int:
        assert ticket.sla_started_at is not None
        payload = {"ticket_id": ticket.id, "kind": view.kind}
        await self._triage.slack.submit(SLA_BREACH_JOB, clock_key(ticket, view.kind), payload)
        changed = await self._triage.store.flag_sla_breach(
            ticket.id, view.kind, ticket.sla_started_at
        )
        if changed is None:  # another check won, or the ticket moved on meanwhile
            return 0
        SLA_BREACHES.labels(kind=view.kind, priority=changed.priority).inc()
        logger.info("ticket %s breached its %s SLA", changed.number, view.kind)
        await self._triage.refresh_card(changed)
        return 1


class SlaBreachJob:
    """`JobHandler` of `sla_breach`: tell the agents in the card's thread, once."""

    def __init__(self, triage: TriageFeature, policy: SlaPolicy) -> None:
        self._triage = triage
        self._policy = policy

    async def run(self, job: LeasedJob) -> dict[str, Any] | None:
        triage = self._triage
        ticket = await triage.store.get(int(job.payload["ticket_id"]))
        kind = str(job.payload["kind"])
        if ticket is None or ticket.status not in HUMAN_STATUSES:
            return {"skipped": "no longer with a person"}
        if ticket.sla_started_at is None or job.dedupe_key != clock_key(ticket, kind):
            return {"skipped": "a new SLA clock"}
        if ticket.sla_breaches.get(kind) is None:
            if kind == FIRST_RESPONSE and ticket.agent_replied_at is not None:
                return {"skipped": "answered in time"}
            # Queued by a check that has not flagged it yet (or crashed before it did).
            raise JobFailed("the breach is not flagged yet", retry_in=2.0)
        if not ticket.triage_channel or not ticket.card_ts:
            if triage.slack.settings.support_triage_channel:  # the card is being posted
                raise JobFailed("the ticket's card is not posted yet", retry_in=5.0)
            return {"skipped": "no triage channel"}
        views = {view.kind: view for view in ticket_sla(ticket, self._policy, ticket.updated_at)}
        due = views[kind].due if kind in views else None
        text = sla_breach_notice(ticket, kind, due, triage.slack.settings.support_agent_ids)
        _, posted = await SlackCalls(triage.slack.client).post_in_thread_once(
            ticket.triage_channel,
            ticket.card_ts,
            Mrkdwn(text),  # mentions the assignee or the agents on purpose
            job_tag(SLA_EVENT_TYPE, job.id),
            retry=job.is_retry,
            about={"ticket": ticket.number},
        )
        return {"notified": ticket.number, "kind": kind, "already_posted": not posted}

    async def give_up(self, job: LeasedJob, error: str) -> None:
        logger.warning("an SLA breach was not announced: %s", error)


__all__ = ["SLA_BREACH_JOB", "SlaBreachJob", "SlaCheck"]
