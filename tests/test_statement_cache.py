"""Every SQL statement a message runs can be kept in SQLAlchemy's compiled cache: one it
cannot cache ("[no key]" in its log) is compiled again on every run, which cost the daily
budget's upsert (rows given to `.values()`) and the ticket's first-response update
(`SecondsBetween` without its operands in the cache key) most of their CPU."""

from __future__ import annotations

import itertools
import logging

import pytest

from pipelines.config import LLMSettings
from pipelines.support.service import SupportService
from storage.db import Database
from tests.incoming import incoming
from tests.scripted_llm import ScriptedLLM

SCRIPTS = {
    "classify_intent": {"intent": "billing_inquiry", "confidence": 0.93, "multiple_requests": True},
    "plan_tasks": {
        "tasks": [
            {"kind": "billing_inquiry", "invoice_number": "INV-10011"},
            {"kind": "product_return", "product_name": "Mechanical Keyboard", "reason": "broken"},
            {"kind": "status_update", "order_id": "ORD-10011"},
        ]
    },
    "extract_concern": {"wants_investigation": True, "concern": "the total looks too high"},
    "synthesize_reply": {"reply": "Here is where each part of your request stands."},
}
TEXT = (
    "Invoice INV-10011 is too high, I want to return the Mechanical Keyboard, where is ORD-10011?"
)


@pytest.fixture(autouse=True)
def _act_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIRM_ACTIONS", "none")  # the workers write, as most paths do


async def test_no_statement_of_a_message_is_compiled_every_time(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    service = SupportService(database, ScriptedLLM(dict(SCRIPTS)), LLMSettings())

    async def answer(n: int) -> None:
        reply = await service.handle(incoming(TEXT, f"{1000 + n}.0001", user=f"U0CACHE{n}"))
        assert reply.text and not reply.silent

    await answer(0)
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
        await answer(2)
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("[cached since") for m in messages), "SQL logging captured nothing"
    uncacheable = [
        f"{statement[:120]} {tag[:30]}"
        for statement, tag in itertools.pairwise(messages)
        if tag.startswith("[no key")
    ]
    assert uncacheable == []
