"""The planner starts with the router (`pipelines.support.routing.plan_ahead`).

A message for the orchestrator then waits one LLM call before its workers, not two; any
other route cancels the planner (the trace says so), and a failing speculative planner
that nobody needs changes nothing. Off on the offline provider, while LLM_RPM has had
calls queued, and with LLM_SPECULATIVE_PLAN=false.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pipelines.config import LLMSettings
from pipelines.knowledge.retrieval import KnowledgeBase
from pipelines.llm import rate_limit
from pipelines.llm.base import LLMError, LLMRequest, LLMResponse
from pipelines.llm.gemini import GeminiLLM
from pipelines.llm.reliability import CallGate, RetryPolicy
from pipelines.steps import PipelineContext, Trace
from pipelines.support.orchestrator import Task, WorkerResult
from pipelines.support.request import SupportRequest
from pipelines.support.routing import answer_message
from pipelines.support.service import SupportService
from storage.backends import Actor
from storage.catalog import demo_ids, get_or_create_customer
from storage.db import Database
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_scripts import by_step, step_name
from tests.incoming import incoming
from tests.scripted_llm import ScriptedLLM

ORDER_STATUS = {
    "classify_intent": {"intent": "order_status", "confidence": 0.9},
    "plan_tasks": {"tasks": [{"kind": "status_update", "order_id": "ORD-10012"}]},
    "synthesize_reply": {"reply": "ORD-10012 is on its way."},
}
GENERAL = {"classify_intent": {"intent": "general_question", "confidence": 0.9}}


class StepDelays(ScriptedLLM):
    """A scripted LLM whose steps take the given seconds (the rest: `default`)."""

    def __init__(self, scripts: dict, delays: dict[str, float], default: float = 0.0) -> None:
        super().__init__(scripts)
        self.delays = delays
        self.default = default
        self.started: list[str] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.started.append(request.step)
        await asyncio.sleep(self.delays.get(request.step, self.default))
        return await super().generate(request)


class StatusOnly:
    async def run(self, ctx: PipelineContext, task: Task, request: SupportRequest) -> WorkerResult:
        return WorkerResult(kind=task.kind, ok=True, facts={"order": {"status": "shipped"}})


@pytest.fixture(autouse=True)
def quota_is_calm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_limit, "_last_queued", 0.0)


def route(llm: ScriptedLLM, db: Database, settings: LLMSettings | None = None):  # type: ignore[no-untyped-def]
    trace = Trace("support", {})
    ctx = PipelineContext(llm, settings or LLMSettings(), trace)
    request = SupportRequest(
        request_id="r1", text="where is ORD-10012?", actor=Actor(customer_id=1)
    )
    workers = {"status_update": StatusOnly()}
    return trace, answer_message(ctx, request, workers, KnowledgeBase(db.sessions))  # type: ignore[dict-item]


async def test_an_order_status_waits_for_one_call_before_its_worker(sqlite_db: Database) -> None:
    llm = StepDelays(ORDER_STATUS, {}, default=0.2)
    trace, answering = route(llm, sqlite_db)
    started = time.monotonic()
    outcome = await answering
    elapsed = time.monotonic() - started
    assert "ORD-10012" in outcome.text
    assert set(llm.started[:2]) == {"plan_tasks", "classify_intent"}  # together
    assert elapsed < 0.55  # two calls of 0.2 s, not three
    assert sorted(s.name for s in trace.steps if s.error is None) == [
        "classify_intent",
        "plan_tasks",
        "synthesize_reply",
    ]


async def test_another_route_cancels_the_planner_and_the_trace_says_so(
    sqlite_db: Database,
) -> None:
    llm = StepDelays({**GENERAL, "plan_tasks": ORDER_STATUS["plan_tasks"]}, {"plan_tasks": 5.0})
    trace, answering = route(llm, sqlite_db)
    outcome = await asyncio.wait_for(answering, timeout=2)  # not held up by the planner
    assert outcome.intents == ["general_question"]
    [plan] = [s for s in trace.steps if s.name == "plan_tasks"]
    assert plan.error == "cancelled"
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "speculative-plan"]


async def test_a_failing_planner_nobody_needs_changes_nothing(sqlite_db: Database) -> None:
    llm = StepDelays({**GENERAL, "plan_tasks": LLMError("planner down")}, {})
    trace, answering = route(llm, sqlite_db)
    outcome = await answering
    assert outcome.intents == ["general_question"] and outcome.escalation_reason is None
    [plan] = [s for s in trace.steps if s.name == "plan_tasks"]
    assert plan.error is not None and "planner down" in plan.error


@pytest.mark.parametrize("why", ["setting off", "quota tight"])
async def test_no_speculation_when_off_or_the_quota_is_tight(
    sqlite_db: Database, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = LLMSettings(llm_speculative_plan=why != "setting off")
    if why == "quota tight":
        monkeypatch.setattr(rate_limit, "_last_queued", time.monotonic())
    llm = StepDelays(GENERAL, {})
    _, answering = route(llm, sqlite_db, settings)
    await answering
    assert llm.started == ["classify_intent"]  # a general question: no planner at all


async def test_over_the_real_client_router_and_planner_are_in_flight_together(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SupportService -> google-genai -> the fake Gemini endpoint: the planner's request
    arrives before the router's answer could have come back."""
    customer = await get_or_create_customer(sqlite_db.sessions, "U0SPEC", "T1")
    order = (await demo_ids(sqlite_db.sessions, customer.id)).order_numbers[0]
    answers = {
        "classify_intent": lambda b: ORDER_STATUS["classify_intent"],
        "plan_tasks": lambda b: {"tasks": [{"kind": "status_update", "order_id": order}]},
        "synthesize_reply": lambda b: {"reply": f"{order} is on its way."},
    }
    latency = 0.3
    async with FakeGemini(by_step(answers), latency_s=latency) as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        llm = GeminiLLM("test-key", CallGate(8, 100_000, RetryPolicy(max_attempts=1)))
        try:
            service = SupportService(sqlite_db, llm, LLMSettings())
            reply = await service.handle(incoming(f"where is {order}?", "1.0", user="U0SPEC"))
        finally:
            await llm.aclose()
        received = sorted(fake.requests, key=lambda r: r.received_at)
    assert order in reply.text
    steps = [step_name(r.body) for r in received]
    assert sorted(steps[:2]) == ["classify_intent", "plan_tasks"]
    assert received[1].received_at - received[0].received_at < latency / 2
