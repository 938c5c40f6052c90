"""The single-prompt baseline of `supportbot eval`: ONE call does routing, tasks and reply.

It exists so that the benefit of the workflow patterns (routing, orchestrator-workers,
prompt chaining) is measured against the obvious alternative instead of claimed. The
prompt gets everything a do-it-all prompt needs (message, products, the knowledge
documents) and its output is validated in code exactly like the pipeline's: tasks go
through `validate_task`, cited titles must be among the given documents.

`offline_single_prompt` is the offline provider's rule for this step. Rules do not reason,
so splitting them into steps cannot make them more accurate: offline, both systems score
alike by construction and the eval measures what the split costs (calls, tokens). Whether
the split buys accuracy is measured on a real model (LLM_PROVIDER=gemini). The baseline
cites for every message, so its citations compare like-for-like with the FAQ chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from pipelines.faq import SourceDocument, documents_block
from pipelines.llm.offline_replies import OFFLINE_NOTE
from pipelines.prompts import SINGLE_PROMPT_BASELINE
from pipelines.request import SupportRequest
from pipelines.schemas import Intent, PlannedTask
from pipelines.steps import PipelineContext


class SinglePromptAnswer(BaseModel):
    """Everything the one call returns: the intent, the tasks, the reply and its sources."""

    intent: Intent
    tasks: list[PlannedTask] = Field(default_factory=list, max_length=8)
    reply: str = Field(max_length=6000)
    sources: list[str] = Field(default_factory=list, max_length=10)


async def run_single_prompt(
    ctx: PipelineContext, request: SupportRequest, docs: Sequence[SourceDocument]
) -> SinglePromptAnswer:
    """The baseline's one step (the synthesizer's model, since this call writes the reply)."""
    raw_docs = [{"title": d.title, "text": d.text} for d in docs]
    return await ctx.step(
        SINGLE_PROMPT_BASELINE,
        "synthesizer",
        SinglePromptAnswer,
        {**request.raw(), "documents": raw_docs},
        {**request.fenced(), "documents": documents_block(list(docs))},
    )


def _acknowledge(tasks: Sequence[Mapping[str, Any]]) -> str:
    kinds = ", ".join(dict.fromkeys(str(t["kind"]).replace("_", " ") for t in tasks))
    return f"Thanks! I've noted your request ({kinds}); the team will follow up here."


def offline_single_prompt(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The offline provider's answer to `single_prompt_baseline`: every rule, in one call.

    It applies the very rules of the offline router, planner and FAQ answer/sources steps
    to the same inputs (so a rule change moves both systems alike), but as one call that
    returns one object: no confidence, no second look at its own answer.
    """
    from pipelines.llm import offline  # imported here: offline.py registers this function

    message = str(inputs["message"])
    conversation = {
        "message": message,
        "history": list(inputs.get("history", [])),
        "products": list(inputs.get("products", [])),
    }
    intent = str(offline.classify(conversation)["intent"])
    tasks = list(offline.plan(conversation)["tasks"])
    question = {"documents": list(inputs.get("documents", [])), "question": message}
    answer = str(offline.faq_answer(question)["answer"])
    sources = list(offline.faq_sources({**question, "answer": answer})["sources"])
    if intent == "human_handoff":
        reply = "I'll pass you to a person from the support team."
    elif tasks and intent != "general_question":
        reply = _acknowledge(tasks)
    else:
        reply = answer
    return {
        "intent": intent,
        "tasks": tasks,
        "reply": f"{reply} {OFFLINE_NOTE}",
        "sources": sources,
    }
