"""The Block Kit constructors every view uses: Slack's limits, and escaping of untrusted
text (the views' own tests check that they call `escape` where text is untrusted)."""

from __future__ import annotations

import json

from bot.blocks import (
    ANY_LINK,
    MAX_CONTEXT_CHARS,
    MAX_FIELD_CHARS,
    MAX_HEADER_CHARS,
    MAX_MODAL_TITLE_CHARS,
    MAX_SECTION_CHARS,
    MAX_VIEW_BLOCKS,
    actions,
    button,
    context,
    divider,
    escape,
    fields_section,
    header,
    home,
    input_block,
    modal,
    plain,
    section,
    split_text,
    to_mrkdwn,
)

UNTRUSTED = "Hi <!channel>, <@U123> & <https://evil.test|your bank>"


def test_escape_neutralises_mentions_broadcasts_and_links() -> None:
    escaped = escape(UNTRUSTED)
    assert escaped == (
        "Hi &lt;!channel&gt;, &lt;@U123&gt; &amp; &lt;https://evil.test|your bank&gt;"
    )
    assert "<" not in escaped and ">" not in escaped


def test_to_mrkdwn_escapes_first_then_converts_markdown() -> None:
    text = to_mrkdwn(
        "## Returns\n**RMA-1** created, see [the policy](https://ex.com/p).",
        allowed_links=["https://ex.com/p"],
    )
    assert text == "*Returns*\n*RMA-1* created, see <https://ex.com/p|the policy>."
    assert to_mrkdwn("**<!here>**", allowed_links=ANY_LINK) == "*&lt;!here&gt;*"  # stays escaped
    assert "<javascript:" not in to_mrkdwn("[x](javascript:alert(1))", allowed_links=ANY_LINK)


def test_split_text_never_cuts_a_link_or_an_entity() -> None:
    link = "<https://example.com/a|a long link label>"
    text = ("a" * 2990) + " " + link + " tail"
    markdown = text.replace(link, "[a long link label](https://example.com/a)")
    chunks = split_text(to_mrkdwn(markdown, allowed_links=ANY_LINK))
    assert any(link in chunk for chunk in chunks)
    amp = split_text("b" * 2997 + "&amp;c", limit=3000)
    assert all(not chunk.endswith("&am") and not chunk.startswith("p;") for chunk in amp)


def test_text_is_cut_at_slacks_limits() -> None:
    long = "x" * 10_000
    assert len(section(long)["text"]["text"]) == MAX_SECTION_CHARS
    assert len(header(long)["text"]["text"]) == MAX_HEADER_CHARS
    [first, second] = context(long, "short")["elements"]
    assert len(first["text"]) == MAX_CONTEXT_CHARS and second["text"] == "short"
    assert all(len(f["text"]) == MAX_FIELD_CHARS for f in fields_section(long, long)["fields"])
    assert plain(long, 75) == {"type": "plain_text", "text": "x" * 75}
    assert plain(long) == {"type": "plain_text", "text": long}  # no limit: unchanged
    view = modal(long, [divider()] * (MAX_VIEW_BLOCKS + 5))
    assert len(view["title"]["text"]) == MAX_MODAL_TITLE_CHARS
    assert len(view["blocks"]) == MAX_VIEW_BLOCKS
    assert len(home([divider()] * (MAX_VIEW_BLOCKS + 1))["blocks"]) == MAX_VIEW_BLOCKS


def test_constructors_keep_mrkdwn_as_given_so_callers_escape_untrusted_parts() -> None:
    """A mention the bot means (`<@U1>`) survives; the customer's words are escaped by the
    caller, and a constructor never escapes twice."""
    block = section(f"for <@U1>: {escape(UNTRUSTED)}")
    assert block == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"for <@U1>: {escape(UNTRUSTED)}"},
    }
    assert "&amp;amp;" not in json.dumps(context(escape("a & b")))


def test_buttons_and_actions_have_slacks_shape() -> None:
    plain_button = button("Claim", "claim", "T-1")
    assert plain_button == {
        "type": "button",
        "action_id": "claim",
        "text": {"type": "plain_text", "text": "Claim"},
        "value": "T-1",
    }
    link = button("Open", "open", "T-1", style="primary", url="https://x.test/t")
    assert (link["style"], link["url"]) == ("primary", "https://x.test/t")
    assert actions(plain_button, block_id="card") == {
        "type": "actions",
        "block_id": "card",
        "elements": [plain_button],
    }
    assert "block_id" not in actions(plain_button)


def test_modal_and_input_block_leave_out_what_is_not_given() -> None:
    notice = modal("Done", [section("ok")])
    assert notice == {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Done"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [section("ok")],
    }
    form = modal("Form", [], submit="Go", close="Cancel", callback_id="cb", private_metadata="")
    assert list(form) == [
        "type",
        "callback_id",
        "title",
        "submit",
        "close",
        "private_metadata",
        "blocks",
    ]
    element = {"type": "plain_text_input", "action_id": "value"}
    assert input_block("b", "Title", element) == {
        "type": "input",
        "block_id": "b",
        "label": {"type": "plain_text", "text": "Title"},
        "element": element,
    }
    optional = input_block("b", "Title", element, hint="Short", optional=True)
    assert optional["optional"] is True and optional["hint"]["text"] == "Short"
