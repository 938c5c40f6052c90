"""`supportbot eval`: run the labelled set through the pipeline steps and the baseline.

The pipeline is measured step by step, the way it runs in production: the router
(`classify_intent`) for every message with an expected intent or tasks, the planner
(`plan_tasks` + `validate_task`) for every message with expected tasks, and the FAQ chain
(`answer_with_sources`) for every question with expected sources. No worker, backend or
database is involved, so the eval is side-effect free and fast on the offline provider.
The single-prompt baseline answers every item with one call (`pipelines.eval.baseline`).
Dataset format: eval/README.md; loading and validation: `pipelines.eval.data`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pipelines.config import LLMSettings
from pipelines.eval.baseline import run_single_prompt
from pipelines.eval.data import KEY_PARAM, LoadedItem
from pipelines.eval.metrics import TaskLabel
from pipelines.eval.report import EvalReport, ItemResult, system_report
from pipelines.faq.chain import FaqChain, SourceDocument
from pipelines.llm.base import LLM, LLMError
from pipelines.steps import PipelineContext, Trace
from pipelines.support.orchestrator import Task, WorkerResult, plan_tasks, validate_task
from pipelines.support.request import SupportRequest
from pipelines.support.routing import ACTION_INTENTS, classify_intent
from pipelines.support.schemas import PlannedTask
from storage.backends import Actor

EVAL_ACTOR = Actor(customer_id=0, slack_user_id="UEVAL")


@dataclass(frozen=True)
class EvalSetup:
    """What every evaluated message shares: the provider, its settings, documents, products."""

    llm: LLM
    settings: LLMSettings
    docs: list[SourceDocument]
    products: list[str]

    def context(self, system: str, loaded: LoadedItem) -> PipelineContext:
        trace = Trace(pipeline=f"eval-{system}", input={"text": loaded.item.text})
        return PipelineContext(self.llm, self.settings, trace)

    def request(self, loaded: LoadedItem) -> SupportRequest:
        return SupportRequest(
            request_id=f"eval:{loaded.where}",
            text=loaded.item.text,
            actor=EVAL_ACTOR,
            products=self.products,
        )


def task_label(planned: PlannedTask, checked: Task | WorkerResult) -> TaskLabel:
    """A planned task as scored: a task missing its parameter keeps its kind, not a key."""
    if isinstance(checked, Task):
        return TaskLabel(
            checked.kind, checked.params[KEY_PARAM[checked.kind]], checked.params.get("reason")
        )
    return TaskLabel(planned.kind, None, planned.reason)


def checked_labels(planned: Sequence[PlannedTask]) -> list[TaskLabel]:
    return [task_label(task, validate_task(task)) for task in planned]


async def run_pipeline(setup: EvalSetup, loaded: LoadedItem) -> ItemResult:
    """The production steps that own each expected label, called directly."""
    item, result = loaded.item, ItemResult(loaded)
    ctx, request = setup.context("pipeline", loaded), setup.request(loaded)
    if item.intent is not None or item.tasks is not None:
        try:
            routed = await classify_intent(ctx, request)
            result.intent = routed.intent
            result.routed_to_orchestrator = (
                routed.multiple_requests or routed.intent in ACTION_INTENTS
            )
        except LLMError as exc:
            result.fail("classify_intent", exc)
    if item.tasks is not None:
        try:
            result.tasks = checked_labels((await plan_tasks(ctx, request)).tasks)
        except LLMError as exc:
            result.fail("plan_tasks", exc)
    if item.sources is not None:
        try:
            answered, _ = await FaqChain(ctx, setup.docs).answer_with_sources(item.text)
            result.sources = answered.sources
        except LLMError as exc:
            result.fail("faq chain", exc)
    return result.charge(ctx.trace)


async def run_baseline(setup: EvalSetup, loaded: LoadedItem) -> ItemResult:
    """One call for everything, validated in code the same way as the pipeline's output."""
    result = ItemResult(loaded)
    ctx = setup.context("baseline", loaded)
    try:
        answer = await run_single_prompt(ctx, setup.request(loaded), setup.docs)
    except LLMError as exc:
        result.fail("single_prompt_baseline", exc)
        return result.charge(ctx.trace)
    titles = {doc.title for doc in setup.docs}
    result.intent = answer.intent
    result.tasks = checked_labels(answer.tasks)
    result.sources = [title for title in dict.fromkeys(answer.sources) if title in titles]
    return result.charge(ctx.trace)


Runner = Callable[[EvalSetup, LoadedItem], Awaitable[ItemResult]]


async def run_all(
    setup: EvalSetup, items: Sequence[LoadedItem], runner: Runner, concurrency: int
) -> list[ItemResult]:
    """Every item through one system, at most `concurrency` items in flight.

    The provider's own gate still enforces requests per minute; this bound keeps a slow
    provider from queueing every item at once and running into per-request deadlines.
    """
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(loaded: LoadedItem) -> ItemResult:
        async with slots:
            return await runner(setup, loaded)

    return list(await asyncio.gather(*(one(loaded) for loaded in items)))


async def evaluate(
    setup: EvalSetup, items: Sequence[LoadedItem], baseline: bool = True, concurrency: int = 8
) -> EvalReport:
    """Run the pipeline (and the baseline) over the items and score both."""
    pipeline = await run_all(setup, items, run_pipeline, concurrency)
    single = await run_all(setup, items, run_baseline, concurrency) if baseline else None
    return EvalReport(
        provider=setup.llm.name,
        datasets=list(dict.fromkeys(loaded.dataset for loaded in items)),
        items=len(items),
        pipeline=system_report(pipeline, pipeline=True),
        baseline=system_report(single, pipeline=False) if single is not None else None,
    )
