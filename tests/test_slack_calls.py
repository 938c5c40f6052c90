"""`bot.slack_calls`, against the fake Slack over HTTP.

- Classifying failed calls (`slack_error`, `to_job_failure`) for every shape of answer the
  SDK can hand back: Slack's JSON, a 5xx page in HTML or plain text (the response's `data`
  is then `{}` or a string), a body that claims JSON and is not (the SDK then attaches the
  raw aiohttp response), and errors that are not `SlackApiError` at all.
- `call`'s variants: tolerated errors, best-effort calls, `notify_on`.
- "Posted exactly once": what a tag matches, and how far the search for a tagged message
  looks (threads and channel history, paged and bounded). The jobs' own retries are
  tested end to end in tests/e2e (test_slack_http, test_triage_slack, test_faq_slack).
- The `text` of every post and edit is escaped unless the bot marked it as `Mrkdwn`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import slack_calls
from bot.slack_calls import (
    MessageTag,
    Mrkdwn,
    Refused,
    SlackCalls,
    call,
    job_tag,
    slack_error,
    to_job_failure,
)
from bot.worker import JobFailed
from tests.fakes.fake_slack import FakeSlack

HTML = "<html><head><title>500</title></head><body>Internal Server Error</body></html>"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-unit") as slack:
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-unit", base_url=fake.api_url, retry_handlers=[])


async def failed_post(fake: FakeSlack, **fault: Any) -> SlackApiError:
    """The exception the real SDK raises for one faulty `chat.postMessage` answer."""
    client = AsyncWebClient(token="xoxb-unit", base_url=fake.api_url, retry_handlers=[])
    fake.fail("chat.postMessage", **fault)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="hi")
    return caught.value


def errors_counted(error: str, method: str = "unit.test") -> float:
    labels = {"method": method, "error": error}
    return REGISTRY.get_sample_value("supportbot_slack_api_errors_total", labels) or 0.0


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param({"status": 500}, "http_500", id="500-plain-text"),
        pytest.param({"status": 502, "body": HTML, "content_type": "text/html"}, "http_502",
                     id="502-html"),
        pytest.param({"status": 500, "body": "{oops", "content_type": "application/json"},
                     "http_500", id="500-broken-json"),
        pytest.param({"status": 500, "error": "internal_error"}, "internal_error",
                     id="500-slack-json"),
        pytest.param({"status": 429, "retry_after": 7}, "ratelimited", id="429"),
        pytest.param({"error": "not_in_channel"}, "not_in_channel", id="200-not-ok"),
    ],
)  # fmt: skip
async def test_every_answer_shape_gets_an_error_label_and_a_decision(
    fake: FakeSlack, fault: dict[str, Any], expected: str
) -> None:
    exc = await failed_post(fake, **fault)
    assert slack_error(exc) == expected
    before = errors_counted(expected)
    failure = to_job_failure("unit.test", exc)
    assert errors_counted(expected) == before + 1
    assert str(failure) == f"Slack unit.test: {expected}" + (
        " (invite the bot to the channel (/invite @bot))" if expected == "not_in_channel" else ""
    )
    assert failure.permanent is (expected == "not_in_channel")
    assert failure.retry_in == (7.0 if expected == "ratelimited" else None)


def test_errors_that_are_not_slack_api_errors_are_named_by_type() -> None:
    assert slack_error(TimeoutError()) == "TimeoutError"
    failure = to_job_failure("unit.test", TimeoutError("slow"))
    assert not failure.permanent and "TimeoutError" in str(failure)
    assert errors_counted("TimeoutError") >= 1


# --- call: tolerated errors, best effort, notify_on -------------------------------------------


async def test_a_tolerated_error_is_an_answer_neither_raised_nor_counted(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail("reactions.add", error="already_reacted")
    before = errors_counted("already_reacted", "reactions.add")
    request = client.reactions_add(channel="C1", timestamp="1.0", name="eyes")
    answer = await call("reactions.add", request, tolerate={"already_reacted"})
    assert answer == Refused("already_reacted")
    assert errors_counted("already_reacted", "reactions.add") == before


async def test_a_best_effort_call_counts_its_failure_and_goes_on(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail("chat.getPermalink", error="not_in_channel")  # fatal for a post, not here
    before = errors_counted("not_in_channel", "chat.getPermalink")
    request = client.chat_getPermalink(channel="C1", message_ts="1.0")
    answer = await call("chat.getPermalink", request, best_effort=True)
    assert answer == Refused("not_in_channel")
    assert errors_counted("not_in_channel", "chat.getPermalink") == before + 1


async def test_a_failure_is_raised_classified_and_only_notify_on_errors_may_notify(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail("chat.postMessage", error="not_in_channel", times=2)
    with pytest.raises(JobFailed) as plain:
        await call("chat.postMessage", client.chat_postMessage(channel="C1", text="hi"))
    assert plain.value.permanent and not plain.value.can_notify
    slack = SlackCalls(client, notify_on={"not_in_channel"})
    with pytest.raises(JobFailed) as notifying:
        await slack.post("C1", "hi")
    assert notifying.value.permanent and notifying.value.can_notify
    assert not fake.posts()


async def test_a_successful_call_returns_slacks_answer(client: AsyncWebClient) -> None:
    answer = await call("chat.postMessage", client.chat_postMessage(channel="C1", text="hi"))
    assert answer["ok"] and answer["ts"]


# --- tagged messages ------------------------------------------------------------------------


def test_a_tag_matches_its_own_posts_only() -> None:
    tag = job_tag("supportbot_reply", 7)
    mine = {"metadata": tag.metadata(follow_up=True)}
    assert mine["metadata"] == {
        "event_type": "supportbot_reply",
        "event_payload": {"job_id": "7", "follow_up": True},
    }
    assert tag.matches(mine)  # extra fields describe, they are not matched
    assert not tag.matches({"metadata": job_tag("supportbot_reply", 8).metadata()})
    assert not tag.matches({"metadata": job_tag("supportbot_notice", 7).metadata()})
    assert not tag.matches({"text": "no metadata"})
    page_zero = MessageTag("supportbot_faq", {"job_id": "7", "page": "0"})
    assert page_zero.matches({"metadata": job_tag("supportbot_faq", 7).metadata(page=0)})
    assert not page_zero.matches({"metadata": job_tag("supportbot_faq", 7).metadata(page=1)})


async def post_thread(client: AsyncWebClient, channel: str, count: int) -> str:
    """A thread of `count` replies; returns its root's ts."""
    root = await client.chat_postMessage(channel=channel, text="root")
    for number in range(count):
        await client.chat_postMessage(channel=channel, thread_ts=root["ts"], text=f"{number}")
    return str(root["ts"])


async def test_the_post_is_found_on_a_later_page_of_its_thread(
    fake: FakeSlack, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_calls, "PAGE_SIZE", 2)
    slack = SlackCalls(client)
    root = await post_thread(client, "C1", 4)
    tag = job_tag("supportbot_reply", 3)
    assert await slack.find_posted("C1", tag, thread_ts=root) is None
    posted = await slack.post("C1", "answer", thread_ts=root, metadata=tag.metadata())
    assert await slack.find_posted("C1", tag, thread_ts=root) == posted["ts"]
    assert len(fake.calls_to("conversations.replies")) == 3 + 3  # 5, then 6 messages


async def test_the_search_stops_after_max_pages(
    fake: FakeSlack, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_calls, "PAGE_SIZE", 2)
    monkeypatch.setattr(slack_calls, "MAX_PAGES", 2)
    slack = SlackCalls(client)
    root = await post_thread(client, "C1", 4)
    tag = job_tag("supportbot_reply", 3)
    await slack.post("C1", "answer", thread_ts=root, metadata=tag.metadata())
    assert await slack.find_posted("C1", tag, thread_ts=root) is None
    assert len(fake.calls_to("conversations.replies")) == 2


async def test_every_tagged_message_of_a_job_is_found_with_its_payload(
    client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_calls, "PAGE_SIZE", 2)
    slack = SlackCalls(client)
    root = await post_thread(client, "C1", 1)
    tag = job_tag("supportbot_faq", 5)
    for page in (1, 2, 3):
        await slack.post("C1", f"page {page}", thread_ts=root, metadata=tag.metadata(page=page))
    other = job_tag("supportbot_faq", 6)
    await slack.post("C1", "another job", thread_ts=root, metadata=other.metadata(page=1))
    found = await slack.find_tagged("C1", tag, thread_ts=root)
    assert [message.payload["page"] for message in found] == [1, 2, 3]
    assert len(await slack.find_tagged("C1", tag, thread_ts=root, limit=2)) == 2


async def test_channel_history_is_searched_from_oldest_on(client: AsyncWebClient) -> None:
    slack = SlackCalls(client)
    tag = MessageTag("supportbot_card", {"ticket_id": "9"})
    early = await slack.post("C1", "card", metadata=tag.metadata())
    later = await slack.post("C1", "card again", metadata=tag.metadata())
    await slack.post("C1", "someone else", metadata=job_tag("supportbot_card", 9).metadata())
    assert await slack.find_posted("C1", tag) == later["ts"]  # newest first
    oldest = f"{float(early['ts']) + 0.5:.6f}"
    assert await slack.find_posted("C1", tag, oldest=oldest) == later["ts"]
    assert await slack.find_posted("C2", tag) is None


async def test_a_thread_that_is_gone_holds_no_post(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail("conversations.replies", error="thread_not_found")
    tag = job_tag("supportbot_reply", 1)
    assert await SlackCalls(client).find_posted("C1", tag, thread_ts="1.0") is None


async def test_a_search_that_cannot_look_fails_the_job_unless_best_effort(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    slack, tag = SlackCalls(client), job_tag("supportbot_faq", 1)
    fake.fail("conversations.history", error="missing_scope", times=2)
    assert await slack.find_posted("C1", tag, oldest="0", best_effort=True) is None
    with pytest.raises(JobFailed) as failed:
        await slack.find_posted("C1", tag, oldest="0")
    assert failed.value.permanent and "missing_scope" in str(failed.value)


# --- what `text` may carry ------------------------------------------------------------------


async def test_text_is_escaped_unless_the_bot_marked_it_as_mrkdwn(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    slack = SlackCalls(client)
    hostile = "<!channel> read me & <@U0BOSS>.md"
    posted = await slack.post("C1", hostile)
    await slack.update("C1", posted["ts"], f"Done: {hostile}")
    meant = Mrkdwn("<!here> ticket T-1 needs a person")
    await slack.post("C1", meant)
    await slack.post("C1", meant[:7])  # an operation drops the mark: escaped, never raw
    texts = [c.params["text"] for c in fake.calls_to("chat.postMessage")]
    texts += [c.params["text"] for c in fake.calls_to("chat.update")]
    assert texts == [
        "&lt;!channel&gt; read me &amp; &lt;@U0BOSS&gt;.md",
        "<!here> ticket T-1 needs a person",
        "&lt;!here&gt;",
        "Done: &lt;!channel&gt; read me &amp; &lt;@U0BOSS&gt;.md",
    ]
