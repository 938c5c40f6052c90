"""Grounded answers: general and technical questions answered from retrieved passages.

Both handlers retrieve passages (document sections and FAQ entries), let one step answer
from them, and keep only what can be checked: a cited label must be one of the passages
actually retrieved (an invented one is dropped), and the reply may link only to URLs
written in the passages it cites (`Outcome.links`; the Slack layer shows any other URL
as text). When nothing relevant is found the customer is told so and offered a person,
and the question is logged as a knowledge gap for the team to fill. A technical
question the manuals do not cover gets general first steps, said to be general advice.
"""

from __future__ import annotations

from pipelines.knowledge.retrieval import Knowledge, RetrievedPassage
from pipelines.prompts import (
    ANSWER_FROM_KNOWLEDGE,
    TECHNICAL_FROM_MANUALS,
    TECHNICAL_SUPPORT,
    PromptTemplate,
    fence,
)
from pipelines.steps import PipelineContext
from pipelines.support.drafts import reply_watcher
from pipelines.support.request import Outcome, SupportRequest
from pipelines.support.schemas import CitedAnswer, Reply

TOP_K = 5
NO_KNOWLEDGE_TEXT = (
    "I'm sorry, I don't have an answer to that in our help articles yet. If you'd like, press "
    "*Talk to a person* and someone from the team will help."
)
GENERAL_ADVICE_NOTE = (
    "_This is general advice: I found nothing about this in our manuals. If it does not "
    "help, press *Talk to a person*._"
)


async def answer_general(
    ctx: PipelineContext, request: SupportRequest, knowledge: Knowledge
) -> Outcome:
    """Answer from the knowledge with citations, or decline, offer a person, log a gap."""
    found = await grounded_answer(ctx, request, knowledge, ANSWER_FROM_KNOWLEDGE)
    if found is not None:
        return found
    await _log_gap(knowledge, request, "general_question")
    return Outcome(text=NO_KNOWLEDGE_TEXT, intents=["general_question"], summary="no answer")


async def answer_technical(
    ctx: PipelineContext, request: SupportRequest, knowledge: Knowledge
) -> Outcome:
    """The manuals' steps when a passage covers the problem; otherwise general first
    steps, said to be general advice, and the question logged as a gap."""
    found = await grounded_answer(ctx, request, knowledge, TECHNICAL_FROM_MANUALS)
    if found is not None:
        found.intents = ["technical_support"]
        found.summary = "technical issue (from the manuals)"
        return found
    await _log_gap(knowledge, request, "technical_support")
    reply = await ctx.step(
        TECHNICAL_SUPPORT,
        "worker",
        Reply,
        request.raw(),
        request.fenced(),
        on_partial=reply_watcher("reply"),
    )
    return Outcome(
        text=f"{reply.reply}\n\n{GENERAL_ADVICE_NOTE}",
        intents=["technical_support"],
        summary="technical issue (general advice)",
    )


async def grounded_answer(
    ctx: PipelineContext,
    request: SupportRequest,
    knowledge: Knowledge,
    template: PromptTemplate = ANSWER_FROM_KNOWLEDGE,
) -> Outcome | None:
    """An answer resting on retrieved passages, or None when they do not answer it."""
    passages = await knowledge.search(request.text, k=TOP_K)
    found = await cited_answer(ctx, request, passages, template)
    if found is None:
        return None
    answer, cited = found
    text = answer
    if cited:
        text += "\n\n_Sources: " + "; ".join(cited) + "_"
    links = [url for p in passages if set(p.labels) & set(cited) for url in p.links()]
    return Outcome(
        text=text,
        intents=["general_question"],
        summary="answered from the knowledge base",
        links=list(dict.fromkeys(links)),
    )


async def cited_answer(
    ctx: PipelineContext,
    request: SupportRequest,
    passages: list[RetrievedPassage],
    template: PromptTemplate = ANSWER_FROM_KNOWLEDGE,
) -> tuple[str, list[str]] | None:
    """One step's answer from `passages` and its checked citations; None when the
    passages do not answer the question (or there are none: then no call is made)."""
    if not passages:
        return None
    raw = {**request.raw(), "passages": [p.as_input() for p in passages]}
    answer = await ctx.step(
        template,
        "worker",
        CitedAnswer,
        raw,
        {
            **request.fenced(),
            "passages": fence("passages", "\n\n".join(p.as_prompt() for p in passages)),
        },
        on_partial=reply_watcher("answer"),
    )
    if not answer.answerable or not answer.answer.strip():
        return None
    return answer.answer, checked_citations(answer.sources, passages)


def checked_citations(claimed: list[str], passages: list[RetrievedPassage]) -> list[str]:
    """The claimed labels that name a retrieved passage, in the model's order, once each.
    A label may be given loosely (spacing, case); it is shown as the passage's own."""
    allowed = {_key(label): label for p in passages for label in p.labels}
    cited = (allowed.get(_key(label)) for label in claimed)
    return list(dict.fromkeys(label for label in cited if label))


def _key(label: str) -> str:
    return " ".join(label.replace(">", " > ").split()).casefold()


async def _log_gap(knowledge: Knowledge, request: SupportRequest, intent: str) -> None:
    await knowledge.log_gap(
        request.request_id, request.text, intent, request.actor.slack_user_id or ""
    )
