"""Cleaning a customer's message before any step sees it.

Messages are untrusted: control characters, bidirectional overrides (used to disguise
text), a 40,000-character paste, or nothing but emoji. The text is normalised (NFC),
stripped of invisible controls, and cut to a budget at a word boundary; a message with no
letters or digits at all is recognised so it can be answered without an LLM call.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_MESSAGE_CHARS = 4000
_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"), None
)
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")


@dataclass(frozen=True)
class CleanMessage:
    text: str
    original_chars: int
    truncated: bool

    @property
    def has_words(self) -> bool:
        """True when there is at least one letter or digit (any script)."""
        return any(char.isalnum() for char in self.text)


def clean_message(raw: str, limit: int = MAX_MESSAGE_CHARS) -> CleanMessage:
    """Normalise, drop invisible controls, and trim `raw` to `limit` characters."""
    text = unicodedata.normalize("NFC", raw).translate(_BIDI_CONTROLS)
    text = "".join(char for char in text if char in "\n\t" or unicodedata.category(char) != "Cc")
    text = _SPACES.sub(" ", _BLANK_LINES.sub("\n\n", text))
    text = _TRAILING_SPACES.sub("\n", text).strip()
    truncated = len(text) > limit
    if truncated:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit * 0.8 else limit].rstrip()
    return CleanMessage(text=text, original_chars=len(raw), truncated=truncated)
