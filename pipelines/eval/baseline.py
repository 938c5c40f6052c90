"""The single-prompt baseline of `supportbot eval`: ONE call does routing, tasks and reply.

It exists so that the benefit of the workflow patterns (routing, orchestrator-workers,
prompt chaining) is measured against the obvious alternative instead of claimed. The
prompt gets everything a do-it-all prompt needs (message, products, the knowledge
documents) and its output is validated in code exactly like the pipeline's: tasks go
through `validate_task`, cited titles must be among the given documents.

The offline provider answers this step with `pipelines.llm.offline.single_prompt`. Rules
do not reason, so splitting them into steps cannot make them more accurate: offline, both
systems score alike by construction and the eval measures what the split costs (calls,
tokens). Whether the split buys accuracy is measured on a real model (LLM_PROVIDER=gemini).
The baseline cites for every message, so its citations compare like-for-like with the FAQ
chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from pipelines.faq.chain import SourceDocument, documents_block
from pipelines.prompts import SINGLE_PROMPT_BASELINE
from pipelines.steps import PipelineContext
from pipelines.support.request import SupportRequest
from pipelines.support.schemas import Intent, PlannedTask


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
