"""LLM configuration read from the environment (SPEC section 7).

Kept in `pipelines` so that the LLM layer can be configured without pulling in
any Slack setting; `bot.settings.Settings` extends it with the rest.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "gemini-2.5-flash"

StepName = Literal[
    "router",
    "orchestrator",
    "worker",
    "synthesizer",
    "faq_questions",
    "faq_answer",
    "faq_sources",
]


ConfirmKind = Literal["returns", "billing_cases"]


class LLMSettings(BaseSettings):
    """Which provider answers, how hard we may push it, and which model each step uses."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    gemini_api_key: SecretStr | None = None
    llm_provider: Literal["auto", "gemini", "offline"] = "auto"
    # LLM calls in flight. Providers bound requests per minute (LLM_RPM), not concurrency;
    # `serve` and `worker` run twice this many jobs at once unless --concurrency is given.
    # 128 let a burst's calls out sooner but, under a provider quota lower than LLM_RPM,
    # left the provider to pick whose calls pass: answers out of order (bench/README.md).
    llm_max_concurrency: int = Field(default=64, ge=1, le=1024)
    llm_rpm: int = Field(default=600, ge=1, le=1_000_000)
    llm_call_timeout_s: float = Field(default=60.0, gt=0)
    llm_request_deadline_s: float = Field(default=180.0, gt=0)
    llm_max_attempts: int = Field(default=6, ge=1, le=20)
    # What answers a step when Gemini keeps failing: the offline provider (degraded mode),
    # or nothing, in which case the job retries and finally escalates to a person.
    llm_fallback: Literal["offline", "none"] = "offline"
    llm_breaker_failures: int = Field(default=5, ge=1, le=1000)
    llm_breaker_recovery_s: float = Field(default=30.0, gt=0)
    # Daily token budgets (`pipelines.llm.budget`, counted in the database for every
    # process; a UTC day; 0 = unlimited): per Slack user (agents exempt), and for everyone.
    llm_daily_tokens_per_user: int = Field(default=2_000_000, ge=0)
    llm_daily_tokens: int = Field(default=50_000_000, ge=0)
    # Start the planner while the router runs (one LLM call of latency less for the three
    # action intents); a message routed elsewhere cancels it, at the cost of its input
    # tokens. Skipped on the offline provider and while LLM_RPM has calls queued.
    llm_speculative_plan: bool = True
    # Side effects the customer confirms first (`pipelines.support.confirmations`):
    # "returns,billing_cases" (default), one of them, or "none" (act at once, as before).
    confirm_actions: Annotated[frozenset[ConfirmKind], NoDecode] = frozenset(
        {"returns", "billing_cases"}
    )
    confirm_expiry_hours: float = Field(default=24.0, gt=0)

    @field_validator("confirm_actions", mode="before")
    @classmethod
    def _confirm_list(cls, value: object) -> object:
        if isinstance(value, str):
            parts = {p.strip().lower() for p in value.replace(";", ",").split(",") if p.strip()}
            return frozenset() if parts <= {"none"} else parts
        return value

    # Dense retrieval for the knowledge base (`pipelines.knowledge.embeddings`): Gemini's
    # embedding model and its output size; an empty model turns it off (BM25 alone).
    embedding_model: str = "gemini-embedding-001"
    embedding_dimensions: int = Field(default=768, ge=8, le=3072)

    model_router: str = DEFAULT_MODEL
    model_orchestrator: str = DEFAULT_MODEL
    model_worker: str = DEFAULT_MODEL
    model_synthesizer: str = DEFAULT_MODEL
    model_faq_questions: str = DEFAULT_MODEL
    model_faq_answer: str = DEFAULT_MODEL
    model_faq_sources: str = DEFAULT_MODEL

    def model_for(self, step: StepName) -> str:
        """The configured model of one pipeline step."""
        return str(getattr(self, f"model_{step}"))

    @property
    def resolved_provider(self) -> Literal["gemini", "offline"]:
        """`auto` means Gemini when a key is set, the offline provider otherwise."""
        if self.llm_provider == "auto":
            return "gemini" if self.gemini_api_key else "offline"
        return self.llm_provider
