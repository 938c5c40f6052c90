"""Text extraction from uploaded files: every supported format, and every way a file fails.

All fixtures are generated here: PDFs are written by hand (a minimal valid file with a text
object), encrypted ones with pypdf, .docx files with python-docx, zip bombs with zipfile.
Each refusal is checked as the exact line the uploader sees: "name: reason".
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import zipfile
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from pipelines.documents import extract as documents_module
from pipelines.documents import formats as document_formats
from pipelines.documents import word as document_word
from pipelines.documents.extract import (
    MAX_FILE_BYTES,
    RejectedFile,
    extract_text,
    extract_within,
    load_documents,
)
from pipelines.documents.formats import Deadline
from pipelines.faq.chain import SourceDocument
from tests.hostile_files import many_styles_docx, nothing_left_reading, slow_pdf

# --- fixture builders -------------------------------------------------------------------


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF: one Helvetica text line per page ('' gives an image-less blank
    page, which is what a scanned PDF looks like to a text extractor)."""
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() if text else b""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
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


def encrypt_pdf(data: bytes, user_password: str, owner_password: str = "owner") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Refund policy", level=1)
    document.add_paragraph("Refunds are issued within 14 days of a return.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Plan", "Price"
    table.cell(1, 0).text, table.cell(1, 1).text = "Pro", "$20"
    document.add_paragraph("Contact support@example.com for help.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_zip(members: dict[str, bytes | int]) -> bytes:
    """A deflated zip; an int member is that many zero bytes, streamed so a 100 MB bomb
    never sits in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            chunk = bytes(1024 * 1024)
            with archive.open(name, "w", force_zip64=True) as member:
                for _ in range(content // len(chunk)):
                    member.write(chunk)
    return buffer.getvalue()


def rejected(name: str, data: bytes, mimetype: str | None = None) -> str:
    outcome = extract_text(name, data, mimetype)
    assert isinstance(outcome, RejectedFile), outcome
    return str(outcome)


def extracted(name: str, data: bytes, mimetype: str | None = None) -> str:
    outcome = extract_text(name, data, mimetype)
    assert isinstance(outcome, SourceDocument), outcome
    assert outcome.title == name
    return outcome.text


# --- plain text and encodings -----------------------------------------------------------

CP1252_TEXT = (
    "Café opening hours: our résumé service is naïve about “smart quotes” — "
    "and it costs 5 €. Déjà vu: the café reopens at 9 o’clock. Über cool."
)


def test_utf8_markdown_keeps_its_text_and_normalises_whitespace() -> None:
    data = b"# Shipping\r\n\r\n\r\n\r\nWe ship   worldwide.  \r\n"
    assert extracted("guide.md", data) == "# Shipping\n\nWe ship   worldwide."


@pytest.mark.parametrize("name", ["notes.txt", "notes.rst", "notes.markdown"])
def test_cp1252_text_is_detected_not_garbled(name: str) -> None:
    assert extracted(name, CP1252_TEXT.encode("cp1252")) == CP1252_TEXT


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_text_with_a_byte_order_mark(encoding: str) -> None:
    data = CP1252_TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    assert extracted("notes.txt", data) == CP1252_TEXT


def test_invisible_characters_are_removed_and_text_is_nfc() -> None:
    data = "he\u0301llo\x07 wor\u202eld\u200b\x1b[0m".encode()
    assert extracted("a.txt", data) == "héllo world[0m"


def test_binary_data_named_txt_is_refused() -> None:
    data = bytes(range(256)) * 20
    assert rejected("photo.txt", data) == "photo.txt: binary content, not text"


def test_a_pdf_named_txt_is_refused_as_binary() -> None:
    assert rejected("x.txt", make_pdf(["Hi"])) == "x.txt: binary content (it is a PDF), not text"


# --- general refusals -------------------------------------------------------------------


def test_empty_and_whitespace_only_files() -> None:
    assert rejected("empty.txt", b"") == "empty.txt: the file is empty"
    assert rejected("blank.md", b" \n\t\r\n") == "blank.md: the file is empty"
    assert rejected("empty.pdf", b"") == "empty.pdf: the file is empty"


def test_unsupported_types_name_the_extension() -> None:
    assert rejected("setup.exe", b"MZ\x90\x00") == (
        "setup.exe: unsupported file type '.exe'; use txt, md, rst, html, pdf, docx, csv or json"
    )
    assert rejected("Makefile", b"all:\n", "application/octet-stream") == (
        "Makefile: unsupported file type (no extension); "
        "use txt, md, rst, html, pdf, docx, csv or json"
    )


def test_too_large_file_is_refused_before_parsing() -> None:
    data = b"a" * (MAX_FILE_BYTES + 1024 * 1024)
    assert rejected("huge.txt", data) == "huge.txt: larger than 10 MB (11.0 MB)"


def test_mimetype_is_used_when_the_name_has_no_known_extension() -> None:
    assert extracted("notes", b"Plain words.", "text/plain; charset=utf-8") == "Plain words."
    assert extracted("faq.v2", b"<p>Hello</p>", "text/html") == "Hello"


def test_a_pdf_without_extension_or_mimetype_is_sniffed() -> None:
    assert extracted("scan-0001", make_pdf(["Sniffed text"])) == "Sniffed text"


# --- HTML -------------------------------------------------------------------------------


def test_html_drops_scripts_and_styles_and_keeps_headings() -> None:
    page = b"""<!DOCTYPE html><html><head><title>Help centre</title>
    <style>body { color: red }</style><script>alert("x")</script></head>
    <body><h1>Returns</h1><p>Send it back within <b>30&nbsp;days</b> &amp; keep the receipt.</p>
    <ul><li>Unused</li><li>Boxed</li></ul><script>track()</script><noscript>Enable JS</noscript>
    <h2>Caf\xc3\xa9</h2><div>Open daily</div></body></html>"""
    assert extracted("help.htm", page) == (
        "# Help centre\n# Returns\nSend it back within 30 days & keep the receipt.\n"
        "- Unused\n- Boxed\n## Café\nOpen daily"
    )


def test_html_honours_its_declared_charset() -> None:
    page = '<meta charset="windows-1252"><p>Café €5</p>'.encode("cp1252")
    assert extracted("page.html", page) == "Café €5"


def test_html_with_only_scripts_has_no_text() -> None:
    page = b"<html><script>var a = 1;</script><style>p{}</style></html>"
    assert rejected("app.html", page) == "app.html: no extractable text"


# --- PDF --------------------------------------------------------------------------------


def test_pdf_text_from_every_page() -> None:
    text = extracted("manual.pdf", make_pdf(["Reset the router.", "Call us on 555-0100."]))
    assert text == "Reset the router.\n\nCall us on 555-0100."


def test_pdf_page_limit_is_reported_in_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document_formats, "MAX_PDF_PAGES", 2)
    notes: list[str] = []
    outcome = extract_text("long.pdf", make_pdf(["One", "Two", "Three"]), notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == "One\n\nTwo"
    assert notes == ["long.pdf: only the first 2 of 3 pages were read"]


def test_encrypted_pdf_is_refused() -> None:
    data = encrypt_pdf(make_pdf(["Secret"]), user_password="hunter2")
    assert rejected("locked.pdf", data) == "locked.pdf: the PDF is encrypted (password-protected)"


def test_pdf_with_only_an_owner_password_is_read() -> None:
    data = encrypt_pdf(make_pdf(["Printable? No. Readable? Yes."]), user_password="")
    assert extracted("restricted.pdf", data) == "Printable? No. Readable? Yes."


def test_scanned_pdf_without_text() -> None:
    assert rejected("scan.pdf", make_pdf(["", ""])) == (
        "scan.pdf: no extractable text (a scanned PDF?)"
    )


def test_pdf_that_is_not_a_pdf() -> None:
    sign_in = b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
    assert rejected("report.pdf", sign_in) == (
        "report.pdf: corrupt or unreadable PDF (it is an HTML page, not a PDF)"
    )
    assert rejected("report.pdf", b"just words") == (
        "report.pdf: corrupt or unreadable PDF (unrecognised content, not a PDF)"
    )


def test_truncated_pdf_is_corrupt() -> None:
    data = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R"
    assert rejected("broken.pdf", data) == "broken.pdf: corrupt or unreadable PDF"


# --- DOCX -------------------------------------------------------------------------------


def test_docx_paragraphs_headings_and_tables_in_order() -> None:
    assert extracted("policy.docx", make_docx()) == (
        "# Refund policy\nRefunds are issued within 14 days of a return.\n"
        "Plan | Price\nPro | $20\nContact support@example.com for help."
    )


def test_docx_that_is_not_a_zip_is_corrupt() -> None:
    assert rejected("policy.docx", b"Not a zip at all") == (
        "policy.docx: corrupt or unreadable .docx (unrecognised content, not a zip)"
    )


def test_zip_without_a_word_document_is_corrupt() -> None:
    data = make_zip({"hello.txt": b"hi"})
    assert rejected("fake.docx", data) == "fake.docx: corrupt or unreadable .docx"


def test_truncated_docx_is_corrupt() -> None:
    data = make_docx()[:2000]
    assert rejected("cut.docx", data) == "cut.docx: corrupt or unreadable .docx (broken zip)"


def test_encrypted_or_legacy_docx() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    assert rejected("old.docx", ole) == (
        "old.docx: the .docx is encrypted (password-protected) or is an old-style .doc file"
    )


def test_docx_zip_bomb_by_total_size() -> None:
    data = make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": 101 * 1024 * 1024})
    assert len(data) < 1024 * 1024
    assert rejected("bomb.docx", data) == (
        "bomb.docx: the .docx looks like a zip bomb (expands to more than 100 MB)"
    )


def test_docx_zip_bomb_by_compression_ratio() -> None:
    data = make_zip({"word/media/blank.bin": 8 * 1024 * 1024})
    reason = rejected("dense.docx", data)
    assert reason.startswith("dense.docx: the .docx looks like a zip bomb (word/media/blank.bin")
    assert reason.endswith(":1)")


def test_docx_with_too_many_parts() -> None:
    data = make_zip({f"word/part{i}.xml": b"<x/>" for i in range(2001)})
    assert (
        rejected("many.docx", data)
        == "many.docx: the .docx has too many parts (2001; at most 2000)"
    )


# --- CSV --------------------------------------------------------------------------------


def test_csv_rows_become_column_value_lines() -> None:
    data = b'plan,price,notes\nPro,20,"Billed monthly, cancel anytime"\nFree,0,\n'
    assert extracted("plans.csv", data) == (
        "plan: Pro\nprice: 20\nnotes: Billed monthly, cancel anytime\n\nplan: Free\nprice: 0"
    )


def test_csv_semicolons_and_cp1252_are_detected() -> None:
    data = "produit;prix\nCafé;3 €\nThé;2 €\n".encode("cp1252")
    assert extracted("prix.csv", data) == "produit: Café\nprix: 3 €\n\nproduit: Thé\nprix: 2 €"


def test_tsv_and_extra_cells() -> None:
    assert extracted("a.tsv", b"q\ta\nHow?\tLike this\tbonus\n") == (
        "q: How?\na: Like this\ncolumn 3: bonus"
    )


def test_csv_row_cap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document_formats, "MAX_CSV_ROWS", 2)
    notes: list[str] = []
    outcome = extract_text("big.csv", b"n\n1\n2\n3\n", notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == "n: 1\n\nn: 2"
    assert notes == ["big.csv: only the first 2 rows were read"]


def test_csv_with_only_a_header() -> None:
    assert rejected("head.csv", b"question,answer\n") == "head.csv: no extractable text"


def test_csv_with_an_oversized_field_is_corrupt() -> None:
    data = b'a\n"' + b"x" * 200_000 + b'"\n'
    assert rejected("wide.csv", data) == (
        "wide.csv: corrupt CSV (line 2: field larger than field limit (131072))"
    )


# --- JSON -------------------------------------------------------------------------------


def test_json_is_flattened_to_path_value_lines() -> None:
    data = json.dumps(
        {"faq": [{"q": "Hours?", "a": "9-5"}, {"q": "Refunds?", "a": None}], "ok": True}
    ).encode()
    assert extracted("faq.json", data) == (
        "faq[0].q: Hours?\nfaq[0].a: 9-5\nfaq[1].q: Refunds?\nfaq[1].a: null\nok: true"
    )


def test_json_scalar_document() -> None:
    assert extracted("one.json", b'"just a string"') == "just a string"


def test_invalid_json_names_the_line() -> None:
    data = b'{\n  "a": 1,\n  "b": 2\n  "c": 3\n}'
    assert rejected("bad.json", data) == "bad.json: corrupt JSON (line 4: Expecting ',' delimiter)"


def test_deeply_nested_json_is_corrupt_not_a_crash() -> None:
    assert rejected("deep.json", b"[" * 100_000 + b"]" * 100_000) == (
        "deep.json: corrupt JSON (nested too deeply)"
    )


def test_json_value_cap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document_formats, "MAX_JSON_LINES", 3)
    notes: list[str] = []
    outcome = extract_text("list.json", b"[1, 2, 3, 4, 5]", notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == "[0]: 1\n[1]: 2\n[2]: 3"
    assert notes == ["list.json: only the first 3 values were read"]


# --- limits and loading from disk -------------------------------------------------------


def test_long_text_is_truncated_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents_module, "MAX_TEXT_CHARS", 10)
    notes: list[str] = []
    outcome = extract_text("long.txt", b"0123456789abcdef", notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == "0123456789"
    assert notes == ["long.txt: only the first 10 of 16 characters were kept"]


def test_load_documents_keeps_good_files_and_reports_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("# Hello\nWorld")
    (tmp_path / "manual.pdf").write_bytes(make_pdf(["Page text"]))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "huge.txt").write_bytes(b"a" * (MAX_FILE_BYTES + 1))
    names = ["good.md", "manual.pdf", "empty.txt", "huge.txt", "missing.txt"]
    docs, bad = load_documents(tmp_path / name for name in names)
    assert [(d.title, d.text) for d in docs] == [
        ("good.md", "# Hello\nWorld"),
        ("manual.pdf", "Page text"),
    ]
    assert [str(r) for r in bad] == [
        "empty.txt: the file is empty",
        "huge.txt: larger than 10 MB (10.0 MB)",
        "missing.txt: cannot be read (No such file or directory)",
    ]


def test_cyrillic_cp1251_is_not_forced_to_cp1252() -> None:
    text = "Привет! Это тест кодировки windows-1251: доставка занимает три дня."
    assert extracted("ru.txt", text.encode("cp1251")) == text


def test_docx_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    source = zipfile.ZipFile(io.BytesIO(make_docx()))
    members = {info.filename: source.read(info) for info in source.infolist()}
    xml = members["word/document.xml"].decode()
    doctype = f'<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    xml = xml.replace("?>", "?>" + doctype, 1).replace("Refund policy", "Refund &xxe;", 1)
    members["word/document.xml"] = xml.encode()
    text = extracted("xxe.docx", make_zip(dict(members)))
    assert text.startswith("# Refund\n")
    assert "TOP-SECRET-VALUE" not in text


def test_an_unexpected_parser_error_rejects_only_that_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(data: bytes, stop: object = None) -> document_formats.Extracted:
        raise RuntimeError("parser bug")

    monkeypatch.setitem(document_formats.EXTRACTORS, "json", broken)
    assert rejected("a.json", b"{}") == "a.json: could not be read (RuntimeError)"


def test_hostile_html_parses_in_linear_time() -> None:
    unclosed = b"<a " * 300_000  # took minutes with Python 3.11's html.parser
    nested = b"<p>Intro</p>" + b"<div>" * 200_000 + b"lost below libxml2's depth limit"
    assert rejected("unclosed.html", unclosed) == "unclosed.html: no extractable text"
    assert extracted("nested.html", nested) == "Intro"


def test_html_table_cells_are_separated() -> None:
    page = b"<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>$20</td></tr></table>"
    assert extracted("t.html", page) == "Plan Price\nPro $20"


# --- hostile .docx and stopping ----------------------------------------------------------


def test_docx_with_thousands_of_styles_is_read_in_linear_time() -> None:
    data = many_styles_docx(3_000, 2_000)  # took 8 s when every paragraph scanned the styles
    started = time.monotonic()
    text = extracted("styles.docx", data)
    assert time.monotonic() - started < 1.0
    assert text.split("\n") == [f"p{i}" for i in range(3_000)]


def test_docx_paragraph_cap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document_word, "MAX_DOCX_PARAGRAPHS", 2)
    notes: list[str] = []
    outcome = extract_text("policy.docx", make_docx(), notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == (
        "# Refund policy\nRefunds are issued within 14 days of a return.\nPlan | Price\nPro | $20"
    )
    assert notes == ["policy.docx: only the first 2 paragraphs were read; the rest was skipped"]


def test_docx_table_cell_cap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document_word, "MAX_DOCX_CELLS", 3)
    notes: list[str] = []
    outcome = extract_text("policy.docx", make_docx(), notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == (
        "# Refund policy\nRefunds are issued within 14 days of a return.\nPlan | Price"
    )
    assert notes == ["policy.docx: only the first 3 table cells were read; the rest was skipped"]


def test_a_cell_claiming_a_huge_span_is_counted_before_it_is_expanded() -> None:
    source = zipfile.ZipFile(io.BytesIO(make_docx()))
    members = {info.filename: source.read(info) for info in source.infolist()}
    cell = '<w:tcW w:type="dxa" w:w="4320"/>'
    xml = members["word/document.xml"].decode()
    members["word/document.xml"] = xml.replace(
        cell, cell + '<w:gridSpan w:val="1000000000"/>', 1
    ).encode()
    notes: list[str] = []
    outcome = extract_text("span.docx", make_zip(dict(members)), notes=notes)
    assert isinstance(outcome, SourceDocument)
    assert outcome.text == "# Refund policy\nRefunds are issued within 14 days of a return."
    assert notes == ["span.docx: only the first 20,000 table cells were read; the rest was skipped"]


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        ("policy.docx", make_docx(), "paragraph 1"),
        ("page.html", b"<p>Hello</p>", "part-way through the page"),
        ("manual.pdf", make_pdf(["One", "Two"]), "page 1"),
        ("rows.csv", b"a,b\n1,2\n", "row 1"),
        ("rows.tsv", b"a\tb\n1\t2\n", "row 1"),
        ("list.json", b"[1, 2]", "value 1"),
    ],
)
def test_every_reading_loop_stops_when_told(name: str, data: bytes, where: str) -> None:
    stop = threading.Event()
    stop.set()
    outcome = extract_text(name, data, stop=stop)
    assert outcome == RejectedFile(name, f"reading stopped at {where}: it took too long")


def test_a_deadline_in_the_past_stops_reading() -> None:
    outcome = extract_text("styles.docx", many_styles_docx(10, 2), stop=Deadline(0.0))
    assert outcome == RejectedFile(
        "styles.docx", "reading stopped at paragraph 1: it took too long"
    )


# --- time limit (a child process per file) ------------------------------------------------


async def test_a_file_that_reads_too_slowly_is_refused_and_its_reader_is_killed() -> None:
    await extract_within("warm.md", b"The first child also starts the fork server.")
    notes: list[str] = []
    started = time.monotonic()
    outcome = await extract_within("slow.pdf", slow_pdf(1_000_000), notes=notes, limit_s=0.5)
    assert time.monotonic() - started < 1.0  # one page that takes seconds: only a kill stops it
    assert outcome == RejectedFile("slow.pdf", "took longer than 0.5 s to read, so it was skipped")
    assert notes == []
    await nothing_left_reading()


async def test_a_file_read_within_the_limit_keeps_its_text_and_notes() -> None:
    data = ("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(5_001))).encode()
    notes: list[str] = []
    outcome = await extract_within("faq.csv", data, notes=notes)
    assert outcome == extract_text("faq.csv", data)
    assert isinstance(outcome, SourceDocument) and outcome.text.endswith(
        "question: q4999\nanswer: a4999"
    )
    assert notes == ["faq.csv: only the first 5,000 rows were read"]


@pytest.mark.parametrize("after", [0.0, 0.3], ids=["starting", "reading"])
async def test_cancelling_an_extraction_kills_its_reader(after: float) -> None:
    task = asyncio.create_task(extract_within("slow.pdf", slow_pdf(1_000_000), limit_s=20))
    await asyncio.sleep(after)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await nothing_left_reading()


def test_load_documents_refuses_a_slow_file_at_the_limit(tmp_path: Path) -> None:
    (tmp_path / "slow.pdf").write_bytes(slow_pdf(1_000_000))
    (tmp_path / "good.md").write_text("Opening hours are nine to five.")
    started = time.monotonic()
    docs, bad = load_documents([tmp_path / "slow.pdf", tmp_path / "good.md"], limit_s=0.5)
    assert time.monotonic() - started < 3.0  # includes starting the fork server
    assert [d.title for d in docs] == ["good.md"]
    assert [str(r) for r in bad] == ["slow.pdf: took longer than 0.5 s to read, so it was skipped"]
