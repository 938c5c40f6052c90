"""A small PDF written by hand: several text lines per page (no PDF writer is needed).

Like `tests.test_documents.make_pdf`, but each page holds lines one below the other, so
a PDF can carry numbered section headings and their paragraphs as real manuals do.
"""

from __future__ import annotations


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_with_lines(pages: list[list[str]]) -> bytes:
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        shown = " 0 -16 Td ".join(f"({_escape(line)}) Tj" for line in lines)
        stream = f"BT /F1 11 Tf 72 740 Td {shown} ET".encode("latin-1")
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


# A router manual: section 3 alone says how to reset the admin password.
ROUTER_MANUAL = [
    [
        "Router X200 user guide",
        "1 Getting started",
        "Place the router in an open spot away from metal shelves.",
        "Connect the grey cable to the port marked WAN.",
    ],
    [
        "2 Wireless settings",
        "The default network name is printed on the label under the router.",
        "Use the 5 GHz band for streaming and the 2.4 GHz band for range.",
    ],
    [
        "3 Resetting the admin password",
        "Hold the recessed pinhole button on the back for twelve seconds",
        "until the status light blinks amber, then sign in with the word admin",
        "and choose a new admin password at https://router.example/setup",
    ],
]
