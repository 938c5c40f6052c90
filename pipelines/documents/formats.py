"""One text extractor per file format, each treating its input as hostile.

Every extractor takes the file's bytes and returns `Extracted` (the text plus notes about
anything left out), or raises `Unreadable` with a reason a user can act on. Limits are
checked before the expensive step: a .docx's central directory is inspected before anything
is inflated, a PDF's pages are counted before any is read, CSV rows and JSON lines are
capped while rendering (.docx lives in `word`). Nothing here touches the network,
resolves XML entities or evaluates content.

Every loop over the input (pages, paragraphs, table rows, HTML elements, CSV rows, JSON
values) checks an optional stop signal, so a reader told to give up (a time limit, see
`Deadline`) stops at the next item instead of reading on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from charset_normalizer import from_bytes
from lxml import etree
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from pipelines.documents.reading import (
    Deadline,
    Extracted,
    StopSignal,
    Unreadable,
    looks_like,
    raise_if_stopped,
    sniff,
)
from pipelines.documents.word import extract_docx

MAX_PDF_PAGES = 500
MAX_CSV_ROWS = 5_000
CSV_DELIMITERS = (",", ";", "\t", "|")
MAX_JSON_LINES = 20_000

WESTERN = "cp1252"
NEAR_TIE = 0.1  # charset-normalizer "chaos" (0..1) within which cp1252 is preferred

BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),  # before UTF-16: it starts with the UTF-16 LE BOM
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Bytes to str: a BOM wins, then strict UTF-8, then charset-normalizer's best guess
    (cp1252, Latin-1, UTF-16 without BOM, ...). Binary content is refused, not garbled."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if sniff(data) in ("pdf", "zip", "ole"):
        raise Unreadable(f"binary content ({looks_like(data)}), not text")
    if b"\x00" not in data:  # NULs decode as UTF-8 but mean UTF-16/32 or binary
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    text = _guess_decode(data)
    if text is None or "\x00" in text:
        raise Unreadable("binary content, not text")
    return text


def _guess_decode(data: bytes) -> str | None:
    """charset-normalizer's guess, except that cp1252 wins a near-tie: on short Western
    text it rates cp1257, cp1250 and cp1252 almost equally and may pick a Baltic page,
    while Windows' Western default is by far the likeliest source of a non-UTF-8 upload."""
    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    for match in matches:
        if match.chaos <= best.chaos + NEAR_TIE and WESTERN in match.could_be_from_charset:
            return data.decode(WESTERN, errors="replace")
    return str(best)


def extract_plain(data: bytes, stop: StopSignal | None = None) -> Extracted:
    """Text, Markdown and reStructuredText are already what the model reads best."""
    return Extracted(decode_text(data))


HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
BLOCK_TAGS = frozenset(
    (*HEADINGS, "p", "div", "li", "tr", "br", "section", "article", "table", "pre", "title")
)
HIDDEN_TAGS = frozenset(("script", "style", "noscript", "template", "svg", "iframe", "object"))
HTML_STOP_CHECK_EVERY = 256  # walker events; a check per event would cost more than the walk
INLINE_MARKS = {"title": "# ", "li": "- ", "td": " ", "th": " "}
META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([\w.:-]{1,40})""", re.I)


def extract_html(data: bytes, stop: StopSignal | None = None) -> Extracted:
    """Visible text of a page: Markdown-style headings and bullets, a line break around
    block elements, nothing from scripts or styles. libxml2's HTML parser (via lxml) is
    used because it is linear on hostile input, where the stdlib parser of Python 3.11
    (and BeautifulSoup on top of it) is quadratic in unclosed tags (bench/README.md); it
    fetches nothing and knows only HTML's own entities. Encoding: a BOM, then <meta charset>,
    then the same detection as plain text."""
    parser = etree.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, recover=True
    )
    root = etree.fromstring(_decode_html(data).encode("utf-8"), parser)
    parts: list[str] = []
    if root is not None:
        walker = etree.iterwalk(root, events=("start", "end"))
        for number, (event, element) in enumerate(walker):
            if number % HTML_STOP_CHECK_EVERY == 0:
                raise_if_stopped(stop, "part-way through the page")
            tag = element.tag if isinstance(element.tag, str) else ""
            if event == "start" and tag in HIDDEN_TAGS:
                walker.skip_subtree()  # its "end" still comes, with the tail text
            elif event == "start":
                parts.extend(("\n" if tag in BLOCK_TAGS else "", _mark(tag), element.text or ""))
            else:
                parts.extend(("\n" if tag in BLOCK_TAGS else "", element.tail or ""))
    return Extracted(_join_lines("".join(parts)))


def _mark(tag: str) -> str:
    return "#" * int(tag[1]) + " " if tag in HEADINGS else INLINE_MARKS.get(tag, "")


def _join_lines(text: str) -> str:
    """Collapse runs of spaces, drop empty lines and bare marks, and a line that repeats
    the one before (a page's <title> is often its <h1>)."""
    kept: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if line.strip("#- ") and (not kept or line != kept[-1]):
            kept.append(line)
    return "\n".join(kept)


def _decode_html(data: bytes) -> str:
    declared = META_CHARSET.search(data[:4096])
    if declared and not data.startswith(tuple(bom for bom, _ in BOMS)):
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:  # an unknown charset name: detect instead
            pass
    return decode_text(data)


def extract_pdf(data: bytes, stop: StopSignal | None = None) -> Extracted:
    """Text of the first MAX_PDF_PAGES pages. An owner-password-only PDF opens with the empty
    user password; anything else encrypted is refused. A page that fails is skipped.

    `stop` is checked before each page (one page's text is not interruptible: a process
    time limit covers that, see `extract.extract_within`).
    """
    if b"%PDF-" not in data[:1024]:  # readers allow a little junk before the header
        raise Unreadable(f"corrupt or unreadable PDF ({looks_like(data)}, not a PDF)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and _pdf_needs_password(reader):
            raise Unreadable("the PDF is encrypted (password-protected)")
        page_count = len(reader.pages)
    except Unreadable:
        raise
    except Exception as exc:  # pypdf raises many types on malformed input
        raise Unreadable("corrupt or unreadable PDF") from exc
    notes: list[str] = []
    texts: list[str] = []
    for number in range(min(page_count, MAX_PDF_PAGES)):
        raise_if_stopped(stop, f"page {number + 1}")
        try:
            texts.append(reader.pages[number].extract_text() or "")
        except Exception:
            notes.append(f"page {number + 1} could not be read and was skipped")
    if page_count > MAX_PDF_PAGES:
        notes.append(f"only the first {MAX_PDF_PAGES} of {page_count} pages were read")
    text = "\n\n".join(t.strip() for t in texts if t.strip())
    if not text:
        raise Unreadable("no extractable text (a scanned PDF?)")
    return Extracted(text, notes)


def _pdf_needs_password(reader: PdfReader) -> bool:
    """True unless the empty user password opens it (common for 'no printing' PDFs)."""
    try:
        return reader.decrypt("") == PasswordType.NOT_DECRYPTED
    except DependencyError:  # AES without a crypto library: treat as locked
        return True


def extract_csv(
    data: bytes, stop: StopSignal | None = None, delimiter: str | None = None
) -> Extracted:
    """Each row as 'column: value' lines (empty cells left out), rows separated by a blank
    line, so the model sees which value belongs to which header."""
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or _delimiter(text))
    records: list[str] = []
    notes: list[str] = []
    try:
        header = [h.strip() or f"column {i + 1}" for i, h in enumerate(next(reader, []))]
        for row in reader:
            if len(records) == MAX_CSV_ROWS:
                notes.append(f"only the first {MAX_CSV_ROWS:,} rows were read")
                break
            raise_if_stopped(stop, f"row {len(records) + 1:,}")
            records.append(_csv_record(header, row))
    except csv.Error as exc:
        raise Unreadable(f"corrupt CSV (line {reader.line_num}: {exc})") from exc
    return Extracted("\n\n".join(r for r in records if r), notes)


def _delimiter(text: str) -> str:
    """The commonest of ',', ';', tab and '|' in the header line (Excel in many European
    locales writes ';'). Simpler and steadier than csv.Sniffer, which guesses from quoting."""
    header = text.split("\n", 1)[0]
    best = max(CSV_DELIMITERS, key=header.count)
    return best if best in header else ","


def _csv_record(header: list[str], row: list[str]) -> str:
    names = header + [f"column {i + 1}" for i in range(len(header), len(row))]
    return "\n".join(
        f"{name}: {value.strip()}" for name, value in zip(names, row, strict=False) if value.strip()
    )


def extract_json(data: bytes, stop: StopSignal | None = None) -> Extracted:
    """Flattened 'path: value' lines (e.g. 'faq[2].answer: ...'), one per leaf, capped."""
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise Unreadable(f"corrupt JSON (line {exc.lineno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise Unreadable("corrupt JSON (nested too deeply)") from exc
    except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
        raise Unreadable(f"corrupt JSON ({exc})") from exc
    lines: list[str] = []
    notes: list[str] = []
    for line in _flatten(value):
        if len(lines) == MAX_JSON_LINES:
            notes.append(f"only the first {MAX_JSON_LINES:,} values were read")
            break
        raise_if_stopped(stop, f"value {len(lines) + 1:,}")
        lines.append(line)
    return Extracted("\n".join(lines), notes)


def _flatten(value: Any) -> Iterator[str]:
    """Leaves in document order, lazily (a capped 4-million-item array costs nothing past
    the cap) and without recursion (nesting depth cannot hit the recursion limit)."""
    stack: list[Iterator[tuple[str, Any]]] = [iter([("", value)])]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, node = item
        if isinstance(node, dict | list):
            stack.append(_children(path, node))
        else:
            scalar = node if isinstance(node, str) else json.dumps(node)
            yield f"{path}: {scalar}" if path else scalar


def _children(path: str, node: dict[str, Any] | list[Any]) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, child in node.items():
            yield (f"{path}.{key}" if path else str(key)), child
    else:
        for index, child in enumerate(node):
            yield f"{path}[{index}]", child


Extractor = Callable[[bytes, StopSignal | None], Extracted]


def extract_tsv(data: bytes, stop: StopSignal | None = None) -> Extracted:
    return extract_csv(data, stop, delimiter="\t")


EXTRACTORS: dict[str, Extractor] = {
    "text": extract_plain,
    "html": extract_html,
    "pdf": extract_pdf,
    "docx": extract_docx,
    "csv": extract_csv,
    "tsv": extract_tsv,
    "json": extract_json,
}

__all__ = [
    "EXTRACTORS",
    "Deadline",
    "Extracted",
    "StopSignal",
    "Unreadable",
    "decode_text",
    "extract_docx",
    "sniff",
]
