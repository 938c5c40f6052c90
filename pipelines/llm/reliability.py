"""Call reliability for every LLM provider in the process: limits, retries, deadlines.

One `CallGate` is shared by all pipelines (see `pipelines.llm.factory.shared_gate`), so
the concurrency bound and the requests-per-minute budget hold for the whole process,
not per pipeline. Each attempt:

1. takes a concurrency slot (`rate_limit.OrderedSlots`, LLM_MAX_CONCURRENCY, handed out in
   the limiter's order; a wait for the slot and the token that passes a second is
   reported: `rate_limit.waiting_for_a_turn`),
2. takes a rate token (`rate_limit.SlidingWindowLimiter`, LLM_RPM) right before sending, so the
   token's time is the time the provider sees the request,
3. runs under the per-call timeout (LLM_CALL_TIMEOUT_S),
4. gives the slot back before any backoff sleep, so a retrying request never blocks
   fresh ones; the next attempt queues for a slot and a token again.

Retries use tenacity with full-jitter exponential backoff; a server's RetryInfo delay
(carried by `TransientCallError.retry_after_s`) is a floor on the wait. A request stops
when its attempts run out or the next wait would pass its deadline (LLM_REQUEST_DEADLINE_S):
that is `LLMUnavailable`. A 429 that says how long to wait (RetryInfo) is the provider
pacing us, not a failure: it does not use up an attempt, only time, so a burst is slowed
down, never failed, until the deadline. Such a call does not sleep on its own either: the
429 holds the rate limiter for the delay, and the call goes straight back to the
limiter's queue, where it keeps its place by the age of its work (a private sleep with
jitter sent the refused calls of the oldest conversations to the back). Anything not
transient is `LLMError` at once.

Provider adapters only classify: they raise `TransientCallError` for retryable answers
(HTTP 429/5xx, malformed bodies) and `LLMError` for the rest; raw timeouts and connection
errors from asyncio, aiohttp and httpx are recognised here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeGuard, TypeVar

import aiohttp
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_before_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from pipelines.config import LLMSettings
from pipelines.llm.base import LLMError, LLMUnavailable
from pipelines.llm.rate_limit import (
    OrderedSlots,
    SlidingWindowLimiter,
    build_rate_limiter,
    waiting_for_a_turn,
)
from pipelines.metrics import (
    LLM_CALL_SECONDS,
    LLM_CALLS,
    LLM_IN_FLIGHT,
    LLM_RATE_LIMITED,
    LLM_RETRIES,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS: frozenset[int] = frozenset({429, 500, 502, 503, 504})


class TransientCallError(Exception):
    """An attempt failed in a way that another attempt may fix (429, 5xx, bad body).

    `reason` labels the retry metric ("429", "503", "malformed_response"...);
    `retry_after_s` is the server's own hint (RetryInfo), used as a floor on the wait.
    """

    def __init__(self, reason: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


def is_retryable_status(code: int) -> bool:
    """Rate limiting and server-side failures are retried; other 4xx are our own fault."""
    return code in RETRYABLE_STATUS


def is_paced_429(exc: BaseException | None) -> TypeGuard[TransientCallError]:
    """A 429 that says when to come back: the provider pacing us, not a failure."""
    return isinstance(exc, TransientCallError) and exc.reason == "429" and bool(exc.retry_after_s)


def transient_reason(exc: BaseException) -> str | None:
    """Why `exc` is worth another attempt, or None when it is not.

    Timeouts are checked first: aiohttp's ServerTimeoutError is also a connection error.
    """
    if isinstance(exc, TransientCallError):
        return exc.reason
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(
        exc,
        aiohttp.ClientConnectionError
        | aiohttp.ClientPayloadError
        | httpx.TransportError
        | ConnectionError,
    ):
        return "connection"
    return None


class StopAfterFailures(stop_base):
    """Stop after `max_attempts` failed attempts, not counting paced 429s.

    A 429 carrying RetryInfo was refused before any work was done and tells when to come
    back; counting it would fail a user's request merely because it arrived in a burst.
    """

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self.failures = 0  # one instance per request (`CallGate._retrying`)

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if not is_paced_429(exc):
            self.failures += 1
        return self.failures >= self.max_attempts


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries. `backoff_base_s` is small in tests so they stay fast."""

    max_attempts: int = 6
    call_timeout_s: float = 60.0
    deadline_s: float = 180.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_after_spread: float = 0.2  # wait RetryInfo * U(1, 1.2): waiters do not stampede

    @classmethod
    def from_settings(cls, settings: LLMSettings, backoff_base_s: float = 1.0) -> RetryPolicy:
        """The policy the environment asks for (SPEC section 7)."""
        return cls(
            max_attempts=settings.llm_max_attempts,
            call_timeout_s=settings.llm_call_timeout_s,
            deadline_s=settings.llm_request_deadline_s,
            backoff_base_s=backoff_base_s,
        )


@dataclass(frozen=True)
class GateResult(Generic[T]):
    """What a call returned and how many attempts it took."""

    value: T
    attempts: int


@dataclass(frozen=True)
class _LoopLimits:
    """asyncio primitives bind to one event loop, so they are rebuilt if the loop changes."""

    loop: asyncio.AbstractEventLoop
    slots: OrderedSlots
    limiter: SlidingWindowLimiter


class CallGate:
    """The single place where LLM call reliability lives, shared by every pipeline."""

    def __init__(self, max_concurrency: int, rpm: int, policy: RetryPolicy | None = None) -> None:
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.policy = policy or RetryPolicy()
        self._limits: _LoopLimits | None = None

    @classmethod
    def from_settings(cls, settings: LLMSettings, backoff_base_s: float = 1.0) -> CallGate:
        """A gate configured from LLM_MAX_CONCURRENCY, LLM_RPM and the retry settings."""
        policy = RetryPolicy.from_settings(settings, backoff_base_s=backoff_base_s)
        return cls(settings.llm_max_concurrency, settings.llm_rpm, policy)

    async def run(
        self, call: Callable[[], Awaitable[T]], *, provider: str, step: str
    ) -> GateResult[T]:
        """Run `call` with limits and retries; raise LLMUnavailable or LLMError on failure.

        `call` is invoked once per attempt and must build a fresh request each time.
        """
        attempts = 0
        deadline = asyncio.timeout(self.policy.deadline_s)
        try:
            async with deadline:
                async for attempt in self._retrying():
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        value = await self._attempt(call, step)
        except LLMError:
            LLM_CALLS.labels(provider=provider, step=step, outcome="error").inc()
            raise
        except Exception as exc:
            raise self._failure(exc, provider, step, attempts, deadline.expired()) from exc
        LLM_CALLS.labels(provider=provider, step=step, outcome="ok").inc()
        return GateResult(value=value, attempts=attempts)

    def _failure(
        self, exc: Exception, provider: str, step: str, attempts: int, deadline_passed: bool
    ) -> LLMError:
        """Turn the last failure into LLMUnavailable (transient) or LLMError (not)."""
        if deadline_passed:
            message = f"{provider}/{step}: deadline of {self.policy.deadline_s:g}s passed"
            error: LLMError = LLMUnavailable(f"{message} after {attempts} attempt(s)")
        elif (reason := transient_reason(exc)) is not None:
            error = LLMUnavailable(
                f"{provider}/{step}: gave up after {attempts} attempt(s), last: {reason}: {exc}"
            )
        else:
            error = LLMError(f"{provider}/{step}: {type(exc).__name__}: {exc}")
        outcome = "unavailable" if isinstance(error, LLMUnavailable) else "error"
        LLM_CALLS.labels(provider=provider, step=step, outcome=outcome).inc()
        return error

    def _retrying(self) -> AsyncRetrying:
        """A fresh tenacity controller per request: its clock is the request's deadline."""
        policy = self.policy
        return AsyncRetrying(
            retry=retry_if_exception(lambda exc: transient_reason(exc) is not None),
            stop=StopAfterFailures(policy.max_attempts) | stop_before_delay(policy.deadline_s),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter exponential backoff, but never shorter than the server's RetryInfo;
        none after a paced 429, whose wait is the limiter's hold, taken in the queue (unless
        the hold outlasts the deadline: then the delay itself, so the request stops now)."""
        exc = state.outcome.exception() if state.outcome else None
        if is_paced_429(exc):
            hold = exc.retry_after_s or 0.0
            elapsed = state.seconds_since_start or 0.0
            return 0.0 if elapsed + hold < self.policy.deadline_s else hold
        policy = self.policy
        backoff = wait_random_exponential(
            multiplier=policy.backoff_base_s, max=policy.backoff_max_s
        )
        wait = backoff(state)
        hint = exc.retry_after_s if isinstance(exc, TransientCallError) else None
        if hint:
            wait = max(wait, hint * random.uniform(1.0, 1.0 + policy.retry_after_spread))
        return wait

    @staticmethod
    def _before_sleep(state: RetryCallState) -> None:
        """Count and log a retry; the exception text never carries credentials."""
        exc = state.outcome.exception() if state.outcome else None
        reason = transient_reason(exc) if exc else None
        LLM_RETRIES.labels(reason=reason or "unknown").inc()
        if is_paced_429(exc):
            log.info("LLM attempt %d refused (429): waits for the rate limiter's hold",
                     state.attempt_number)  # fmt: skip
            return
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "LLM attempt %d failed (%s); retrying in %.2fs", state.attempt_number, reason, sleep
        )

    async def _attempt(self, call: Callable[[], Awaitable[T]], step: str) -> T:
        """One attempt: slot, rate token, timed call. The slot is released on return."""
        limits = self._loop_limits()
        with waiting_for_a_turn():
            await limits.slots.acquire()
            try:
                await limits.limiter.acquire()
            except BaseException:
                limits.slots.release()
                raise
        LLM_IN_FLIGHT.inc()
        try:
            with LLM_CALL_SECONDS.labels(step=step).time():
                async with asyncio.timeout(self.policy.call_timeout_s):
                    return await call()
        except TransientCallError as exc:
            if exc.reason == "429":
                LLM_RATE_LIMITED.inc()
                if exc.retry_after_s:
                    limits.limiter.hold(exc.retry_after_s)
            raise
        finally:
            LLM_IN_FLIGHT.dec()
            limits.slots.release()

    def _loop_limits(self) -> _LoopLimits:
        """The slots and limiter of the running loop (one loop in production)."""
        loop = asyncio.get_running_loop()
        if self._limits is None or self._limits.loop is not loop:
            limiter = build_rate_limiter(self.rpm)
            self._limits = _LoopLimits(
                loop=loop,
                slots=OrderedSlots(self.max_concurrency, limiter.order),
                limiter=limiter,
            )
        return self._limits
