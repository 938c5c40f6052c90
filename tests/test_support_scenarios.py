"""Seed scenarios end to end through `SupportService`, on the offline provider and on the
real google-genai client talking to the fake Gemini endpoint."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from pipelines.config import LLMSettings
from pipelines.faq.chain import SourceDocument
from pipelines.faq.runs import create_faq
from pipelines.llm.factory import build_llm, reset_shared_gate
from pipelines.llm.offline import OfflineLLM
from pipelines.support.contracts import IncomingMessage
from pipelines.support.service import SupportService
from pipelines.tracing import format_trace
from storage.catalog import demo_ids, get_or_create_customer
from storage.db import Database
from storage.models import BillingCase, ReturnAuthorization
from storage.traces import TraceStore
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_scripts import by_step, user_text
from tests.incoming import incoming
from tests.scripted_llm import ScriptedLLM

USER = "U0SCENARIO"


@pytest.fixture(autouse=True)
def _act_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """These scenarios test the workers acting (CONFIRM_ACTIONS=none, the old behaviour);
    confirming first is tested in tests/e2e/test_confirmations.py."""
    monkeypatch.setenv("CONFIRM_ACTIONS", "none")


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def message(text: str, ts: str, thread: str = "1000.0001", user: str = USER) -> IncomingMessage:
    return incoming(text, ts, user=user, thread=thread)


async def ids_for(db: Database, user: str = USER) -> tuple[list[str], list[str], list[str]]:
    customer = await get_or_create_customer(db.sessions, user, "T1")
    found = await demo_ids(db.sessions, customer.id)
    return found.order_numbers, found.invoice_numbers, found.products


async def count(db: Database, model: type) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_three_requests_in_one_message_offline(db: Database) -> None:
    orders, invoices, products = await ids_for(db)
    service = SupportService(db, OfflineLLM(), LLMSettings())
    text = (
        f"Hi! Invoice {invoices[0]} looks too high to me. Also I want to return the "
        f"{products[0].lower()} because it is incompatible with my laptop, and where is "
        f"order {orders[1]}?"
    )
    reply = await service.handle(message(text, "1000.0001"))
    case = re.search(r"CASE-\d{6}", reply.text)
    rma = re.search(r"RMA-\d{6}", reply.text)
    assert case and rma, reply.text
    assert orders[1] in reply.text
    assert sorted(reply.actions) == sorted([f"{case[0]} opened", f"{rma[0]} created"])
    assert set(reply.intents) == {"billing_inquiry", "product_return", "order_status"}
    assert (await count(db, BillingCase), await count(db, ReturnAuthorization)) == (1, 1)
    assert "offline assistant" in reply.text and reply.provider == "offline"

    # The same event processed again (a redelivery or a retried job) creates nothing new.
    again = await service.handle(message(text, "1000.0001"))
    assert (await count(db, BillingCase), await count(db, ReturnAuthorization)) == (1, 1)
    assert re.search(r"CASE-\d{6}", again.text)[0] == case[0]  # type: ignore[index]

    run = await TraceStore(db.sessions).load(reply.run_id)
    assert run is not None and run.status == "ok"
    assert [s.name for s in run.steps][:2] == ["classify_intent", "plan_tasks"]
    assert "synthesize_reply" in format_trace(run)


async def test_single_intent_is_routed_to_its_handler(db: Database) -> None:
    orders, _, _ = await ids_for(db)
    service = SupportService(db, OfflineLLM(), LLMSettings())
    reply = await service.handle(message(f"where is my order {orders[0]}", "2000.1"))
    assert reply.intents == ["order_status"]
    assert orders[0] in reply.text and reply.actions == []
    tech = await service.handle(message("my webcam stopped working", "2000.2", thread="2000.2"))
    assert tech.intents == ["technical_support"]
    assert "already tried" in tech.text


async def test_follow_up_supplies_the_missing_invoice_number(db: Database) -> None:
    _, invoices, _ = await ids_for(db)
    service = SupportService(db, OfflineLLM(), LLMSettings())
    first = await service.handle(message("my last invoice looks too high", "3000.1", "3000.1"))
    assert "invoice number" in first.text and first.actions == []
    follow = await service.handle(message(f"it's {invoices[0]}", "3000.2", "3000.1"))
    assert follow.ticket_number == first.ticket_number
    assert re.search(r"CASE-\d{6}", follow.text), follow.text
    assert await count(db, BillingCase) == 1


async def test_another_customers_order_is_answered_like_an_unknown_one(db: Database) -> None:
    others_orders, _, _ = await ids_for(db, user="U0OTHER")
    service = SupportService(db, OfflineLLM(), LLMSettings())
    reply = await service.handle(message(f"where is {others_orders[0]}?", "4000.1"))
    unknown = await service.handle(message("where is ORD-99999?", "4000.2", thread="4000.2"))
    assert f"no order {others_orders[0]} found on your account" in reply.text
    assert unknown.text.replace("ORD-99999", "X") == reply.text.replace(others_orders[0], "X")


async def test_a_second_return_of_the_same_item_is_refused_naming_the_open_rma(
    db: Database,
) -> None:
    _, _, products = await ids_for(db)
    hub = products[0].lower()
    # The synthesizer leaves the refusal's RMA number out: the reply must still carry it.
    llm = ScriptedLLM({"synthesize_reply": {"reply": "Here is what I did."}}, OfflineLLM())
    service = SupportService(db, llm, LLMSettings())

    first = await service.handle(message(f"I want to return the {hub}, it's broken", "5000.1"))
    again = await service.handle(
        message(f"please return my {hub}, it is broken", "5000.2", thread="5000.2")
    )

    rma = re.search(r"RMA-\d{6}", " ".join(first.actions))
    assert rma, first.actions
    assert f"A return is already open for this item: {rma[0]}" in again.text, again.text
    assert again.actions == []
    assert await count(db, ReturnAuthorization) == 1


async def test_a_retried_return_worded_differently_replays_the_same_rma(db: Database) -> None:
    _, _, products = await ids_for(db)
    text = f"I want to return the {products[0].lower()}, it's broken"
    plans = [
        {"tasks": [{"kind": "product_return", "product_name": name, "reason": "broken"}]}
        for name in (products[0], products[0].lower().replace("-", " "))
    ]
    llm = ScriptedLLM({"plan_tasks": plans}, OfflineLLM())
    service = SupportService(db, llm, LLMSettings())

    first = await service.handle(message(text, "6000.1"))
    retry = await service.handle(message(text, "6000.1"))  # the same job, run again

    assert first.actions and retry.actions == first.actions
    assert await count(db, ReturnAuthorization) == 1


async def test_general_question_is_answered_from_a_stored_faq_with_its_citation(
    db: Database,
) -> None:
    docs = [
        SourceDocument("shipping.md", "Standard shipping takes 3 to 5 business days."),
        SourceDocument("returns.md", "Returns are accepted within 30 days of delivery."),
    ]
    run = await create_faq(db, OfflineLLM(), LLMSettings(), docs, n=2, approved=True)
    assert run.faq_id is not None
    service = SupportService(db, OfflineLLM(), LLMSettings())
    reply = await service.handle(message("how many days does shipping take?", "5000.1"))
    assert "3 to 5 business days" in reply.text
    assert "Sources: shipping.md" in reply.text
    assert "returns.md" not in reply.text


async def test_three_requests_over_the_real_gemini_client(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, invoices, products = await ids_for(db)
    text = (
        f"Invoice {invoices[0]} looks too high, I want to return the {products[0]} since it "
        f"is incompatible, and where is {orders[1]}?"
    )
    responder = by_step(
        {
            "classify_intent": lambda b: {
                "intent": "billing_inquiry",
                "confidence": 0.93,
                "multiple_requests": True,
            },
            "plan_tasks": lambda b: {
                "tasks": [
                    {"kind": "billing_inquiry", "invoice_number": invoices[0]},
                    {
                        "kind": "product_return",
                        "product_name": products[0],
                        "reason": "incompatible",
                    },
                    {"kind": "status_update", "order_id": orders[1]},
                ]
            },
            "extract_concern": lambda b: {
                "wants_investigation": True,
                "concern": "total looks too high",
            },
            # The model forgets the ids: the synthesizer's output is completed in code.
            "synthesize_reply": lambda b: {
                "reply": "All sorted! " + ("(status seen)" if orders[1] in user_text(b) else "")
            },
        }
    )
    async with FakeGemini(responder) as fake:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
        reset_shared_gate()
        settings = LLMSettings(gemini_api_key="test-key", llm_provider="gemini")  # type: ignore[arg-type]
        llm = build_llm(settings)
        try:
            reply = await SupportService(db, llm, settings).handle(message(text, "6000.1"))
        finally:
            await llm.aclose()  # type: ignore[attr-defined]
        assert fake.calls == 4
    assert reply.provider == "gemini"
    assert "(status seen)" in reply.text
    assert re.search(r"CASE-\d{6} opened", reply.text) and re.search(
        r"RMA-\d{6} created", reply.text
    )
    assert (await count(db, BillingCase), await count(db, ReturnAuthorization)) == (1, 1)


async def test_a_retried_faq_request_reuses_the_stored_faq(db: Database) -> None:
    docs = [SourceDocument("shipping.md", "Standard shipping takes 3 to 5 business days.")]
    first = await create_faq(db, OfflineLLM(), LLMSettings(), docs, n=1, request_key="faq:T1:V1")

    class NoCalls(OfflineLLM):
        async def generate(self, request):  # type: ignore[no-untyped-def]
            raise AssertionError("a retried request must not call the LLM again")

    again = await create_faq(db, NoCalls(), LLMSettings(), docs, n=1, request_key="faq:T1:V1")
    assert again.faq_id == first.faq_id and again.run_id == first.run_id
    assert [i.question for i in again.result.items] == [i.question for i in first.result.items]


async def gemini_service(
    db: Database, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> tuple[SupportService, LLMSettings]:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
    reset_shared_gate()
    settings = LLMSettings(gemini_api_key="test-key", llm_provider="gemini", llm_fallback="none")  # type: ignore[arg-type]
    return SupportService(db, build_llm(settings), settings), settings


async def test_single_intent_and_a_follow_up_over_the_real_gemini_client(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, invoices, _ = await ids_for(db)
    said: list[str] = []

    def classify(body: dict) -> dict:  # type: ignore[type-arg]
        said.append(user_text(body))
        return {"intent": "billing_inquiry", "confidence": 0.9}

    def plan(body: dict) -> dict:  # type: ignore[type-arg]
        # The model reads the invoice number from the newest message only when given.
        number = invoices[0] if invoices[0] in user_text(body) else None
        return {"tasks": [{"kind": "billing_inquiry", "invoice_number": number}]}

    responder = by_step(
        {
            "classify_intent": classify,
            "plan_tasks": plan,
            "extract_concern": lambda b: {"wants_investigation": True, "concern": "too high"},
            "synthesize_reply": lambda b: {"reply": "Here is what I found."},
        }
    )
    async with FakeGemini(responder) as fake:
        service, _ = await gemini_service(db, fake, monkeypatch)
        try:
            first = await service.handle(
                message("my last invoice looks too high", "7000.1", "7000.1")
            )
            follow = await service.handle(message(f"it's {invoices[0]}", "7000.2", "7000.1"))
        finally:
            await service.llm.aclose()  # type: ignore[attr-defined]
    assert first.intents == ["billing_inquiry"] and first.actions == []
    assert "my last invoice looks too high" in said[1]  # the history reached the model
    assert re.search(r"CASE-\d{6} opened", follow.text) and follow.provider == "gemini"
    assert follow.ticket_number == first.ticket_number


async def test_invented_faq_source_titles_are_dropped_over_the_real_gemini_client(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [
        SourceDocument("shipping.md", "Standard shipping takes 3 to 5 business days."),
        SourceDocument("returns.md", "Returns are accepted within 30 days of delivery."),
    ]
    responder = by_step(
        {
            "faq_questions": lambda b: {"questions": ["How long is shipping?"]},
            "faq_answer": lambda b: {"answer": "3 to 5 business days."},
            "faq_sources": lambda b: {"sources": ["shipping.md", "pricing-secrets.pdf"]},
        }
    )
    async with FakeGemini(responder) as fake:
        _, settings = await gemini_service(db, fake, monkeypatch)
        llm = build_llm(settings)
        try:
            run = await create_faq(db, llm, settings, docs, n=1)
        finally:
            await llm.aclose()  # type: ignore[attr-defined]
        assert fake.calls == 3
    [item] = run.result.items
    assert item.sources == ["shipping.md"]
    assert any("pricing-secrets.pdf" in note for note in run.result.notes)


async def test_two_invoices_in_one_message_wait_for_two_confirmations(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFIRM_ACTIONS", "billing_cases")
    _, invoices, _ = await ids_for(db)
    service = SupportService(db, OfflineLLM(), LLMSettings())
    text = f"Invoice {invoices[0]} looks too high and invoice {invoices[1]} charged me twice"
    reply = await service.handle(message(text, "7000.1", thread="7000.1"))
    assert len({p.id for p in reply.pending}) == 2, reply.pending
    opened_on = [p.summary.split(":")[0] for p in reply.pending]
    assert opened_on == [f"Open a billing case on invoice {number}" for number in invoices[:2]]
    again = await service.handle(message(text, "7000.1", thread="7000.1"))  # a retried job
    assert [p.id for p in again.pending] == [p.id for p in reply.pending]
    assert await count(db, BillingCase) == 0  # nothing is done before a yes
