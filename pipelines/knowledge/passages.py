"""A document's text to passages, cut along its own structure.

The extractors (`pipelines.documents`) hand over plain text in which structure survives
as marks: Markdown `#` headings (Markdown, HTML and .docx headings alike), reStructuredText
underlines, numbered or upper-case heading lines (PDFs), blank lines between paragraphs
and pages, ` | ` between the cells of a table row, and `name: value` records (CSV).
A passage never crosses a heading; it carries the path of headings above it
(`Returns policy > Refund timing`), so an answer can cite the section it used. Small
paragraphs of one section are joined up to `TARGET_CHARS`; a long one is cut at sentence
ends. A table row or a CSV record is a passage of its own, with its header row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

TARGET_CHARS = 900  # joined paragraphs stop growing here
MAX_CHARS = 1500  # a longer paragraph is cut at sentence ends
MAX_HEADING_WORDS = 10
MAX_PASSAGES = 20_000  # per document: a hostile file cannot fill the database

MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
NUMBERED_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+(\S.*)$")
NAMED_HEADING = re.compile(r"^(?:section|chapter|part)\s+\d+[:.)\-\u2013]?\s+\S", re.IGNORECASE)
UNDERLINE = re.compile(r"^([=\-~^*+#])\1{2,}\s*$")
RECORD_LINE = re.compile(r"^[^:\n]{1,80}: \S")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Passage:
    """One retrievable piece of a document: where it sits, and what it says."""

    position: int
    section: tuple[str, ...]
    text: str

    @property
    def content_hash(self) -> str:
        return content_hash(embedding_text(self.section, self.text))


def embedding_text(section: tuple[str, ...], text: str) -> str:
    """What a passage's vector is computed from: its headings, then its words (a section's
    body often does not repeat what its heading says)."""
    return f"{' > '.join(section)}\n{text}" if section else text


def content_hash(text: str) -> str:
    """The key of a text's stored vector: unchanged text is never embedded twice."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_passages(text: str) -> list[Passage]:
    """`text`'s passages in reading order (empty sections give none)."""
    lines = text.split("\n")
    builder = _Builder()
    rst_levels: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        previous = lines[index - 1].strip() if index else ""
        if line and (underline := UNDERLINE.match(following)) and len(following) >= len(line) // 2:
            mark = underline.group(1)
            if mark not in rst_levels:
                rst_levels.append(mark)
            builder.heading(rst_levels.index(mark) + 1, line)
            index += 2
            continue
        if (level := heading_level(line, previous, following)) is not None:
            builder.heading(level, _heading_text(line))
        elif not line:
            builder.paragraph_break()
        elif " | " in line:
            builder.table_row(line)
        else:
            builder.line(line)
        index += 1
    return builder.finish()


def heading_level(line: str, previous: str = "", following: str = "") -> int | None:
    """The heading level of `line`, None when it is body text.

    A numbered line is a heading only when it reads like a title (short, no sentence
    punctuation at its end) and is not an item of a numbered list: a neighbouring line
    numbered in the same style, one apart ("1. Unplug it" then "2. Plug it back").
    """
    if match := MARKDOWN_HEADING.match(line):
        return len(match.group(1))
    if not line or len(line.split()) > MAX_HEADING_WORDS or line[-1] in ".,;:!?)":
        return None
    if match := NUMBERED_HEADING.match(line):
        title = match.group(2)
        if not title[0].isupper() or _in_list(line, previous) or _in_list(line, following):
            return None
        return match.group(1).count(".") + 1
    if NAMED_HEADING.match(line):
        return 1
    letters = [c for c in line if c.isalpha()]
    if len(letters) >= 4 and all(c.isupper() for c in letters) and " | " not in line:
        return 1
    return None


def _in_list(line: str, neighbour: str) -> bool:
    """True when two lines are consecutive items of one numbered list."""
    mine, theirs = NUMBERED_HEADING.match(line), NUMBERED_HEADING.match(neighbour)
    if mine is None or theirs is None:
        return False
    number, other = mine.group(1).split("."), theirs.group(1).split(".")
    same_style = (line[len(mine.group(1))] == ".") == (neighbour[len(theirs.group(1))] == ".")
    return (
        same_style
        and len(number) == len(other)
        and number[:-1] == other[:-1]
        and abs(int(number[-1]) - int(other[-1])) == 1
    )


def _heading_text(line: str) -> str:
    match = MARKDOWN_HEADING.match(line)
    return " ".join((match.group(2) if match else line).split())[:200]


class _Builder:
    """Collects lines into paragraphs and paragraphs into passages, section by section."""

    def __init__(self) -> None:
        self.passages: list[Passage] = []
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []  # the paragraph being read
        self.chunk: list[str] = []  # paragraphs joined so far in this section
        self.table_header: str | None = None
        self.table_rows = 0

    def heading(self, level: int, title: str) -> None:
        self._end_table()
        self._flush_chunk()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title))

    def line(self, line: str) -> None:
        self._end_table()
        self.lines.append(line)

    def paragraph_break(self) -> None:
        self._end_table()
        self._end_paragraph()

    def _end_table(self) -> None:
        """A "table" of one row was a line with a ' | ' in it: kept as text."""
        if self.table_header is not None and not self.table_rows:
            self.lines.append(self.table_header)
        self.table_header = None
        self.table_rows = 0

    def table_row(self, row: str) -> None:
        """The first row of a table is its header; every later row is a passage with it."""
        self._end_paragraph()
        if self.table_header is None:
            self.table_header = row
            self._flush_chunk()
            return
        self.table_rows += 1
        self._emit(f"{self.table_header}\n{row}")

    def finish(self) -> list[Passage]:
        self._end_table()
        self._flush_chunk()
        return self.passages[:MAX_PASSAGES]

    def _end_paragraph(self) -> None:
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        if all(RECORD_LINE.match(line) for line in lines) and len(lines) > 1:
            self._flush_chunk()  # a CSV record: a passage of its own
            self._emit("\n".join(lines))
            return
        paragraph = "\n".join(lines)
        for piece in _cut(paragraph):
            if self.chunk and sum(map(len, self.chunk)) + len(piece) > TARGET_CHARS:
                self._flush_chunk()
            self.chunk.append(piece)

    def _flush_chunk(self) -> None:
        self._end_paragraph()
        if self.chunk:
            self._emit("\n\n".join(self.chunk))
            self.chunk = []

    def _emit(self, text: str) -> None:
        text = text.strip()
        if text and len(self.passages) < MAX_PASSAGES:
            section = tuple(title for _, title in self.path)
            self.passages.append(Passage(len(self.passages) + 1, section, text))


def _cut(paragraph: str) -> list[str]:
    """A paragraph, cut at sentence ends (or, failing that, hard) into pieces of at most
    MAX_CHARS."""
    if len(paragraph) <= MAX_CHARS:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in SENTENCE_END.split(paragraph):
        while len(sentence) > MAX_CHARS:
            pieces.append(sentence[:MAX_CHARS])
            sentence = sentence[MAX_CHARS:]
        if current and len(current) + len(sentence) + 1 > MAX_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces
