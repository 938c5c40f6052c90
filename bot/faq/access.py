"""Where a /faq may be posted: only in a channel its requester is a member of.

The bot can post in every channel it was invited to, and the modal's channel picker
offers every public channel, so without this check anyone could post an FAQ in the
triage channel or an announcement channel they do not belong to.

Checked twice, with `conversations.members` (paged):
- **at submission**, bounded (`quick_refusal`: one page, about a second): a clear "no"
  becomes an inline error on the channel field of the modal; a "yes", or "cannot tell
  yet" (a channel bigger than a page, a slow or failing Slack), queues the job;
- **in the job**, before its first post (`requester_membership`: every page): that check
  decides. A non-member is told by DM and nothing is posted in the channel.
The requester's own DM with the bot needs no check (a `D…` id, or their user id): the
picker only offers conversations the requester is in, and the bot can only post in a DM
it is part of.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_calls import SLACK_CALL_ERRORS, member_pages, slack_error

logger = logging.getLogger(__name__)

QUICK_CHECK_SECONDS = 1.0  # the submission is acknowledged within Slack's 3 s
QUICK_CHECK_PAGES = 1
JOB_CHECK_PAGES = 200  # 200,000 members: beyond that the job refuses rather than guess
# The bot cannot see the channel (a private one it is not in): it could not post there.
UNSEEN_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel"})

NOT_A_MEMBER_FIELD = (
    "You are not a member of this channel. Choose a channel you are in, or join it first."
)
UNSEEN_CHANNEL_FIELD = (
    "I am not in this channel. Invite me (/invite @supportbot) or choose another one."
)


@dataclass(frozen=True)
class Membership:
    """The answer of a membership check: yes, no, or not known within the pages read."""

    member: bool
    complete: bool = True  # False: the pages ran out before the user was found

    @property
    def refused(self) -> bool:
        return not self.member and self.complete


def is_own_conversation(channel: str, user: str) -> bool:
    """The requester's DM with the bot: always theirs to post in."""
    return channel == user or channel.startswith("D")


async def requester_membership(
    client: AsyncWebClient, channel: str, user: str, *, max_pages: int = JOB_CHECK_PAGES
) -> Membership:
    """Whether `user` is a member of `channel`; Slack's errors are left to the caller."""
    if is_own_conversation(channel, user):
        return Membership(member=True)
    more = False  # pages left unread when `max_pages` ran out
    async for page, has_more in member_pages(client, channel, max_pages=max_pages):
        if user in page:
            return Membership(member=True)
        more = has_more
    return Membership(member=False, complete=not more)


async def quick_refusal(client: AsyncWebClient, channel: str, user: str) -> str | None:
    """The modal's error for the channel field when the check at submission can already
    say no; None to queue the job (which checks fully)."""
    try:
        async with asyncio.timeout(QUICK_CHECK_SECONDS):
            found = await requester_membership(client, channel, user, max_pages=QUICK_CHECK_PAGES)
    except SlackApiError as exc:
        if slack_error(exc) in UNSEEN_CHANNEL_ERRORS:
            return UNSEEN_CHANNEL_FIELD
        logger.info("/faq: membership not checked at submission: %s", slack_error(exc))
        return None
    except SLACK_CALL_ERRORS as exc:
        logger.info("/faq: membership not checked at submission: %s", type(exc).__name__)
        return None
    return NOT_A_MEMBER_FIELD if found.refused else None


def not_a_member_text(channel: str, found: Membership) -> str:
    """The DM to a requester whose FAQ the job would not post."""
    why = (
        "you are not a member of that channel"
        if found.complete
        else "that channel is too big for me to check that you are a member"
    )
    return (
        f"I did not post your FAQ in <#{channel}>: {why}. "
        "Run `/faq` again and choose a channel you are in (or your DM with me)."
    )


__all__ = [
    "NOT_A_MEMBER_FIELD",
    "UNSEEN_CHANNEL_FIELD",
    "Membership",
    "not_a_member_text",
    "quick_refusal",
    "requester_membership",
]
