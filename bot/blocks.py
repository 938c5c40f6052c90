"""Block Kit for every view: the `Block` type, Slack's size limits, escaping, and small
constructors for the shapes the views repeat (section, context, button, modal, ...).

Constructors take mrkdwn as the caller wrote it (mentions like `<@U1>` are meant), so
untrusted parts (customer words, file names, LLM output) go through `escape` or
`to_mrkdwn` first (which also decides which links stay clickable: `to_mrkdwn`); the constructors cut text at Slack's limits, which Slack would
otherwise refuse with `invalid_blocks`. Views stay pure functions returning plain dicts.

Why not `slack_sdk.models.blocks`: it raises on over-long text instead of cutting it, and
adds fields (`"emoji": true`) that change the JSON the view tests pin down.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

Block = dict[str, Any]
View = dict[str, Any]

MAX_SECTION_CHARS = 3000
MAX_FIELD_CHARS = 2000  # one of a section's `fields`
MAX_BLOCKS = 50  # in a message
MAX_VIEW_BLOCKS = 100  # in a modal or App Home
MAX_CONTEXT_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_MODAL_TITLE_CHARS = 24
MAX_MESSAGE_TEXT = 39_000  # Slack truncates `text` at 40,000 characters

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
_LINK = r"\[([^\]\n]+)\]\((https?://[^\s)<>|`]+)\)"
_BARE_URL = r"(?:https?://|www\.)[^\s<>|`]+"
_LINK_OR_URL = re.compile(f"{_LINK}|({_BARE_URL})", re.IGNORECASE)
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_LOOKS_LIKE_URL = re.compile(
    r"^\s*(?:[a-z][a-z0-9+.-]*://|www\.)\S*\s*$|^\s*(?:[\w-]+\.)+[a-z]{2,}(?:[/?#:]\S*)?\s*$",
    re.IGNORECASE,
)
_URL_TAIL = ".,;:!?)'\""
ANY_LINK = None  # `to_mrkdwn(..., allowed_links=ANY_LINK)`: the text's own links may stay


def escape(text: str) -> str:
    """Escape Slack's control characters, so text cannot mention, ping or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str, *, allowed_links: Collection[str] | None) -> str:
    """Escape, then turn the common Markdown an LLM writes into Slack mrkdwn.

    Links are where a model repeats a poisoned document or invents a look-alike, so a
    `[label](url)` becomes a Slack link only when `url` is one of `allowed_links` (the URLs
    of the passages an answer cites; `ANY_LINK` where the text is the reader's own, like
    a FAQ from their files). Otherwise the label alone stays, as text. A label that looks
    like a URL is never shown over a link: the link shows its own URL. A bare URL that is
    not allowed is put in a code span, which Slack does not turn into a link.
    """
    text = escape(text)
    text = _HEADING.sub(r"*\1*", text)
    text = _BOLD.sub(r"*\1*", text)
    allowed = None if allowed_links is None else {_link_key(url) for url in allowed_links}
    pieces, start = [], 0
    for code in _CODE.finditer(text):  # Slack links nothing inside code: left as written
        pieces += [_links(text[start : code.start()], allowed), code.group()]
        start = code.end()
    pieces.append(_links(text[start:], allowed))
    return "".join(pieces)


def _links(text: str, allowed: set[str] | None) -> str:
    def replace(match: re.Match[str]) -> str:
        label, url, bare = match.groups()
        if bare is not None:
            core = bare.rstrip(_URL_TAIL)
            tail = bare[len(core) :]
            return bare if _is_allowed(core, allowed) else f"`{core}`{tail}"
        if not _is_allowed(url, allowed):
            return _links(label, set())  # the label as text: no URL in it becomes a link
        return f"<{url}>" if _LOOKS_LIKE_URL.match(label) else f"<{url}|{label}>"

    return _LINK_OR_URL.sub(replace, text)


def _is_allowed(url: str, allowed: set[str] | None) -> bool:
    return allowed is None or _link_key(url) in allowed


def _link_key(url: str) -> str:
    """A URL as compared with the allowed ones: unescaped, without a trailing slash."""
    raw = url.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return raw.strip().rstrip(_URL_TAIL).rstrip("/")


def split_text(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Split `text` into chunks of at most `limit` characters at the nicest boundary."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:  # no boundary in the second half: cut hard
            cut = limit
        cut = _outside_markup(window, cut)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def _outside_markup(text: str, cut: int) -> int:
    """Move `cut` back so it does not split a `<link|label>` or an `&amp;` entity."""
    opened = text.rfind("<", 0, cut)
    if opened > text.rfind(">", 0, cut) and opened > 0:
        cut = opened
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp > 0 and ";" not in text[amp:cut]:
        cut = amp
    return cut


def plain(text: str, limit: int | None = None) -> dict[str, str]:
    """A plain_text object (labels, titles, button texts), cut at `limit` if given."""
    return {"type": "plain_text", "text": text if limit is None else text[:limit]}


def mrkdwn(text: str, limit: int = MAX_SECTION_CHARS) -> dict[str, str]:
    """A mrkdwn text object, cut at `limit`."""
    return {"type": "mrkdwn", "text": text[:limit]}


def section(text: str) -> Block:
    """A section of mrkdwn (at most MAX_SECTION_CHARS: `split_text` for longer text)."""
    return {"type": "section", "text": mrkdwn(text)}


def fields_section(*fields: str) -> Block:
    """A section of side-by-side mrkdwn fields (two columns in Slack)."""
    return {"type": "section", "fields": [mrkdwn(field, MAX_FIELD_CHARS) for field in fields]}


def context(*texts: str) -> Block:
    """A context block: small grey mrkdwn lines under a message."""
    return {"type": "context", "elements": [mrkdwn(text, MAX_CONTEXT_CHARS) for text in texts]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_CHARS)}


def divider() -> Block:
    return {"type": "divider"}


def button(
    label: str, action_id: str, value: str, style: str | None = None, url: str | None = None
) -> Block:
    """A button element; `style` is "primary" or "danger", `url` opens a link as well."""
    element: Block = {
        "type": "button",
        "action_id": action_id,
        "text": plain(label),
        "value": value,
    }
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    return element


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions"}
    if block_id:
        block["block_id"] = block_id
    block["elements"] = list(elements)
    return block


def input_block(
    block_id: str, label: str, element: Block, *, hint: str | None = None, optional: bool = False
) -> Block:
    """A modal's input block around one element (`read_submission` finds it by block_id)."""
    block: Block = {"type": "input", "block_id": block_id}
    if optional:
        block["optional"] = True
    block["label"] = plain(label)
    if hint:
        block["hint"] = plain(hint)
    block["element"] = element
    return block


def modal(
    title: str,
    blocks: list[Block],
    *,
    close: str = "Close",
    submit: str | None = None,
    callback_id: str | None = None,
    private_metadata: str | None = None,
) -> View:
    """A modal view; without `submit` it only has a Close button."""
    view: View = {"type": "modal"}
    if callback_id:
        view["callback_id"] = callback_id
    view["title"] = plain(title, MAX_MODAL_TITLE_CHARS)
    if submit:
        view["submit"] = plain(submit)
    view["close"] = plain(close)
    if private_metadata is not None:
        view["private_metadata"] = private_metadata
    view["blocks"] = blocks[:MAX_VIEW_BLOCKS]
    return view


def home(blocks: list[Block]) -> View:
    """An App Home view (`views.publish`), cut at Slack's block limit."""
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}
