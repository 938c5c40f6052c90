"""Block Kit basics every view module shares: the `Block` type, Slack's size limits, and
escaping, so untrusted text (customer words, file names, LLM output) can never mention,
ping or fake a link, whichever view renders it."""

from __future__ import annotations

import re
from typing import Any

Block = dict[str, Any]

MAX_SECTION_CHARS = 3000
MAX_BLOCKS = 50
MAX_CONTEXT_CHARS = 3000
MAX_MESSAGE_TEXT = 39_000  # Slack truncates `text` at 40,000 characters

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)<>|]+)\)")


def escape(text: str) -> str:
    """Escape Slack's control characters, so text cannot mention, ping or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Escape, then turn the common Markdown an LLM writes into Slack mrkdwn."""
    text = escape(text)
    text = _HEADING.sub(r"*\1*", text)
    text = _BOLD.sub(r"*\1*", text)
    return _LINK.sub(r"<\2|\1>", text)


def split_text(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Split `text` into chunks of at most `limit` characters at the nicest boundary."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:  # no boundary in the second half: cut hard
            cut = limit
        cut = _outside_markup(window, cut)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def _outside_markup(text: str, cut: int) -> int:
    """Move `cut` back so it does not split a `<link|label>` or an `&amp;` entity."""
    opened = text.rfind("<", 0, cut)
    if opened > text.rfind(">", 0, cut) and opened > 0:
        cut = opened
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp > 0 and ";" not in text[amp:cut]:
        cut = amp
    return cut
