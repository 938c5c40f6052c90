"""Saving and reading traces, so a person can inspect every step of a run afterwards.

Storage takes its own records (`StoredTrace`, `StoredStep`), not the pipeline's `Trace`:
`pipelines.tracing.stored_trace` turns one into the other, so storage never imports the
layer above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.models import TraceRun, TraceStep, utcnow


@dataclass(frozen=True)
class StoredStep:
    seq: int
    name: str
    model: str
    prompt: str
    raw_output: str | None
    parsed_output: dict[str, Any] | None
    latency_ms: float
    attempts: int
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    error: str | None


@dataclass(frozen=True)
class StoredTrace:
    run_id: str
    pipeline: str
    user_id: str
    input: dict[str, Any]
    steps: Sequence[StoredStep]


class TraceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(
        self,
        trace: StoredTrace,
        *,
        status: str,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Write the run and its steps in one transaction (a replayed run id is replaced).

        Three Core statements, whatever the number of steps: every message saves a trace,
        and the ORM's unit of work (a look-up, then one INSERT per step) cost it several
        times the CPU of the statements themselves.
        """
        async with self._sessions() as session, session.begin():
            # The old run's steps go with it (ON DELETE CASCADE).
            await session.execute(
                delete(TraceRun)
                .where(TraceRun.id == trace.run_id)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                insert(TraceRun).values(
                    id=trace.run_id,
                    pipeline=trace.pipeline,
                    slack_user_id=trace.user_id,
                    input=trace.input,
                    output=output,
                    status=status,
                    error=error,
                    finished_at=utcnow(),
                )
            )
            if trace.steps:
                await session.execute(
                    insert(TraceStep),
                    [{"run_id": trace.run_id, **asdict(step)} for step in trace.steps],
                )

    async def load(self, run_id: str) -> TraceRun | None:
        """The run with its steps in order, or None when no run has this id."""
        async with self._sessions() as session:
            return await session.scalar(
                select(TraceRun).options(selectinload(TraceRun.steps)).where(TraceRun.id == run_id)
            )
