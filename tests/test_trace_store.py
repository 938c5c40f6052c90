"""Traces are stored with their steps in order, and a replayed run id replaces the run."""

from __future__ import annotations

from storage.db import Database
from storage.traces import StoredStep, StoredTrace, TraceStore


def _step(seq: int, name: str) -> StoredStep:
    return StoredStep(
        seq=seq, name=name, model="gemini-2.5-flash", prompt=f"prompt {seq}",
        raw_output='{"ok": true}', parsed_output={"ok": True}, latency_ms=12.5, attempts=1,
        tokens_in=100, tokens_out=20, tokens_cached=0, error=None,
    )  # fmt: skip


async def test_a_run_and_its_steps_round_trip(database: Database) -> None:
    store = TraceStore(database.sessions)
    trace = StoredTrace("run-1", "support", "U1", {"chars": 5},
                        [_step(1, "classify_intent"), _step(2, "plan_tasks"), _step(3, "synth")])  # fmt: skip
    await store.save(trace, status="ok", output={"reply": "hi"})
    run = await store.load("run-1")
    assert run is not None and run.status == "ok" and run.output == {"reply": "hi"}
    assert run.slack_user_id == "U1" and run.input == {"chars": 5} and run.finished_at
    assert [(s.seq, s.name, s.parsed_output) for s in run.steps] == [
        (1, "classify_intent", {"ok": True}), (2, "plan_tasks", {"ok": True}),
        (3, "synth", {"ok": True}),
    ]  # fmt: skip


async def test_saving_a_run_id_again_replaces_the_run_and_its_steps(database: Database) -> None:
    store = TraceStore(database.sessions)
    steps = [_step(1, "a"), _step(2, "b"), _step(3, "c")]
    await store.save(StoredTrace("run-2", "support", "U1", {}, steps), status="error", error="x")
    await store.save(StoredTrace("run-2", "support", "U1", {}, steps[:1]), status="ok")
    run = await store.load("run-2")
    assert run is not None and run.status == "ok" and run.error is None
    assert [s.name for s in run.steps] == ["a"]


async def test_a_run_without_steps(database: Database) -> None:
    store = TraceStore(database.sessions)
    await store.save(StoredTrace("run-3", "support", "U1", {}, []), status="ok")
    run = await store.load("run-3")
    assert run is not None and run.steps == []
