"""Turning uploaded files into plain text for the FAQ chain.

Minimal for now (UTF-8 text and Markdown); the /faq issue extends it with a maintained
converter for html, pdf, docx, csv and json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.faq import SourceDocument

MAX_FILE_BYTES = 10 * 1024 * 1024
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".rst"}


@dataclass(frozen=True)
class RejectedFile:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def extract_text(name: str, data: bytes) -> SourceDocument | RejectedFile:
    """A document from a file's bytes, or the reason it cannot be used."""
    suffix = Path(name).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        return RejectedFile(name, f"unsupported file type '{suffix or 'none'}'")
    if len(data) > MAX_FILE_BYTES:
        return RejectedFile(name, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        return RejectedFile(name, "the file is empty")
    text = data.decode("utf-8", errors="replace").strip()
    if not text:
        return RejectedFile(name, "no text could be extracted")
    return SourceDocument(title=name, text=text)


def load_documents(paths: list[Path]) -> tuple[list[SourceDocument], list[RejectedFile]]:
    """Read files from disk; unreadable or unusable ones are reported, not fatal."""
    docs: list[SourceDocument] = []
    rejected: list[RejectedFile] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            rejected.append(RejectedFile(path.name, f"cannot be read ({exc.strerror})"))
            continue
        outcome = extract_text(path.name, data)
        (docs if isinstance(outcome, SourceDocument) else rejected).append(outcome)  # type: ignore[arg-type]
    return docs, rejected
