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
