"""Classifying failed Slack calls (`bot.slack_calls.slack_error`, `to_job_failure`) for every
shape of answer the SDK can hand back: Slack's JSON, a 5xx page in HTML or plain text (the
response's `data` is then `{}` or a string), a body that claims JSON and is not (the SDK
then attaches the raw aiohttp response), and errors that are not `SlackApiError` at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_calls import slack_error, to_job_failure
from tests.fakes.fake_slack import FakeSlack

HTML = "<html><head><title>500</title></head><body>Internal Server Error</body></html>"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-unit") as slack:
        yield slack


async def failed_post(fake: FakeSlack, **fault: Any) -> SlackApiError:
    """The exception the real SDK raises for one faulty `chat.postMessage` answer."""
    client = AsyncWebClient(token="xoxb-unit", base_url=fake.api_url, retry_handlers=[])
    fake.fail("chat.postMessage", **fault)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="hi")
    return caught.value


def errors_counted(error: str) -> float:
    labels = {"method": "unit.test", "error": error}
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
