"""Saving and reading traces, so a person can inspect every step of a run afterwards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from pipelines.steps import Trace
from storage.models import TraceRun, TraceStep, utcnow


class TraceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(
        self,
        trace: Trace,
        *,
        status: str,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Write the run and its steps in one transaction (a replayed run id is replaced)."""
        async with self._sessions() as session, session.begin():
            existing = await session.get(TraceRun, trace.run_id)
            if existing is not None:
                await session.delete(existing)
                await session.flush()
            run = TraceRun(
                id=trace.run_id,
                pipeline=trace.pipeline,
                slack_user_id=trace.user_id,
                input=trace.input,
                output=output,
                status=status,
                error=error,
                finished_at=utcnow(),
            )
            run.steps = [
                TraceStep(
                    seq=step.seq,
                    name=step.name,
                    model=step.model,
                    prompt=step.prompt,
                    raw_output=step.raw_output,
                    parsed_output=step.parsed_output,
                    latency_ms=step.latency_ms,
                    attempts=step.attempts,
                    tokens_in=step.usage.input_tokens,
                    tokens_out=step.usage.output_tokens,
                    tokens_cached=step.usage.cached_tokens,
                    error=step.error,
                )
                for step in trace.steps
            ]
            session.add(run)

    async def load(self, run_id: str) -> TraceRun | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(TraceRun).options(selectinload(TraceRun.steps)).where(TraceRun.id == run_id)
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
