"""A reply while it is being written: the plan's steps and the checked text so far.

The Slack layer shows both as they come (a streamed message with task cards); the
pipeline reports them through a context variable, so no workflow function takes a
Slack-shaped callback and a run with nobody watching pays nothing. `asyncio.gather`
copies the context, so workers running concurrently report to the same watcher.

What is reported is safe to show before the final checks run: `previewable` holds back
anything those checks could change (an RMA or case number no worker produced, a link, a
word still being written), so the final message only ever adds to or completes the text
the customer watched appear; it never has to take a visible claim back.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic_core import from_json

from pipelines.llm.base import PartialText

StepStatus = Literal["pending", "in_progress", "complete", "error"]

# What the final checks may rewrite: action ids (`ensure_actions_mentioned`) and links
# (the reply's link policy). Anything from the first of these on waits for the end.
_ACTION_ID = re.compile(r"\b(?:RMA|CASE)-\d+\b")
_LINK_START = re.compile(r"https?:|www\.|<|\[|\]\(")


@dataclass(frozen=True)
class StepNote:
    """One step of the plan as the customer sees it ("Looking up ORD-10012")."""

    id: str
    title: str
    status: StepStatus
    detail: str = ""


class DraftWatcher(Protocol):
    """Whoever shows the reply while it is written. Called inside LLM calls and workers,
    so both methods must return at once and never raise. `shows_text` False: only the
    steps are shown, so the reply's LLM call need not stream."""

    shows_text: bool

    def step(self, note: StepNote) -> None: ...

    def text(self, so_far: str) -> None: ...


_watcher: ContextVar[DraftWatcher | None] = ContextVar("draft_watcher", default=None)


@contextmanager
def drafting_to(watcher: DraftWatcher | None) -> Iterator[None]:
    """Report this run's steps and text to `watcher` (None: to nobody)."""
    token = _watcher.set(watcher)
    try:
        yield
    finally:
        _watcher.reset(token)


def is_watched() -> bool:
    return _watcher.get() is not None


def report_step(note: StepNote) -> None:
    watcher = _watcher.get()
    if watcher is not None:
        watcher.step(note)


QUEUE_STEP_ID = "queue"
QUEUE_STEP_TITLE = "Many customers are writing right now: you're in line"


def note_queue_wait(waiting: bool) -> None:
    """A `QueueListener`: while an LLM call waits for its turn (the provider's quota, a
    concurrency slot), the customer sees a step saying so (done when the call goes out),
    not a silent thread."""
    report_step(StepNote(QUEUE_STEP_ID, QUEUE_STEP_TITLE, "in_progress" if waiting else "complete"))


def previewable(text: str, known_ids: Collection[str] = ()) -> str:
    """The longest prefix of `text` the final checks cannot change.

    Cut at the first action id that is not in `known_ids` (the check would replace it),
    at the first link (the link policy may drop it), and before the last word, which the
    model may still be writing ("RMA-00" becomes an id only later).
    """
    cut = len(text)
    for match in _ACTION_ID.finditer(text):
        if match.group(0) not in known_ids:
            cut = match.start()
            break
    link = _LINK_START.search(text)
    if link is not None:
        cut = min(cut, link.start())
    text = text[:cut]
    last_space = max(text.rfind(" "), text.rfind("\n"))
    return text[: last_space + 1] if last_space >= 0 else ""


def reply_watcher(field: str, known_ids: Collection[str] = ()) -> PartialText | None:
    """An `on_partial` callback that reports the previewable part of JSON field `field`
    (a string still being written counts); None when nobody watches, so the step does
    not stream at all."""
    watcher = _watcher.get()
    if watcher is None or not watcher.shows_text:
        return None

    def on_partial(raw: str) -> None:
        try:
            value = from_json(raw, allow_partial="trailing-strings")
        except ValueError:  # prose or a code fence so far: the final text still comes
            return
        if not isinstance(value, dict) or value.get("answerable") is False:
            return
        so_far = value.get(field)
        if isinstance(so_far, str):
            watcher.text(previewable(so_far, known_ids))

    return on_partial


__all__ = [
    "QUEUE_STEP_ID",
    "QUEUE_STEP_TITLE",
    "DraftWatcher",
    "StepNote",
    "drafting_to",
    "is_watched",
    "note_queue_wait",
    "previewable",
    "reply_watcher",
    "report_step",
]
