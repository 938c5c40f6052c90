"""GeminiLLM + CallGate against a real HTTP fake, through the real google-genai client.

Every test builds its own gate with tiny backoff and timeouts, so the file stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from pipelines.config import LLMSettings
from pipelines.llm import rate_limit
from pipelines.llm.base import LLMError, LLMRequest, LLMUnavailable
from pipelines.llm.budget import spending_as
from pipelines.llm.factory import build_llm, reset_shared_gate, shared_gate
from pipelines.llm.fallback import FallbackLLM
from pipelines.llm.gemini import GeminiLLM, gemini_json_schema, retry_delay_s
from pipelines.llm.rate_limit import reporting_queue_waits
from pipelines.llm.reliability import (
    CallGate,
    RetryPolicy,
    TransientCallError,
    build_rate_limiter,
)
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_limits import SlidingQuota

MODEL = "gemini-2.5-flash"


class Intent(BaseModel):
    intent: str
    confidence: float = Field(ge=0, le=1)
    tags: list[str] = Field(default_factory=list)


LLMFactory = Callable[..., GeminiLLM]


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("GEMINI_API_KEY", "test-key-not-real")
        yield server


def new_llm(concurrency: int = 8, rpm: int = 100_000, **policy: Any) -> GeminiLLM:
    """A GeminiLLM on a gate of its own, with test-sized backoff and timeouts."""
    defaults: dict[str, Any] = {
        "max_attempts": 4,
        "call_timeout_s": 2.0,
        "deadline_s": 10.0,
        "backoff_base_s": 0.01,
    }
    gate = CallGate(concurrency, rpm, RetryPolicy(**(defaults | policy)))
    return GeminiLLM("test-key-not-real", gate)


@pytest.fixture
async def make_llm(fake: FakeGemini) -> AsyncIterator[LLMFactory]:
    """`new_llm` bound to the fake; closes the clients' HTTP sessions afterwards."""
    built: list[GeminiLLM] = []

    def factory(concurrency: int = 8, rpm: int = 100_000, **policy: Any) -> GeminiLLM:
        built.append(new_llm(concurrency, rpm, **policy))
        return built[-1]

    yield factory
    for llm in built:
        await llm.aclose()


def request(prompt: str = "hello", schema: type[BaseModel] | None = None) -> LLMRequest:
    return LLMRequest(
        step="router", model=MODEL, system="be brief", prompt=prompt, output_schema=schema
    )


async def timed(awaitable: Awaitable[Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - start


async def test_structured_output_is_raw_json_text(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.responder = lambda body: {"intent": "billing_inquiry", "confidence": 0.9}
    response = await make_llm().generate(request(schema=Intent))

    assert Intent.model_validate_json(response.text).intent == "billing_inquiry"
    assert response.attempts == 1 and response.model == MODEL
    sent = fake.requests[0]
    assert sent.model == MODEL and sent.had_api_key
    assert sent.body["systemInstruction"]["parts"][0]["text"] == "be brief"
    assert sent.body["contents"][0]["parts"][0]["text"] == "hello"
    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"] == ["intent", "confidence"]


async def test_calls_skip_the_sdks_function_calling_loop(
    fake: FakeGemini, make_llm: LLMFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Our steps pass no tools: the SDK's automatic function calling, on by default, would
    deep-copy each call's config and log a line per call for a loop that never runs."""
    fake.responder = lambda body: {"intent": "billing_inquiry", "confidence": 0.9}
    llm = make_llm()
    with caplog.at_level(logging.INFO, logger="google_genai"):
        await llm.generate(request(schema=Intent))
        await llm.generate_streaming(request(schema=Intent), lambda text: None)
    assert fake.calls == 2
    assert not [r for r in caplog.records if "AFC" in r.getMessage()]


async def test_plain_text_request_has_no_json_mode(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.responder = lambda body: "just text"
    response = await make_llm().generate(request())
    assert response.text == "just text"
    assert "responseMimeType" not in fake.requests[0].body.get("generationConfig", {})


async def test_429_retry_delay_is_waited_out(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.retry_delay_s = 0.3
    fake.fail_next([429])
    response, elapsed = await timed(make_llm().generate(request()))
    assert elapsed >= 0.3
    assert response.attempts == 2 and fake.calls == 2 and fake.rate_limited == 1


@pytest.mark.parametrize("faults", [[500], [503], [500, 503], [502, 504]])
async def test_server_errors_are_retried(
    fake: FakeGemini, make_llm: LLMFactory, faults: list[int]
) -> None:
    fake.fail_next(faults)
    response = await make_llm().generate(request())
    assert response.attempts == len(faults) + 1 == fake.calls


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_not_retried(
    fake: FakeGemini, make_llm: LLMFactory, status: int
) -> None:
    fake.fail_next([status])
    with pytest.raises(LLMError) as caught:
        await make_llm().generate(request())
    assert not isinstance(caught.value, LLMUnavailable)
    assert str(status) in str(caught.value)
    assert fake.calls == 1


async def test_exhausted_retries_raise_unavailable(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.fail_next([503] * 5)
    with pytest.raises(LLMUnavailable, match="3 attempt"):
        await make_llm(max_attempts=3).generate(request())
    assert fake.calls == 3


async def test_deadline_stops_before_a_long_retry_delay(
    fake: FakeGemini, make_llm: LLMFactory
) -> None:
    fake.retry_delay_s = 5.0
    fake.fail_next([429])
    start = time.monotonic()
    with pytest.raises(LLMUnavailable):
        await make_llm(deadline_s=1.0).generate(request())
    assert time.monotonic() - start < 0.5
    assert fake.calls == 1


async def test_deadline_bounds_a_hanging_call(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.fail_next(["hang"])
    with pytest.raises(LLMUnavailable, match="deadline"):
        await make_llm(call_timeout_s=5.0, deadline_s=0.3).generate(request())


@pytest.mark.parametrize("fault", ["hang", "truncated_json", "disconnect"])
async def test_transport_failures_are_retried(
    fake: FakeGemini, make_llm: LLMFactory, fault: str
) -> None:
    fake.fail_next([fault])
    response, elapsed = await timed(make_llm(call_timeout_s=0.3).generate(request()))
    assert response.attempts == 2 and fake.calls == 2
    assert elapsed < 2.0


@pytest.mark.parametrize("fault", ["empty_candidates", "safety_block", "prompt_blocked"])
async def test_blocked_or_empty_answers_raise(
    fake: FakeGemini, make_llm: LLMFactory, fault: str
) -> None:
    fake.fail_next([fault])
    with pytest.raises(LLMError) as caught:
        await make_llm().generate(request())
    assert not isinstance(caught.value, LLMUnavailable)
    assert fake.calls == 1


async def test_token_usage_includes_cached_prefix(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.responder = lambda body: "x" * 40
    llm = make_llm()
    shared = "policy " * 1000  # 7000 chars, about 1750 tokens: above the 1024-token minimum
    first = await llm.generate(request(shared + "question one"))
    second = await llm.generate(request(shared + "question two"))

    assert first.usage.cached_tokens == 0
    assert first.usage.output_tokens == 10
    assert first.usage.input_tokens == len("be brief" + shared + "question one") // 4
    assert second.usage.cached_tokens == len("be brief" + shared + "question ") // 4


async def test_concurrency_bound_holds(fake: FakeGemini, make_llm: LLMFactory) -> None:
    fake.latency_s = 0.05
    llm = make_llm(concurrency=3)
    await asyncio.gather(*(llm.generate(request(f"q{i}")) for i in range(20)))
    assert fake.calls == 20
    assert fake.max_in_flight == 3


async def test_backoff_releases_the_concurrency_slot(
    fake: FakeGemini, make_llm: LLMFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one slot, a request sleeping on a 503's backoff must not block another."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # the jitter's top: 0.5 s
    fake.fail_next([503])
    llm = make_llm(concurrency=1, backoff_base_s=0.5)
    finished: list[str] = []

    async def ask(name: str) -> None:
        await llm.generate(request(name))
        finished.append(name)

    first = asyncio.create_task(ask("retried"))
    await asyncio.sleep(0.05)  # let it take the slot and get its 503
    await ask("fresh")
    await first
    assert finished == ["fresh", "retried"]


async def test_a_call_refused_with_a_429_keeps_its_place() -> None:
    """The 429 holds every call; the refused one waits in the limiter's queue, in its
    place, not in a private sleep that lets later calls go first when the hold ends."""
    gate = CallGate(8, 100_000, RetryPolicy(backoff_base_s=0.01))
    sent: list[str] = []

    def call(name: str) -> Callable[[], Awaitable[str]]:
        async def attempt() -> str:
            sent.append(name)
            if sent == ["older"]:
                raise TransientCallError("429", "quota", retry_after_s=0.3)
            return name

        return attempt

    first = asyncio.create_task(gate.run(call("older"), provider="p", step="s"))
    await asyncio.sleep(0.05)  # refused by now, and the hold is on
    started = time.monotonic()
    await asyncio.gather(first, gate.run(call("newer"), provider="p", step="s"))
    assert time.monotonic() - started < 0.6  # the hold, not the hold and a sleep
    assert sent == ["older", "older", "newer"]


async def test_rpm_budget_is_spent_as_a_burst(fake: FakeGemini, make_llm: LLMFactory) -> None:
    """Six calls under LLM_RPM=240 all go at once: the budget allows them in this minute,
    so none waits for a token (the window check is in the limiter's own tests)."""
    llm = make_llm(rpm=240)
    await asyncio.gather(*(llm.generate(request(f"q{i}")) for i in range(6)))
    times = sorted(r.received_at for r in fake.requests)
    assert times[5] - times[0] < 0.2


async def test_server_quota_429s_are_absorbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst past the server's sliding-window quota still succeeds, via RetryInfo waits."""
    async with FakeGemini(rpm=4, window_s=0.5) as strict:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", strict.base_url)
        llm = new_llm(max_attempts=8)
        try:
            responses = await asyncio.gather(*(llm.generate(request(f"q{i}")) for i in range(8)))
        finally:
            await llm.aclose()
    assert strict.calls > 8 and strict.rate_limited == strict.calls - 8
    assert all(r.text == "fake answer" for r in responses)


async def test_rate_limiter_admits_a_burst_and_never_more_in_any_window() -> None:
    """The whole budget at once when requests come together, then never more than `limit`
    in any window: checked over every window that starts at an admission."""
    limiter = build_rate_limiter(5, window_seconds=1, margin_s=0)
    started = time.monotonic()
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(time.monotonic() - started)

    await asyncio.gather(*(one() for _ in range(12)))

    assert sorted(times) == times  # arrival order
    assert times[4] < 0.1  # the first five: a burst, no waiting
    assert 0.95 <= times[5] < 1.3  # the sixth waits for the first to leave the window
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + 0.999]
        assert len(in_window) <= 5, (start, in_window)
    assert times[-1] < 2.4  # 12 requests at 5 per second: the third window, not later


@pytest.mark.parametrize("margin_s", [0, 1])
async def test_the_window_margin_keeps_late_arrivals_from_a_429_at_the_edge(
    margin_s: int,
) -> None:
    """The provider counts a call when it arrives. A first burst that reached it late (a
    loaded client) and a call sent the moment our own window frees a slot: without the
    margin that call arrives inside the provider's window and is refused."""
    provider = SlidingQuota(3, window_s=1.0)
    limiter = build_rate_limiter(3, window_seconds=1, margin_s=margin_s)
    refused = 0

    async def call(transit_s: float) -> None:
        nonlocal refused
        await limiter.acquire()
        await asyncio.sleep(transit_s)
        refused += provider.admit(time.monotonic()) is not None

    await asyncio.gather(*(call(0.2) for _ in range(3)))  # arrive 0.2 s after admission
    await asyncio.gather(*(call(0.0) for _ in range(3)))  # the next window's, at once
    assert refused == (3 if margin_s == 0 else 0)


async def test_a_providers_429_holds_every_new_call() -> None:
    """RetryInfo on a 429 stops new calls for that long, though our own window has room."""
    limiter = build_rate_limiter(100, window_seconds=1, margin_s=0)
    await limiter.acquire()
    limiter.hold(0.3)
    started = time.monotonic()
    await asyncio.gather(limiter.acquire(), limiter.acquire())
    assert time.monotonic() - started >= 0.29


async def test_rate_limiter_serves_waiters_in_arrival_order() -> None:
    limiter = build_rate_limiter(1, window_seconds=1, margin_s=0)
    order: list[int] = []

    async def one(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = []
    for n in range(3):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(0.01)  # arrive one after another
    assert limiter.waiting == 2
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and limiter.waiting == 0


async def test_a_long_wait_for_a_turn_is_reported_then_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listener hears "waiting" once a call has waited past the threshold for a slot
    or a rate token, and "done" when its turn comes; a call that goes at once, or waits
    less, says nothing."""
    monkeypatch.setattr(rate_limit, "QUEUE_NOTE_AFTER_S", 0.3)
    gate = CallGate(1, 100_000, RetryPolicy(backoff_base_s=0.01))
    heard: dict[str, list[bool]] = {"slow": [], "second": [], "held": []}

    async def call(name: str, seconds: float) -> str:
        with reporting_queue_waits(heard[name].append):

            async def attempt() -> str:
                await asyncio.sleep(seconds)
                return name

            return (await gate.run(attempt, provider="p", step="s")).value

    first = asyncio.create_task(call("slow", 0.8))  # holds the only slot
    await asyncio.sleep(0.05)
    await asyncio.gather(first, call("second", 0))  # waits ~0.75 s for the slot
    assert heard["slow"] == [] and heard["second"] == [True, False]

    gate._loop_limits().limiter.hold(0.1)  # a short 429 hold: below the threshold
    await call("held", 0)
    assert heard["held"] == []


async def test_the_gates_slots_go_to_the_oldest_conversation() -> None:
    """With every slot taken, the next free one goes to the call of the conversation that
    began first, not to the first call that asked (a FIFO semaphore did that)."""
    gate = CallGate(1, 100_000, RetryPolicy(backoff_base_s=0.01))
    sent: list[str] = []

    async def call(name: str, since: float, seconds: float = 0.0) -> None:
        async def attempt() -> None:
            sent.append(name)
            await asyncio.sleep(seconds)

        with spending_as(name, since=since):
            await gate.run(attempt, provider="p", step="s")

    now = time.monotonic()
    busy = asyncio.create_task(call("busy", now, seconds=0.2))
    await asyncio.sleep(0.02)
    newer = asyncio.create_task(call("newer", now))
    await asyncio.sleep(0.02)
    await asyncio.gather(busy, newer, call("older", now - 30))
    assert sent == ["busy", "older", "newer"]


def test_retry_delay_parsing() -> None:
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    assert retry_delay_s({"error": {"code": 429, "details": [{"@type": "x"}, info]}}) == 1.5
    assert retry_delay_s({"error": {"code": 429}}) is None
    assert retry_delay_s("not json") is None


def test_schema_drops_unsupported_keywords() -> None:
    schema = gemini_json_schema(Intent)
    assert "default" not in str(schema)
    assert schema["propertyOrdering"] == ["intent", "confidence", "tags"]


async def test_metrics_count_calls_and_rate_limits(fake: FakeGemini, make_llm: LLMFactory) -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    ok = {"provider": "gemini", "step": "router", "outcome": "ok"}
    before = (value("supportbot_llm_calls_total", **ok), value("supportbot_llm_rate_limited_total"))
    fake.retry_delay_s = 0.01
    fake.fail_next([429])
    await make_llm().generate(request())
    assert value("supportbot_llm_calls_total", **ok) == before[0] + 1
    assert value("supportbot_llm_rate_limited_total") == before[1] + 1
    assert value("supportbot_llm_retries_total", reason="429") >= 1


async def test_factory_picks_gemini_when_a_key_is_set(fake: FakeGemini) -> None:
    settings = LLMSettings(gemini_api_key="test-key-not-real", llm_provider="auto")
    llm = build_llm(settings, gate=CallGate(2, 1000, RetryPolicy(backoff_base_s=0.01)))
    assert isinstance(llm, FallbackLLM) and isinstance(llm.primary, GeminiLLM)
    assert llm.fallback.name == "offline" and llm.name == "gemini"
    bare = build_llm(settings.model_copy(update={"llm_fallback": "none"}))
    assert isinstance(bare, GeminiLLM)
    await bare.aclose()
    try:
        assert (await llm.generate(request())).text == "fake answer"
    finally:
        await llm.aclose()


def test_factory_falls_back_to_offline_without_a_key() -> None:
    llm = build_llm(LLMSettings(llm_provider="auto"))
    assert llm.name == "offline" and not isinstance(llm, GeminiLLM)


def test_factory_shares_one_gate_per_process() -> None:
    reset_shared_gate()
    try:
        settings = LLMSettings(llm_max_concurrency=5, llm_rpm=300)
        gate = shared_gate(settings)
        assert shared_gate(LLMSettings()) is gate
        assert (gate.max_concurrency, gate.rpm) == (5, 300)
    finally:
        reset_shared_gate()
