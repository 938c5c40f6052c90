"""The /faq modal and reading its submission back: pure functions, no I/O.

The modal asks for files (a `file_input`, up to Slack's 10), the number of questions
(1..50, default 10), the mode (parallel by default) and the channel to post in (the one
the command ran in by default). Opened from the message shortcut, it lists that message's
files instead and carries their ids in `private_metadata` (at most 3000 characters: ids
fit, full file objects would not); the job resolves them with `files.info`.
`read_submission` validates server-side too (Slack's own checks are client-side only)
and returns the inline errors for `response_action: errors`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from pydantic import BaseModel

from bot.blocks import Block, View, escape, input_block, modal, plain, section
from pipelines.faq.chain import MAX_QUESTIONS, Mode

MODAL_CALLBACK = "faq_modal"
SHORTCUT_CALLBACK = "faq_from_message"
FILES_BLOCK, QUESTIONS_BLOCK, MODE_BLOCK = "faq_files", "faq_questions", "faq_mode"
CHANNEL_BLOCK, TITLE_BLOCK = "faq_channel", "faq_title"
FILES_ACTION, VALUE_ACTION = "files", "value"
MAX_FILES = 10  # Slack's own limit for one file_input
DEFAULT_QUESTIONS = 10
FILE_TYPES = ["txt", "md", "markdown", "rst", "html", "htm", "pdf", "docx", "csv", "tsv", "json"]
MAX_TITLE_CHARS = 150
MODES: dict[str, str] = {
    "parallel": "Parallel (fastest: every question at once)",
    "sequential": "Sequential (one question after another)",
}

HELP_TEXT = (
    "*/faq* turns documents into a cited FAQ.\n"
    "• `/faq` opens a form: attach up to 10 files (txt, md, html, pdf, docx, csv, json; "
    "10 MB each), choose the number of questions (default 10; up to 50 for support agents), the mode and the "
    "channel to post in (default: this one).\n"
    "• `/faq 20` does the same with 20 questions preselected.\n"
    "• On a message with files, the message shortcut *Make an FAQ from these files* "
    "(the ⋯ menu) opens the same form for that message's files.\n"
    "I post a progress message, then the FAQ: each question, its answer and the files that "
    "support it, with the whole FAQ attached as a Markdown file. Files I cannot use are "
    "listed with the reason. The FAQ then becomes part of the knowledge base I answer "
    "general questions from. Invite me to the channel first (`/invite @supportbot`)."
)


class FileRef(BaseModel):
    """One file to read: from a file_input (with its URL) or from a message (id only)."""

    id: str = ""
    name: str = ""
    mimetype: str | None = None
    size: int | None = None
    url: str | None = None


class Submission(BaseModel):
    """A valid modal submission."""

    files: list[FileRef]
    questions: int
    mode: Mode
    channel_id: str
    title: str = ""  # empty: the job names it after the files (`default_title`)


def _option(value: str) -> dict[str, Any]:
    return {"text": plain(MODES[value]), "value": value}


def faq_modal(
    *,
    channel_id: str | None,
    questions: int = DEFAULT_QUESTIONS,
    message_files: Sequence[Mapping[str, Any]] | None = None,
) -> View:
    """The /faq form. With `message_files` (the message shortcut) the files are listed
    instead of asked for, and their ids travel in `private_metadata`."""
    questions = max(1, min(questions, MAX_QUESTIONS))
    metadata: dict[str, Any] = {"channel": channel_id}
    blocks: list[Block] = []
    if message_files is None:
        blocks.append(
            input_block(
                FILES_BLOCK,
                "Files",
                {
                    "type": "file_input",
                    "action_id": FILES_ACTION,
                    "max_files": MAX_FILES,
                    "filetypes": FILE_TYPES,
                },
                hint="Up to 10 files: txt, md, html, pdf, docx, csv or json.",
            )
        )
    else:
        files = list(message_files)[:MAX_FILES]
        metadata["file_ids"] = [str(f.get("id", "")) for f in files]
        metadata["title"] = default_title(
            [str(f.get("name") or "") for f in files if f.get("name")]
        )
        names = "\n".join(f"• {escape(str(f.get('name') or f.get('id')))}" for f in files)
        blocks.append(section(f"*Files*\n{names}"))
    channel_element: Block = {
        "type": "conversations_select",
        "action_id": VALUE_ACTION,
        "default_to_current_conversation": True,
    }
    if channel_id:
        channel_element["initial_conversation"] = channel_id
    blocks += [
        input_block(
            QUESTIONS_BLOCK,
            "Number of questions",
            {
                "type": "number_input",
                "action_id": VALUE_ACTION,
                "is_decimal_allowed": False,
                "initial_value": str(questions),
                "min_value": "1",
                "max_value": str(MAX_QUESTIONS),
            },
        ),
        input_block(
            MODE_BLOCK,
            "Mode",
            {
                "type": "radio_buttons",
                "action_id": VALUE_ACTION,
                "options": [_option(mode) for mode in MODES],
                "initial_option": _option("parallel"),
            },
        ),
        input_block(CHANNEL_BLOCK, "Post the FAQ in", channel_element),
        input_block(
            TITLE_BLOCK,
            "Title",
            {
                "type": "plain_text_input",
                "action_id": VALUE_ACTION,
                "max_length": MAX_TITLE_CHARS,
                "placeholder": plain("FAQ: <the files' names>"),
            },
            optional=True,
        ),
    ]
    return modal(
        "Make an FAQ",
        blocks,
        callback_id=MODAL_CALLBACK,
        submit="Build the FAQ",
        close="Cancel",
        private_metadata=json.dumps(metadata, separators=(",", ":")),
    )


def notice_modal(title: str, text: str) -> View:
    """A modal with one message and a Close button (after submitting, or nothing to do)."""
    return modal(title, [section(text)])


def submitted_modal(channel_id: str) -> View:
    return notice_modal(
        "Building your FAQ",
        f"Working on it: I'll post the progress and then the FAQ in <#{channel_id}>.",
    )


NO_FILES_MODAL_TEXT = (
    "That message has no files I can read. Use the shortcut on a message with files "
    "attached, or run `/faq` and attach them there."
)


def _value(values: Mapping[str, Any], block: str, action: str = VALUE_ACTION) -> dict[str, Any]:
    return cast(dict[str, Any], (values.get(block) or {}).get(action) or {})


def read_submission(view: Mapping[str, Any]) -> Submission | dict[str, str]:
    """The submission, or the errors to show in the modal (block id -> message)."""
    values = (view.get("state") or {}).get("values") or {}
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        metadata = {}
    errors: dict[str, str] = {}
    if FILES_BLOCK in values:
        uploaded = _value(values, FILES_BLOCK, FILES_ACTION).get("files") or []
        files = [
            FileRef(
                id=str(f.get("id") or ""),
                name=str(f.get("name") or f.get("title") or f.get("id") or "file"),
                mimetype=f.get("mimetype"),
                size=f.get("size"),
                url=f.get("url_private_download") or f.get("url_private"),
            )
            for f in uploaded
        ]
        block = FILES_BLOCK
    else:
        files = [FileRef(id=str(i)) for i in metadata.get("file_ids") or [] if i]
        block = QUESTIONS_BLOCK  # no file block to attach the error to
    if not files:
        errors[block] = "Attach at least one file."
    elif len(files) > MAX_FILES:
        errors[block] = f"At most {MAX_FILES} files at a time ({len(files)} attached)."
    raw = str(_value(values, QUESTIONS_BLOCK).get("value") or "").strip()
    questions = int(raw) if raw.isdigit() else 0
    if not 1 <= questions <= MAX_QUESTIONS:
        errors[QUESTIONS_BLOCK] = f"Choose a whole number from 1 to {MAX_QUESTIONS}."
    mode = str((_value(values, MODE_BLOCK).get("selected_option") or {}).get("value") or "")
    if mode not in MODES:
        mode = "parallel"
    channel = str(
        _value(values, CHANNEL_BLOCK).get("selected_conversation") or metadata.get("channel") or ""
    )
    if not channel:
        errors[CHANNEL_BLOCK] = "Choose where to post the FAQ."
    if errors:
        return errors
    title = " ".join(str(_value(values, TITLE_BLOCK).get("value") or "").split())
    return Submission(
        files=files,
        questions=questions,
        mode=cast(Literal["parallel", "sequential"], mode),
        channel_id=channel,
        title=title[:MAX_TITLE_CHARS] or str(metadata.get("title") or ""),
    )


def default_title(names: Sequence[str]) -> str:
    """'FAQ: a.pdf, b.md and 2 more' (just 'FAQ' before the names are known)."""
    if not names:
        return "FAQ"
    shown = ", ".join(names[:2])
    more = f" and {len(names) - 2} more" if len(names) > 2 else ""
    return f"FAQ: {shown}{more}"[:MAX_TITLE_CHARS]


__all__ = [
    "DEFAULT_QUESTIONS",
    "HELP_TEXT",
    "MAX_FILES",
    "MODAL_CALLBACK",
    "NO_FILES_MODAL_TEXT",
    "SHORTCUT_CALLBACK",
    "FileRef",
    "Submission",
    "default_title",
    "faq_modal",
    "notice_modal",
    "read_submission",
    "submitted_modal",
]
