"""Word (.docx) text: paragraphs and tables in document order, with headings marked.

The archive is vetted from its central directory before python-docx inflates anything, and
reading is capped (paragraphs, table cells) and stoppable between items. Style names come
from a table built once per file: python-docx's `Paragraph.style` searches the whole style
list on every call, which let a small file with many styles and paragraphs take minutes.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import docx
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.table import Table
from docx.text.paragraph import Paragraph

from pipelines.documents.reading import (
    MB,
    Extracted,
    StopSignal,
    Unreadable,
    looks_like,
    raise_if_stopped,
    sniff,
)

MAX_DOCX_PARAGRAPHS = 20_000
MAX_DOCX_CELLS = 20_000  # table cells, over the whole document
MAX_ZIP_ENTRIES = 2_000
MAX_UNZIPPED_BYTES = 100 * MB
MAX_ZIP_RATIO = 200  # a deflated member this many times smaller than its content is a bomb
ZIP_RATIO_FLOOR = 1 * MB  # below this size a high ratio is harmless (e.g. a file of spaces)


def extract_docx(data: bytes, stop: StopSignal | None = None) -> Extracted:
    """Paragraphs and tables in document order, headings marked with '#'. The zip is vetted
    first: python-docx inflates every related part into memory. At most MAX_DOCX_PARAGRAPHS
    paragraphs and MAX_DOCX_CELLS table cells are read, with a note if more were skipped."""
    if sniff(data) == "ole":
        raise Unreadable("the .docx is encrypted (password-protected) or is an old-style .doc file")
    if sniff(data) != "zip":
        raise Unreadable(f"corrupt or unreadable .docx ({looks_like(data)}, not a zip)")
    check_zip(data, ".docx")
    try:
        document = docx.Document(io.BytesIO(data))
        return _docx_text(document, stop)
    except Unreadable:
        raise
    except Exception as exc:  # bad XML, missing parts, not a Word package
        raise Unreadable("corrupt or unreadable .docx") from exc


def check_zip(data: bytes, label: str) -> None:
    """Refuse archives that would cost too much to open, using only the central directory.
    zipfile stops inflating a member at its declared size, so a lying header cannot
    exceed these limits either."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Unreadable(f"corrupt or unreadable {label} (broken zip)") from exc
    if len(members) > MAX_ZIP_ENTRIES:
        raise Unreadable(
            f"the {label} has too many parts ({len(members)}; at most {MAX_ZIP_ENTRIES})"
        )
    bomb = f"the {label} looks like a zip bomb"
    if sum(member.file_size for member in members) > MAX_UNZIPPED_BYTES:
        raise Unreadable(f"{bomb} (expands to more than {MAX_UNZIPPED_BYTES // MB} MB)")
    for member in members:
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > ZIP_RATIO_FLOOR and ratio > MAX_ZIP_RATIO:
            raise Unreadable(f"{bomb} ({member.filename[:60]} is compressed {ratio:,.0f}:1)")


def _docx_text(document: DocxDocument, stop: StopSignal | None) -> Extracted:
    blocks: list[str] = []
    style_names = _paragraph_style_names(document)
    paragraphs = cells = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            cells = _table_rows(item, blocks, cells, stop)
            if cells > MAX_DOCX_CELLS:
                return _capped(blocks, f"only the first {MAX_DOCX_CELLS:,} table cells were read")
            continue
        paragraphs += 1
        if paragraphs > MAX_DOCX_PARAGRAPHS:
            return _capped(blocks, f"only the first {MAX_DOCX_PARAGRAPHS:,} paragraphs were read")
        raise_if_stopped(stop, f"paragraph {paragraphs:,}")
        blocks.append(_paragraph_text(item, style_names))
    return Extracted("\n".join(block for block in blocks if block))


def _capped(blocks: list[str], note: str) -> Extracted:
    text = "\n".join(block for block in blocks if block)
    return Extracted(text, [f"{note}; the rest was skipped"])


def _paragraph_style_names(document: DocxDocument) -> dict[str | None, str]:
    """Paragraph style id -> style name, with None for the default style, built once.

    `Paragraph.style` searches the whole style list on every call, so a file with thousands
    of styles and paragraphs took minutes. The answers are the same: the first style with
    an id wins, and an unknown id or a style of another type means the default style."""
    first: dict[str, Any] = {}
    for style in document.styles:
        first.setdefault(style.style_id, style)
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    names: dict[str | None, str] = {
        style_id: style.name or ""
        for style_id, style in first.items()
        if style.type == WD_STYLE_TYPE.PARAGRAPH
    }
    names[None] = (default.name or "") if default is not None else ""
    return names


def _paragraph_text(paragraph: Paragraph, style_names: dict[str | None, str]) -> str:
    """One paragraph, with '#' marks for a heading or the title."""
    text = paragraph.text.strip()
    style_id = paragraph._p.style  # the pStyle value, read without a style-list search
    style = style_names.get(style_id, style_names[None])
    if text and style.startswith("Heading ") and style[-1].isdigit():
        return "#" * int(style[-1]) + " " + text
    if text and style == "Title":
        return "# " + text
    return text


def _table_rows(table: Table, lines: list[str], cells: int, stop: StopSignal | None) -> int:
    """Appends a table's rows (' | ' between cells) to `lines`; returns the cells counted so
    far, past MAX_DOCX_CELLS if the table was cut. Spans are counted before python-docx
    expands them, so a row claiming a huge span costs nothing."""
    for number, row in enumerate(table.rows, start=1):
        raise_if_stopped(stop, f"table row {number:,}")
        cells += sum(tc.grid_span for tc in row._tr.tc_lst)
        if cells > MAX_DOCX_CELLS:
            return cells
        line = " | ".join(cell.text.strip() for cell in row.cells)
        if line.strip(" |"):
            lines.append(line)
    return cells
