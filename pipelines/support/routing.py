"""Routing: one classification step, then a specialised handler per intent.

The decision between routing and orchestration is made here: the three action intents
(billing, return, order status) and any message flagged `multiple_requests` go to the
orchestrator, whose planner finds one or more typed tasks and whose workers are the
specialised handlers of those intents. Technical support and general questions are
answered from the knowledge base (`pipelines.knowledge.answers`). A low confidence or a
request for a person escalates to the support team instead of guessing.
"""

from __future__ import annotations

import asyncio

from pipelines.knowledge.answers import (
    NO_KNOWLEDGE_TEXT,
    answer_general,
    answer_technical,
    grounded_answer,
)
from pipelines.knowledge.retrieval import Knowledge
from pipelines.llm.rate_limit import quota_recently_tight
from pipelines.prompts import CLASSIFY_INTENT
from pipelines.steps import PipelineContext
from pipelines.support.orchestrator import Worker, orchestrate, plan_tasks
from pipelines.support.request import Outcome, SupportRequest
from pipelines.support.schemas import IntentClassification, TaskPlan

__all__ = ["HANDOFF_TEXT", "NO_KNOWLEDGE_TEXT", "answer_message", "classify_intent"]

MIN_CONFIDENCE = 0.5
ACTION_INTENTS = frozenset({"billing_inquiry", "product_return", "order_status"})
KNOWLEDGE_INTENTS = frozenset({"general_question", "technical_support"})

HANDOFF_TEXT = (
    "I've passed this conversation to our support team; a person will follow up in this "
    "thread shortly."
)


async def classify_intent(ctx: PipelineContext, request: SupportRequest) -> IntentClassification:
    """One step: the message's intent, a confidence, and whether it holds several requests."""
    return await ctx.step(
        CLASSIFY_INTENT, "router", IntentClassification, request.raw(), request.fenced()
    )


async def answer_message(
    ctx: PipelineContext,
    request: SupportRequest,
    workers: dict[str, Worker],
    knowledge: Knowledge,
) -> Outcome:
    """Classify, then hand the message to the handler (or orchestrator) that fits.

    The planner starts with the router (`plan_ahead`), so a message for the orchestrator
    waits for one LLM call before its workers run, not two; any other route cancels it.
    """
    planning = plan_ahead(ctx, request)
    try:
        return await _route(ctx, request, workers, knowledge, planning)
    finally:
        if planning is not None:  # unused, or failed where nobody looked: never left behind
            planning.cancel()
            await asyncio.gather(planning, return_exceptions=True)


def plan_ahead(ctx: PipelineContext, request: SupportRequest) -> asyncio.Task[TaskPlan] | None:
    """The planner, started now; None when speculation is off, pointless (the offline
    provider answers at once) or costly (LLM_RPM has had calls waiting)."""
    if not ctx.settings.llm_speculative_plan or ctx.llm.name == "offline":
        return None
    if quota_recently_tight():
        return None
    return asyncio.create_task(plan_tasks(ctx, request), name="speculative-plan")


async def _route(
    ctx: PipelineContext,
    request: SupportRequest,
    workers: dict[str, Worker],
    knowledge: Knowledge,
    planning: asyncio.Task[TaskPlan] | None,
) -> Outcome:
    """An unsure classification between a general and a technical question ("how do I
    reset my password?") is answered when the knowledge base answers it; otherwise it
    escalates (and the question is logged as a knowledge gap)."""
    intent = await classify_intent(ctx, request)
    urgent = "customer sounds urgent or upset" if intent.urgent else None
    if intent.intent == "human_handoff":
        return Outcome(
            text=HANDOFF_TEXT,
            intents=["human_handoff"],
            escalation_reason="customer asked for a person",
            urgent=intent.urgent,
            summary="asked for a person",
        )
    unsure = intent.confidence < MIN_CONFIDENCE
    found = None
    if unsure and intent.intent in KNOWLEDGE_INTENTS and not intent.multiple_requests:
        found = await grounded_answer(ctx, request, knowledge)
    if unsure and found is None:
        if intent.intent in KNOWLEDGE_INTENTS:
            await knowledge.log_gap(
                request.request_id, request.text, intent.intent, request.actor.slack_user_id
            )
        return Outcome(
            text=HANDOFF_TEXT,
            intents=[intent.intent],
            escalation_reason=f"low confidence ({intent.confidence:.2f}) in '{intent.intent}'",
            urgent=intent.urgent,
            summary="unclear request",
        )
    if found is not None:
        outcome = found
    elif intent.multiple_requests or intent.intent in ACTION_INTENTS:
        outcome = await orchestrate(ctx, request, workers, planning)
        outcome.intents = outcome.intents or [intent.intent]
    elif intent.intent == "technical_support":
        outcome = await answer_technical(ctx, request, knowledge)
    else:
        outcome = await answer_general(ctx, request, knowledge)
    if urgent:
        outcome.escalation_reason = urgent
        outcome.urgent = True
        outcome.text += "\n\nI've also flagged this to our support team; a person will follow up."
    return outcome
