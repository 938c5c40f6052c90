"""The trace modal: pure Block Kit, checked without Slack or a database."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from bot.blocks import MAX_VIEW_BLOCKS
from bot.triage.trace_views import (
    MAX_TRACE_RUNS,
    TRACE_ACTION,
    cli_command,
    step_text,
    trace_modal,
)
from bot.triage.views import card_blocks
from storage.models import TraceRun, TraceStep
from tests.test_triage_views import action_ids, make_ticket

STARTED = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def make_step(seq: int, **changes: Any) -> TraceStep:
    values: dict[str, Any] = {
        "seq": seq,
        "name": "classify_intent",
        "model": "gemini-2.5-flash-lite",
        "prompt": "Classify the customer's message.\n<message>Where is ORD-10011?</message>",
        "raw_output": '{"intent": "status_update"}',
        "parsed_output": {"intent": "status_update", "confidence": 0.92},
        "latency_ms": 123.4,
        "attempts": 1,
        "tokens_in": 410,
        "tokens_out": 25,
        "tokens_cached": 128,
        "error": None,
    }
    values.update(changes)
    return TraceStep(**values)


def make_run(run_id: str, steps: list[TraceStep], **changes: Any) -> TraceRun:
    values: dict[str, Any] = {
        "id": run_id,
        "pipeline": "support",
        "slack_user_id": "U0CUST",
        "input": {"chars": 20, "ticket": "T-00012"},
        "output": {"text": "Your order ORD-10011 has shipped."},
        "status": "ok",
        "error": None,
        "created_at": STARTED,
        "finished_at": STARTED + dt.timedelta(seconds=1.5),
    }
    values.update(changes)
    run = TraceRun(**values)
    run.steps = steps
    return run


def modal_text(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


def assert_within_limits(view: dict[str, Any]) -> None:
    assert view["type"] == "modal"
    assert len(view["title"]["text"]) <= 24
    assert 0 < len(view["blocks"]) <= MAX_VIEW_BLOCKS
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        for element in block.get("elements", []):
            assert len(element["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert len(modal_text(view)) < 100_000


def test_every_step_shows_its_name_model_latency_attempts_tokens_and_output() -> None:
    run = make_run(
        "run-1",
        [
            make_step(1),
            make_step(
                2,
                name="synthesize_reply",
                model="gemini-2.5-flash",
                latency_ms=840.0,
                attempts=2,
                tokens_in=900,
                tokens_out=120,
                tokens_cached=0,
                parsed_output={"reply": "Your order has shipped."},
            ),
        ],
    )
    view = trace_modal("T-00012", [run])
    assert_within_limits(view)
    shown = modal_text(view)
    assert "Traces of T-00012" in shown and "run-1" in shown
    assert cli_command("run-1") in shown and "supportbot trace RUN_ID" in shown
    assert "1. classify_intent" in shown and "2. synthesize_reply" in shown
    assert "gemini-2.5-flash-lite" in shown and "gemini-2.5-flash`" in shown
    assert "123 ms" in shown and "840 ms" in shown
    assert "attempts 1" in shown and "attempts 2" in shown
    assert "tokens in/out/cached 410/25/128" in shown
    assert "tokens in/out/cached 900/120/0" in shown
    assert "tokens in/out/cached 1310/145/128" in shown  # the run's totals
    assert "status_update" in shown and "Your order has shipped." in shown
    assert "3 LLM calls" in shown and "1.5 s" in shown


def test_errors_are_shown_for_the_step_and_the_run() -> None:
    failed = make_step(
        1,
        name="plan_tasks",
        parsed_output=None,
        raw_output="not json at all",
        attempts=2,
        error="output did not match PlanTasks: tasks.0.kind: Input should be 'billing_inquiry'",
    )
    run = make_run(
        "run-err", [failed], status="error", output=None, error="provider unavailable: 503"
    )
    view = trace_modal("T-00012", [run])
    assert_within_limits(view)
    [step] = [b for b in view["blocks"] if "plan_tasks" in b.get("text", {}).get("text", "")]
    text = step["text"]["text"]
    assert ":x: *Error*" in text and "did not match PlanTasks" in text
    assert "not json at all" in text  # no parsed output: the raw output is shown
    shown = modal_text(view)
    assert ":x: *Run*" in shown and "provider unavailable: 503" in shown


def test_a_huge_trace_stays_within_block_kit_limits_and_says_what_is_missing() -> None:
    huge = "x" * 50_000
    runs = [
        make_run(
            f"run-{r}",
            [
                make_step(
                    s,
                    name=f"step_{r}_{s}",
                    prompt=huge,
                    raw_output=huge,
                    parsed_output={"answer": huge, "items": list(range(2000))},
                    error=huge if s % 7 == 0 else None,
                )
                for s in range(1, 80)
            ],
            output={"text": huge},
            error=huge,
        )
        for r in range(MAX_TRACE_RUNS + 2)
    ]
    view = trace_modal("T-00012", runs)
    assert_within_limits(view)
    shown = modal_text(view)
    assert "step_0_1" in shown  # the newest run comes first
    assert "run-3" not in shown and "run-4" not in shown  # at most MAX_TRACE_RUNS runs
    note = view["blocks"][-1]["elements"][0]["text"]
    assert "Not shown" in note and "more steps of run `run-0`" in note
    assert "supportbot trace RUN_ID" in note
    assert huge not in shown
    assert all(len(step_text(step)) <= 3000 for step in runs[0].steps)


def test_untrusted_text_cannot_ping_or_break_the_code_block() -> None:
    step = make_step(
        1, prompt="<!channel> hi ```break``` <@U0BOSS>", parsed_output={"x": "<!here>"}
    )
    shown = modal_text(trace_modal("T-00012", [make_run("r", [step])]))
    assert "<!channel>" not in shown and "<!here>" not in shown and "<@U0BOSS>" not in shown
    assert "&lt;!channel&gt;" in shown and "'''break'''" in shown


def test_no_runs_yet() -> None:
    view = trace_modal("T-00012", [])
    assert_within_limits(view)
    assert "No trace is stored for T-00012 yet" in modal_text(view)


def test_every_card_has_a_trace_button_with_the_ticket_number() -> None:
    for status in ("open", "escalated", "claimed", "resolved"):
        blocks = card_blocks(make_ticket(status=status, assignee="U0AGENT"))
        assert TRACE_ACTION in action_ids(blocks)
        [trace] = [
            e for b in blocks if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == TRACE_ACTION
        ]  # fmt: skip
        assert trace["value"] == "T-00012" and trace["text"]["text"] == "Trace"
