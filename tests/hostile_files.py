"""Small files that are expensive to read, written here byte by byte (no fixtures on disk).

- `many_styles_docx`: thousands of styles and paragraphs, each paragraph naming the last
  style. python-docx looked up a paragraph's style by scanning the whole style list, so a
  file like this took minutes before the style table (issue 18).
- `slow_pdf`: one page whose compressed content stream holds `operators` text-showing
  operators. pypdf reads a page in one call, so only a process kill stops it; a few KB
  take seconds.

`nothing_left_reading()` checks that after a time-out or a cancellation no thread runs
extraction code and no child process is left.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import sys
import threading
import time
import zipfile
import zlib

W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/word/styles.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>'
    "</Types>"
)
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{REL}officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)
DOCUMENT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{REL}styles" Target="styles.xml"/>'
    "</Relationships>"
)


def many_styles_docx(paragraphs: int, styles: int) -> bytes:
    """A valid .docx: `styles` paragraph styles, `paragraphs` short paragraphs ('p0', 'p1',
    ...) that all use the last style, so every style lookup scans the whole list."""
    style_xml = "".join(
        f'<w:style w:type="paragraph" w:styleId="S{i}"><w:name w:val="Style {i}"/></w:style>'
        for i in range(styles)
    )
    body = "".join(
        f'<w:p><w:pPr><w:pStyle w:val="S{styles - 1}"/></w:pPr><w:r><w:t>p{i}</w:t></w:r></w:p>'
        for i in range(paragraphs)
    )
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": PACKAGE_RELS,
        "word/_rels/document.xml.rels": DOCUMENT_RELS,
        "word/document.xml": f'<?xml version="1.0" encoding="UTF-8"?>'
        f"<w:document {W_NS}><w:body>{body}</w:body></w:document>",
        "word/styles.xml": f'<?xml version="1.0" encoding="UTF-8"?>'
        f"<w:styles {W_NS}>{style_xml}</w:styles>",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def slow_pdf(operators: int) -> bytes:
    """A one-page PDF showing 'x' `operators` times, deflated."""
    content = b"BT /F1 12 Tf 72 720 Td " + b"(x) Tj " * operators + b"ET"
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


READER_CODE = ("/pipelines/documents/", "/pypdf/", "/docx/", "/charset_normalizer/")


def threads_reading() -> list[str]:
    """Names of the threads (other than this one) now running extraction code."""
    frames = sys._current_frames()
    busy: list[str] = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        while frame is not None and thread is not threading.current_thread():
            if any(part in frame.f_code.co_filename for part in READER_CODE):
                busy.append(thread.name)
                break
            frame = frame.f_back
    return busy


async def nothing_left_reading(within: float = 2.0) -> None:
    """Waits up to `within` s (a killed child is reaped asynchronously) for no thread in
    extraction code and no child process; fails naming what is left."""
    deadline = time.monotonic() + within
    while threads_reading() or multiprocessing.active_children():
        if time.monotonic() > deadline:
            children = multiprocessing.active_children()
            raise AssertionError(f"still reading: threads {threads_reading()}, children {children}")
        await asyncio.sleep(0.05)
