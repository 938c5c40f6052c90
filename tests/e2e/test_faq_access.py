"""/faq posts only in a channel its requester is a member of: signed submissions over
HTTP, the fake Slack's `conversations.members` (paged, 1000 a page), the embedded worker.

A channel of one page is decided at submission (an inline error on the channel field);
a bigger one by the job, before its first post (a DM when refused). Either way nothing is
posted in a channel the requester is not in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.faq.access import NOT_A_MEMBER_FIELD, UNSEEN_CHANNEL_FIELD
from bot.faq.feature import FaqFeature
from bot.faq.job import FAQ_JOB
from bot.settings import Settings
from storage.models import Job
from storage.queue import DONE
from tests.e2e.conftest import BotServer, run_bot_server
from tests.e2e.test_faq_slack import (
    USER,
    count,
    interact,
    open_modal,
    settle,
    submission,
    three_files,
    top_level,
)
from tests.fakes.fake_slack import FakeSlack

ANNOUNCE = "C0ANNOUNCE"
TEAM = "C0TEAM"
crowd = [f"U{n:06d}" for n in range(1500)]  # more than one page of members


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotServer]:
    async with run_bot_server(settings, features=[FaqFeature(progress_interval=0.2)]) as b:
        yield b


async def submit(bot: BotServer, fake: FakeSlack, channel: str, view_id: str) -> dict[str, object]:
    view = await open_modal(bot, fake)
    files = three_files(fake)[:1]
    response = await interact(bot, submission(view, view_id=view_id, files=files, channel=channel))
    await settle(bot)
    answer: dict[str, object] = response.json()
    return answer


async def test_a_non_member_is_told_in_the_modal_and_nothing_is_posted(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    fake_slack.channel_members[ANNOUNCE] = ["U0BOSS", "U0COMMS"]
    answer = await submit(bot, fake_slack, ANNOUNCE, "V0NONMEMBER")
    assert answer == {"response_action": "errors", "errors": {"faq_channel": NOT_A_MEMBER_FIELD}}
    assert fake_slack.posts(channel=ANNOUNCE) == [] and fake_slack.posts(channel=USER) == []
    assert await count(bot, Job) == 0 and not fake_slack.downloads


async def test_a_channel_the_bot_cannot_see_is_told_in_the_modal(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    answer = await submit(bot, fake_slack, "C0HIDDEN", "V0HIDDEN")  # channel_not_found
    assert answer == {"response_action": "errors", "errors": {"faq_channel": UNSEEN_CHANNEL_FIELD}}
    assert await count(bot, Job) == 0


async def test_a_member_gets_the_faq(bot: BotServer, fake_slack: FakeSlack) -> None:
    fake_slack.channel_members[TEAM] = ["U0OTHER", USER]
    answer = await submit(bot, fake_slack, TEAM, "V0MEMBER")
    assert answer["response_action"] == "update"
    [root] = top_level(fake_slack, TEAM)
    assert root.edits and "questions)" in root.text


async def test_in_a_big_channel_the_job_refuses_a_non_member_by_dm(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    fake_slack.channel_members[ANNOUNCE] = crowd
    answer = await submit(bot, fake_slack, ANNOUNCE, "V0BIG")
    assert answer["response_action"] == "update"  # one page could not tell: the job decides
    assert fake_slack.posts(channel=ANNOUNCE) == [] and not fake_slack.downloads
    [dm] = fake_slack.posts(channel=USER)
    assert f"I did not post your FAQ in <#{ANNOUNCE}>" in dm.text
    assert "you are not a member of that channel" in dm.text
    async with bot.slack.core.db.sessions() as session:
        [job] = (await session.scalars(select(Job).where(Job.kind == FAQ_JOB))).all()
    assert job.status == DONE and job.result == {"refused": "not_a_member"}


async def test_in_a_big_channel_a_member_on_the_second_page_gets_the_faq(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    fake_slack.channel_members[ANNOUNCE] = [*crowd, USER]
    await submit(bot, fake_slack, ANNOUNCE, "V0BIGMEMBER")
    [root] = top_level(fake_slack, ANNOUNCE)
    assert root.text.startswith("FAQ: returns.md (")
    assert len(fake_slack.calls_to("conversations.members")) == 3  # 1 at submission, 2 in the job


async def test_the_requesters_dm_with_the_bot_needs_no_check(
    bot: BotServer, fake_slack: FakeSlack
) -> None:
    await submit(bot, fake_slack, "D0CUST", "V0DM")
    [root] = top_level(fake_slack, "D0CUST")
    assert root.text.startswith("FAQ: returns.md (")
    assert fake_slack.calls_to("conversations.members") == []
