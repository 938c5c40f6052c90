"""Which provider answers, and the one CallGate the whole process shares.

The gate is module-level so that every pipeline built in this process draws on the same
concurrency slots and requests-per-minute budget (LLM_MAX_CONCURRENCY, LLM_RPM are
per-process limits: with N worker processes, give each 1/N of the provider's quota).
"""

from __future__ import annotations

from pipelines.config import LLMSettings
from pipelines.llm.base import LLM
from pipelines.llm.fallback import FallbackLLM
from pipelines.llm.reliability import CallGate

_shared_gate: CallGate | None = None


def shared_gate(settings: LLMSettings) -> CallGate:
    """The process-wide gate, built from the first settings it is asked with."""
    global _shared_gate
    if _shared_gate is None:
        _shared_gate = CallGate.from_settings(settings)
    return _shared_gate


def reset_shared_gate() -> None:
    """Forget the process-wide gate (tests that change limits between cases)."""
    global _shared_gate
    _shared_gate = None


def build_llm(settings: LLMSettings, gate: CallGate | None = None) -> LLM:
    """Gemini when the settings resolve to it, the offline provider otherwise."""
    from pipelines.llm.offline import OfflineLLM

    if settings.resolved_provider == "gemini":
        from pipelines.llm.gemini import GeminiLLM

        gemini = GeminiLLM.from_settings(settings, gate or shared_gate(settings))
        if settings.llm_fallback == "none":
            return gemini
        return FallbackLLM(
            gemini,
            OfflineLLM(),
            failure_threshold=settings.llm_breaker_failures,
            recovery_timeout_s=settings.llm_breaker_recovery_s,
        )
    return OfflineLLM()
