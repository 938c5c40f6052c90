"""Documents are cut along their own structure: what a section citation depends on."""

from __future__ import annotations

from pipelines.documents.extract import extract_text
from pipelines.documents.formats import extract_csv
from pipelines.knowledge.passages import MAX_CHARS, TARGET_CHARS, split_passages
from tests.pdf_pages import ROUTER_MANUAL, pdf_with_lines


def sections(text: str) -> list[tuple[tuple[str, ...], str]]:
    return [(p.section, p.text) for p in split_passages(text)]


def test_markdown_headings_give_each_passage_its_section_path() -> None:
    text = (
        "# Returns policy\nWe take returns.\n\n## Refund timing\nRefunds take 5 days.\n\n"
        "## Exceptions\nGift cards are final.\n\n# Shipping\nThree days."
    )
    assert sections(text) == [
        (("Returns policy",), "We take returns."),
        (("Returns policy", "Refund timing"), "Refunds take 5 days."),
        (("Returns policy", "Exceptions"), "Gift cards are final."),
        (("Shipping",), "Three days."),
    ]


def test_restructuredtext_underlines_are_headings() -> None:
    text = "Warranty\n========\nTwo years.\n\nClaims\n------\nKeep the receipt."
    assert sections(text) == [
        (("Warranty",), "Two years."),
        (("Warranty", "Claims"), "Keep the receipt."),
    ]


def test_a_pdfs_numbered_headings_are_sections_and_its_lists_are_not() -> None:
    document = extract_text("router-x200.pdf", pdf_with_lines(ROUTER_MANUAL))
    assert not isinstance(document, str) and hasattr(document, "text")
    found = split_passages(document.text)
    assert [p.section for p in found] == [
        (),
        ("1 Getting started",),
        ("2 Wireless settings",),
        ("3 Resetting the admin password",),
    ]
    assert "pinhole" in found[3].text
    steps = "4 Steps\n1. Unplug the router\n2. Plug it back in\n3. Wait a minute\nDone."
    assert sections(steps) == [
        (("4 Steps",), "1. Unplug the router\n2. Plug it back in\n3. Wait a minute\nDone.")
    ]


def test_upper_case_and_named_headings() -> None:
    text = "WARRANTY TERMS\nTwo years.\nSection 2: Claims\nKeep the receipt."
    assert sections(text) == [
        (("WARRANTY TERMS",), "Two years."),
        (("Section 2: Claims",), "Keep the receipt."),
    ]


def test_each_table_row_is_a_passage_with_its_header() -> None:
    text = "## Plans\nPlan | Price | Data\nBasic | $5 | 1 GB\nPro | $10 | 10 GB\n\nAfter the table."
    assert sections(text) == [
        (("Plans",), "Plan | Price | Data\nBasic | $5 | 1 GB"),
        (("Plans",), "Plan | Price | Data\nPro | $10 | 10 GB"),
        (("Plans",), "After the table."),
    ]


def test_each_csv_record_is_a_passage() -> None:
    data = b"product,warranty\nKettle,2 years\nToaster,1 year\n"
    found = split_passages(extract_csv(data).text)
    assert [p.text for p in found] == [
        "product: Kettle\nwarranty: 2 years",
        "product: Toaster\nwarranty: 1 year",
    ]


def test_small_paragraphs_join_and_a_long_one_is_cut_at_sentence_ends() -> None:
    small = "\n\n".join(f"Paragraph {i} is short." for i in range(5))
    assert len(split_passages(small)) == 1
    sentence = "This sentence is about forty-five characters. "
    long = sentence * 80
    pieces = split_passages(f"# Long\n{long}")
    assert len(pieces) > 1
    assert all(len(p.text) <= MAX_CHARS for p in pieces)
    assert all(p.text.endswith(".") for p in pieces)
    assert all(p.section == ("Long",) for p in pieces)
    assert TARGET_CHARS < MAX_CHARS


def test_content_hash_follows_the_section_and_the_text() -> None:
    [a] = split_passages("# A\nSame words.")
    [b] = split_passages("Intro.\n\n# A\nSame words.")[1:]
    [c] = split_passages("# B\nSame words.")
    [d] = split_passages("# A\nOther words.")
    assert a.content_hash == b.content_hash
    assert len({a.content_hash, c.content_hash, d.content_hash}) == 3
