"""The offline provider: deterministic, no network, same interface as Gemini (SPEC 7).

It answers each named step from the step's raw `inputs` with keyword/regex rules,
rapidfuzz entity matching, BM25 extractive answers and templated replies. It makes the bot
usable and testable without a key and is the degraded mode when Gemini keeps failing.
Its replies say what it is; it never pretends to be the LLM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipelines.lexical import rank
from pipelines.llm import offline_rules as rules
from pipelines.llm.base import LLMError, LLMRequest, LLMResponse, TokenUsage
from pipelines.llm.offline_replies import OFFLINE_NOTE, synthesize, technical_reply

OFFLINE_MODEL = "offline-rules-v1"
Handler = Callable[[Mapping[str, Any]], dict[str, Any]]


class OfflineLLM:
    """Rule-based stand-in for an LLM; `generate` returns JSON text like a real provider."""

    name = "offline"

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {
            "classify_intent": classify,
            "plan_tasks": plan,
            "extract_concern": concern,
            "synthesize_reply": lambda i: {"reply": synthesize(i["results"])},
            "technical_support": lambda i: {"reply": technical_reply(i["message"], i["products"])},
            "answer_from_knowledge": answer_from_passages,
            "technical_from_manuals": answer_from_passages,
            "draft_knowledge_entry": draft_entry,
            "brief_ticket": brief_from_turns,
            "faq_questions": faq_questions,
            "faq_answer": faq_answer,
            "faq_sources": faq_sources,
            "single_prompt_baseline": single_prompt,  # supportbot eval
        }

    async def generate(self, request: LLMRequest) -> LLMResponse:
        handler = self._handlers.get(request.step)
        if handler is None:
            raise LLMError(f"the offline provider has no rule for step '{request.step}'")
        text = json.dumps(handler(request.inputs))
        # Token counts are estimates (4 characters a token), reported so that the eval and
        # benchmarks can compare prompt sizes even without a real provider.
        usage = TokenUsage(
            input_tokens=(len(request.system) + len(request.prompt)) // 4,
            output_tokens=len(text) // 4,
        )
        return LLMResponse(text=text, model=OFFLINE_MODEL, usage=usage)


def _customer_text(inputs: Mapping[str, Any]) -> str:
    """The new message plus the customer's earlier turns (for follow-ups)."""
    earlier = [t["text"] for t in inputs.get("history", []) if t.get("role") == "customer"]
    return "\n".join([*earlier[-3:], inputs["message"]])


def classify(inputs: Mapping[str, Any]) -> dict[str, Any]:
    message = str(inputs["message"])
    scores = rules.intent_scores(message)
    if scores["human_handoff"]:
        return {"intent": "human_handoff", "confidence": 0.95, "urgent": rules.is_urgent(message)}
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], list(scores).index(kv[0])))
    top, top_score = ranked[0]
    if top_score == 0:
        # No rule fired: a follow-up carrying only an id continues that kind of request.
        top = "general_question"
        for intent in ("billing_inquiry", "order_status", "product_return"):
            if rules.intent_scores(_customer_text(inputs))[intent]:
                top = intent
                break
        return {"intent": top, "confidence": 0.6, "urgent": rules.is_urgent(message)}
    runner_up = ranked[1][1]
    actions = sum(1 for intent in rules.ACTION_INTENTS if scores[intent])
    confidence = 0.9 if top_score > runner_up else 0.7
    if top_score == runner_up and top not in rules.ACTION_INTENTS:
        confidence = 0.45
    return {
        "intent": top,
        "confidence": confidence,
        "multiple_requests": actions >= 2,
        "urgent": rules.is_urgent(message),
    }


def plan(inputs: Mapping[str, Any]) -> dict[str, Any]:
    message = str(inputs["message"])
    context = _customer_text(inputs)
    scores = rules.intent_scores(message)
    tasks: list[dict[str, Any]] = []
    invoices = rules.invoice_ids(message) or (
        rules.invoice_ids(context) if scores["billing_inquiry"] else []
    )
    for number in invoices:
        tasks.append({"kind": "billing_inquiry", "invoice_number": number})
    if scores["billing_inquiry"] and not invoices:
        tasks.append({"kind": "billing_inquiry", "invoice_number": None})
    if scores["product_return"]:
        requests = rules.return_requests(message, inputs.get("products", [])) or [(None, None)]
        for product, reason in requests:
            tasks.append({"kind": "product_return", "product_name": product, "reason": reason})
    orders = rules.order_ids(message)
    for number in orders:
        tasks.append({"kind": "status_update", "order_id": number})
    if scores["order_status"] and not orders and not rules.invoice_ids(message):
        tasks.append({"kind": "status_update", "order_id": None})
    return {"tasks": tasks[:8]}


def concern(inputs: Mapping[str, Any]) -> dict[str, Any]:
    text = _customer_text(inputs)
    number = str(inputs.get("invoice", {}).get("invoice_number", ""))
    return {
        "wants_investigation": rules.wants_investigation(text),
        "concern": rules.concern_sentence(text, number),
    }


def answer_from_passages(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Extractive: the best passage, when it holds enough of the question's words.

    An FAQ entry answers with its answer; a document passage with its sentences most
    like the question (the whole passage when it is short).
    """
    passages = list(inputs.get("passages", []))
    texts = [
        f"{p['question']} {p['question']} {' '.join(p['labels'])} {p['text']}" for p in passages
    ]
    question = str(inputs["message"])
    hits = rank(question, texts, k=1)
    if not hits or coverage(question, texts[hits[0][0]]) < MIN_COVERAGE:
        return {"answerable": False, "answer": "", "sources": []}
    best = passages[hits[0][0]]
    answer = str(best["text"]) if best["kind"] == "faq" else _extract(question, str(best["text"]))
    return {"answerable": True, "answer": answer, "sources": list(best["labels"])}


SHORT_PASSAGE = 400


def draft_entry(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The customer's first question and the agent's words, trimmed (no condensing)."""
    asked = rules.sentences(str(inputs["customer"])) or [str(inputs["customer"]).strip()]
    question = next((s for s in asked if s.endswith("?")), asked[0])
    return {"question": question[:500], "answer": " ".join(str(inputs["agent"]).split())[:3000]}


def brief_from_turns(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """An extractive brief: the customer's first words, the bot's last, the ids written."""
    lines = str(inputs["conversation"]).splitlines()
    said = [line.split(": ", 1)[1] for line in lines if line.startswith("customer: ")]
    answered = [line.split(": ", 1)[1] for line in lines if line.startswith("bot: ")]
    ids = list(
        dict.fromkeys(re.findall(r"\b(?:ORD|INV|RMA|CASE)-\d+\b", str(inputs["conversation"])))
    )
    return {
        "wants": (said[0] if said else "(nothing written)")[:500],
        "bot_did": (answered[-1] if answered else "nothing yet")[:500],
        "ids": ids[:20],
        "mood": "unknown",
        "still_open": (str(inputs.get("reason") or "") or "see the conversation")[:500],
    }


def _extract(question: str, text: str) -> str:
    """A short passage whole; of a longer one, its two sentences most like the question."""
    if len(text) <= SHORT_PASSAGE:
        return text
    pool = rules.sentences(text)
    hits = rank(question, pool, k=2)
    if not hits:
        return text[:SHORT_PASSAGE]
    return " ".join(pool[i] for i in sorted(i for i, _ in hits))


MIN_COVERAGE = 0.34


def coverage(question: str, text: str) -> float:
    """The share of the question's content words that the text contains."""
    words = rules.content_words(question)
    if not words:
        return 0.0
    lowered = text.lower()
    return sum(1 for word in words if word in lowered) / len(words)


def _documents(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"title": str(d["title"]), "text": str(d["text"])} for d in inputs["documents"]]


def faq_questions(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Extractive questions: one per informative sentence, taken round-robin across documents."""
    n = int(inputs["n"])
    per_doc = [rules.sentences(doc["text"]) for doc in _documents(inputs)]
    questions: list[str] = []
    seen: set[str] = set()
    depth = 0
    while len(questions) < n and any(depth < len(s) for s in per_doc):
        for doc_sentences in per_doc:
            if depth < len(doc_sentences) and len(questions) < n:
                topic = " ".join(rules.content_words(doc_sentences[depth])[:5])
                question = f"What do the documents say about {topic}?"
                if topic and question not in seen:
                    seen.add(question)
                    questions.append(question)
        depth += 1
    return {"questions": questions}


def faq_answer(inputs: Mapping[str, Any]) -> dict[str, Any]:
    pool = [s for doc in _documents(inputs) for s in rules.sentences(doc["text"])]
    hits = rank(str(inputs["question"]), pool, k=2)
    if not hits:
        return {"answer": "The documents do not cover this."}
    # A second sentence only when it is nearly as relevant as the best one.
    kept = [i for i, score in hits if score >= 0.6 * hits[0][1]]
    return {"answer": " ".join(pool[i] for i in sorted(kept))}


def faq_sources(inputs: Mapping[str, Any]) -> dict[str, Any]:
    answer = " ".join(str(inputs["answer"]).split())
    titles = [
        doc["title"]
        for doc in _documents(inputs)
        if any(s in answer for s in rules.sentences(doc["text"]))
    ]
    return {"sources": titles}


def _acknowledge(tasks: Sequence[Mapping[str, Any]]) -> str:
    kinds = ", ".join(dict.fromkeys(str(t["kind"]).replace("_", " ") for t in tasks))
    return f"Thanks! I've noted your request ({kinds}); the team will follow up here."


def single_prompt(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to `single_prompt_baseline` (`pipelines.eval.baseline`): every rule, in one call.

    It applies the very rules of the offline router, planner and FAQ answer/sources steps
    to the same inputs (so a rule change moves both systems alike), but as one call that
    returns one object: no confidence, no second look at its own answer.
    """
    message = str(inputs["message"])
    conversation = {
        "message": message,
        "history": list(inputs.get("history", [])),
        "products": list(inputs.get("products", [])),
    }
    intent = str(classify(conversation)["intent"])
    tasks = list(plan(conversation)["tasks"])
    question = {"documents": list(inputs.get("documents", [])), "question": message}
    answer = str(faq_answer(question)["answer"])
    sources = list(faq_sources({**question, "answer": answer})["sources"])
    if intent == "human_handoff":
        reply = "I'll pass you to a person from the support team."
    elif tasks and intent != "general_question":
        reply = _acknowledge(tasks)
    else:
        reply = answer
    return {
        "intent": intent,
        "tasks": tasks,
        "reply": f"{reply} {OFFLINE_NOTE}",
        "sources": sources,
    }
