"""Block Kit of /faq's messages: progress, the FAQ itself (paged), and failures.

Pure functions, no I/O, tested directly (`tests/test_faq_views.py`). Slack's limits shape
the output: a section holds at most 3000 characters and a message at most 50 blocks, so a
long FAQ is split into pages that never cut a question in two (the first page replaces
the progress message, the others go in its thread). Everything that came from a file or
a model is escaped (`bot.blocks.escape`): a file named `<!channel>.md` pings nobody.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.blocks import (
    ANY_LINK,
    MAX_BLOCKS,
    MAX_SECTION_CHARS,
    Block,
    context,
    escape,
    header,
    section,
    split_text,
    to_mrkdwn,
)
from pipelines.faq.chain import FaqItem

MAX_ITEM_SECTIONS = 3  # a longer answer is cut here; the attached Markdown file has it all
MAX_PAGE_CHARS = 20_000
PENDING_NOTE = (
    ":hourglass: The support team will review this FAQ before I use it to answer other customers."
)


@dataclass(frozen=True)
class Page:
    """One Slack message: notification text and blocks."""

    text: str
    blocks: list[Block]


@dataclass(frozen=True)
class Progress:
    title: str
    user_id: str
    files: int
    stage: str = "starting"  # starting | reading | questions | answers | posting
    done: int = 0
    total: int = 0
    rejected: Sequence[str] = field(default_factory=tuple)


def status_line(progress: Progress) -> str:
    plural = "s" if progress.files != 1 else ""
    return {
        "starting": "Starting…",
        "reading": f"Reading {progress.files} file{plural}…",
        "questions": "Generating questions…",
        "answers": f"Answered {progress.done}/{progress.total}…",
        "posting": "Posting the FAQ…",
    }.get(progress.stage, "Working…")


def rejected_blocks(rejected: Sequence[str], heading: str) -> list[Block]:
    if not rejected:
        return []
    lines = "\n".join(f"• {escape(line)}" for line in rejected)
    return [section(chunk) for chunk in split_text(f"{heading}\n{lines}")][:5]


def progress_page(progress: Progress) -> Page:
    status = status_line(progress)
    head = f":hourglass_flowing_sand: *{escape(progress.title)}* for <@{progress.user_id}>"
    blocks = [section(head), context(status)]
    blocks += rejected_blocks(progress.rejected, ":warning: *Skipped:*")
    return Page(f"{progress.title}: {status}", blocks)


def failure_page(title: str, user_id: str, reason: str, rejected: Sequence[str] = ()) -> Page:
    """No FAQ was posted, and why (the files that could not be used, by name)."""
    head = f":x: *No FAQ:* {escape(reason)}"
    blocks = [section(head)]
    blocks += rejected_blocks(rejected, "*Files that could not be used:*")
    blocks.append(context(f"{escape(title)} · requested by <@{user_id}>"))
    text = f"No FAQ: {reason}" + "".join(f"\n{line}" for line in rejected)
    return Page(text[:3000], blocks)


def item_blocks(number: int, item: FaqItem) -> list[Block]:
    answer = to_mrkdwn(item.answer, allowed_links=ANY_LINK)  # from the requester's own files
    body = f"*{number}. {escape(item.question)}*\n{answer}"
    chunks = split_text(body)
    if len(chunks) > MAX_ITEM_SECTIONS:
        chunks = chunks[:MAX_ITEM_SECTIONS]
        chunks[-1] = chunks[-1][: MAX_SECTION_CHARS - 40].rstrip() + "\n… (see the attached file)"
    sources = ", ".join(escape(s) for s in item.sources) or "none found in the files"
    return [*map(section, chunks), context(f":page_facing_up: Sources: {sources}")]


def faq_pages(
    title: str,
    items: Sequence[FaqItem],
    *,
    user_id: str,
    files: int,
    rejected: Sequence[str] = (),
    notes: Sequence[str] = (),
    run_id: str | None = None,
    pending: bool = False,
) -> list[Page]:
    """The FAQ as one or more messages; the first carries the header and skipped files
    (and, while `pending`, that an agent reviews it before it answers anyone else)."""
    plural = "s" if files != 1 else ""
    summary = f":white_check_mark: Done: {len(items)} questions from {files} file{plural}"
    summary += f" · requested by <@{user_id}>"
    if run_id:
        summary += f" · trace `{escape(run_id)}`"
    first = [
        header(title),
        context(summary),
        *([context(PENDING_NOTE)] if pending else []),
        *rejected_blocks(rejected, ":warning: *Skipped:*"),
    ]
    tail = [context(escape("Notes: " + "; ".join(notes)))] if notes else []
    groups = [item_blocks(number, item) for number, item in enumerate(items, 1)] + [tail]
    pages: list[list[Block]] = [first]
    for group in groups:
        current = pages[-1]
        size = sum(_chars(b) for b in current) + sum(_chars(b) for b in group)
        if len(current) + len(group) > MAX_BLOCKS or size > MAX_PAGE_CHARS:
            pages.append([])
        pages[-1].extend(group)
    pages = [page for page in pages if page]
    count = len(pages)
    return [
        Page(
            f"{title} ({len(items)} questions)"
            if index == 0
            else f"{title} (continued, part {index + 1} of {count})",
            blocks,
        )
        for index, blocks in enumerate(pages)
    ]


def _chars(block: Block) -> int:
    return len(json.dumps(block))


__all__ = [
    "MAX_PAGE_CHARS",
    "Page",
    "Progress",
    "failure_page",
    "faq_pages",
    "item_blocks",
    "progress_page",
    "status_line",
]
