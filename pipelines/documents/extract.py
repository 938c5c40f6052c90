"""Turning uploaded files into plain text for the FAQ chain and the knowledge base.

Supported: plain text, Markdown and reStructuredText, HTML, PDF, .docx, CSV/TSV and JSON.
A file's type comes from its extension (or, without a known one, Slack's mimetype), and its
content must agree: a "report.pdf" that is really an HTML sign-in page is refused as a
corrupt PDF instead of being fed to the model as garbage. Every refusal is a `RejectedFile`
whose reason names the problem in words the uploader can act on; one bad file never stops
the others.

Extraction is CPU-bound and synchronous, and a hostile file can make it take minutes.
Uploads go through `extract_within`, which runs it in a child process killed at a time limit
(see `child_process`); `load_documents` (the CLI) does the same per file. `extract_text` is
the synchronous core, for trusted input or tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.documents.child_process import ChildFailed, ChildTimedOut, call_in_child
from pipelines.documents.formats import EXTRACTORS, Deadline, StopSignal, Unreadable, sniff
from pipelines.faq.chain import SourceDocument

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_TEXT_CHARS = 1_000_000  # per document; the FAQ chain trims further to its own budget
EXTRACT_TIME_LIMIT_S = 30.0  # per file: a normal 200-page PDF takes a few seconds

SUFFIX_KINDS = {
    ".txt": "text",
    ".text": "text",
    ".md": "text",
    ".markdown": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
}
MIME_KINDS = {
    "text/plain": "text",
    "text/markdown": "text",
    "text/x-markdown": "text",
    "text/x-rst": "text",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
}
SUPPORTED = "txt, md, rst, html, pdf, docx, csv or json"
# C0 controls but tab/newline, DEL, zero-width and bidi override/isolate characters, stray BOMs
INVISIBLE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
)
BLANK_RUNS = re.compile(r"\n{3,}")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RejectedFile:
    """A file that was not used, and why; `str()` gives the line shown to the user."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def extract_text(
    name: str,
    data: bytes,
    mimetype: str | None = None,
    *,
    notes: list[str] | None = None,
    stop: StopSignal | None = None,
) -> SourceDocument | RejectedFile:
    """A document from a file's bytes, or the reason it cannot be used.

    When `notes` is given, anything the document lost on the way (pages past the limit,
    rows past the cap, a truncated text) is appended to it as "name: what happened", so the
    caller can tell the user that the FAQ rests on part of a file. `stop`, once set, makes
    the format's reading loop give up at its next page, paragraph, row or value.
    """
    kind = file_kind(name, data, mimetype)
    if kind is None:
        return RejectedFile(name, unsupported_reason(name))
    if len(data) > MAX_FILE_BYTES:
        return too_large(name, len(data))
    if not data.strip():
        return RejectedFile(name, "the file is empty")
    try:
        extracted = EXTRACTORS[kind](data, stop)
    except Unreadable as exc:
        return RejectedFile(name, exc.reason)
    except Exception as exc:  # a parser bug on hostile input must not sink the other files
        logger.exception("extracting %s failed", name)
        return RejectedFile(name, f"could not be read ({type(exc).__name__})")
    text = tidy(extracted.text)
    if not text:
        return RejectedFile(name, "no extractable text")
    found = list(extracted.notes)
    if len(text) > MAX_TEXT_CHARS:
        found.append(f"only the first {MAX_TEXT_CHARS:,} of {len(text):,} characters were kept")
        text = text[:MAX_TEXT_CHARS]
    if notes is not None:
        notes.extend(f"{name}: {note}" for note in found)
    return SourceDocument(title=name, text=text)


async def extract_within(
    name: str,
    data: bytes,
    mimetype: str | None = None,
    *,
    notes: list[str] | None = None,
    limit_s: float | None = None,
) -> SourceDocument | RejectedFile:
    """`extract_text` in a child process, killed after `limit_s` (EXTRACT_TIME_LIMIT_S).

    Nothing of a file that took too long keeps running: the caller gets a refusal at the
    limit and the child is gone. Notes are added only with the document.
    """
    limit = EXTRACT_TIME_LIMIT_S if limit_s is None else limit_s
    try:
        result = await call_in_child(
            extract_for_child, (name, data, mimetype, limit), limit_s=limit
        )
    except ChildTimedOut:
        logger.warning(
            "extracting a %s file took over %g s; skipped", file_kind(name, data, mimetype), limit
        )
        return RejectedFile(name, f"took longer than {limit:g} s to read, so it was skipped")
    except ChildFailed as exc:  # e.g. killed for using too much memory
        logger.warning("extracting a %s file failed: %s", file_kind(name, data, mimetype), exc)
        return RejectedFile(name, "could not be read (the reader stopped unexpectedly)")
    if "reason" in result:
        return RejectedFile(name, str(result["reason"]))
    if notes is not None:
        notes.extend(str(note) for note in result["notes"])
    return SourceDocument(title=str(result["title"]), text=str(result["text"]))


def extract_for_child(
    name: str, data: bytes, mimetype: str | None, limit_s: float
) -> dict[str, Any]:
    """Runs in the child: `extract_text` with a deadline, as JSON-compatible values. The
    deadline stops its reading loops even if the parent is gone and cannot kill it."""
    notes: list[str] = []
    stop = Deadline(time.monotonic() + limit_s)
    outcome = extract_text(name, data, mimetype, notes=notes, stop=stop)
    if isinstance(outcome, RejectedFile):
        return {"reason": outcome.reason}
    return {"title": outcome.title, "text": outcome.text, "notes": notes}


def file_kind(name: str, data: bytes, mimetype: str | None = None) -> str | None:
    """'text', 'html', 'pdf', 'docx', 'csv', 'tsv' or 'json'; None when unsupported.

    The extension decides; a name without a known one falls back to the mimetype, and
    failing that to the content (only a PDF is recognisable enough to trust blind).
    """
    suffix = Path(name).suffix.lower()
    if suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[suffix]
    base_type = (mimetype or "").split(";", 1)[0].strip().lower()
    if base_type in MIME_KINDS:
        return MIME_KINDS[base_type]
    if not suffix and sniff(data) == "pdf":
        return "pdf"
    return None


def unsupported_reason(name: str) -> str:
    """Names the offending extension and lists what would have worked."""
    suffix = Path(name).suffix.lower()
    what = f"'{suffix}'" if suffix else "(no extension)"
    return f"unsupported file type {what}; use {SUPPORTED}"


def too_large(name: str, size: int) -> RejectedFile:
    """Names the limit and the actual size, so the uploader knows how much to cut."""
    mb = 1024 * 1024
    return RejectedFile(name, f"larger than {MAX_FILE_BYTES // mb} MB ({size / mb:.1f} MB)")


def tidy(text: str) -> str:
    """NFC, uniform newlines, no invisible characters or trailing spaces, at most one blank
    line in a row: fewer tokens, searchable text, and no bidi trick reaches the prompt."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = INVISIBLE_CHARS.sub("", text)
    lines = (line.rstrip() for line in text.split("\n"))
    return BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def load_documents(
    paths: Iterable[Path], *, notes: list[str] | None = None, limit_s: float | None = None
) -> tuple[list[SourceDocument], list[RejectedFile]]:
    """Read files from disk; unreadable or unusable ones are reported, not fatal. Each file
    is extracted like an upload (`extract_within`), so a hostile one is refused at the
    limit. Synchronous: call it outside an event loop (the CLI does)."""
    return asyncio.run(_load_documents(list(paths), notes, limit_s))


async def _load_documents(
    paths: list[Path], notes: list[str] | None, limit_s: float | None
) -> tuple[list[SourceDocument], list[RejectedFile]]:
    docs: list[SourceDocument] = []
    rejected: list[RejectedFile] = []
    for path in paths:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:  # refuse before reading it into memory
                rejected.append(too_large(path.name, size))
                continue
            data = path.read_bytes()
        except OSError as exc:
            rejected.append(RejectedFile(path.name, f"cannot be read ({exc.strerror})"))
            continue
        outcome = await extract_within(path.name, data, notes=notes, limit_s=limit_s)
        if isinstance(outcome, SourceDocument):
            docs.append(outcome)
        else:
            rejected.append(outcome)
    return docs, rejected
