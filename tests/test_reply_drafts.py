"""What a reply may show while it is written (`pipelines.support.drafts`), and where it
may stream (`bot.messages.stream.stream_target`)."""

from __future__ import annotations

from bot.messages.stream import stream_target
from pipelines.support.contracts import IncomingMessage
from pipelines.support.drafts import StepNote, drafting_to, previewable, reply_watcher, report_step


def test_the_preview_stops_before_an_id_no_worker_produced() -> None:
    text = "Your return RMA-000123 is open. Case CASE-999 too. "
    assert previewable(text, {"RMA-000123"}) == "Your return RMA-000123 is open. Case "


def test_the_preview_stops_before_a_link_and_before_the_word_being_written() -> None:
    assert previewable("See https://example.com for more", ()) == "See "
    assert previewable("Reset it from [the page](http://x)", ()) == "Reset it from "
    assert previewable("Your order is on its wa", ()) == "Your order is on its "
    assert previewable("RMA-00", ()) == ""


class Watcher:
    shows_text = True

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.steps: list[StepNote] = []

    def step(self, note: StepNote) -> None:
        self.steps.append(note)

    def text(self, so_far: str) -> None:
        self.texts.append(so_far)


def test_partial_json_reports_the_growing_field_and_nothing_unwatched() -> None:
    assert reply_watcher("reply") is None  # nobody watches: the step does not stream
    watcher = Watcher()
    with drafting_to(watcher):
        on_partial = reply_watcher("answer")
        assert on_partial is not None
        on_partial('{"answerable": true, "answer": "Hold the reset butt')
        on_partial("```json\n")  # not JSON yet: nothing
        on_partial('{"answerable": false, "answer": "I cannot tell from these')
        report_step(StepNote("task-1", "Looking up ORD-1", "complete"))
    report_step(StepNote("task-2", "unwatched", "complete"))
    assert watcher.texts == ["Hold the reset "]
    assert [note.id for note in watcher.steps] == ["task-1"]


def message(channel: str, *, public: bool = False, team: str = "T1") -> IncomingMessage:
    return IncomingMessage(
        request_id="r", team_id=team, channel_id=channel, thread_ts="1.0",
        message_ts="1.0", user_id="U1", text="hi", public=public,
    )  # fmt: skip


def test_a_watcher_of_steps_only_does_not_make_the_reply_stream() -> None:
    """A public channel's `LineNotice` watches for the queue step, not the text."""
    watcher = Watcher()
    watcher.shows_text = False
    with drafting_to(watcher):
        assert reply_watcher("reply") is None
        report_step(StepNote("queue", "in line", "in_progress"))
    assert [note.id for note in watcher.steps] == ["queue"]


def test_streams_go_to_dms_and_private_threads_with_their_recipient_never_public() -> None:
    dm = stream_target(message("D1"))
    assert dm is not None and "recipient_user_id" not in dm.start_fields()
    private = stream_target(message("G1"))
    assert private is not None
    assert private.start_fields()["recipient_team_id"] == "T1"
    assert private.start_fields()["recipient_user_id"] == "U1"
    assert stream_target(message("C1", public=True)) is None
    assert stream_target(message("G1", team="")) is None  # no recipient ids: posted once
