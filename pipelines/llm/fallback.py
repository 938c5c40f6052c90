"""Degraded mode: the primary provider behind a circuit breaker, the offline one behind it.

When Gemini keeps failing (retries exhausted, deadline passed) a step is answered by the
offline provider instead, so an accepted message still gets a reply, and the trace shows
which steps were degraded (their model is the offline one). After `failure_threshold`
consecutive outages the breaker opens: calls skip the primary for `recovery_timeout`
seconds instead of hammering it; then one call is let through to probe, and a success
closes the breaker again. The breaker is the maintained `circuitbreaker` package.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from circuitbreaker import CircuitBreaker

from pipelines.llm.base import (
    LLM,
    LLMError,
    LLMRequest,
    LLMResponse,
    LLMUnavailable,
    PartialText,
    generate_with_partials,
)
from pipelines.metrics import LLM_BREAKER_OPEN, LLM_FALLBACKS

logger = logging.getLogger(__name__)


class FallbackLLM:
    """`primary` while it works; `fallback` for a step the primary cannot answer."""

    def __init__(
        self,
        primary: LLM,
        fallback: LLM,
        *,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        # Only outages trip the breaker; a 400 or a blocked answer says nothing about health.
        self.breaker = CircuitBreaker(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout_s,
            expected_exception=LLMUnavailable,
            name=f"llm-{primary.name}",
        )

    async def generate(self, request: LLMRequest) -> LLMResponse:
        return await self._answer(request, self.primary.generate, self.fallback.generate)

    async def generate_streaming(self, request: LLMRequest, on_partial: PartialText) -> LLMResponse:
        """Streamed from the primary; a fallback answer restarts the partials from scratch."""

        def streamed(llm: LLM) -> Callable[[LLMRequest], Awaitable[LLMResponse]]:
            return lambda req: generate_with_partials(llm, req, on_partial)

        return await self._answer(request, streamed(self.primary), streamed(self.fallback))

    async def _answer(
        self,
        request: LLMRequest,
        primary: Callable[[LLMRequest], Awaitable[LLMResponse]],
        fallback: Callable[[LLMRequest], Awaitable[LLMResponse]],
    ) -> LLMResponse:
        if self.breaker.opened:
            LLM_BREAKER_OPEN.set(1)
            return await self._degraded(fallback, request, "circuit open")
        LLM_BREAKER_OPEN.set(0)
        try:
            response: LLMResponse = await self.breaker.call_async(primary, request)
            return response
        except LLMUnavailable as exc:
            LLM_BREAKER_OPEN.set(1 if self.breaker.opened else 0)
            return await self._degraded(fallback, request, "unavailable", exc)
        except LLMError as exc:  # e.g. a safety block or a rejected request
            return await self._degraded(fallback, request, "error", exc)

    async def _degraded(
        self,
        fallback: Callable[[LLMRequest], Awaitable[LLMResponse]],
        request: LLMRequest,
        reason: str,
        exc: Exception | None = None,
    ) -> LLMResponse:
        LLM_FALLBACKS.labels(reason=reason).inc()
        logger.warning(
            "step %s answered by the %s provider (%s%s)",
            request.step,
            self.fallback.name,
            reason,
            f": {exc}" if exc else "",
        )
        return await fallback(request)

    async def aclose(self) -> None:
        close = getattr(self.primary, "aclose", None)
        if close is not None:
            await close()
