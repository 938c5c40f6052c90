"""Routing: one classification step, then a specialised handler per intent.

The decision between routing and orchestration is made here: the three action intents
(billing, return, order status) and any message flagged `multiple_requests` go to the
orchestrator, whose planner finds one or more typed tasks and whose workers are the
specialised handlers of those intents. Technical support, general questions and requests
for a person have handlers of their own below. A low confidence or a request for a person
escalates to the support team instead of guessing.
"""

from __future__ import annotations

import asyncio

from pipelines.llm.rate_limit import quota_recently_tight
from pipelines.prompts import ANSWER_FROM_KNOWLEDGE, CLASSIFY_INTENT, TECHNICAL_SUPPORT, fence
from pipelines.steps import PipelineContext
from pipelines.support.knowledge import KnowledgeBase
from pipelines.support.orchestrator import Worker, orchestrate, plan_tasks
from pipelines.support.request import Outcome, SupportRequest
from pipelines.support.schemas import CitedAnswer, IntentClassification, Reply, TaskPlan

MIN_CONFIDENCE = 0.5
ACTION_INTENTS = frozenset({"billing_inquiry", "product_return", "order_status"})

HANDOFF_TEXT = (
    "I've passed this conversation to our support team; a person will follow up in this "
    "thread shortly."
)
NO_KNOWLEDGE_TEXT = (
    "I'm sorry, I don't have an answer to that in our help articles yet. If you'd like, press "
    "*Talk to a person* and someone from the team will help."
)


async def classify_intent(ctx: PipelineContext, request: SupportRequest) -> IntentClassification:
    """One step: the message's intent, a confidence, and whether it holds several requests."""
    return await ctx.step(
        CLASSIFY_INTENT, "router", IntentClassification, request.raw(), request.fenced()
    )


async def answer_technical(ctx: PipelineContext, request: SupportRequest) -> Outcome:
    """First troubleshooting steps, and a question about what was already tried."""
    reply = await ctx.step(TECHNICAL_SUPPORT, "worker", Reply, request.raw(), request.fenced())
    return Outcome(text=reply.reply, intents=["technical_support"], summary="technical issue")


async def answer_general(
    ctx: PipelineContext, request: SupportRequest, knowledge: KnowledgeBase
) -> Outcome:
    """Answer from the FAQ knowledge base with citations, or decline politely.

    The reply may link only to URLs written in the entries it cites: a link the model
    invented (or copied from an uncited entry) is shown as text by the Slack layer.
    """
    entries = await knowledge.search(request.text, k=3)
    if not entries:
        return Outcome(text=NO_KNOWLEDGE_TEXT, intents=["general_question"], summary="no answer")
    allowed = {title for entry in entries for title in entry.sources}
    raw = {"message": request.text, "entries": [entry.__dict__ for entry in entries]}
    answer = await ctx.step(
        ANSWER_FROM_KNOWLEDGE,
        "worker",
        CitedAnswer,
        raw,
        {
            "message": fence("customer_message", request.text),
            "entries": fence("faq", "\n\n".join(entry.as_text() for entry in entries)),
        },
    )
    if not answer.answerable:
        return Outcome(text=NO_KNOWLEDGE_TEXT, intents=["general_question"], summary="no answer")
    cited = [title for title in dict.fromkeys(answer.sources) if title in allowed]
    text = answer.answer
    if cited:
        text += "\n\n_Sources: " + ", ".join(cited) + "_"
    links = [url for entry in entries if set(entry.sources) & set(cited) for url in entry.links()]
    return Outcome(
        text=text, intents=["general_question"], summary="answered from FAQ", links=links
    )


async def answer_message(
    ctx: PipelineContext,
    request: SupportRequest,
    workers: dict[str, Worker],
    knowledge: KnowledgeBase,
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
    knowledge: KnowledgeBase,
    planning: asyncio.Task[TaskPlan] | None,
) -> Outcome:
    intent = await classify_intent(ctx, request)
    urgent = "customer sounds urgent or upset" if intent.urgent else None
    if intent.intent == "human_handoff":
        return Outcome(
            text=HANDOFF_TEXT,
            intents=["human_handoff"],
            escalation_reason="customer asked for a person",
            summary="asked for a person",
        )
    if intent.confidence < MIN_CONFIDENCE:
        return Outcome(
            text=HANDOFF_TEXT,
            intents=[intent.intent],
            escalation_reason=f"low confidence ({intent.confidence:.2f}) in '{intent.intent}'",
            summary="unclear request",
        )
    if intent.multiple_requests or intent.intent in ACTION_INTENTS:
        outcome = await orchestrate(ctx, request, workers, planning)
        outcome.intents = outcome.intents or [intent.intent]
    elif intent.intent == "technical_support":
        outcome = await answer_technical(ctx, request)
    else:
        outcome = await answer_general(ctx, request, knowledge)
    if urgent:
        outcome.escalation_reason = urgent
        outcome.text += "\n\nI've also flagged this to our support team; a person will follow up."
    return outcome
