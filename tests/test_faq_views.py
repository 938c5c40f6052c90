"""/faq's Block Kit: the modal and its validation, progress, failures, the paged FAQ."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import MAX_BLOCKS, MAX_SECTION_CHARS
from bot.faq.feature import command_reply, faq_job_key, message_files
from bot.faq.modal import (
    HELP_TEXT,
    MAX_FILES,
    FileRef,
    Submission,
    default_title,
    faq_modal,
    read_submission,
)
from bot.faq.views import Progress, failure_page, faq_pages, progress_page, status_line
from pipelines.faq.chain import FaqItem


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def state(
    *,
    files: list[dict[str, Any]] | None = None,
    questions: str | None = "10",
    mode: str | None = "parallel",
    channel: str | None = "C1",
    title: str | None = None,
    with_file_block: bool = True,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "faq_questions": {"value": {"type": "number_input", "value": questions}},
        "faq_mode": {
            "value": {
                "type": "radio_buttons",
                "selected_option": {"value": mode} if mode else None,
            }
        },
        "faq_channel": {
            "value": {"type": "conversations_select", "selected_conversation": channel}
        },
        "faq_title": {"value": {"type": "plain_text_input", "value": title}},
    }
    if with_file_block:
        values["faq_files"] = {"files": {"type": "file_input", "files": files or []}}
    return {"values": values}


SLACK_FILE = {
    "id": "F1",
    "name": "guide.md",
    "title": "guide",
    "mimetype": "text/markdown",
    "size": 120,
    "url_private": "https://files.slack.com/files-pri/T1-F1/guide.md",
    "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/guide.md",
}


# --- the modal --------------------------------------------------------------------------


def test_modal_has_files_questions_mode_channel_and_title() -> None:
    view = faq_modal(channel_id="C0HERE")
    assert view["type"] == "modal" and view["callback_id"] == "faq_modal"
    files = block(view, "faq_files")["element"]
    assert files["type"] == "file_input" and files["max_files"] == MAX_FILES
    assert "pdf" in files["filetypes"] and "docx" in files["filetypes"]
    questions = block(view, "faq_questions")["element"]
    assert questions["type"] == "number_input" and not questions["is_decimal_allowed"]
    assert (questions["initial_value"], questions["min_value"], questions["max_value"]) == (
        "10",
        "1",
        "50",
    )
    mode = block(view, "faq_mode")["element"]
    assert mode["initial_option"]["value"] == "parallel"
    assert {o["value"] for o in mode["options"]} == {"parallel", "sequential"}
    channel = block(view, "faq_channel")["element"]
    assert channel["type"] == "conversations_select"
    assert channel["initial_conversation"] == "C0HERE"
    assert channel["default_to_current_conversation"] is True
    assert block(view, "faq_title")["optional"] is True
    assert json.loads(view["private_metadata"]) == {"channel": "C0HERE"}


@pytest.mark.parametrize(("asked", "shown"), [(25, "25"), (0, "1"), (500, "50")])
def test_preselected_questions_are_clamped(asked: int, shown: str) -> None:
    view = faq_modal(channel_id=None, questions=asked)
    assert block(view, "faq_questions")["element"]["initial_value"] == shown
    assert "initial_conversation" not in block(view, "faq_channel")["element"]


def test_shortcut_modal_lists_the_files_and_carries_their_ids() -> None:
    files = [
        {"id": f"F{i:09d}", "name": f"{'<!channel>' if i == 0 else 'x' * 250}.md"}
        for i in range(12)
    ]
    view = faq_modal(channel_id="C0DOCS", message_files=files)
    assert not any(b.get("block_id") == "faq_files" for b in view["blocks"])
    listing = view["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;.md" in listing and "<!channel>" not in listing
    metadata = json.loads(view["private_metadata"])
    assert len(view["private_metadata"]) <= 3000
    assert metadata["file_ids"] == [f"F{i:09d}" for i in range(MAX_FILES)]
    assert metadata["channel"] == "C0DOCS" and metadata["title"].startswith("FAQ: ")


# --- reading the submission -------------------------------------------------------------


def test_a_valid_submission() -> None:
    view = {
        **faq_modal(channel_id="C0HERE"),
        "state": state(files=[SLACK_FILE], title="  Our  FAQ "),
    }
    submission = read_submission(view)
    assert submission == Submission(
        files=[
            FileRef(
                id="F1",
                name="guide.md",
                mimetype="text/markdown",
                size=120,
                url=SLACK_FILE["url_private_download"],
            )
        ],
        questions=10,
        mode="parallel",
        channel_id="C1",
        title="Our FAQ",
    )


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"files": []}, {"faq_files"}),
        ({"questions": "51"}, {"faq_questions"}),
        ({"questions": "0"}, {"faq_questions"}),
        ({"questions": "2.5"}, {"faq_questions"}),
        ({"questions": None}, {"faq_questions"}),
        ({"files": [], "questions": "99"}, {"faq_files", "faq_questions"}),
        ({"files": [SLACK_FILE] * (MAX_FILES + 1)}, {"faq_files"}),
    ],
)
def test_invalid_submissions_name_their_fields(changes: dict[str, Any], errors: set[str]) -> None:
    values: dict[str, Any] = {"files": [SLACK_FILE], **changes}
    view = {**faq_modal(channel_id=None), "state": state(**values)}
    outcome = read_submission(view)
    assert isinstance(outcome, dict) and set(outcome) == errors
    assert all(isinstance(message, str) and message for message in outcome.values())


def test_channel_falls_back_to_the_command_channel_and_mode_to_parallel() -> None:
    view = {
        **faq_modal(channel_id="C0HERE"),
        "state": state(files=[SLACK_FILE], channel=None, mode=None),
    }
    outcome = read_submission(view)
    assert isinstance(outcome, Submission)
    assert (outcome.channel_id, outcome.mode, outcome.title) == ("C0HERE", "parallel", "")


def test_shortcut_submission_reads_file_ids_from_metadata() -> None:
    modal = faq_modal(channel_id="C0DOCS", message_files=[{"id": "F1", "name": "a.md"}])
    view = {**modal, "state": state(with_file_block=False, questions="5", mode="sequential")}
    outcome = read_submission(view)
    assert isinstance(outcome, Submission)
    assert outcome.files == [FileRef(id="F1")] and outcome.title == "FAQ: a.md"
    assert (outcome.questions, outcome.mode) == (5, "sequential")
    empty = {
        **faq_modal(channel_id="C0DOCS", message_files=[]),
        "state": state(with_file_block=False),
    }
    assert set(read_submission(empty)) == {"faq_questions"}  # errors shown where they can be


def test_default_title() -> None:
    assert default_title([]) == "FAQ"
    assert default_title(["a.md"]) == "FAQ: a.md"
    assert default_title(["a.md", "b.pdf", "c.txt", "d.csv"]) == "FAQ: a.md, b.pdf and 2 more"
    assert len(default_title(["x" * 400])) == 150


# --- the command and the shortcut -------------------------------------------------------


def test_command_text() -> None:
    assert command_reply("") == (10, None)
    assert command_reply(" 20 ") == (20, None)
    assert command_reply("help") == (None, HELP_TEXT)
    questions, usage = command_reply("<@U1> please")
    assert questions is None and usage is not None
    assert usage.startswith("I did not understand `&lt;@U1&gt; please`")
    assert faq_job_key("T1", "V1") == "faq:T1:V1"


def test_message_files_skip_deleted_and_hidden_files() -> None:
    shortcut = {
        "message": {
            "files": [
                {"id": "F1", "name": "a.md"},
                {"id": "F2", "mode": "tombstone"},
                {"id": "F3", "mode": "hidden_by_limit"},
                {"name": "no id"},
            ]
        }
    }
    assert [f["id"] for f in message_files(shortcut)] == ["F1"]
    assert message_files({"message": {}}) == []


# --- messages ---------------------------------------------------------------------------


def test_progress_lines() -> None:
    base = Progress("FAQ: a.md", "U1", files=3)
    assert status_line(base) == "Starting…"
    assert status_line(Progress("t", "U1", 1, "reading")) == "Reading 1 file…"
    assert status_line(Progress("t", "U1", 3, "reading")) == "Reading 3 files…"
    assert status_line(Progress("t", "U1", 3, "questions")) == "Generating questions…"
    assert status_line(Progress("t", "U1", 3, "answers", 4, 10)) == "Answered 4/10…"
    page = progress_page(Progress("<b>", "U1", 2, "answers", 1, 2, rejected=["x.exe: no"]))
    assert page.text == "<b>: Answered 1/2…"
    text = json.dumps(page.blocks)
    assert "&lt;b&gt;" in text and "<@U1>" in text and "x.exe: no" in text


def test_failure_page_names_every_file_and_reason() -> None:
    rejected = ["a.pdf: the PDF is encrypted (password-protected)", "b.exe: unsupported"]
    page = failure_page("FAQ", "U1", "none of the 2 files could be used.", rejected)
    text = json.dumps(page.blocks)
    assert "No FAQ" in text and all(line in text for line in rejected)
    assert all(line in page.text for line in rejected)


def item(number: int, answer: str = "An answer.", sources: list[str] | None = None) -> FaqItem:
    return FaqItem(
        question=f"Question {number}?",
        answer=answer,
        sources=["a.md"] if sources is None else sources,
    )


def test_faq_pages_respect_slack_limits_and_never_split_a_question() -> None:
    items = [item(n, "word " * (200 + 40 * n)) for n in range(1, 51)]
    pages = faq_pages("FAQ", items, user_id="U1", files=2, rejected=["c.exe: unsupported"])
    assert len(pages) > 1
    assert pages[0].blocks[0]["type"] == "header"
    seen = []
    for page in pages:
        assert len(page.blocks) <= MAX_BLOCKS
        assert sum(len(json.dumps(b)) for b in page.blocks) <= 21_000
        for index, b in enumerate(page.blocks):
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= MAX_SECTION_CHARS
                if b["text"]["text"].startswith(f"*{len(seen) + 1}. Question"):
                    seen.append(len(seen) + 1)
                    rest = page.blocks[index + 1 :]
                    assert any(r["type"] == "context" and "Sources" in json.dumps(r) for r in rest)
    assert seen == list(range(1, 51))
    assert "Done: 50 questions from 2 files" in json.dumps(pages[0].blocks)
    assert "c.exe: unsupported" in json.dumps(pages[0].blocks)
    assert pages[1].text == f"FAQ (continued, part 2 of {len(pages)})"


def test_a_very_long_answer_is_cut_and_points_to_the_file() -> None:
    [page] = faq_pages("FAQ", [item(1, "long " * 5000)], user_id="U1", files=1)
    sections = [b for b in page.blocks if b["type"] == "section"]
    assert len(sections) == 3
    assert sections[-1]["text"]["text"].endswith("(see the attached file)")


def test_faq_text_is_escaped_and_sources_listed() -> None:
    items = [
        FaqItem(question="<!channel> hours?", answer="**Nine** to five <@U2>.", sources=["a&b.md"]),
        item(2, sources=[]),
    ]
    [page] = faq_pages("FAQ", items, user_id="U1", files=1, notes=["a.pdf: 2 pages read"])
    text = json.dumps(page.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "*Nine*" in text and "&lt;@U2&gt;" in text
    assert "Sources: a&amp;b.md" in text and "none found in the files" in text
    assert "Notes: a.pdf: 2 pages read" in text
