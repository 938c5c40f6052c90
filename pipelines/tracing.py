"""Traces of pipeline runs: saved through `storage.traces`, printed for `supportbot trace`."""

from __future__ import annotations

from typing import Any

from pipelines.steps import StepRecord, Trace
from storage.db import Sessions
from storage.models import TraceRun
from storage.traces import StoredStep, StoredTrace, TraceStore


class TraceRecorder:
    """Saves a pipeline's `Trace` through `storage.traces.TraceStore`.

    Storage cannot know the pipeline's types, so the conversion (`stored_trace`) lives
    here, next to the type it converts.
    """

    def __init__(self, sessions: Sessions) -> None:
        self._store = TraceStore(sessions)

    async def save(self, trace: Trace, **outcome: Any) -> None:
        """Write the run and its steps (`outcome`: `TraceStore.save`'s status, output, error)."""
        await self._store.save(stored_trace(trace), **outcome)


def stored_trace(trace: Trace) -> StoredTrace:
    """`trace` as storage saves it."""
    return StoredTrace(
        run_id=trace.run_id,
        pipeline=trace.pipeline,
        user_id=trace.user_id,
        input=trace.input,
        steps=[_stored_step(step) for step in trace.steps],
    )


_SAME_FIELDS = (
    "seq", "name", "model", "prompt", "raw_output", "parsed_output", "latency_ms", "attempts",
    "error",
)  # fmt: skip


def _stored_step(step: StepRecord) -> StoredStep:
    usage = step.usage
    return StoredStep(
        tokens_in=usage.input_tokens,
        tokens_out=usage.output_tokens,
        tokens_cached=usage.cached_tokens,
        **{name: getattr(step, name) for name in _SAME_FIELDS},
    )


def format_trace(run: TraceRun, full_prompts: bool = False) -> str:
    """A readable, step-by-step rendering of one run for `supportbot trace`."""
    lines = [
        f"run {run.id}  pipeline={run.pipeline}  status={run.status}",
        f"started {run.created_at:%Y-%m-%d %H:%M:%S}Z"
        + (f"  finished {run.finished_at:%H:%M:%S}Z" if run.finished_at else ""),
        f"input: {_short(str(run.input), 300)}",
    ]
    for step in run.steps:
        lines.append("")
        lines.append(
            f"[{step.seq}] {step.name}  model={step.model}  {step.latency_ms:.0f} ms  "
            f"attempts={step.attempts}  tokens in/out/cached="
            f"{step.tokens_in}/{step.tokens_out}/{step.tokens_cached}"
        )
        prompt = step.prompt if full_prompts else _short(step.prompt, 400)
        lines.append("    prompt: " + prompt.replace("\n", "\n            "))
        if step.parsed_output is not None:
            lines.append(f"    output: {_short(str(step.parsed_output), 600)}")
        elif step.raw_output:
            lines.append(f"    raw:    {_short(step.raw_output, 600)}")
        if step.error:
            lines.append(f"    error:  {step.error}")
    if run.output is not None:
        lines.append("")
        lines.append(f"final output: {_short(str(run.output), 800)}")
    if run.error:
        lines.append(f"error: {run.error}")
    return "\n".join(lines)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
