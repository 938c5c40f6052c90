"""The one interface every pipeline step talks to.

A provider turns an `LLMRequest` into raw text (JSON when `output_schema` is set).
Parsing, validation and the one repair attempt happen in `pipelines.steps`, the same for
every provider, so a provider stays a thin adapter.

Streaming is an optional capability (`StreamingLLM`): a provider that has it reports the
text received so far while the call runs, so a pipeline can act on the first complete
items of a list before the last ones are written. `generate_with_partials` lets callers
ignore whether the provider streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


PartialText = Callable[[str], None]
"""Called with all the text received so far in the current attempt.

A retry (or a fallback provider) starts again from "", so a snapshot is not always an
extension of the previous one; consumers must parse each snapshot on its own. The
callback runs inside the call, so it must be quick and must not raise.
"""


@runtime_checkable
class StreamingLLM(LLM, Protocol):
    """A provider that can report partial text while a call is running."""

    async def generate_streaming(self, request: LLMRequest, on_partial: PartialText) -> LLMResponse:
        """Like `generate`, calling `on_partial` as text arrives; the response is complete."""
        ...


async def generate_with_partials(
    llm: LLM, request: LLMRequest, on_partial: PartialText
) -> LLMResponse:
    """Stream when `llm` can; otherwise the whole answer is the one and only partial."""
    if isinstance(llm, StreamingLLM):
        return await llm.generate_streaming(request, on_partial)
    response = await llm.generate(request)
    on_partial(response.text)
    return response
