"""The one interface every pipeline step talks to.

A provider turns an `LLMRequest` into raw text (JSON when `output_schema` is set).
Parsing, validation and the one repair attempt happen in `pipelines.steps.run_step`, the
same for every provider, so a provider stays a thin adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True)
class LLMRequest:
    """One call: a named step, its model, the rendered prompt and the expected schema.

    `inputs` are the raw values the prompt was rendered from. Real providers ignore them;
    the offline provider and the scripted test fake work from them instead of re-parsing
    the prompt text.
    """

    step: str
    model: str
    system: str
    prompt: str
    output_schema: type[BaseModel] | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMResponse:
    text: str
    model: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    attempts: int = 1


class LLMError(Exception):
    """A step could not produce a valid answer (bad request, invalid output after repair)."""


class LLMUnavailable(LLMError):
    """The provider kept failing (retries exhausted, deadline passed, circuit open).

    Callers may fall back to the offline provider or escalate to a person.
    """


@runtime_checkable
class LLM(Protocol):
    """A text-generation provider."""

    name: str

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Answer one request; raise `LLMUnavailable` or `LLMError` when it cannot."""
        ...
