"""Which links a reply may show (`bot.blocks.to_mrkdwn`): only allowed URLs are links.

A model repeating a poisoned document, or inventing a look-alike, must not give a
customer a clickable "official refund portal". Slack turns `<url|label>` into a link and
auto-links bare `https://…` / `www.…` text, so both are checked.
"""

from __future__ import annotations

import pytest

from bot.blocks import ANY_LINK, to_mrkdwn
from pipelines.knowledge.retrieval import RetrievedPassage

EVIL = "https://evil.example/login"
GOOD = "https://shop.example/refunds"


@pytest.mark.parametrize(
    ("text", "allowed", "expected"),
    [
        (f"Use the [refund portal]({EVIL}).", [GOOD], "Use the refund portal."),
        (f"Use the [refund portal]({GOOD}).", [GOOD], f"Use the <{GOOD}|refund portal>."),
        (f"[refunds]({GOOD}/)", [GOOD], f"<{GOOD}/|refunds>"),  # a trailing slash is the same
        (f"[{GOOD}]({EVIL})", [EVIL], f"<{EVIL}>"),  # a URL label never hides the target
        (f"[shop.example]({EVIL})", [EVIL], f"<{EVIL}>"),
        (f"[{GOOD}]({EVIL})", [], f"`{GOOD}`"),  # dropped link: its URL label is text too
        (f"See {EVIL}.", [], f"See `{EVIL}`."),
        ("Or www.evil.example!", [], "Or `www.evil.example`!"),
        (f"See {GOOD}, please", [GOOD], f"See {GOOD}, please"),
        (f"in code: `{EVIL}`", [], f"in code: `{EVIL}`"),
        (f"<{EVIL}|portal>", [], f"&lt;`{EVIL}`|portal&gt;"),  # Slack syntax stays escaped
        (f"[faq]({EVIL}) and {EVIL}", ANY_LINK, f"<{EVIL}|faq> and {EVIL}"),
        (f"[{GOOD}]({EVIL})", ANY_LINK, f"<{EVIL}>"),
    ],
)
def test_only_allowed_urls_become_links(
    text: str, allowed: list[str] | None, expected: str
) -> None:
    assert to_mrkdwn(text, allowed_links=allowed) == expected


def test_an_allowed_url_with_an_ampersand_is_matched_unescaped() -> None:
    url = "https://shop.example/r?a=1&b=2"
    assert to_mrkdwn(f"[page]({url})", allowed_links=[url]) == f"<{url.replace('&', '&amp;')}|page>"


def test_an_entry_allows_the_urls_written_in_it() -> None:
    entry = RetrievedPassage.faq(
        "Where do I ask for a refund?",
        f"On {GOOD}. Or [mail us](https://shop.example/mail), (see https://shop.example/a).",
        ("refunds.md",),
    )
    assert entry.links() == [GOOD, "https://shop.example/mail", "https://shop.example/a"]
