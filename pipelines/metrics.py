"""Prometheus metrics of the LLM layer, on the default registry (served by GET /metrics).

Defined once at import time: prometheus_client refuses to register the same name twice,
so every module that records a metric imports it from here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pipelines.llm.base import TokenUsage

LLM_CALLS = Counter(
    "supportbot_llm_calls_total",
    "LLM requests by final outcome (ok, error, unavailable); retries are one request.",
    ["provider", "step", "outcome"],
)
LLM_RETRIES = Counter(
    "supportbot_llm_retries_total",
    "Attempts that failed transiently and were retried, by reason (429, 503, timeout...).",
    ["reason"],
)
LLM_RATE_LIMITED = Counter(
    "supportbot_llm_rate_limited_total",
    "HTTP 429 answers received from the provider (whether or not retried).",
)
LLM_TOKENS = Counter(
    "supportbot_llm_tokens_total",
    "Tokens reported by the provider, by kind (input, output, cached).",
    ["kind"],
)
LLM_CALL_SECONDS = Histogram(
    "supportbot_llm_call_seconds",
    "Duration of one attempt on the wire (excludes queueing and backoff).",
    ["step"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
LLM_IN_FLIGHT = Gauge(
    "supportbot_llm_calls_in_flight",
    "LLM attempts currently on the wire in this process.",
)


def record_tokens(usage: TokenUsage) -> None:
    """Add one response's token usage to the per-kind counters."""
    LLM_TOKENS.labels(kind="input").inc(usage.input_tokens)
    LLM_TOKENS.labels(kind="output").inc(usage.output_tokens)
    LLM_TOKENS.labels(kind="cached").inc(usage.cached_tokens)


LLM_FALLBACKS = Counter(
    "supportbot_llm_fallbacks_total",
    "Steps answered by the fallback (offline) provider, by why.",
    ["reason"],
)
LLM_BREAKER_OPEN = Gauge(
    "supportbot_llm_circuit_open", "1 while the primary provider's circuit breaker is open."
)
