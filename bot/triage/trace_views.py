"""Block Kit for reading a ticket's traces in Slack: pure functions, no I/O.

The "Trace" button on a triage card opens a modal (for support agents only) with the
ticket's latest runs, newest first, step by step: name, model, latency, attempts, tokens
in/out/cached, a shortened prompt and parsed output, and the error if there was one.
A modal holds at most 100 blocks and a section at most 3000 characters, so long prompts
and outputs are cut, and steps that do not fit are counted in a closing note; the whole
run is always one command away: `supportbot trace RUN_ID`.

Everything in a trace came from a customer or an LLM: it is escaped (it can never ping or
fake a link) and shown in code blocks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.blocks import (
    MAX_MODAL_TITLE_CHARS,
    MAX_SECTION_CHARS,
    MAX_VIEW_BLOCKS,
    Block,
    View,
    context,
    divider,
    escape,
    header,
    modal,
    section,
)
from bot.triage.views import TRACE_ACTION, slack_date
from storage.models import TraceRun, TraceStep

MAX_TRACE_RUNS = 3
MAX_VIEW_CHARS = 60_000  # keeps the whole view well under Slack's payload size
MAX_PROMPT_CHARS = 300
MAX_OUTPUT_CHARS = 700
MAX_ERROR_CHARS = 500
MAX_RUN_TEXT_CHARS = 300

STATUS_EMOJI = {"ok": ":white_check_mark:", "error": ":x:", "running": ":hourglass:"}


def cli_command(run_id: str) -> str:
    return f"supportbot trace {run_id}"


def shorten(text: str, limit: int) -> str:
    """`text` on at most `limit` characters (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code_block(text: str, limit: int) -> str:
    """Untrusted text as an escaped mrkdwn code block of at most about `limit` chars."""
    cleaned = escape(shorten(text.strip(), limit)).replace("```", "'''")
    return f"```{cleaned or ' '}```"


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def tokens_text(tokens_in: int, tokens_out: int, tokens_cached: int) -> str:
    return f"tokens in/out/cached {tokens_in}/{tokens_out}/{tokens_cached}"


def step_text(step: TraceStep) -> str:
    """One step as mrkdwn (at most MAX_SECTION_CHARS)."""
    model = escape(step.model or "?")
    head = (
        f"*{step.seq}. {escape(step.name)}* · `{model}` · {step.latency_ms or 0:.0f} ms · "
        f"attempts {step.attempts} · "
        + tokens_text(step.tokens_in or 0, step.tokens_out or 0, step.tokens_cached or 0)
    )
    lines = [head]
    if step.error:
        lines.append(":x: *Error* " + code_block(step.error, MAX_ERROR_CHARS))
    if step.parsed_output is not None:
        lines.append("*Output* " + code_block(as_text(step.parsed_output), MAX_OUTPUT_CHARS))
    elif step.raw_output:
        lines.append("*Raw output* " + code_block(step.raw_output, MAX_OUTPUT_CHARS))
    if step.prompt:
        lines.append("*Prompt* (start) " + code_block(step.prompt, MAX_PROMPT_CHARS))
    return "\n".join(lines)[:MAX_SECTION_CHARS]


def run_text(run: TraceRun, votes: Sequence[tuple[str, str]] = ()) -> str:
    """A run's heading: id, pipeline, status, when, totals, the votes on its reply
    (user, up/down), final output and error."""
    steps = list(run.steps)
    emoji = STATUS_EMOJI.get(run.status, ":grey_question:")
    head = f"{emoji} *Run* `{escape(run.id)}` · {escape(run.pipeline)} · {escape(run.status)}"
    details = [f"{len(steps)} step{'s' if len(steps) != 1 else ''}"]
    if isinstance(run.created_at, dt.datetime):
        details.insert(0, f"started {slack_date(run.created_at)}")
        if isinstance(run.finished_at, dt.datetime):
            seconds = (run.finished_at - run.created_at).total_seconds()
            details.append(f"{max(seconds, 0.0):.1f} s")
    details.append(f"{sum(step.attempts or 0 for step in steps)} LLM calls")
    details.append(
        tokens_text(
            sum(step.tokens_in or 0 for step in steps),
            sum(step.tokens_out or 0 for step in steps),
            sum(step.tokens_cached or 0 for step in steps),
        )
    )
    lines = [head, " · ".join(details), f"Everything: `{escape(cli_command(run.id))}`"]
    if votes:
        said = " · ".join(
            f"{':+1:' if vote == 'up' else ':-1:'} <@{escape(user)}>" for user, vote in votes
        )
        lines.append(f"*Feedback* {said}")
    if run.error:
        lines.append(":x: *Run error* " + code_block(run.error, MAX_ERROR_CHARS))
    if run.output is not None:
        lines.append("*Final output* " + code_block(as_text(run.output), MAX_RUN_TEXT_CHARS))
    return "\n".join(lines)[:MAX_SECTION_CHARS]


def trace_modal(
    ticket_number: str,
    runs: Sequence[TraceRun],
    votes: Mapping[str, Sequence[tuple[str, str]]] | None = None,
) -> View:
    """The modal of a ticket's runs (newest first; at most MAX_TRACE_RUNS are shown).

    Each run's steps are listed in order within a fair share of the modal
    (MAX_VIEW_BLOCKS, MAX_VIEW_CHARS); whatever did not fit is named in a closing note
    with the command that shows it.
    """
    number = escape(ticket_number)
    shown_runs = list(runs)[:MAX_TRACE_RUNS]
    blocks: list[Block] = [
        header(f"Traces of {ticket_number}"),
        context(
            "Support team only. The latest runs of the bot on this ticket, newest first; "
            "prompts and outputs are shortened here. Every detail of a run: "
            "`supportbot trace RUN_ID`."
        ),
    ]
    if not shown_runs:
        blocks.append(
            section(f"No trace is stored for {number} yet: the bot has not run a step on it.")
        )
    chars = _size(blocks)
    omitted: list[str] = []
    for index, run in enumerate(shown_runs):
        # Each run gets a fair share of what is left (one block and one section's worth
        # of characters stay free for the closing note); what it does not use passes on.
        runs_left = len(shown_runs) - index
        block_limit = len(blocks) + (MAX_VIEW_BLOCKS - 1 - len(blocks)) // runs_left
        char_limit = chars + (MAX_VIEW_CHARS - MAX_SECTION_CHARS - chars) // runs_left
        heading = [divider(), section(run_text(run, (votes or {}).get(run.id, ())))]
        if len(blocks) + 2 > block_limit or chars + _size(heading) > char_limit:
            omitted += [f"run `{escape(r.id)}`" for r in shown_runs[index:]]
            break
        blocks += heading
        chars += _size(heading)
        steps = list(run.steps)
        for position, step in enumerate(steps):
            block = section(step_text(step))
            size = _size([block])
            if len(blocks) + 1 > block_limit or chars + size > char_limit:
                left = len(steps) - position
                omitted.append(
                    f"{left} more step{'s' if left != 1 else ''} of run `{escape(run.id)}`"
                )
                break
            blocks.append(block)
            chars += size
    if omitted:
        blocks.append(
            context(
                ":scissors: Not shown (the modal is full): "
                + "; ".join(omitted)
                + ". See them with `supportbot trace RUN_ID`."
            )
        )
    return modal(shorten(f"Trace {ticket_number}", MAX_MODAL_TITLE_CHARS), blocks)


def _size(blocks: list[Block]) -> int:
    return sum(len(json.dumps(block, ensure_ascii=False)) for block in blocks)


__all__ = [
    "MAX_TRACE_RUNS",
    "TRACE_ACTION",
    "cli_command",
    "run_text",
    "step_text",
    "trace_modal",
]
