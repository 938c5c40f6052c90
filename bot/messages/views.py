"""Block Kit for the bot's replies: pure functions, no I/O, so they are tested directly.

Slack's limits shape the layout: a section's text holds at most 3000 characters and a
message at most 50 blocks, so a long answer is split into several sections at paragraph,
line or word boundaries. The message `text` is always set as well: notifications,
screen readers and old clients show it instead of the blocks.

Answer text comes from an LLM (or a customer's own words echoed back), so it is escaped
before it reaches Slack: a stray `<!channel>` must never ping a whole channel. Its links
are clickable only when the pipeline allowed them (`SupportReply.allowed_links`: the URLs
of the passages a knowledge answer cites); any other URL is shown as text (`to_mrkdwn`).
"""

from __future__ import annotations

from bot.blocks import (
    MAX_BLOCKS,
    MAX_CONTEXT_CHARS,
    MAX_MESSAGE_TEXT,
    MAX_SECTION_CHARS,
    Block,
    actions,
    button,
    context,
    escape,
    section,
    split_text,
    to_mrkdwn,
)
from pipelines.support.contracts import SupportReply

TRUNCATION_NOTE = "… (answer shortened to fit in Slack)"

TALK_TO_HUMAN_ACTION = "talk_to_human"
TALK_TO_HUMAN_LABEL = "Talk to a person"

PROVIDER_LABELS = {
    "gemini": "answered by Gemini",
    "offline": "answered by the offline assistant (no LLM)",
    "degraded": "Gemini unavailable: partly answered by the offline assistant",
    "scripted": "scripted answer",
}

FOLLOW_UP_TEXT = (
    "Sorry, I couldn't finish answering this. A person from the support team will follow up here."
)


def context_line(reply: SupportReply) -> str:
    """'Ticket T-00012 · RMA-000123 created · answered by …', escaped for mrkdwn."""
    parts = [f"Ticket {reply.ticket_number}", *reply.actions]
    if reply.escalated:
        parts.append("handed to the support team")
    label = PROVIDER_LABELS.get(reply.provider)
    if label:
        parts.append(label)
    line = escape(" · ".join(part for part in parts if part))
    return line[:MAX_CONTEXT_CHARS]


def answer_sections(reply: SupportReply, max_sections: int) -> list[Block]:
    chunks = split_text(to_mrkdwn(reply.text, allowed_links=reply.allowed_links)) or [" "]
    if len(chunks) > max_sections:
        chunks = chunks[:max_sections]
        keep = MAX_SECTION_CHARS - len(TRUNCATION_NOTE) - 1
        chunks[-1] = chunks[-1][:keep].rstrip() + "\n" + TRUNCATION_NOTE
    return [section(chunk) for chunk in chunks]


def talk_to_human_button(ticket_number: str) -> Block:
    return actions(
        button(TALK_TO_HUMAN_LABEL, TALK_TO_HUMAN_ACTION, ticket_number),
        block_id="support_reply_actions",
    )


def reply_blocks(reply: SupportReply) -> list[Block]:
    """The reply as Block Kit: answer section(s), a context line, a "Talk to a person" button.

    The button is left out once the ticket is escalated: a person is already on it.
    """
    footer: list[Block] = [context(context_line(reply))]
    if not reply.escalated:
        footer.append(talk_to_human_button(reply.ticket_number))
    return [*answer_sections(reply, MAX_BLOCKS - len(footer)), *footer]


def plain_text_fallback(reply: SupportReply) -> str:
    """The message `text`: the whole answer plus the ticket line, within Slack's limit."""
    footer = "\n\n" + context_line(reply)
    body = to_mrkdwn(reply.text.strip(), allowed_links=reply.allowed_links)
    room = MAX_MESSAGE_TEXT - len(footer)
    if len(body) > room:
        body = body[: room - len(TRUNCATION_NOTE) - 1].rstrip() + "\n" + TRUNCATION_NOTE
    return body + footer


def follow_up_blocks(ticket_number: str | None = None) -> list[Block]:
    """The message a customer gets when the bot gives up: a person will follow up."""
    blocks: list[Block] = [section(FOLLOW_UP_TEXT)]
    if ticket_number:
        blocks.append(context(escape(f"Ticket {ticket_number}")))
    return blocks


__all__ = [
    "FOLLOW_UP_TEXT",
    "TALK_TO_HUMAN_ACTION",
    "context_line",
    "follow_up_blocks",
    "plain_text_fallback",
    "reply_blocks",
]
