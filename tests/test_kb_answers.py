"""Grounded answers with a scripted model: citations checked against the passages
retrieved, links only from cited passages, manuals first for technical questions, and a
knowledge gap logged whenever nothing relevant was found."""

from __future__ import annotations

from pipelines.config import LLMSettings
from pipelines.knowledge.answers import GENERAL_ADVICE_NOTE, NO_KNOWLEDGE_TEXT
from pipelines.knowledge.retrieval import RetrievedPassage
from pipelines.steps import PipelineContext, Trace
from pipelines.support.request import SupportRequest
from pipelines.support.routing import HANDOFF_TEXT, answer_message
from storage.backends import Actor
from tests.scripted_llm import ScriptedLLM

RESET = RetrievedPassage(
    "document",
    "router-x200.pdf",
    "Hold the pinhole button for twelve seconds, then choose a new password at "
    "https://router.example/setup",
    ("3 Resetting the admin password",),
)
LABELS = "router-x200.pdf > 3 Resetting the admin password"
WIFI = RetrievedPassage("document", "router-x200.pdf", "Use 5 GHz.", ("2 Wireless",))


class Stub:
    def __init__(self, passages: list[RetrievedPassage]) -> None:
        self.passages = passages
        self.gaps: list[tuple[str, str, str]] = []

    async def search(self, query: str, k: int = 5) -> list[RetrievedPassage]:
        return self.passages[:k]

    async def log_gap(self, request_key: str, question: str, intent: str, user: str) -> None:
        self.gaps.append((request_key, question, intent))


def request(text: str) -> SupportRequest:
    return SupportRequest(request_id="r1", text=text, actor=Actor(customer_id=1))


def context(llm: ScriptedLLM) -> PipelineContext:
    return PipelineContext(llm, LLMSettings(), Trace("test", {}))


async def test_a_technical_answer_from_the_manual_cites_its_section_and_may_link() -> None:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "technical_support", "confidence": 0.9},
            "technical_from_manuals": {
                "answerable": True,
                "answer": "Hold the pinhole button for twelve seconds.",
                "sources": [
                    "router-x200.PDF >  3 Resetting the admin password",
                    "router-x200.pdf > 9 Invented section",
                ],
            },
        }
    )
    knowledge = Stub([RESET, WIFI])
    outcome = await answer_message(context(llm), request("reset my router"), {}, knowledge)
    assert outcome.text.endswith(f"_Sources: {LABELS}_")
    assert "Invented" not in outcome.text
    assert outcome.intents == ["technical_support"]
    assert outcome.links == ["https://router.example/setup"]
    assert knowledge.gaps == []


async def test_a_technical_question_the_manuals_miss_gets_general_advice_and_a_gap() -> None:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "technical_support", "confidence": 0.9},
            "technical_from_manuals": {"answerable": False, "answer": "", "sources": []},
            "technical_support": {"reply": "Try restarting it. Which model is it?"},
        }
    )
    knowledge = Stub([WIFI])
    outcome = await answer_message(context(llm), request("my kettle beeps"), {}, knowledge)
    assert outcome.text == f"Try restarting it. Which model is it?\n\n{GENERAL_ADVICE_NOTE}"
    assert outcome.links == []
    assert knowledge.gaps == [("r1", "my kettle beeps", "technical_support")]


async def test_an_uncited_passages_links_are_not_allowed() -> None:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "general_question", "confidence": 0.9},
            "answer_from_knowledge": {
                "answerable": True,
                "answer": "Use 5 GHz; see https://router.example/setup",
                "sources": ["router-x200.pdf > 2 Wireless"],
            },
        }
    )
    outcome = await answer_message(context(llm), request("which band"), {}, Stub([RESET, WIFI]))
    assert outcome.links == []
    assert "_Sources: router-x200.pdf > 2 Wireless_" in outcome.text


async def test_a_declined_general_question_is_logged_as_a_gap() -> None:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "general_question", "confidence": 0.9},
            "answer_from_knowledge": {"answerable": False, "answer": "", "sources": []},
        }
    )
    knowledge = Stub([WIFI])
    outcome = await answer_message(context(llm), request("do you sell cars"), {}, knowledge)
    assert outcome.text == NO_KNOWLEDGE_TEXT
    assert knowledge.gaps == [("r1", "do you sell cars", "general_question")]


async def test_an_unsure_question_the_knowledge_answers_is_answered_not_escalated() -> None:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "technical_support", "confidence": 0.45},
            "answer_from_knowledge": {
                "answerable": True,
                "answer": "Hold the pinhole button.",
                "sources": [LABELS],
            },
        }
    )
    outcome = await answer_message(context(llm), request("reset password?"), {}, Stub([RESET]))
    assert not outcome.escalated and outcome.text.startswith("Hold the pinhole button.")


async def test_an_unsure_question_the_knowledge_does_not_answer_escalates() -> None:
    llm = ScriptedLLM(
        {
            "classify_intent": {"intent": "general_question", "confidence": 0.4},
            "answer_from_knowledge": {"answerable": False, "answer": "", "sources": []},
        }
    )
    knowledge = Stub([WIFI])
    outcome = await answer_message(context(llm), request("hmm?"), {}, knowledge)
    assert outcome.escalated and outcome.text == HANDOFF_TEXT
    assert knowledge.gaps == [("r1", "hmm?", "general_question")]
