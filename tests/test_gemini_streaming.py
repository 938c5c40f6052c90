"""Streamed calls: GeminiLLM over `streamGenerateContent` (SSE) against the HTTP fake.

The real google-genai client reads the fake's server-sent events, so these tests pin what
the adapter does with them: the partial text grows event by event, a failure mid-stream
is retried from scratch, a block is an error, and the fallback provider still answers.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from pipelines.config import LLMSettings
from pipelines.faq.chain import SourceDocument, build_faq
from pipelines.llm.base import LLMError, LLMRequest, generate_with_partials
from pipelines.llm.fallback import FallbackLLM
from pipelines.llm.gemini import GeminiLLM
from pipelines.llm.offline import OfflineLLM
from pipelines.llm.reliability import CallGate, RetryPolicy
from pipelines.steps import PipelineContext, Trace, complete_list_items
from pipelines.support.schemas import QuestionList
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_scripts import by_step, faq_answers, step_name

QUESTIONS = {"questions": [f"How does feature {i} work?" for i in range(8)]}
ANSWER = json.dumps(QUESTIONS)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGemini]:
    async with FakeGemini(lambda body: QUESTIONS, stream_chunk_chars=40) as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        yield server


@pytest.fixture
async def llm(fake: FakeGemini) -> AsyncIterator[GeminiLLM]:
    policy = RetryPolicy(max_attempts=3, call_timeout_s=2.0, deadline_s=10.0, backoff_base_s=0.01)
    gemini = GeminiLLM("test-key-not-real", CallGate(8, 100_000, policy))
    yield gemini
    await gemini.aclose()


def questions_request(schema: type[BaseModel] | None = QuestionList) -> LLMRequest:
    return LLMRequest(
        step="faq_questions",
        model="gemini-2.5-flash",
        system="s",
        prompt="p" * 400,
        output_schema=schema,
    )


async def test_partials_grow_event_by_event_and_end_with_the_whole_answer(
    fake: FakeGemini, llm: GeminiLLM
) -> None:
    fake.latency_s = 0.5
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    response = await llm.generate_streaming(
        questions_request(), lambda text: seen.append((time.monotonic() - started, text))
    )
    assert response.text == ANSWER
    assert fake.streamed == fake.calls == 1
    texts = [text for _, text in seen]
    assert len(texts) == -(-len(ANSWER) // 40)  # one partial per event
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1] == ANSWER
    # Events are spread over the last 70 % of the call's latency, and read as they come.
    assert seen[-1][0] - seen[0][0] > 0.8 * 0.7 * fake.latency_s
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


async def test_complete_questions_are_known_before_the_stream_ends(
    fake: FakeGemini, llm: GeminiLLM
) -> None:
    found: list[list[str]] = []
    await llm.generate_streaming(
        questions_request(), lambda text: found.append(complete_list_items(text, "questions"))
    )
    assert found[0] == []  # the first 40 characters hold no closed string
    assert 0 < len(found[len(found) // 2]) < len(QUESTIONS["questions"])
    assert found[-1] == QUESTIONS["questions"]


@pytest.mark.parametrize("fault", ["disconnect", "truncated_json", "unfinished_stream", 503, 429])
async def test_a_stream_that_fails_is_retried_from_scratch(
    fake: FakeGemini, llm: GeminiLLM, fault: int | str
) -> None:
    fake.fail_next([fault])
    seen: list[str] = []
    response = await llm.generate_streaming(questions_request(), seen.append)
    assert response.text == ANSWER and response.attempts == 2
    assert fake.streamed == 2
    restarts = [i for i, (a, b) in enumerate(itertools.pairwise(seen)) if not b.startswith(a)]
    if fault in ("disconnect", "truncated_json", "unfinished_stream"):
        assert len(restarts) == 1  # some text came, then the retry started again from ""
    assert seen[-1] == ANSWER


@pytest.mark.parametrize("fault", ["safety_block", "prompt_blocked", "empty_candidates"])
async def test_a_blocked_or_empty_stream_is_an_error(
    fake: FakeGemini, llm: GeminiLLM, fault: str
) -> None:
    fake.fail_next([fault])
    with pytest.raises(LLMError):
        await llm.generate_streaming(questions_request(), lambda text: None)


async def test_the_fallback_provider_answers_a_failed_stream_in_full(
    fake: FakeGemini, llm: GeminiLLM
) -> None:
    fake.fail_next(["safety_block"])
    seen: list[str] = []
    request = LLMRequest(
        step="faq_questions",
        model="gemini-2.5-flash",
        system="s",
        prompt="p",
        output_schema=QuestionList,
        inputs={"documents": [{"title": "a.md", "text": "Returns take 30 days."}], "n": 2},
    )
    response = await generate_with_partials(FallbackLLM(llm, OfflineLLM()), request, seen.append)
    assert response.model != "gemini-2.5-flash"  # answered offline
    assert seen[-1] == response.text
    QuestionList.model_validate_json(response.text)


async def test_a_provider_without_streaming_reports_its_whole_answer_once() -> None:
    seen: list[str] = []
    request = LLMRequest(
        step="faq_questions",
        model="m",
        system="s",
        prompt="p",
        output_schema=QuestionList,
        inputs={"documents": [{"title": "a.md", "text": "Returns take 30 days."}], "n": 2},
    )
    response = await generate_with_partials(OfflineLLM(), request, seen.append)
    assert seen == [response.text]


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("", []),
        ('{"questions": ["a", "b', ["a"]),
        ('{"questions": ["a", "b"', ["a", "b"]),
        ('{"questions": ["a", "tab\\', ["a"]),  # an escape cut in half
        ('{"questions": ["a", 3, "b"]}', ["a", "b"]),  # only strings are items
        ('```json\n{"questions": ["a"', []),  # fenced: left to the final parse
        ('{"other": ["a"]}', []),
        ('["a", "b"]', []),
    ],
)
def test_complete_list_items_reports_only_closed_strings(text: str, items: list[str]) -> None:
    assert complete_list_items(text, "questions") == items


async def test_an_faq_over_gemini_answers_questions_before_the_list_has_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole chain over HTTP: one streamed call, answers requested while it streams."""
    answers = faq_answers(10)
    async with FakeGemini(by_step(answers), latency_s=0.4, stream_chunk_chars=60) as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        policy = RetryPolicy(max_attempts=2, call_timeout_s=5.0, deadline_s=10.0)
        llm = GeminiLLM("test-key-not-real", CallGate(32, 100_000, policy))
        try:
            context = PipelineContext(llm, LLMSettings(), Trace("faq", {}))
            result = await build_faq(
                context,
                [SourceDocument("returns.md", "Returns are accepted within 30 days.")],
                10,
                "parallel",
            )
        finally:
            await llm.aclose()
    assert len(result.items) == 10 and fake.calls == 21 and fake.streamed == 1
    by_name = [(step_name(r.body), r.received_at) for r in fake.requests]
    questions_at = next(at for name, at in by_name if name == "faq_questions")
    first_answer_at = min(at for name, at in by_name if name == "faq_answer")
    # Requested while the questions call was still streaming (a fixed bound on the time
    # failed on a loaded machine, where the stream itself ran late).
    [questions_ended] = fake.stream_ends
    assert questions_at < first_answer_at < questions_ended
