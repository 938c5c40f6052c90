"""What every format reader shares: its result, its refusal, its stop signal, and a look at
the bytes to say what a misnamed file really is."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

MB = 1024 * 1024

CONTENT_NAMES = {
    "pdf": "it is a PDF",
    "zip": "it is a zip archive",
    "ole": "it is an old Office file",
    "html": "it is an HTML page",
}


class Unreadable(Exception):
    """The file cannot be used; `reason` says why, in words meant for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Extracted:
    """An extractor's output; the caller tidies, caps and titles it."""

    text: str
    notes: list[str] = field(default_factory=list)  # what was skipped or cut, for the user


class StopSignal(Protocol):
    """Tells a reader to give up: a `threading.Event` or a `Deadline`."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Deadline:
    """A stop signal that sets itself at a `time.monotonic()` instant, with no timer thread
    (the clock is system-wide, so a child process can be given the parent's deadline)."""

    at: float

    def is_set(self) -> bool:
        return time.monotonic() >= self.at


def raise_if_stopped(stop: StopSignal | None, where: str) -> None:
    """Called once per item by every reading loop; names where reading stopped."""
    if stop is not None and stop.is_set():
        raise Unreadable(f"reading stopped at {where}: it took too long")


def sniff(data: bytes) -> str | None:
    """What the bytes really are, from magic numbers: 'pdf', 'zip', 'ole' (legacy or
    encrypted Office), 'html', or None. Used to explain a mismatch with the file's name."""
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def looks_like(data: bytes) -> str:
    """A short description of misnamed content, e.g. a sign-in page saved as report.pdf."""
    return CONTENT_NAMES.get(sniff(data) or "", "unrecognised content")
