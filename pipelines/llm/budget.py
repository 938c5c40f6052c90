"""Daily token budgets: per Slack user and for everyone, shared by every process.

One `/faq` over large documents can cost millions of tokens and one busy user can use the
whole provider quota, so spending has a cap (LLM_DAILY_TOKENS_PER_USER, LLM_DAILY_TOKENS;
0 means unlimited). The counts live in the database (`storage.budgets`), so every replica
and worker sees one total; a day is a UTC day.

Who spends is a context variable (`spending_as`), set by whoever starts the work: the
support service per message (its author), the FAQ job (its requester). asyncio copies it
into the tasks started inside, so parallel steps and workers spend for the same person,
and concurrent jobs never mix. `BudgetedLLM` wraps a provider: before each call it checks
the spender's and everyone's spending (over budget: `BudgetExceeded`, no call is made),
and after it adds the call's tokens (input + output). Calls already running finish, so a
burst can overshoot by the calls in flight; the next call is refused. A piece of work
reads the stored totals once, at its first check; each charge returns the totals after it
(the upsert's RETURNING), which the next check uses, so a message's later calls cost no
read. Spending by other work in the meantime shows at the next charge. Support agents are
exempt from the per-user budget and count towards everyone's. Work with no spender (the
CLI, evals) counts towards everyone's budget only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from pipelines.config import LLMSettings
from pipelines.llm.base import (
    LLM,
    LLMError,
    LLMRequest,
    LLMResponse,
    PartialText,
    TokenUsage,
    generate_with_partials,
)
from storage.budgets import DaySpend, TokenLedger
from storage.db import Sessions

logger = logging.getLogger(__name__)

Scope = Literal["user", "everyone"]


class BudgetExceeded(LLMError):
    """Today's tokens are spent (the spender's own or everyone's); no call was made."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        whose = "this user's" if scope == "user" else "the team's"
        super().__init__(f"{whose} daily LLM token budget is spent")


@dataclass
class KnownSpend:
    """The latest totals a piece of work has seen: read once, then from its charges."""

    spent: DaySpend | None = None


@dataclass(frozen=True)
class Spender:
    """Whose budget an LLM call is charged to; `exempt`: no per-user limit (an agent)."""

    user_id: str
    exempt: bool = False
    # When the work began (a message: when the customer wrote it): the rate limiter serves
    # older work first when the quota is tight.
    since: float = field(default_factory=time.monotonic, compare=False)
    known: KnownSpend = field(default_factory=KnownSpend, compare=False, repr=False)


_SPENDER: ContextVar[Spender | None] = ContextVar("llm_spender", default=None)


def monotonic_at(epoch_s: float | None) -> float:
    """A wall-clock time (a Slack message's ts) on the monotonic clock of `Spender.since`,
    never later than now; now when unknown."""
    now = time.monotonic()
    if epoch_s is None:
        return now
    return now - max(0.0, time.time() - epoch_s)


@contextmanager
def spending_as(
    user_id: str, *, exempt: bool = False, since: float | None = None
) -> Iterator[Spender]:
    """Charge the LLM calls inside the block (and in tasks started there) to `user_id`;
    `since` (monotonic) dates the work for the rate limiter's order, default now."""
    spender = Spender(user_id, exempt) if since is None else Spender(user_id, exempt, since)
    with spending(spender):
        yield spender


@contextmanager
def spending(spender: Spender) -> Iterator[Spender]:
    """`spending_as` for a spender the caller already has (and may have checked)."""
    token = _SPENDER.set(spender)
    try:
        yield spender
    finally:
        _SPENDER.reset(token)


def current_spender() -> Spender | None:
    return _SPENDER.get()


class DailyBudget:
    """The limits of a day and the stored spending they are checked against."""

    def __init__(self, ledger: TokenLedger, *, per_user: int, everyone: int) -> None:
        self.ledger = ledger
        self.per_user = per_user
        self.everyone = everyone

    @classmethod
    def from_settings(cls, sessions: Sessions, settings: LLMSettings) -> DailyBudget:
        return cls(
            TokenLedger(sessions),
            per_user=settings.llm_daily_tokens_per_user,
            everyone=settings.llm_daily_tokens,
        )

    async def refusal(self, spender: Spender | None) -> Scope | None:
        """Which budget `spender` is over ("user" or "everyone"), or None: may spend."""
        limits_user = self.per_user > 0 and spender is not None and not spender.exempt
        if not limits_user and self.everyone <= 0:
            return None
        spent = spender.known.spent if spender else None
        if spent is None:
            spent = await self.ledger.spent(spender.user_id if spender else "")
            if spender is not None:
                spender.known.spent = spent
        if self.everyone > 0 and spent.everyone >= self.everyone:
            return "everyone"
        if limits_user and spent.user >= self.per_user:
            return "user"
        return None

    async def charge(self, spender: Spender | None, usage: TokenUsage) -> None:
        """Add one call's tokens; a failure to count is logged, never fails the answer."""
        tokens = usage.input_tokens + usage.output_tokens
        try:
            totals = await self.ledger.add(spender.user_id if spender else "", tokens)
            if spender is not None and totals is not None:
                spender.known.spent = totals
        except Exception:  # the call is paid for already: losing its count beats failing it
            logger.exception("could not record %d LLM tokens", tokens)


class BudgetedLLM:
    """A provider whose calls are checked against, and charged to, the daily budgets."""

    def __init__(self, inner: LLM, budget: DailyBudget) -> None:
        self.inner = inner
        self.budget = budget
        self.name = inner.name

    async def generate(self, request: LLMRequest) -> LLMResponse:
        spender = await self._admit()
        response = await self.inner.generate(request)
        await self.budget.charge(spender, response.usage)
        return response

    async def generate_streaming(self, request: LLMRequest, on_partial: PartialText) -> LLMResponse:
        spender = await self._admit()
        response = await generate_with_partials(self.inner, request, on_partial)
        await self.budget.charge(spender, response.usage)
        return response

    async def _admit(self) -> Spender | None:
        spender = current_spender()
        scope = await self.budget.refusal(spender)
        if scope is not None:
            raise BudgetExceeded(scope)
        return spender


def budgeted(llm: LLM, budget: DailyBudget) -> LLM:
    """`llm` behind `budget`, unless it already is behind one (never charged twice)."""
    return llm if isinstance(llm, BudgetedLLM) else BudgetedLLM(llm, budget)


__all__ = [
    "BudgetExceeded",
    "BudgetedLLM",
    "DailyBudget",
    "KnownSpend",
    "Spender",
    "budgeted",
    "current_spender",
    "monotonic_at",
    "spending",
    "spending_as",
]
