"""`supportbot faq-review`: an operator approves a waiting FAQ without Slack."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from bot.cli import app
from storage.db import Database
from storage.faqs import StoredDocument, StoredEntry, faq_review, save_faq
from storage.migrate import upgrade


async def store_pending(url: str) -> int:
    db = Database(url)
    try:
        return await save_faq(
            db.sessions,
            title="Shipping help",
            documents=[StoredDocument("shipping.md", "Three to five days.")],
            entries=[StoredEntry("How long is shipping?", "Three to five days.", ["shipping.md"])],
            mode="parallel",
            run_id=None,
            created_by="U0CUST",
        )
    finally:
        await db.dispose()


async def review_of(url: str, faq_id: int) -> str | None:
    db = Database(url)
    try:
        return await faq_review(db.sessions, faq_id)
    finally:
        await db.dispose()


def test_list_then_approve_once(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    upgrade(sqlite_url)
    faq_id = asyncio.run(store_pending(sqlite_url))
    runner = CliRunner()

    listed = runner.invoke(app, ["faq-review"])
    assert listed.exit_code == 0 and f"{faq_id}\t" in listed.output
    assert "Shipping help" in listed.output

    approved = runner.invoke(app, ["faq-review", str(faq_id), "--approve"])
    assert approved.exit_code == 0, approved.output
    assert asyncio.run(review_of(sqlite_url, faq_id)) == "approved"
    again = runner.invoke(app, ["faq-review", str(faq_id), "--discard"])
    assert again.exit_code == 1
    assert asyncio.run(review_of(sqlite_url, faq_id)) == "approved"
    assert runner.invoke(app, ["faq-review", str(faq_id)]).exit_code == 2
