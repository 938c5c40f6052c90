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

from circuitbreaker import CircuitBreaker

from pipelines.llm.base import LLM, LLMError, LLMRequest, LLMResponse, LLMUnavailable
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
        if self.breaker.opened:
            LLM_BREAKER_OPEN.set(1)
            return await self._degraded(request, "circuit open")
        LLM_BREAKER_OPEN.set(0)
        try:
            response: LLMResponse = await self.breaker.call_async(self.primary.generate, request)
            return response
        except LLMUnavailable as exc:
            LLM_BREAKER_OPEN.set(1 if self.breaker.opened else 0)
            return await self._degraded(request, "unavailable", exc)
        except LLMError as exc:  # e.g. a safety block or a rejected request
            return await self._degraded(request, "error", exc)

    async def _degraded(
        self, request: LLMRequest, reason: str, exc: Exception | None = None
    ) -> LLMResponse:
        LLM_FALLBACKS.labels(reason=reason).inc()
        logger.warning(
            "step %s answered by the %s provider (%s%s)",
            request.step,
            self.fallback.name,
            reason,
            f": {exc}" if exc else "",
        )
        return await self.fallback.generate(request)

    async def aclose(self) -> None:
        close = getattr(self.primary, "aclose", None)
        if close is not None:
            await close()
