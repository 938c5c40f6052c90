"""`storage.support_report` against a small fixture whose figures are computed by hand."""

from __future__ import annotations

import datetime as dt

from storage.db import Database
from storage.feedback_models import CsatSurvey, ReplyVote
from storage.models import Ticket
from storage.support_report import support_report

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def seed(db: Database) -> None:
    """Tickets with their figures as `storage.tickets` and `storage.conversations` keep
    them (the flows that set them are tested over HTTP in tests/e2e/test_support_numbers.py)."""
    tickets = [
        # number, primary intent, escalated_at, person, first response s, resolution s
        ("T-00001", "order_status", None, False, 10.0, None),
        ("T-00002", "billing_inquiry", at(5), True, 30.0, 3600.0),
        ("T-00003", "billing_inquiry", None, False, 20.0, 600.0),
        ("T-00004", None, None, False, None, None),  # nobody answered it yet
    ]
    async with db.sessions() as session, session.begin():
        for n, (number, intent, escalated, person, reply_s, resolution_s) in enumerate(tickets, 1):
            session.add(Ticket(
                id=n, ticket_number=number, channel_id=f"D{n}", thread_ts=f"{n}.0",
                slack_user_id=f"U{n}", intents=[intent] if intent else [],
                primary_intent=intent, escalated_at=escalated, person_involved=person,
                first_response_s=reply_s, resolution_s=resolution_s, created_at=T0, updated_at=T0,
            ))  # fmt: skip
        # Before the period: counted nowhere.
        session.add(Ticket(id=9, ticket_number="T-00009", channel_id="D9", thread_ts="9.0",
                           slack_user_id="U9", primary_intent="order_status",
                           created_at=at(-86400 * 40), updated_at=T0))  # fmt: skip
        await session.flush()
        for ticket_id, user, vote in [(1, "U1", "up"), (3, "U3", "down"), (9, "U9", "down")]:
            session.add(ReplyVote(ticket_id=ticket_id, channel_id="D", message_ts=f"r{ticket_id}",
                                  run_id="", slack_user_id=user, vote=vote))  # fmt: skip
        session.add(CsatSurvey(ticket_id=2, slack_user_id="U2", channel_id="D2", score=5))
        session.add(CsatSurvey(ticket_id=3, slack_user_id="U3", channel_id="D3"))


async def test_the_figures_match_the_hand_computed_fixture(database: Database) -> None:
    await seed(database)
    report = await support_report(database.sessions, at(-86400 * 30), at(86400))
    overall = report.overall
    assert overall.tickets == 4
    assert overall.deflection_rate == 0.75  # T-00001, 3 and 4: no person took part
    assert overall.escalation_rate == 0.25  # T-00002
    assert (overall.first_response_p50_s, overall.first_response_p90_s) == (20.0, 30.0)
    assert (overall.resolution_p50_s, overall.resolution_p90_s) == (600.0, 3600.0)
    assert overall.csat_average == 5.0 and overall.csat_response_rate == 0.5
    assert overall.thumbs_up_ratio == 0.5  # T-00009's vote is outside the period

    billing = report.by_intent["billing_inquiry"]  # a ticket counts under its first intent
    assert billing.tickets == 2 and billing.escalation_rate == 0.5
    assert billing.thumbs_up_ratio == 0.0 and billing.csat_response_rate == 0.5
    assert report.by_intent["none"].first_response_p50_s is None
    assert "product_return" not in report.by_intent
    assert set(report.as_dict()["by_intent"]) == {"billing_inquiry", "none", "order_status"}
    assert report.confirmations == {
        "confirmed": 0, "cancelled": 0, "changed": 0, "expired": 0, "pending": 0
    }  # fmt: skip


async def test_an_empty_period_has_no_figures(database: Database) -> None:
    report = await support_report(database.sessions, at(0), at(1))
    assert report.overall.tickets == 0 and report.overall.deflection_rate is None
    assert report.by_intent == {}
