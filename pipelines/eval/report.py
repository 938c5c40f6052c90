"""The report of `supportbot eval`: per-item results, the figures derived from them, a table.

Figures are micro-averaged (counts summed over items before dividing) so that a message
with three tasks weighs three times a message with one. Every figure is computed by the
functions of `pipelines.eval.metrics`; this module only groups and prints them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.eval.data import LoadedItem
from pipelines.eval.metrics import (
    Confusion,
    Counts,
    TaskLabel,
    reason_counts,
    set_counts,
    task_counts,
    total,
)
from pipelines.steps import Trace
from pipelines.support.schemas import INTENTS

ERROR_LABEL = "(error)"  # the predicted "intent" of a message whose step failed


@dataclass
class ItemResult:
    """What one system predicted for one item, and what it cost."""

    loaded: LoadedItem
    intent: str | None = None
    tasks: list[TaskLabel] | None = None
    sources: list[str] | None = None
    routed_to_orchestrator: bool | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    models: dict[str, str] = field(default_factory=dict)  # step name -> model that answered
    errors: list[str] = field(default_factory=list)

    def fail(self, step: str, exc: Exception) -> None:
        self.errors.append(f"{self.loaded.where}: {step}: {type(exc).__name__}: {exc}"[:300])

    def charge(self, trace: Trace) -> ItemResult:
        """Take the calls, tokens and models of this item's steps from its trace."""
        usage = trace.usage
        self.calls = trace.llm_calls
        self.input_tokens, self.output_tokens = usage.input_tokens, usage.output_tokens
        self.models = {step.name: step.model for step in trace.steps}
        return self


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int

    @classmethod
    def of(cls, counts: Counts) -> PRF:
        return cls(counts.precision, counts.recall, counts.f1, counts.tp, counts.fp, counts.fn)


@dataclass(frozen=True)
class RoutingReport:
    messages: int
    accuracy: float
    confusion: dict[str, dict[str, int]]  # expected -> predicted -> count
    per_intent: dict[str, PRF]


@dataclass(frozen=True)
class TaskReport:
    messages: int
    by_type: PRF  # task kinds only
    with_params: PRF  # kind and invoice number / order id / product name
    reason_match: float | None  # over return tasks found with the right product
    reasons_compared: int
    sent_to_orchestrator: float | None  # share the router would hand to the orchestrator


@dataclass(frozen=True)
class CitationReport:
    questions: int
    citations: PRF


@dataclass(frozen=True)
class CostReport:
    messages: int
    calls: int
    input_tokens: int
    output_tokens: int
    calls_per_message: float
    tokens_per_message: float


@dataclass(frozen=True)
class SystemReport:
    routing: RoutingReport | None
    tasks: TaskReport | None
    citations: CitationReport | None
    cost: dict[str, CostReport]  # per dataset file name, and "all"
    models: dict[str, str]  # step name -> model, as reported by the provider
    errors: int
    error_examples: list[str]


@dataclass(frozen=True)
class EvalReport:
    provider: str
    datasets: list[str]
    items: int
    pipeline: SystemReport
    baseline: SystemReport | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def routing_report(results: Sequence[ItemResult]) -> RoutingReport | None:
    scored = [r for r in results if r.loaded.item.intent is not None]
    if not scored:
        return None
    confusion = Confusion()
    for r in scored:
        confusion.add(str(r.loaded.item.intent), r.intent or ERROR_LABEL)
    per_intent: dict[str, PRF] = {label: PRF.of(confusion.counts_for(label)) for label in INTENTS}
    return RoutingReport(len(scored), confusion.accuracy, confusion.cells, per_intent)


def _expected_tasks(result: ItemResult) -> list[TaskLabel]:
    return [task.label() for task in result.loaded.item.tasks or []]


def task_report(results: Sequence[ItemResult], pipeline: bool) -> TaskReport | None:
    scored = [r for r in results if r.loaded.item.tasks is not None]
    if not scored:
        return None
    pairs = [(_expected_tasks(r), r.tasks or []) for r in scored]
    reasons = [reason_counts(want, got) for want, got in pairs]
    matched, compared = sum(m for m, _ in reasons), sum(c for _, c in reasons)
    multi = [r for r in scored if len(r.loaded.item.tasks or []) >= 2]
    sent = sum(1 for r in multi if r.routed_to_orchestrator)
    return TaskReport(
        messages=len(scored),
        by_type=PRF.of(total(task_counts(w, g, with_params=False) for w, g in pairs)),
        with_params=PRF.of(total(task_counts(w, g, with_params=True) for w, g in pairs)),
        reason_match=matched / compared if compared else None,
        reasons_compared=compared,
        sent_to_orchestrator=sent / len(multi) if pipeline and multi else None,
    )


def citation_report(results: Sequence[ItemResult]) -> CitationReport | None:
    scored = [r for r in results if r.loaded.item.sources is not None]
    if not scored:
        return None
    counts = total(set_counts(r.loaded.item.sources or [], r.sources or []) for r in scored)
    return CitationReport(len(scored), PRF.of(counts))


def cost_report(results: Sequence[ItemResult]) -> CostReport:
    n = len(results)
    calls = sum(r.calls for r in results)
    tokens_in, tokens_out = (
        sum(r.input_tokens for r in results),
        sum(r.output_tokens for r in results),
    )
    return CostReport(
        messages=n,
        calls=calls,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        calls_per_message=calls / n if n else 0.0,
        tokens_per_message=(tokens_in + tokens_out) / n if n else 0.0,
    )


def system_report(results: Sequence[ItemResult], pipeline: bool) -> SystemReport:
    """Every figure of one system; `pipeline` adds the router-to-orchestrator share."""
    by_file: dict[str, list[ItemResult]] = {}
    for r in results:
        by_file.setdefault(r.loaded.dataset, []).append(r)
    cost = {name: cost_report(group) for name, group in by_file.items()}
    cost["all"] = cost_report(results)
    errors = [e for r in results for e in r.errors]
    return SystemReport(
        routing=routing_report(results),
        tasks=task_report(results, pipeline),
        citations=citation_report(results),
        cost=cost,
        models={step: model for r in results for step, model in r.models.items()},
        errors=len(errors),
        error_examples=errors[:5],
    )


# --- the table ---------------------------------------------------------------------------

SHORT = {
    "technical_support": "tech",
    "billing_inquiry": "billing",
    "product_return": "return",
    "order_status": "order",
    "general_question": "general",
    "human_handoff": "human",
    ERROR_LABEL: "error",
}
COST_NOTE = (
    "Pipeline cost covers the steps evaluated (router; planner for messages with tasks; FAQ "
    "answer + sources); workers and the synthesizer would add calls in production. The "
    "baseline's one call carries the knowledge documents, as a do-it-all prompt must."
)


Row = tuple[str, str, str]  # metric, pipeline, baseline
Getter = Callable[[SystemReport], str]


def _prf(value: PRF | None, f1: bool = True) -> str:
    if value is None:
        return "-"
    text = f"{value.precision:.2f} / {value.recall:.2f}"
    return f"{text} / {value.f1:.2f}" if f1 else text


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _reasons(tasks: TaskReport | None) -> str:
    return "-" if tasks is None else f"{_num(tasks.reason_match, 2)} (n={tasks.reasons_compared})"


def _row(report: EvalReport, metric: str, get: Getter) -> Row:
    baseline = report.baseline
    return metric, get(report.pipeline), "-" if baseline is None else get(baseline)


def _quality_rows(report: EvalReport) -> list[Row]:
    p = report.pipeline
    rows: list[Row] = []
    if p.routing:
        rows.append(
            _row(
                report,
                f"routing accuracy ({p.routing.messages} msgs)",
                lambda s: _num(s.routing.accuracy if s.routing else None),
            )
        )
    if p.tasks:
        rows += [
            _row(
                report,
                f"tasks by type P / R / F1 ({p.tasks.messages} msgs)",
                lambda s: _prf(s.tasks.by_type if s.tasks else None),
            ),
            _row(
                report,
                "tasks with params P / R / F1",
                lambda s: _prf(s.tasks.with_params if s.tasks else None),
            ),
            _row(report, "return reason matched", lambda s: _reasons(s.tasks)),
            ("multi-request msgs sent to orchestrator", _num(p.tasks.sent_to_orchestrator), "-"),
        ]
    if p.citations:
        rows.append(
            _row(
                report,
                f"citations P / R ({p.citations.questions} questions)",
                lambda s: _prf(s.citations.citations if s.citations else None, f1=False),
            )
        )
    return rows


def _cost_rows(report: EvalReport) -> list[Row]:
    rows: list[Row] = []
    for name in report.pipeline.cost:
        label = "all items" if name == "all" else name

        def calls(s: SystemReport, key: str = name) -> str:
            return _num(s.cost[key].calls_per_message, 2) if key in s.cost else "-"

        def tokens(s: SystemReport, key: str = name) -> str:
            return f"{s.cost[key].tokens_per_message:,.0f}" if key in s.cost else "-"

        rows += [
            _row(report, f"LLM calls / msg, {label}", calls),
            _row(report, f"tokens / msg, {label}", tokens),
        ]
    rows.append(_row(report, "failed steps", lambda s: str(s.errors)))
    return rows


def format_confusion(routing: RoutingReport, title: str) -> str:
    """Rows are expected intents, columns predicted ones, then per-intent P and R."""
    columns = [*INTENTS, ERROR_LABEL]
    head = f"{'expected / predicted':<20}" + "".join(f"{SHORT[c]:>8}" for c in columns)
    lines = [title, f"{head}{'P':>7}{'R':>6}"]
    for label in INTENTS:
        row = routing.confusion.get(label, {})
        cells = "".join(f"{row.get(c, 0):>8}" for c in columns)
        prf = routing.per_intent[label]
        lines.append(f"{label:<20}{cells}{prf.precision:>7.2f}{prf.recall:>6.2f}")
    return "\n".join(lines)


def _baseline_models(report: EvalReport) -> list[str]:
    return list(report.baseline.models.values()) if report.baseline else []


def format_report(report: EvalReport) -> str:
    """The human-readable summary: one table comparing both systems, then the confusions."""
    rows = [("metric", "pipeline", "single-prompt"), *_quality_rows(report), *_cost_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"supportbot eval: provider {report.provider}, {report.items} items "
        f"({', '.join(report.datasets)})",
        "",
    ]
    for metric, pipe, base in rows:
        lines.append(f"{metric:<{widths[0]}}  {pipe:>{widths[1]}}  {base:>{widths[2]}}")
    models = sorted(set(report.pipeline.models.values()) | set(_baseline_models(report)))
    lines += ["", f"models: {', '.join(models) or '-'}", "", textwrap.fill(COST_NOTE, 100)]
    for name, system in (("pipeline", report.pipeline), ("single-prompt", report.baseline)):
        if system is not None and system.routing is not None:
            lines += ["", format_confusion(system.routing, f"Routing confusion, {name}:")]
        if system is not None and system.error_examples:
            lines += ["", f"First failed steps, {name}:", *system.error_examples]
    return "\n".join(lines)
