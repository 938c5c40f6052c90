"""Block Kit for the support team's triage channel: pure functions, no I/O.

One card per ticket, edited in place as the conversation goes on: who, what they asked
(intents, tasks with their parameters), what the bot did (case ids, RMAs), the status
and assignee, and buttons that follow the status:

| status            | buttons                                   |
|-------------------|-------------------------------------------|
| open, waiting     | Claim · Resolve · Open thread             |
| escalated         | Claim · Hand back to bot · Resolve · Open |
| claimed           | Unclaim (hands back to bot) · Resolve · Open |
| resolved          | Reopen · Open thread                      |

and always Trace (the bot's runs on the ticket, in a modal: `bot.triage.trace_views`).
Every button's value is the ticket number. Everything that came from a customer or an
LLM (summary, task parameters, reasons) is escaped: it can never ping or fake a link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from bot.blocks import Block, actions, button, context, escape, fields_section, section
from bot.messages.views import TALK_TO_HUMAN_ACTION
from storage.briefs import StoredBrief
from storage.feedback import VoteCounts
from storage.sla import SLA_LABELS, URGENT, SlaClockView
from storage.ticket_info import CLAIMED, ESCALATED, OPEN, RESOLVED, WAITING, TicketInfo

CLAIM_ACTION = "triage_claim"
UNCLAIM_ACTION = "triage_unclaim"
HAND_BACK_ACTION = "triage_hand_back"
RESOLVE_ACTION = "triage_resolve"
REPLY_TO_CUSTOMER_ACTION = "triage_reply_to_customer"  # bot.triage.relay
REASSIGN_ACTION = "triage_reassign"  # a users_select: the card's ticket to that agent
REOPEN_ACTION = "triage_reopen"
OPEN_THREAD_ACTION = "triage_open_thread"
TRACE_ACTION = "show_trace"  # opens the ticket's traces (agents only): bot.triage.trace_views
TRIAGE_ACTIONS = (CLAIM_ACTION, UNCLAIM_ACTION, HAND_BACK_ACTION, RESOLVE_ACTION, REOPEN_ACTION)

CARD_EVENT_TYPE = "supportbot_triage_card"
CARD_BLOCK_ID = "triage_card_actions"
MAX_LIST_ITEMS = 12
MAX_LIST_CHARS = 1900  # a list or reason on a card, with room for its heading
MAX_TEXT_CHARS = 2900
MAX_QUOTE_CHARS = 500

STATUS_EMOJI = {
    OPEN: ":large_blue_circle:",
    WAITING: ":hourglass_flowing_sand:",
    ESCALATED: ":rotating_light:",
    CLAIMED: ":raising_hand:",
    RESOLVED: ":white_check_mark:",
}
TASK_LABELS = {
    "billing_inquiry": "Billing inquiry",
    "product_return": "Product return",
    "status_update": "Status update",
}
HANDOFF_NOTICE = (
    "Thanks, I've passed this conversation to our support team; a person will follow up "
    "in this thread shortly."
)
HANDOFF_ACKNOWLEDGED = "You asked for a person · the support team has been notified"


def age(delta: dt.timedelta) -> str:
    """'just now', '5m', '3h', '2d'."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86_400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86_400}d"


def slack_date(when: dt.datetime) -> str:
    """A date Slack shows in the reader's time zone, with a UTC fallback."""
    fallback = when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def thread_url_fallback(team_id: str, channel_id: str, thread_ts: str) -> str | None:
    """A link to a thread without asking Slack (`chat.getPermalink` is preferred)."""
    if not team_id or not channel_id or not thread_ts:
        return None
    return f"https://app.slack.com/client/{team_id}/{channel_id}/thread/{channel_id}-{thread_ts}"


def label(value: str) -> str:
    return value.replace("_", " ")


def format_task(task: dict[str, Any]) -> str:
    """'Product return — Wireless Mouse (incompatible with my laptop)', escaped."""
    kind = str(task.get("kind") or "task")
    params = {k: v for k, v in task.items() if k != "kind" and v not in (None, "")}
    reason = params.pop("reason", None)
    detail = ", ".join(str(value) for value in params.values())
    text = TASK_LABELS.get(kind, label(kind).capitalize())
    if detail:
        text += f" — {detail}"
    if reason:
        text += f" ({reason})"
    return escape(text)


def bullets(items: Iterable[str], limit: int = MAX_LIST_ITEMS) -> str:
    listed = list(items)
    lines = [f"• {item}" for item in listed[:limit]]
    if len(listed) > limit:
        lines.append(f"… and {len(listed) - limit} more")
    return "\n".join(lines)[:MAX_LIST_CHARS]


def assignee_text(ticket: TicketInfo) -> str:
    if ticket.status == CLAIMED and ticket.assignee:
        return f"<@{ticket.assignee}>"
    if ticket.status == RESOLVED and ticket.assignee:
        return f"resolved by <@{ticket.assignee}>"
    return "_unassigned_"


def card_text(ticket: TicketInfo) -> str:
    """The card's plain-text fallback (notifications, screen readers)."""
    parts = [ticket.number, ticket.status_label, ticket.summary or "new conversation"]
    return escape(" · ".join(parts))[:MAX_TEXT_CHARS]


def card_buttons(ticket: TicketInfo, thread_url: str | None) -> Block:
    value = ticket.number
    elements: list[Block] = []
    if ticket.status == RESOLVED:
        elements.append(button("Reopen", REOPEN_ACTION, value))
    else:
        if ticket.status == CLAIMED:
            elements.append(button("Unclaim (hand back to bot)", UNCLAIM_ACTION, value))
        else:
            elements.append(button("Claim", CLAIM_ACTION, value, "primary"))
        if ticket.status == ESCALATED:
            elements.append(button("Hand back to bot", HAND_BACK_ACTION, value))
        if ticket.status in (ESCALATED, CLAIMED):
            elements.append(button("Reply to customer", REPLY_TO_CUSTOMER_ACTION, value))
            elements.append(assign_select())
        elements.append(button("Resolve", RESOLVE_ACTION, value))
    if thread_url:
        elements.append(button("Open thread", OPEN_THREAD_ACTION, value, url=thread_url))
    elements.append(button("Trace", TRACE_ACTION, value))
    return actions(*elements, block_id=CARD_BLOCK_ID)


def assign_select() -> Block:
    """'Assign to…': picking a person hands them the ticket (`bot.triage.feature`). A
    users_select carries no value: the ticket is the card the click came from."""
    return {
        "type": "users_select",
        "action_id": REASSIGN_ACTION,
        "placeholder": {"type": "plain_text", "text": "Assign to…"},
    }


def assigned_note(ticket: TicketInfo, by: str | None) -> str:
    """The card-thread line when someone hands the ticket to an agent (it pings them)."""
    who = f" by <@{by}>" if by and by != ticket.assignee else ""
    return f":arrow_right: <@{ticket.assignee}>, {escape(ticket.number)} was assigned to you{who}."


def is_direct_message(ticket: TicketInfo) -> bool:
    return ticket.channel_id.startswith("D")


def card_blocks(
    ticket: TicketInfo,
    thread_url: str | None = None,
    latest: str | None = None,
    votes: VoteCounts | None = None,
    brief: StoredBrief | None = None,
    sla: Sequence[SlaClockView] = (),
) -> list[Block]:
    """The triage card of one ticket; `latest` is the customer's latest message, `votes`
    the feedback on the bot's replies (a thumbs-down is flagged), `sla` its SLA targets
    as of the card's drawing (due times are Slack dates, true whenever it is read).

    A direct message between a customer and the bot is private: agents can neither open
    nor answer it, so its card has no thread link and says to contact the customer.
    """
    emoji = STATUS_EMOJI.get(ticket.status, ":grey_question:")
    heading = f"{emoji} *{escape(ticket.number)}* · {escape(ticket.status_label)}"
    heading += f" · from <@{ticket.slack_user_id}>" if ticket.slack_user_id else ""
    heading += " · :fire: *urgent*" if ticket.priority == URGENT else ""
    summary = escape(ticket.summary) if ticket.summary else "_new conversation_"
    intents = escape(", ".join(label(i) for i in ticket.intents)) or "_none yet_"
    blocks: list[Block] = [
        section(f"{heading}\n{summary}"),
        fields_section(
            f"*Status*\n{escape(ticket.status_label)}",
            f"*Assignee*\n{assignee_text(ticket)}",
            f"*Intents*\n{intents}",
            f"*Opened*\n{slack_date(ticket.created_at)}",
        ),
    ]
    if ticket.tasks:
        blocks.append(section("*Tasks*\n" + bullets(format_task(task) for task in ticket.tasks)))
    if ticket.actions:
        blocks.append(section("*Actions taken*\n" + bullets(escape(a) for a in ticket.actions)))
    if latest:
        quoted = escape(" ".join(latest.split()))
        if len(quoted) > MAX_QUOTE_CHARS:
            quoted = quoted[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
        blocks.append(section(f"*Latest message*\n>{quoted}"))
    if brief is not None:
        blocks += brief_blocks(brief)
    if votes is not None and (votes.up or votes.down):
        flag = ":thumbsdown: *The customer found an answer unhelpful* · " if votes.down else ""
        blocks.append(section(f"{flag}Feedback: :+1: {votes.up} · :-1: {votes.down}"))
    if ticket.status in (ESCALATED, CLAIMED) and ticket.escalation_reason:
        reason = escape(ticket.escalation_reason)[:MAX_LIST_CHARS]
        blocks.append(section(f":warning: *Escalated:* {reason}"))
    if sla:
        blocks.append(section("\n".join(sla_line(view) for view in sla)))
    if is_direct_message(ticket):
        where = "a direct message with the bot (private: contact the customer directly)"
        thread_url = None
    else:
        where = f"<#{ticket.channel_id}>"
    blocks.append(context(f"In {where} · updated {slack_date(ticket.updated_at)}"))
    blocks.append(card_buttons(ticket, thread_url))
    return blocks


def business_time(seconds: float) -> str:
    """'45m', '3h 20m' (business time)."""
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def sla_line(view: SlaClockView) -> str:
    """One SLA target on the card: met, breached, or due with the business time left."""
    name = SLA_LABELS.get(view.kind, view.kind).capitalize()
    if view.met_at is not None:
        verdict = "met" if view.left_s >= 0 else "missed"
        return f":white_check_mark: *{name}* {verdict} (due {slack_date(view.due)})"
    if view.breached:
        return f":red_circle: *{name} SLA breached* (was due {slack_date(view.due)})"
    return (
        f":stopwatch: *{name}* due {slack_date(view.due)} · "
        f"{business_time(view.left_s)} of business time left when this card was drawn"
    )


def sla_breach_notice(
    ticket: TicketInfo, kind: str, due: dt.datetime | None, agent_ids: Sequence[str]
) -> str:
    """The card-thread message when a target is breached: to the assignee, or the agents."""
    if ticket.status == CLAIMED and ticket.assignee:
        who = f"<@{ticket.assignee}>"
    else:
        who = " ".join(f"<@{agent}>" for agent in agent_ids) or "<!here>"
    name = SLA_LABELS.get(kind, kind)
    when = f" (due {slack_date(due)})" if due else ""
    return (
        f":alarm_clock: {who} {escape(ticket.number)} ({escape(ticket.priority)}) breached "
        f"its {name} SLA{when}."
    )


def brief_blocks(stored: StoredBrief) -> list[Block]:
    """The AI brief of an escalated ticket, and its suggested reply (or why there is none)."""
    b = stored.brief
    ids = ", ".join(str(i) for i in b.get("ids") or []) or "none"
    lines = [
        f"*Wants:* {escape(str(b.get('wants', '')))}",
        f"*The bot did:* {escape(str(b.get('bot_did', '')))}",
        f"*Ids:* {escape(ids)} · *Mood:* {escape(str(b.get('mood', 'unknown')))}",
        f"*Still open:* {escape(str(b.get('still_open', '')))}",
    ]
    blocks: list[Block] = [section(":memo: *Brief*\n" + "\n".join(lines)[: MAX_LIST_CHARS * 4])]
    if stored.draft:
        quoted = escape(" ".join(stored.draft.split()))[: MAX_LIST_CHARS * 4]
        blocks.append(section(f"*Suggested reply* (edit it as you like)\n>{quoted}"))
    else:
        blocks.append(
            context("No suggested reply: the offline provider writes none (no AI model).")
        )
    return blocks


def escalation_notice(ticket: TicketInfo, agent_ids: Sequence[str]) -> str:
    """The thread reply on the card that tells the agents a person is needed."""
    mentions = " ".join(f"<@{agent}>" for agent in agent_ids) or "<!here>"
    reason = escape(ticket.escalation_reason or "a person was asked for")
    return (
        f":rotating_light: {mentions} {escape(ticket.number)} needs a person: {reason}. "
        "Claim it on the card above; the bot stays quiet in the thread until it is handed "
        "back or resolved."
    )


TRANSITION_REFUSALS = {
    "claimed": "{number} is already claimed by <@{assignee}>.",
    "yours": "You already have {number}.",
    "resolved": "{number} is resolved; reopen it first.",
    "not_claimed": "{number} is not claimed.",
    "already": "{number} is already {status}.",
    "busy": "A person from the support team already has {number}.",
    "assigned": "<@{assignee}> already has {number}.",
    "with_bot": "{number} is with the bot: claim it first.",
    "not_an_agent": "Only members of the support team can be assigned tickets.",
    "not_found": "There is no ticket {number}.",
}


def refusal_text(reason: str, number: str, ticket: TicketInfo | None) -> str:
    """Why a button did nothing, for an ephemeral message to whoever pressed it."""
    template = TRANSITION_REFUSALS.get(reason, "Nothing changed on {number}.")
    return template.format(
        number=escape(number),
        assignee=(ticket.assignee if ticket and ticket.assignee else "someone"),
        status=(ticket.status_label.lower() if ticket else "in that state"),
    )


# Who counts as an agent depends on the setup (`bot.triage.agents`): no hint here.
NOT_AN_AGENT = "Only the support team can do that."
NOT_YOUR_TICKET = "Only the person who started this conversation can ask for a person here."


def without_handoff_button(blocks: list[Block], ticket_number: str) -> list[Block]:
    """A reply's blocks once its "Talk to a person" button was pressed: the button
    becomes a note, so it is not pressed twice."""
    kept: list[Block] = []
    for block in blocks:
        elements = block.get("elements") or []
        if block.get("type") == "actions" and any(
            element.get("action_id") == TALK_TO_HUMAN_ACTION for element in elements
        ):
            kept.append(context(f"{escape(ticket_number)} · {HANDOFF_ACKNOWLEDGED}"))
        else:
            kept.append(block)
    return kept


__all__ = [
    "CARD_EVENT_TYPE",
    "CLAIM_ACTION",
    "HANDOFF_NOTICE",
    "HAND_BACK_ACTION",
    "NOT_AN_AGENT",
    "NOT_YOUR_TICKET",
    "OPEN_THREAD_ACTION",
    "REASSIGN_ACTION",
    "REOPEN_ACTION",
    "RESOLVE_ACTION",
    "TRACE_ACTION",
    "TRIAGE_ACTIONS",
    "UNCLAIM_ACTION",
    "age",
    "assign_select",
    "assigned_note",
    "card_blocks",
    "card_buttons",
    "card_text",
    "escalation_notice",
    "format_task",
    "refusal_text",
    "sla_breach_notice",
    "sla_line",
    "slack_date",
    "thread_url_fallback",
    "without_handoff_button",
]
