"""Which Slack messages the bot answers (the pure part of the listeners)."""

from __future__ import annotations

import pytest

from bot.messages.intake import direct_reason, is_from_a_bot, message_key, strip_mention
from tests.slack_signing import (
    BOT_USER_ID,
    bot_message,
    channel_message,
    dm_event,
    mention_event,
    message_changed,
    new_ts,
)

SUPPORT = {"C0SUPPORT"}


def reason(event: dict, event_type: str = "message") -> str | None:
    return direct_reason(event, event_type, BOT_USER_ID, SUPPORT)


def test_direct_messages_mentions_and_support_channel_messages_are_answered() -> None:
    assert reason(dm_event("hi")) == "dm"
    assert reason(dm_event("hi", thread_ts=new_ts())) == "dm"
    assert reason(mention_event("hi"), "app_mention") == "mention"
    assert reason(channel_message("hi", channel="C0SUPPORT")) == "support_channel"
    assert reason({**channel_message("hi"), "subtype": "file_share"}) == "support_channel"


def test_a_message_channels_copy_of_a_mention_counts_as_a_mention() -> None:
    event = {**mention_event("hi", channel="C0RANDOM"), "type": "message"}
    assert reason(event) == "mention"


@pytest.mark.parametrize(
    "event",
    [
        channel_message("hi", channel="C0RANDOM"),
        channel_message("reply", channel="C0SUPPORT", thread_ts=new_ts()),  # needs a ticket
        bot_message("answer", own=True),
        bot_message("deploy done", own=False),
        channel_message("hi", user=BOT_USER_ID),
        message_changed("edited", original_ts=new_ts()),
        {**channel_message("gone"), "subtype": "message_deleted"},
        {**channel_message("joined"), "subtype": "channel_join"},
    ],
    ids=[
        "other-channel",
        "thread-reply",
        "own-bot",
        "other-bot",
        "own-user-id",
        "edit",
        "delete",
        "join",
    ],
)
def test_everything_else_is_not_answered_directly(event: dict) -> None:
    assert reason(event) is None


def test_bot_detection() -> None:
    assert is_from_a_bot(bot_message("x", own=False), BOT_USER_ID)
    assert is_from_a_bot({"text": "no user"}, BOT_USER_ID)
    assert not is_from_a_bot(dm_event("hi"), BOT_USER_ID)


def test_mention_is_stripped_and_the_key_is_the_message() -> None:
    assert strip_mention(f"<@{BOT_USER_ID}> where is it?", BOT_USER_ID) == "where is it?"
    assert strip_mention(f"hey <@{BOT_USER_ID}|supportbot>!", BOT_USER_ID) == "hey !"
    assert message_key("T1", "C1", "1.2") == "slack:T1:C1:1.2"
