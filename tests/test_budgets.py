"""Daily token budgets: a user over budget is told so and costs no LLM call; the counts are
stored, so every process (here: every `SupportService` instance) sees one total, and
concurrent increments lose nothing on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Any

import pytest

from pipelines.config import LLMSettings
from pipelines.faq.chain import SourceDocument
from pipelines.faq.runs import create_faq
from pipelines.llm.base import LLMRequest, LLMResponse, TokenUsage
from pipelines.llm.budget import (
    BudgetedLLM,
    BudgetExceeded,
    DailyBudget,
    Spender,
    current_spender,
    spending_as,
)
from pipelines.llm.offline import OfflineLLM
from pipelines.support.contracts import IncomingMessage
from pipelines.support.service import BUDGET_TEXT, SupportService
from storage.budgets import DaySpend, TokenLedger
from storage.db import Database
from storage.tickets import TicketStore
from tests.incoming import incoming

USER, AGENT = "U0SPENDER", "U0AGENT"
QUESTION = "Where is my order? It has been a week."
POLICY = (
    "# Returns\n\nReturns are accepted within 30 days of delivery.\n\n"
    "# Refunds\n\nRefunds reach your card within 5 business days.\n\n"
    "# Shipping\n\nShipping is free on orders over 50 euros.\n"
)


class PricedLLM:
    """The offline provider's answers, each billed `tokens` (120 by default); counts calls."""

    name = "priced"

    def __init__(self, input_tokens: int = 100, output_tokens: int = 20) -> None:
        self.offline = OfflineLLM()
        self.usage = TokenUsage(input_tokens, output_tokens)
        self.calls: list[str] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls.append(request.step)
        response = await self.offline.generate(request)
        return dataclasses.replace(response, usage=self.usage)


def message(ts: str, user: str = USER, text: str = QUESTION) -> IncomingMessage:
    return incoming(text, ts, user=user)


def budgets(per_user: int, everyone: int = 0) -> LLMSettings:
    return LLMSettings(llm_daily_tokens_per_user=per_user, llm_daily_tokens=everyone)


async def test_a_user_over_budget_is_told_so_and_costs_no_llm_call(sqlite_db: Database) -> None:
    await TokenLedger(sqlite_db.sessions).add(USER, 1_000)
    llm = PricedLLM()
    service = SupportService(sqlite_db, llm, budgets(per_user=1_000))

    reply = await service.handle(message("100.1"))

    assert llm.calls == []
    assert reply.text == BUDGET_TEXT["user"] and "Talk to a person" in reply.text
    ticket = await TicketStore(sqlite_db.sessions).by_number(reply.ticket_number)
    assert ticket is not None and "daily LLM budget" in ticket.summary


async def test_two_service_instances_on_one_database_share_the_budget(
    sqlite_db: Database,
) -> None:
    """A message's calls in one instance (one process) spend the budget another checks."""
    first_llm, second_llm = PricedLLM(), PricedLLM()
    settings = budgets(per_user=300)  # one message's three calls: 360
    first = SupportService(sqlite_db, first_llm, settings)
    second = SupportService(sqlite_db, second_llm, settings)

    answered = await first.handle(message("200.1"))
    refused = await second.handle(message("200.2"))

    assert answered.text != BUDGET_TEXT["user"] and len(first_llm.calls) >= 2
    spent = await TokenLedger(sqlite_db.sessions).spent(USER)
    assert spent.user == spent.everyone == 120 * len(first_llm.calls)
    assert refused.text == BUDGET_TEXT["user"] and second_llm.calls == []
    # Someone else still has their own budget.
    other = await second.handle(message("200.3", user="U0OTHER"))
    assert other.text != BUDGET_TEXT["user"] and second_llm.calls


async def test_an_overrun_mid_message_finishes_the_call_and_refuses_the_next(
    sqlite_db: Database,
) -> None:
    llm = PricedLLM()
    # One call at a time (no planner beside the router), so the overrun is one call.
    settings = budgets(per_user=100).model_copy(update={"llm_speculative_plan": False})
    service = SupportService(sqlite_db, llm, settings)

    reply = await service.handle(message("300.1"))

    assert len(llm.calls) == 1  # the first call (120 tokens) ran; the second was refused
    assert reply.text == BUDGET_TEXT["user"]


async def test_agents_are_exempt_from_the_per_user_budget_but_count_for_everyone(
    sqlite_db: Database,
) -> None:
    ledger = TokenLedger(sqlite_db.sessions)
    await ledger.add(AGENT, 5_000)
    llm = PricedLLM()
    service = SupportService(
        sqlite_db, llm, budgets(per_user=1_000, everyone=1_000_000), frozenset({AGENT})
    )

    reply = await service.handle(message("400.1", user=AGENT))

    assert reply.text != BUDGET_TEXT["user"] and llm.calls
    assert (await ledger.spent(AGENT)).everyone == 5_000 + 120 * len(llm.calls)
    await ledger.add("U0BIG", 1_000_000)
    llm.calls.clear()
    refused = await service.handle(message("400.2", user=AGENT))
    assert refused.text == BUDGET_TEXT["everyone"] and llm.calls == []


async def test_work_without_a_spender_counts_for_everyone_only(sqlite_db: Database) -> None:
    ledger = TokenLedger(sqlite_db.sessions)
    llm = BudgetedLLM(PricedLLM(), DailyBudget(ledger, per_user=0, everyone=150))
    request = LLMRequest("classify_intent", "m", "", "hi", inputs={"message": "hi"})

    await llm.generate(request)  # no spender (the CLI): 120 for everyone, none for a user
    with spending_as(USER):
        await llm.generate(request)  # 120 < 150: this call runs and overshoots...
        with pytest.raises(BudgetExceeded) as refused:
            await llm.generate(request)  # ...and the next is refused

    assert refused.value.scope == "everyone"
    spent = await ledger.spent(USER)
    assert spent.user == 120 and spent.everyone == 240


async def test_a_message_reads_the_days_spending_once_and_counts_on_from_its_charges(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read of the stored totals per message; its later checks use what each charge
    returned, which is what is stored."""
    original = TokenLedger.spent
    reads: list[str] = []

    async def counted(self: TokenLedger, user_id: str, day: dt.date | None = None) -> DaySpend:
        reads.append(user_id)
        return await original(self, user_id, day)

    monkeypatch.setattr(TokenLedger, "spent", counted)
    llm = PricedLLM()
    service = SupportService(sqlite_db, llm, budgets(per_user=1_000_000))

    await service.handle(message("500.1"))

    assert len(llm.calls) >= 2 and reads == [USER]
    stored = await original(TokenLedger(sqlite_db.sessions), USER)
    assert stored.user == stored.everyone == 120 * len(llm.calls)


class DatedLLM(PricedLLM):
    """Records when each call's work began, as the rate limiter will read it."""

    def __init__(self) -> None:
        super().__init__()
        self.since: list[float] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        spender = current_spender()
        assert spender is not None
        self.since.append(spender.since)
        return await super().generate(request)


@pytest.mark.parametrize(("age_s", "ts"), [(30.0, None), (0.0, "not-a-ts")])
async def test_a_messages_calls_are_dated_by_when_the_customer_wrote_it(
    sqlite_db: Database, age_s: float, ts: str | None
) -> None:
    """The limiter serves older work first under a spent quota: a message's age is its
    Slack ts (a batch of jobs starts in no particular order; a retry keeps its place);
    an unreadable ts dates it now."""
    llm = DatedLLM()
    service = SupportService(sqlite_db, llm, budgets(per_user=1_000_000))
    before = time.monotonic()

    await service.handle(message(ts or f"{time.time() - age_s:.6f}"))

    assert llm.since and all(since == llm.since[0] for since in llm.since)
    assert before - age_s - 0.5 <= llm.since[0] <= before - age_s + 0.5


async def test_a_charge_returns_the_totals_after_it(database: Database) -> None:
    ledger = TokenLedger(database.sessions)
    assert await ledger.add(USER, 0) is None
    await ledger.add("U0OTHER", 50)
    assert await ledger.add(USER, 7) == DaySpend(user=7, everyone=57)
    assert await ledger.add("", 3) == DaySpend(user=0, everyone=60)  # no spender


async def test_charges_made_together_share_one_write(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst's calls are charged in one upsert (one turn at SQLite's writer lock), and
    each caller still gets the totals just after its charge."""
    ledger = TokenLedger(database.sessions)
    batches: list[int] = []
    write = ledger._write

    async def counted(batch: list[Any]) -> Any:
        batches.append(len(batch))
        return await write(batch)

    monkeypatch.setattr(ledger, "_write", counted)

    totals = await asyncio.gather(*(ledger.add(f"U{i % 3}", 10) for i in range(12)))

    assert batches == [12]
    assert totals == [DaySpend(user=40, everyone=120)] * 12
    assert await ledger.spent("U1") == DaySpend(user=40, everyone=120)
    assert await ledger.add("U1", 5) == DaySpend(user=45, everyone=125)  # alone, at once
    assert batches == [12, 1]


async def test_concurrent_increments_lose_no_count(database: Database) -> None:
    """Many writers at once, as several processes would be: one atomic upsert each."""
    ledgers = [TokenLedger(database.sessions) for _ in range(4)]

    await asyncio.gather(*(ledgers[i % 4].add(USER if i % 2 else "U0OTHER", 7) for i in range(40)))

    spent = await ledgers[0].spent(USER)
    assert spent.user == 20 * 7 and spent.everyone == 40 * 7


async def test_an_faq_that_spends_the_budget_midway_says_which_questions_were_left_out(
    sqlite_db: Database,
) -> None:
    docs = [SourceDocument("policy.md", POLICY)]
    llm = PricedLLM()

    run = await create_faq(
        sqlite_db, llm, budgets(per_user=300), docs, n=3, mode="sequential",
        spender=Spender(USER),
    )  # fmt: skip

    # questions (120), answer 1 (240), sources 1 (360, begun under 300); then refused
    assert llm.calls == ["faq_questions", "faq_answer", "faq_sources"]
    assert len(run.result.items) == 1 and run.faq_id is not None
    left_out = [note for note in run.result.notes if note.startswith("left out")]
    assert len(left_out) == 2 and all("daily token budget" in note for note in left_out)
