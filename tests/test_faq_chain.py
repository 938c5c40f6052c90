"""The FAQ prompt chain with the scripted LLM: call counts, modes, citations, caching."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipelines.config import LLMSettings
from pipelines.faq.chain import (
    ChainState,
    SourceDocument,
    build_faq,
    documents_block,
    faq_markdown,
)
from pipelines.llm.base import LLMRequest, LLMUnavailable
from pipelines.steps import PipelineContext, StepFailed, Trace
from tests.scripted_llm import ScriptedLLM, StreamingScriptedLLM

DOCS = [
    SourceDocument("returns.md", "Returns are accepted within 30 days."),
    SourceDocument("shipping.txt", "Shipping takes 3 to 5 business days."),
    SourceDocument("warranty.md", "All products carry a two-year warranty."),
]


def scripted(n: int, invented: bool = False) -> ScriptedLLM:
    def sources(request: LLMRequest) -> dict[str, list[str]]:
        cited = ["returns.md"]
        if invented:
            cited.append("secret-pricing.pdf")
        return {"sources": cited}

    return ScriptedLLM(
        {
            "faq_questions": {"questions": [f"Question {i}?" for i in range(n)]},
            "faq_answer": lambda req: {"answer": f"Answer to {req.inputs['question']}"},
            "faq_sources": sources,
        }
    )


def ctx_for(llm: ScriptedLLM) -> PipelineContext:
    return PipelineContext(llm, LLMSettings(), Trace("faq", {}))


async def test_ten_questions_over_three_documents_make_twenty_one_calls() -> None:
    llm = scripted(10)
    result = await build_faq(ctx_for(llm), DOCS, 10, "parallel")
    assert len(result.items) == 10
    assert len(llm.calls) == 21
    assert llm.steps().count("faq_answer") == llm.steps().count("faq_sources") == 10


async def test_parallel_mode_runs_question_chains_concurrently() -> None:
    in_flight = 0
    peak = 0
    llm = scripted(6)
    inner = llm.generate

    async def tracking(request: LLMRequest):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        try:
            return await inner(request)
        finally:
            in_flight -= 1

    llm.generate = tracking  # type: ignore[method-assign]
    await build_faq(ctx_for(llm), DOCS, 6, "parallel")
    assert peak == 6
    peak = 0
    llm2 = scripted(6)
    inner = llm2.generate
    llm2.generate = tracking  # type: ignore[method-assign]
    await build_faq(ctx_for(llm2), DOCS, 6, "sequential")
    assert peak == 1


async def test_invented_source_titles_are_dropped_and_reported() -> None:
    result = await build_faq(ctx_for(scripted(3, invented=True)), DOCS, 3)
    assert all(item.sources == ["returns.md"] for item in result.items)
    assert any("secret-pricing.pdf" in note for note in result.notes)
    assert "secret-pricing.pdf" not in faq_markdown("FAQ", result)


async def test_every_faq_prompt_starts_with_the_shared_document_block() -> None:
    llm = scripted(4)
    await build_faq(ctx_for(llm), DOCS, 4)
    block = documents_block(DOCS)
    assert all(call.prompt.startswith(block) for call in llm.calls)


async def test_questions_are_deduplicated_and_capped_and_progress_is_reported() -> None:
    llm = ScriptedLLM(
        {
            "faq_questions": {"questions": ["Same?", "Same?", " ", "Other?", "Third?"]},
            "faq_answer": {"answer": "A."},
            "faq_sources": {"sources": []},
        }
    )
    seen: list[tuple[str, int, int]] = []

    async def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))

    result = await build_faq(ctx_for(llm), DOCS, 2, progress=progress)
    assert [item.question for item in result.items] == ["Same?", "Other?"]
    assert seen[0] == ("questions", 0, 2)
    assert seen[-1] == ("answers", 2, 2)


async def test_a_question_whose_steps_keep_failing_is_skipped_with_a_note() -> None:
    llm = ScriptedLLM(
        {
            "faq_questions": {"questions": ["Good?", "Bad?"]},
            "faq_answer": lambda req: (
                "garbage" if req.inputs["question"] == "Bad?" else {"answer": "Fine."}
            ),
            "faq_sources": {"sources": ["warranty.md"]},
        }
    )
    result = await build_faq(ctx_for(llm), DOCS, 2)
    assert [item.question for item in result.items] == ["Good?"]
    assert any("skipped 'Bad?'" in note for note in result.notes)


def streaming(n: int, **options: Any) -> StreamingScriptedLLM:
    return StreamingScriptedLLM(
        {
            "faq_questions": {"questions": [f"Question {i}?" for i in range(n)]},
            "faq_answer": lambda req: {"answer": f"Answer to {req.inputs['question']}"},
            "faq_sources": {"sources": ["returns.md"]},
        },
        **options,
    )


async def test_parallel_mode_answers_questions_while_the_list_is_still_streaming() -> None:
    llm = streaming(10)
    result = await build_faq(ctx_for(llm), DOCS, 10, "parallel")
    questions_done = llm.timeline.index(("end", "faq_questions"))
    first_answer = llm.timeline.index(("start", "faq_answer"))
    assert first_answer < questions_done
    assert [item.question for item in result.items] == [f"Question {i}?" for i in range(10)]
    assert len(llm.calls) == 21


async def test_without_streaming_answers_wait_for_the_whole_list() -> None:
    llm = streaming(10)
    result = await build_faq(ctx_for(llm), DOCS, 10, "parallel", stream=False)
    assert llm.timeline.index(("end", "faq_questions")) < llm.timeline.index(
        ("start", "faq_answer")
    )
    assert len(result.items) == 10


async def test_streamed_questions_are_deduplicated_and_capped() -> None:
    llm = StreamingScriptedLLM(
        {
            "faq_questions": {"questions": ["Same?", " Same? ", " ", "Other?", "Third?", "4?"]},
            "faq_answer": {"answer": "A."},
            "faq_sources": {"sources": []},
        },
        chunk_chars=4,
    )
    result = await build_faq(ctx_for(llm), DOCS, 3)
    assert [item.question for item in result.items] == ["Same?", "Other?", "Third?"]
    assert llm.steps().count("faq_answer") == 3


async def test_a_questions_step_that_fails_cancels_the_chains_it_already_started() -> None:
    # Both attempts stream two good questions, then an item that fails the schema.
    broken = '{"questions": ["First?", "Second?", 42]}'
    llm = StreamingScriptedLLM(
        {
            "faq_questions": [broken, broken],
            "faq_answer": {"answer": "A."},
            "faq_sources": {"sources": []},
        },
        chunk_chars=8,
        step_delays={"faq_answer": 5.0},
    )
    with pytest.raises(StepFailed):
        await build_faq(ctx_for(llm), DOCS, 4)
    assert llm.timeline.count(("start", "faq_answer")) == 2  # started early, once each
    assert ("end", "faq_answer") not in llm.timeline  # cancelled, not left running
    assert "faq_sources" not in llm.steps()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_resumed_chain_asks_only_what_the_interrupted_one_left_open() -> None:
    """The provider fails after some answers (a job timeout or an outage); the saved state
    lets the retry skip the question list and every finished answer."""
    saved: list[ChainState] = []

    async def save(state: ChainState) -> None:
        saved.append(state.model_copy(deep=True))

    answers = 0

    def answer_until_outage(request: LLMRequest) -> Any:
        nonlocal answers
        answers += 1
        if answers == 4:
            return LLMUnavailable("provider down")
        return {"answer": f"Answer to {request.inputs['question']}"}

    first = scripted(6)
    first.scripts["faq_answer"] = answer_until_outage
    with pytest.raises(LLMUnavailable):
        await build_faq(ctx_for(first), DOCS, 6, "sequential", save_state=save)
    state = saved[-1]
    assert state.questions == [f"Question {i}?" for i in range(6)]
    assert sorted(state.answered) == ["Question 0?", "Question 1?", "Question 2?"]

    second = scripted(6)
    result = await build_faq(ctx_for(second), DOCS, 6, "sequential", resume=state)
    assert [item.question for item in result.items] == state.questions  # in list order
    assert "faq_questions" not in second.steps()
    assert [c.inputs["question"] for c in second.calls if c.step == "faq_answer"] == [
        "Question 3?",
        "Question 4?",
        "Question 5?",
    ]


async def test_a_parallel_chain_saves_each_answer_and_resumes_from_them() -> None:
    saved: list[ChainState] = []

    async def save(state: ChainState) -> None:
        saved.append(state.model_copy(deep=True))

    await build_faq(ctx_for(scripted(5)), DOCS, 5, "parallel", save_state=save)
    assert len(saved) == 1 + 5  # the question list, then one save per answer
    assert [len(s.answered) for s in saved] == [0, 1, 2, 3, 4, 5]

    again = scripted(5)
    result = await build_faq(ctx_for(again), DOCS, 5, "parallel", resume=saved[-1])
    assert len(result.items) == 5 and again.calls == []  # all of it was finished
