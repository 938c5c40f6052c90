"""The bot's replies as Block Kit: Slack's limits, escaping, the ticket line and the
handoff button (the shared constructors are tested in tests/test_blocks.py)."""

from __future__ import annotations

from bot.blocks import MAX_BLOCKS, MAX_SECTION_CHARS
from bot.messages.views import (
    FEEDBACK_ACTION,
    TALK_TO_HUMAN_ACTION,
    context_line,
    follow_up_blocks,
    parse_feedback_value,
    plain_text_fallback,
    reply_blocks,
)
from pipelines.support.contracts import SupportReply


def make_reply(
    text: str = "Your order ORD-10011 shipped with UPS.", **changes: object
) -> SupportReply:
    values: dict[str, object] = {
        "text": text,
        "ticket_number": "T-00012",
        "intents": ["order_status"],
        "actions": [],
        "escalated": False,
        "run_id": "run-1",
        "provider": "offline",
    }
    values.update(changes)
    return SupportReply.model_validate(values)


def sections(blocks: list[dict]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


def test_short_reply_has_answer_context_and_button() -> None:
    blocks = reply_blocks(make_reply(actions=["RMA-000123 created"]))
    assert [block["type"] for block in blocks] == [
        "section", "context", "actions", "context_actions"
    ]  # fmt: skip
    assert blocks[0]["text"] == {"type": "mrkdwn", "text": "Your order ORD-10011 shipped with UPS."}
    context = blocks[1]["elements"][0]["text"]
    assert context.startswith("Ticket T-00012 · RMA-000123 created")
    assert "offline" in context  # the provider is shown honestly
    button = blocks[2]["elements"][0]
    assert button["action_id"] == TALK_TO_HUMAN_ACTION
    assert button["value"] == "T-00012"
    assert button["text"]["text"] == "Talk to a person"


def test_escalated_reply_has_no_handoff_button() -> None:
    blocks = reply_blocks(make_reply(escalated=True))
    assert [block["type"] for block in blocks] == ["section", "context", "context_actions"]
    assert "handed to the support team" in blocks[1]["elements"][0]["text"]


def test_long_answer_is_split_within_section_limit_without_losing_text() -> None:
    paragraph = "word " * 150  # 750 characters
    text = "\n\n".join(f"Paragraph {n}: {paragraph.strip()}" for n in range(20))
    blocks = reply_blocks(make_reply(text))
    parts = sections(blocks)
    assert len(parts) > 1
    assert all(0 < len(part) <= MAX_SECTION_CHARS for part in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_huge_answer_is_capped_at_fifty_blocks() -> None:
    text = "x" * (MAX_SECTION_CHARS * 60)
    blocks = reply_blocks(make_reply(text))
    assert len(blocks) <= MAX_BLOCKS
    parts = sections(blocks)
    assert all(len(part) <= MAX_SECTION_CHARS for part in parts)
    assert parts[-1].endswith("(answer shortened to fit in Slack)")


def test_mentions_and_broadcasts_are_escaped() -> None:
    reply = make_reply("Hi <!channel> and <@U123>, 3 > 2 & done")
    text = sections(reply_blocks(reply))[0]
    assert "<!channel>" not in text and "<@U123>" not in text
    assert text == "Hi &lt;!channel&gt; and &lt;@U123&gt;, 3 &gt; 2 &amp; done"
    assert "<!channel>" not in plain_text_fallback(reply)


def test_plain_text_fallback_has_answer_and_ticket() -> None:
    fallback = plain_text_fallback(make_reply(actions=["CASE-000042 opened"]))
    assert fallback.startswith("Your order ORD-10011 shipped with UPS.")
    assert "Ticket T-00012 · CASE-000042 opened" in fallback
    assert len(plain_text_fallback(make_reply("y " * 30_000))) <= 40_000


def test_context_line_lists_every_action_in_order() -> None:
    line = context_line(make_reply(actions=["RMA-000123 created", "CASE-000042 opened"]))
    assert line.startswith("Ticket T-00012 · RMA-000123 created · CASE-000042 opened")


def test_follow_up_blocks_promise_a_person() -> None:
    blocks = follow_up_blocks("T-00012")
    assert "person" in blocks[0]["text"]["text"]
    assert blocks[1]["elements"][0]["text"] == "Ticket T-00012"
    assert len(follow_up_blocks()) == 1


def test_every_answer_carries_feedback_buttons_naming_its_ticket_and_run() -> None:
    reply = make_reply(run_id="run-1")
    [feedback] = [b for b in reply_blocks(reply) if b["type"] == "context_actions"]
    [element] = feedback["elements"]
    assert element["type"] == "feedback_buttons" and element["action_id"] == FEEDBACK_ACTION
    up, down = element["positive_button"]["value"], element["negative_button"]["value"]
    assert parse_feedback_value(up) == ("up", "T-00012", "run-1")
    assert parse_feedback_value(down) == ("down", "T-00012", "run-1")
    assert parse_feedback_value("sideways|T-00012|run-1") is None
    assert parse_feedback_value("up|<!channel>|x") is None
