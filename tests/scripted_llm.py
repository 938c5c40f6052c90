"""A scripted LLM for unit tests, in the spirit of pydantic-ai's FunctionModel.

Each step name maps to a script: a constant answer, a list consumed one call at a time,
or a function of the request. Answers may be JSON text, a dict, a pydantic model, or an
exception instance to raise. Unscripted steps go to `fallback` (e.g. the offline provider)
or fail loudly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from pipelines.llm.base import LLM, LLMError, LLMRequest, LLMResponse, TokenUsage

Answer = str | dict[str, Any] | BaseModel | BaseException
Script = Answer | list[Answer] | Callable[[LLMRequest], Answer]


class ScriptedLLM:
    name = "scripted"

    def __init__(
        self,
        scripts: dict[str, Script] | None = None,
        fallback: LLM | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.scripts: dict[str, Script] = dict(scripts or {})
        self.fallback = fallback
        self.delay_s = delay_s
        self.calls: list[LLMRequest] = []

    def steps(self) -> list[str]:
        return [call.step for call in self.calls]

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        script = self.scripts.get(request.step)
        if script is None:
            if self.fallback is None:
                raise LLMError(f"no script for step {request.step}")
            return await self.fallback.generate(request)
        if isinstance(script, list):
            if not script:
                raise LLMError(f"script for {request.step} is exhausted")
            answer: Answer = script.pop(0)
        elif callable(script) and not isinstance(script, BaseModel | BaseException):
            answer = script(request)
        else:
            answer = script
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, BaseModel):
            text = answer.model_dump_json()
        elif isinstance(answer, dict):
            text = json.dumps(answer)
        else:
            text = answer
        return LLMResponse(text=text, model="scripted", usage=TokenUsage(10, 5, 0))


class StreamingScriptedLLM(ScriptedLLM):
    """A ScriptedLLM that also streams: its answer in pieces of `chunk_chars`.

    `timeline` records ("start", step) when a call begins and ("end", step) when its
    stream has been fully delivered, so tests can see what overlapped. `step_delays`
    slow single steps down (on top of `delay_s`).
    """

    def __init__(
        self,
        scripts: dict[str, Script] | None = None,
        *,
        chunk_chars: int = 16,
        chunk_delay_s: float = 0.005,
        step_delays: dict[str, float] | None = None,
    ) -> None:
        super().__init__(scripts)
        self.chunk_chars = chunk_chars
        self.chunk_delay_s = chunk_delay_s
        self.step_delays = step_delays or {}
        self.timeline: list[tuple[str, str]] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.timeline.append(("start", request.step))
        await asyncio.sleep(self.step_delays.get(request.step, 0.0))
        response = await super().generate(request)
        self.timeline.append(("end", request.step))
        return response

    async def generate_streaming(
        self, request: LLMRequest, on_partial: Callable[[str], None]
    ) -> LLMResponse:
        self.timeline.append(("start", request.step))
        await asyncio.sleep(self.step_delays.get(request.step, 0.0))
        response = await super().generate(request)
        for end in range(self.chunk_chars, len(response.text) + self.chunk_chars, self.chunk_chars):
            await asyncio.sleep(self.chunk_delay_s)
            on_partial(response.text[:end])
        self.timeline.append(("end", request.step))
        return response
