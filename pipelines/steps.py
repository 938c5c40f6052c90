"""Running one LLM step: render, call, validate, repair once, and record it in the trace.

This is the only place that parses model output. A reply that does not validate against
the step's schema is sent back once with the validation error; if the second answer does
not validate either, the step fails with `StepFailed`, never with half-parsed data.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from pipelines.config import LLMSettings, StepName
from pipelines.llm.base import (
    LLM,
    LLMError,
    LLMRequest,
    LLMResponse,
    PartialText,
    TokenUsage,
    generate_with_partials,
)
from pipelines.prompts import PromptTemplate

T = TypeVar("T", bound=BaseModel)

REPAIR_NOTE = (
    "\n\nYour previous answer was not valid JSON for the required schema. The error was:\n"
    "{error}\nAnswer again with only a JSON object that matches the schema."
)
_FENCED_JSON = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class StepFailed(LLMError):
    """A step's output stayed invalid after one repair attempt."""


@dataclass
class StepRecord:
    seq: int
    name: str
    model: str
    prompt: str
    raw_output: str | None = None
    parsed_output: dict[str, Any] | None = None
    latency_ms: float = 0.0
    attempts: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    error: str | None = None


@dataclass
class Trace:
    """Everything one pipeline run did, kept in memory and saved by `TraceRecorder`."""

    pipeline: str
    input: dict[str, Any]
    user_id: str = ""
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    steps: list[StepRecord] = field(default_factory=list)

    def start_step(self, name: str, model: str, prompt: str) -> StepRecord:
        record = StepRecord(seq=len(self.steps) + 1, name=name, model=model, prompt=prompt)
        self.steps.append(record)
        return record

    @property
    def usage(self) -> TokenUsage:
        total = TokenUsage()
        for step in self.steps:
            total = total + step.usage
        return total

    @property
    def llm_calls(self) -> int:
        return sum(step.attempts for step in self.steps)


@dataclass
class PipelineContext:
    """What every step of one run shares: the provider, the settings and the trace."""

    llm: LLM
    settings: LLMSettings
    trace: Trace

    async def step(
        self,
        template: PromptTemplate,
        model_step: StepName,
        schema: type[T],
        inputs: dict[str, Any],
        rendered: dict[str, str],
        on_partial: PartialText | None = None,
    ) -> T:
        """Run `template` as one step and return its validated output.

        `rendered` are the (already fenced) strings substituted into the template; `inputs`
        are the raw values, handed to the provider for offline/scripted implementations.
        `on_partial` sees the raw text as it arrives (streamed when the provider can):
        it is unvalidated, so what a caller takes from it must be checked on its own.
        """
        request = LLMRequest(
            step=template.name,
            model=self.settings.model_for(model_step),
            system=template.system,
            prompt=template.render(**rendered),
            output_schema=schema,
            inputs=inputs,
        )
        record = self.trace.start_step(template.name, request.model, request.prompt)
        started = time.perf_counter()
        try:
            response = await self._call(record, request, on_partial)
            try:
                parsed = parse_output(schema, response.text)
            except ValidationError as first_error:
                repair = replace(
                    request, prompt=request.prompt + REPAIR_NOTE.format(error=first_error)
                )
                response = await self._call(record, repair, on_partial)
                try:
                    parsed = parse_output(schema, response.text)
                except ValidationError as second_error:
                    raise StepFailed(
                        f"{template.name}: output invalid after one repair: {second_error}"
                    ) from None
            record.parsed_output = parsed.model_dump(mode="json")
            return parsed
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        except asyncio.CancelledError:  # e.g. a speculative step the route did not need
            record.error = "cancelled"
            raise
        finally:
            record.latency_ms = (time.perf_counter() - started) * 1000

    async def _call(
        self, record: StepRecord, request: LLMRequest, on_partial: PartialText | None
    ) -> LLMResponse:
        if on_partial is None:
            response = await self.llm.generate(request)
        else:
            response = await generate_with_partials(self.llm, request, on_partial)
        record.raw_output = response.text
        record.attempts += response.attempts
        record.usage = record.usage + response.usage
        record.model = response.model or record.model
        return response


def parse_output(schema: type[T], text: str) -> T:
    """Validate a model's JSON text, tolerating a Markdown code fence around it."""
    match = _FENCED_JSON.match(text)
    return schema.model_validate_json(match.group(1) if match else text)


def complete_list_items(text: str, key: str) -> list[str]:
    """The strings of list `key` already complete in a JSON object still being written.

    pydantic_core's partial mode drops an unfinished trailing string, so every item
    returned has its closing quote and will not change. Text that does not parse so far
    (a code fence, prose) gives []: the full answer is still validated at the end.
    """
    try:
        value = from_json(text, allow_partial=True)
    except ValueError:
        return []
    items = value.get(key) if isinstance(value, dict) else None
    return [item for item in items if isinstance(item, str)] if isinstance(items, list) else []


def watch_list(key: str, on_items: Callable[[list[str]], None]) -> PartialText:
    """A partial-text callback that reports the complete items of list `key` so far."""

    def on_partial(text: str) -> None:
        on_items(complete_list_items(text, key))

    return on_partial
