"""Orchestrator-workers: plan typed tasks, run workers concurrently, synthesise one reply.

The planner's output is validated in code: a task without its required parameter, or with
an id that is not of the right shape, becomes a question back to the customer and never
reaches a backend. Workers are the specialised handlers of the three action intents.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel
from rapidfuzz import fuzz, utils

from pipelines.config import LLMSettings
from pipelines.prompts import EXTRACT_CONCERN, PLAN_TASKS, SYNTHESIZE_REPLY, fence
from pipelines.steps import PipelineContext
from pipelines.support.confirmations import (
    BILLING_CASE,
    RETURN,
    case_pending,
    needs_confirmation,
    return_pending,
)
from pipelines.support.disclosure import withhold_account_details
from pipelines.support.drafts import StepNote, reply_watcher, report_step
from pipelines.support.request import Outcome, SupportRequest
from pipelines.support.schemas import BillingConcern, PlannedTask, Reply, TaskPlan
from storage.backends import BusinessSystems, RecordNotFound, normalize_number
from storage.conversations import CUSTOMER

INVOICE_SHAPE = re.compile(r"^INV-\d{3,10}$")
ORDER_SHAPE = re.compile(r"^ORD-\d{3,10}$")
ACTION_ID = re.compile(r"\b(?:RMA|CASE)-\d+\b")


class WorkerResult(BaseModel):
    """A worker's structured result: what the synthesizer may say, and nothing else."""

    kind: str
    ok: bool
    facts: dict[str, Any]
    action: str | None = None  # e.g. "RMA-000123 created", shown on the ticket
    needs: str | None = None  # what to ask the customer for
    # Why nothing was done, naming the existing record to use instead (e.g. "a return is
    # already open for this item: RMA-000123"): the reply must carry it.
    refusal: str | None = None
    # A side effect prepared, not done: it waits for the customer's confirmation.
    pending: dict[str, Any] | None = None


@dataclass(frozen=True)
class Task:
    """A validated task; `params` hold exactly the parameters its kind requires."""

    kind: str
    params: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}


class Worker(Protocol):
    async def run(
        self, ctx: PipelineContext, task: Task, request: SupportRequest
    ) -> WorkerResult: ...


async def plan_tasks(ctx: PipelineContext, request: SupportRequest) -> TaskPlan:
    """Decompose the message into typed tasks (one LLM step)."""
    return await ctx.step(PLAN_TASKS, "orchestrator", TaskPlan, request.raw(), request.fenced())


def validate_task(planned: PlannedTask) -> Task | WorkerResult:
    """A usable task, or a result that asks the customer for the missing parameter."""
    if planned.kind == "billing_inquiry":
        number = normalize_number("INV", planned.invoice_number or "")
        if not INVOICE_SHAPE.match(number):
            return WorkerResult(
                kind=planned.kind, ok=False, facts={}, needs="the invoice number (like INV-10011)"
            )
        return Task(planned.kind, {"invoice_number": number})
    if planned.kind == "status_update":
        number = normalize_number("ORD", planned.order_id or "")
        if not ORDER_SHAPE.match(number):
            return WorkerResult(
                kind=planned.kind, ok=False, facts={}, needs="the order number (like ORD-10011)"
            )
        return Task(planned.kind, {"order_id": number})
    product = (planned.product_name or "").strip()[:120]
    if not product:
        return WorkerResult(
            kind=planned.kind, ok=False, facts={}, needs="which product you want to return"
        )
    reason = (planned.reason or "").strip()[:500] or "not given"
    return Task(planned.kind, {"product_name": product, "reason": reason})


def customer_words(request: SupportRequest) -> str:
    """Everything the ticket's owner wrote in this conversation.

    Not the bot's or an agent's turns, and never another person's message in the thread
    (a `participant` turn): a neighbour's "fyi INV-10011" must not aim an action at the
    owner's account. `SupportService` hands over the owner's history only; the role
    check here keeps that true for any caller.
    """
    earlier = [turn.text for turn in request.history if turn.role == CUSTOMER]
    return "\n".join([*earlier, request.text])


def ground_task(task: Task, request: SupportRequest) -> Task | WorkerResult:
    """Keep a task only if the customer actually named its target.

    A planner must not invent ids or products (a hallucination, or an instruction smuggled
    into the conversation): the invoice or order number must appear in what the customer
    wrote, and the product must match words they used. Otherwise the customer is asked.
    """
    said = customer_words(request)
    if task.kind in ("billing_inquiry", "status_update"):
        number = task.params.get("invoice_number") or task.params.get("order_id") or ""
        digits = number.split("-")[-1]
        if digits in re.findall(r"\d+", said):
            return task
        what = "invoice" if task.kind == "billing_inquiry" else "order"
        return WorkerResult(kind=task.kind, ok=False, facts={}, needs=f"the {what} number you mean")
    product = task.params["product_name"]
    if fuzz.partial_token_set_ratio(product, said, processor=utils.default_process) >= 80:
        return task
    return WorkerResult(
        kind=task.kind, ok=False, facts={}, needs="which product you want to return"
    )


class BillingWorker:
    """Looks the invoice up; opens an investigation case when the customer disputes it."""

    def __init__(self, systems: BusinessSystems) -> None:
        self.systems = systems

    async def run(self, ctx: PipelineContext, task: Task, request: SupportRequest) -> WorkerResult:
        number = task.params["invoice_number"]
        try:
            invoice = await self.systems.billing.get_invoice(request.actor, number)
        except RecordNotFound as exc:
            return WorkerResult(kind=task.kind, ok=False, facts={"error": str(exc)})
        invoice_text = invoice.model_dump_json()
        concern = await ctx.step(
            EXTRACT_CONCERN,
            "worker",
            BillingConcern,
            {**request.raw(), "invoice": invoice.model_dump(mode="json")},
            {**request.fenced(), "invoice": fence("invoice", invoice_text)},
        )
        facts: dict[str, Any] = {"invoice": invoice.model_dump(mode="json")}
        if not concern.wants_investigation:
            return WorkerResult(kind=task.kind, ok=True, facts=facts)
        if needs_confirmation(BILLING_CASE, ctx.settings):
            pending = case_pending(number, concern.concern)
            facts["awaiting_confirmation"] = pending.summary
            return WorkerResult(kind=task.kind, ok=True, facts=facts, pending=pending.as_dict())
        case = await self.systems.billing.open_case(
            request.actor,
            number,
            concern.concern,
            idempotency_key=f"{request.request_id}:case:{number}",
        )
        facts["case"] = case.model_dump(mode="json")
        return WorkerResult(
            kind=task.kind, ok=True, facts=facts, action=f"{case.case_number} opened"
        )


class ReturnsWorker:
    """Authorises the return of a product the customer bought."""

    def __init__(self, systems: BusinessSystems) -> None:
        self.systems = systems

    async def run(self, ctx: PipelineContext, task: Task, request: SupportRequest) -> WorkerResult:
        if needs_confirmation(RETURN, ctx.settings):
            pending = return_pending(task.params["product_name"], task.params["reason"])
            return WorkerResult(
                kind=task.kind,
                ok=True,
                facts={"awaiting_confirmation": pending.summary},
                pending=pending.as_dict(),
            )
        # The key names the request only: the returns system adds the order line it
        # matched, so a retry whose model worded the product differently replays the RMA.
        result = await self.systems.returns.authorize_return(
            request.actor,
            task.params["product_name"],
            task.params["reason"],
            idempotency_key=f"{request.request_id}:return",
        )
        action = f"{result.rma_number} created" if result.authorized else None
        return WorkerResult(
            kind=task.kind,
            ok=result.authorized,
            facts={"return": result.model_dump(mode="json")},
            action=action,
            refusal=result.refusal if result.open_rma_numbers else None,
        )


class StatusWorker:
    """Reports an order's status, carrier, tracking number and expected delivery."""

    def __init__(self, systems: BusinessSystems) -> None:
        self.systems = systems

    async def run(self, ctx: PipelineContext, task: Task, request: SupportRequest) -> WorkerResult:
        try:
            status = await self.systems.orders.get_status(request.actor, task.params["order_id"])
        except RecordNotFound as exc:
            return WorkerResult(kind=task.kind, ok=False, facts={"error": str(exc)})
        return WorkerResult(
            kind=task.kind, ok=True, facts={"order": status.model_dump(mode="json")}
        )


def build_workers(systems: BusinessSystems) -> dict[str, Worker]:
    return {
        "billing_inquiry": BillingWorker(systems),
        "product_return": ReturnsWorker(systems),
        "status_update": StatusWorker(systems),
    }


def task_title(task: Task, settings: LLMSettings) -> str:
    """The step as the customer sees it while the workers run."""
    if task.kind == "billing_inquiry":
        return f"Checking invoice {task.params['invoice_number']}"
    if task.kind == "status_update":
        return f"Looking up {task.params['order_id']}"
    verb = "Preparing" if needs_confirmation(RETURN, settings) else "Opening"
    return f"{verb} a return for the {task.params['product_name']}"


async def run_reported(
    worker: Worker, ctx: PipelineContext, task: Task, request: SupportRequest, step_id: str
) -> WorkerResult:
    """Run one worker, telling whoever watches the reply that it started and how it ended."""
    title = task_title(task, ctx.settings)
    report_step(StepNote(step_id, title, "in_progress"))
    try:
        result = await worker.run(ctx, task, request)
    except BaseException:
        report_step(StepNote(step_id, title, "error"))
        raise
    detail = "" if result.ok else (result.refusal or result.facts.get("error") or "")
    report_step(StepNote(step_id, title, "complete" if result.ok else "error", str(detail)))
    return result


async def synthesize_reply(
    ctx: PipelineContext, request: SupportRequest, results: list[WorkerResult]
) -> str:
    """Write one reply from the workers' results; make sure every action id is in it.

    The reply streams to whoever watches it (`pipelines.support.drafts`), cut before any
    action id no worker produced: those are replaced below, after the text is complete.
    """
    payload = [result.model_dump(mode="json") for result in results]
    draft = await ctx.step(
        SYNTHESIZE_REPLY,
        "synthesizer",
        Reply,
        {"message": request.text, "results": payload},
        {
            "message": fence("customer_message", request.text),
            "results": fence("results", json.dumps(payload, indent=1)),
        },
        on_partial=reply_watcher("reply", real_action_ids(results)),
    )
    return ensure_actions_mentioned(draft.reply, results)


def real_action_ids(results: list[WorkerResult]) -> set[str]:
    """The case and RMA numbers the workers created or named (nothing else is real)."""
    return {
        match
        for result in results
        for said in (result.action, result.refusal)
        if said
        for match in ACTION_ID.findall(said)
    }


def ensure_actions_mentioned(reply: str, results: list[WorkerResult]) -> str:
    """Append the facts a synthesised reply left out, and drop invented action ids.

    The customer must see every case and RMA number that was created or that a refusal
    names (the return already open), and only those.
    """
    invented = set(ACTION_ID.findall(reply)) - real_action_ids(results)
    for token in invented:
        reply = reply.replace(token, "(reference pending)")
    missing = [r.action for r in results if r.action and r.action.split()[0] not in reply]
    if missing:
        reply += "\n\nDone for you: " + "; ".join(a for a in missing if a) + "."
    unsaid = [
        r.refusal
        for r in results
        if r.refusal and not all(ref in reply for ref in ACTION_ID.findall(r.refusal))
    ]
    if unsaid:
        reply += "\n\n" + " ".join(refusal for refusal in unsaid if refusal)
    return reply


async def orchestrate(
    ctx: PipelineContext,
    request: SupportRequest,
    workers: dict[str, Worker],
    planning: Awaitable[TaskPlan] | None = None,
) -> Outcome:
    """Plan (or take the plan `planning` started ahead), run every valid task
    concurrently, and synthesise the reply."""
    plan = await (planning if planning is not None else plan_tasks(ctx, request))
    checked = [validate_task(planned) for planned in plan.tasks]
    checked = [ground_task(c, request) if isinstance(c, Task) else c for c in checked]
    tasks = [item for item in checked if isinstance(item, Task)]
    questions = [item for item in checked if isinstance(item, WorkerResult)]
    if not tasks and not questions:
        return Outcome(
            text=(
                "I'd like to help with that. Could you tell me the order number (like "
                "ORD-10011), the invoice number (like INV-10011) or the product concerned?"
            ),
            summary="asked for details",
        )
    done = await asyncio.gather(
        *(
            run_reported(workers[task.kind], ctx, task, request, f"task-{number}")
            for number, task in enumerate(tasks, 1)
        )
    )
    results = [*done, *questions]
    text = await synthesize_reply(ctx, request, results)
    if request.public:
        text = withhold_account_details(text, customer_words(request))
    return Outcome(
        text=text,
        intents=list(
            dict.fromkeys(
                "order_status" if t.kind == "status_update" else t.kind for t in plan.tasks
            )
        ),
        tasks=[task.as_dict() for task in tasks],
        actions=[r.action for r in results if r.action],
        summary=_summary(tasks, results),
        pending=[r.pending for r in results if r.pending],
    )


def _summary(tasks: list[Task], results: list[WorkerResult]) -> str:
    parts = [", ".join(f"{k}={v}" for k, v in t.params.items() if k != "reason") for t in tasks]
    actions = [r.action for r in results if r.action]
    return "; ".join(p for p in [*parts, *actions] if p)[:300]
