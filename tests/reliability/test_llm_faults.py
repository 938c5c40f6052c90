"""LLM faults injected by the fake Gemini endpoint: every message still gets an honest
reply, nothing is dropped, the trace says what happened, and the circuit breaker stops
hammering a failing provider and recovers when it is back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from pipelines.config import LLMSettings
from pipelines.llm.fallback import FallbackLLM
from pipelines.llm.gemini import GeminiLLM
from pipelines.llm.offline import OFFLINE_MODEL, OfflineLLM
from pipelines.llm.reliability import CallGate, RetryPolicy
from pipelines.support.contracts import IncomingMessage
from pipelines.support.service import SupportService
from storage.catalog import demo_ids, get_or_create_customer
from storage.db import Database
from storage.traces import TraceStore
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_scripts import by_step

USER = "U0FAULTS"
FAST = RetryPolicy(
    max_attempts=3, call_timeout_s=0.4, deadline_s=4.0, backoff_base_s=0.01, backoff_max_s=0.05
)


def healthy_answers(order: str) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    return {
        "classify_intent": lambda b: {"intent": "order_status", "confidence": 0.9},
        "plan_tasks": lambda b: {"tasks": [{"kind": "status_update", "order_id": order}]},
        "synthesize_reply": lambda b: {"reply": f"Gemini says: {order} is on its way."},
    }


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


@pytest.fixture
async def order(db: Database) -> str:
    customer = await get_or_create_customer(db.sessions, USER, "T1")
    return (await demo_ids(db.sessions, customer.id)).order_numbers[0]


def message(text: str, n: int) -> IncomingMessage:
    return IncomingMessage(
        request_id=f"evt-{n}", team_id="T1", channel_id="D1", thread_ts=f"{n}.0",
        message_ts=f"{n}.0", user_id=USER, text=text,
    )  # fmt: skip


def service(db: Database, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch,
            threshold: int = 50, recovery_s: float = 30.0) -> tuple[SupportService, FallbackLLM]:  # fmt: skip
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
    llm = FallbackLLM(
        GeminiLLM("test-key", CallGate(8, 100_000, FAST)),
        OfflineLLM(),
        failure_threshold=threshold,
        recovery_timeout_s=recovery_s,
    )
    # Faults are queued per call, in order: the planner must not start beside the router
    # (speculation has its own tests in tests/test_speculative_plan.py).
    return SupportService(db, llm, LLMSettings(llm_speculative_plan=False)), llm


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([429] * 3 + [503] * 3, id="429s-then-5xx"),
        pytest.param([500, 503, 503], id="5xx"),
        pytest.param(["hang"] * 3, id="hang-past-timeout"),
        pytest.param(["truncated_json"] * 3, id="truncated-json"),
        pytest.param(["empty_candidates"], id="empty-candidates"),
        pytest.param(["safety_block"], id="safety-block"),
        pytest.param([400], id="bad-request"),
    ],
)
async def test_a_failing_router_call_degrades_to_offline_and_the_trace_says_so(
    db: Database, order: str, faults: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeGemini(by_step(healthy_answers(order)), hang_s=5) as fake:
        fake.fail_next(faults)
        support, llm = service(db, fake, monkeypatch)
        try:
            reply = await support.handle(message(f"where is my order {order}?", 1))
        finally:
            await llm.aclose()
    assert order in reply.text  # answered, not dropped
    assert reply.provider == "degraded"
    run = await TraceStore(db.sessions).load(reply.run_id)
    assert run is not None and run.status == "ok"
    first = run.steps[0]
    assert first.name == "classify_intent" and first.model == OFFLINE_MODEL
    later = [step.model for step in run.steps[1:]]
    assert later and all(model != OFFLINE_MODEL for model in later)  # Gemini is back after


async def test_a_429_storm_is_waited_out_not_failed(
    db: Database, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paced 429s (with RetryInfo) use time, not attempts: 3 attempts survive 8 of them."""
    async with FakeGemini(by_step(healthy_answers(order)), retry_delay_s=0.02) as fake:
        fake.fail_next([429] * 8)
        support, llm = service(db, fake, monkeypatch)
        try:
            reply = await support.handle(message(f"where is my order {order}?", 3))
        finally:
            await llm.aclose()
        assert fake.rate_limited == 8
    assert reply.provider == "gemini" and reply.text.startswith("Gemini says")
    run = await TraceStore(db.sessions).load(reply.run_id)
    assert run is not None and run.steps[0].attempts == 9


async def test_schema_invalid_enum_is_repaired_by_asking_again(
    db: Database, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = healthy_answers(order)
    bad_then_good = iter([{"intent": "refund_all_invoices", "confidence": 1.0}])
    answers["classify_intent"] = lambda b: next(
        bad_then_good, {"intent": "order_status", "confidence": 0.9}
    )
    async with FakeGemini(by_step(answers)) as fake:
        support, llm = service(db, fake, monkeypatch)
        try:
            reply = await support.handle(message(f"where is {order}", 2))
        finally:
            await llm.aclose()
    assert reply.text.startswith("Gemini says") and reply.provider == "gemini"
    run = await TraceStore(db.sessions).load(reply.run_id)
    assert run is not None and run.steps[0].attempts == 2


async def test_invented_action_ids_and_sources_never_reach_the_customer(
    db: Database, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = healthy_answers(order)
    answers["synthesize_reply"] = lambda b: {"reply": "Refunded! Your RMA-999999 is ready."}
    async with FakeGemini(by_step(answers)) as fake:
        support, llm = service(db, fake, monkeypatch)
        try:
            reply = await support.handle(message(f"where is {order}", 3))
        finally:
            await llm.aclose()
    assert "RMA-999999" not in reply.text and reply.actions == []


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_circuit_opens_on_an_outage_and_closes_when_the_provider_is_back(
    db: Database, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeGemini(by_step(healthy_answers(order))) as fake:
        fake.fail_next([503] * 6)  # two calls' worth of 3 attempts each
        support, llm = service(db, fake, monkeypatch, threshold=2, recovery_s=0.5)
        try:
            first = await support.handle(message(f"where is {order}", 10))
            calls_when_opened = fake.calls
            assert llm.breaker.opened
            # While open, nothing is sent to the provider, and customers still get answers.
            during = await support.handle(message(f"where is {order}?", 11))
            assert fake.calls == calls_when_opened
            assert metric("supportbot_llm_circuit_open") == 1
            await asyncio.sleep(0.6)  # recovery timeout: the next call probes the provider
            after = await support.handle(message(f"is {order} shipped", 12))
        finally:
            await llm.aclose()
    assert first.provider == during.provider == "degraded"
    assert order in during.text
    assert after.provider == "gemini" and after.text.startswith("Gemini says")
    assert not llm.breaker.opened
    assert re.search(order, first.text)
