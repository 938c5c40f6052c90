"""Shared pieces of the benchmarks: the fake Gemini endpoint, the real client, documents.

Every benchmark runs the real google-genai client against a local fake endpoint with a
fixed per-call latency, so the numbers measure this project's scheduling, not Google's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from pipelines.config import LLMSettings
from pipelines.faq import SourceDocument
from pipelines.llm.gemini import GeminiLLM
from pipelines.llm.reliability import CallGate, RetryPolicy
from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.gemini_scripts import StepAnswer, by_step, user_text

TOPICS = {
    "shipping.md": "Standard shipping takes {d} business days. Express orders placed before "
    "2pm ship the same day. Orders over 50 dollars ship free. We ship to {d} countries.",
    "returns.md": "Returns are accepted within {d} days of delivery. Items must be unused and "
    "in their original packaging. Refunds reach the original payment method in {d} days.",
    "warranty.md": "Every product carries a {d}-year warranty against manufacturing defects. "
    "Accidental damage is not covered. Claims need the order number and a photo.",
}


def documents(paragraphs: int = 12) -> list[SourceDocument]:
    """Three documents of a realistic size (about 1,500 tokens each)."""
    return [
        SourceDocument(title, "\n\n".join(text.format(d=i + 2) for i in range(paragraphs)))
        for title, text in TOPICS.items()
    ]


def faq_answers(n: int) -> dict[str, StepAnswer]:
    """Scripted, valid answers for the three FAQ steps."""

    def question_of(body: dict[str, Any]) -> str:
        found = re.search(r"<question>\n(.*?)\n</question>", user_text(body), re.DOTALL)
        return found.group(1) if found else "?"

    return {
        "faq_questions": lambda body: {"questions": [f"What about topic {i}?" for i in range(n)]},
        "faq_answer": lambda body: {"answer": f"The documents answer: {question_of(body)}"},
        "faq_sources": lambda body: {"sources": ["returns.md"]},
    }


class RemoteFake:
    """The fake endpoint in a child process, so its CPU time is not on the bot's event loop.

    Answers are closures; the child is forked, so they need no pickling.
    """

    def __init__(self, answers: dict[str, StepAnswer], latency_s: float, quota_rpm: int | None):
        self._answers = answers
        self._latency_s = latency_s
        self._quota_rpm = quota_rpm
        self._process: multiprocessing.process.BaseProcess | None = None
        self.base_url = ""

    def _serve(self, port_out: Connection) -> None:
        async def serve() -> None:
            async with FakeGemini(
                by_step(self._answers), latency_s=self._latency_s, rpm=self._quota_rpm
            ) as fake:
                port_out.send(fake.base_url)
                await asyncio.Event().wait()

        asyncio.run(serve())

    def __enter__(self) -> RemoteFake:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=self._serve, args=(sender,), daemon=True)
        self._process.start()
        if not receiver.poll(20):
            raise RuntimeError("the fake Gemini process did not start")
        self.base_url = receiver.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(5)

    async def stats(self, reset: bool = False) -> dict[str, int]:
        async with aiohttp.ClientSession() as session:
            if reset:
                async with session.post(self.base_url + "_fake/reset") as response:
                    return dict(await response.json())
            async with session.get(self.base_url + "_fake/stats") as response:
                return dict(await response.json())


@asynccontextmanager
async def gemini_against_fake(
    answers: dict[str, StepAnswer],
    *,
    latency_s: float,
    max_concurrency: int,
    rpm: int,
    quota_rpm: int | None = None,
    backoff_base_s: float = 0.5,
) -> AsyncIterator[tuple[GeminiLLM, RemoteFake, LLMSettings]]:
    """The real GeminiLLM pointed at a fresh fake endpoint in its own process."""
    with RemoteFake(answers, latency_s, quota_rpm) as fake:
        os.environ["GOOGLE_GEMINI_BASE_URL"] = fake.base_url
        settings = LLMSettings(
            gemini_api_key="bench-key",  # type: ignore[arg-type]
            llm_provider="gemini",
            llm_max_concurrency=max_concurrency,
            llm_rpm=rpm,
        )
        policy = RetryPolicy.from_settings(settings, backoff_base_s=backoff_base_s)
        llm = GeminiLLM("bench-key", CallGate(max_concurrency, rpm, policy))
        try:
            yield llm, fake, settings
        finally:
            await llm.aclose()


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
