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
from bot.confirmations.views import confirmation_blocks
from pipelines.support.contracts import SupportReply

TRUNCATION_NOTE = "… (answer shortened to fit in Slack)"

TALK_TO_HUMAN_ACTION = "talk_to_human"
TALK_TO_HUMAN_LABEL = "Talk to a person"
FEEDBACK_ACTION = "reply_feedback"

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


def feedback_value(vote: str, ticket_number: str, run_id: str) -> str:
    return f"{vote}|{ticket_number}|{run_id}"


def parse_feedback_value(value: str) -> tuple[str, str, str] | None:
    """(vote, ticket number, run id) from a feedback button's value; None if malformed."""
    vote, _, rest = value.partition("|")
    number, _, run_id = rest.partition("|")
    if vote not in ("up", "down") or not number.startswith("T-"):
        return None
    return vote, number[:16], run_id[:36]


def feedback_buttons(reply: SupportReply) -> Block:
    """Slack's thumbs up / down under an answer; the value names the ticket and the run."""

    def choice(text: str, vote: str) -> dict[str, object]:
        return {
            "text": {"type": "plain_text", "text": text},
            "accessibility_label": f"{text}: tell us about this answer",
            "value": feedback_value(vote, reply.ticket_number, reply.run_id),
        }

    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": choice("Helpful", "up"),
                "negative_button": choice("Not helpful", "down"),
            }
        ],
    }


def reply_blocks(reply: SupportReply) -> list[Block]:
    """The reply as Block Kit: answer section(s), a context line, a "Talk to a person"
    button and the feedback buttons.

    The person button is left out once the ticket is escalated: a person is already on it.
    """
    footer: list[Block] = [context(context_line(reply))]
    if not reply.escalated:
        footer.append(talk_to_human_button(reply.ticket_number))
    footer.append(feedback_buttons(reply))
    cards = confirmation_blocks(reply.pending)
    return [*answer_sections(reply, MAX_BLOCKS - len(footer) - len(cards)), *cards, *footer]


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
    "FEEDBACK_ACTION",
    "FOLLOW_UP_TEXT",
    "TALK_TO_HUMAN_ACTION",
    "context_line",
    "feedback_buttons",
    "follow_up_blocks",
    "parse_feedback_value",
    "plain_text_fallback",
    "reply_blocks",
]
