"""Answering the fake Gemini endpoint per pipeline step.

The endpoint only sees HTTP bodies; a step is recognised by its system instruction, which
is unique per named template in `pipelines.prompts`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipelines.prompts import ALL_TEMPLATES

StepAnswer = Callable[[dict[str, Any]], "dict[str, Any] | str"]
_BY_SYSTEM = {template.system: template.name for template in ALL_TEMPLATES}


def step_name(body: dict[str, Any]) -> str:
    """The template name of a generateContent body ("?" when none matches)."""
    parts = (body.get("systemInstruction") or {}).get("parts", [])
    system = "".join(part.get("text", "") for part in parts)
    return _BY_SYSTEM.get(system, "?")


def user_text(body: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "") for block in body.get("contents", []) for part in block["parts"]
    )


def by_step(answers: dict[str, StepAnswer]) -> Callable[[dict[str, Any]], dict[str, Any] | str]:
    """A responder that dispatches on the step; an unscripted step is a test error."""

    def respond(body: dict[str, Any]) -> dict[str, Any] | str:
        name = step_name(body)
        if name not in answers:
            raise AssertionError(f"fake Gemini got an unscripted step: {name}")
        return answers[name](body)

    return respond


def faq_answers(n: int) -> dict[str, StepAnswer]:
    """Scripted, valid answers for the three FAQ steps."""

    def question_of(body: dict[str, Any]) -> str:
        found = re.search(r"<question>\n(.*?)\n</question>", user_text(body), re.DOTALL)
        return found.group(1) if found else "?"

    return {
        "faq_questions": lambda body: {"questions": [f"What about topic {i}?" for i in range(n)]},
        "faq_answer": lambda body: {"answer": f"The documents answer: {question_of(body)}"},
        "faq_sources": lambda body: {"sources": ["returns.md"]},
    }
