"""Building the long-lived objects of one process from settings: database, LLM, service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.settings import Settings
from pipelines.llm.base import LLM
from pipelines.llm.factory import build_llm
from pipelines.support.service import SupportService
from storage.db import Database
from storage.migrate import upgrade


@dataclass
class Runtime:
    settings: Settings
    db: Database
    llm: LLM
    support: SupportService


@asynccontextmanager
async def open_runtime(
    settings: Settings, llm: LLM | None = None, migrate: bool = True
) -> AsyncIterator[Runtime]:
    """Migrate the database (unless told not to), then yield the wired-up runtime."""
    if migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url)
    provider = llm or build_llm(settings)
    try:
        yield Runtime(
            settings=settings,
            db=db,
            llm=provider,
            support=SupportService(
                db, provider, settings, agent_ids=frozenset(settings.support_agent_ids)
            ),
        )
    finally:
        close = getattr(provider, "aclose", None)
        if close is not None:
            await close()
        await db.dispose()
