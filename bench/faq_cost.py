"""FAQ cost: billed input tokens of one FAQ with the document block first versus last.

One FAQ (N = 10 questions over 3 documents, 2N + 1 = 21 calls) through the real client
against the fake endpoint, whose implicit prefix cache reports cachedContentTokenCount
for a prompt sharing >= 1,024 tokens of prefix (system instruction + contents) with a
recent one. Run twice, each on a fresh fake: with the project's templates (documents
first) and with variants built here whose `$documents` block is moved to the end.

Billing: uncached input tokens at the full price, cached ones at `--cached-price` of it.
The default 0.25 is the 75 % discount Google announced for Gemini 2.5 implicit caching
(May 2025); Google's current pricing pages list 90 % (0.10), which only widens the gap.
Treat the factor as an assumption and pass your provider's.

Target (principled, not a round number): the document-first saving must reach 80 % of
the ceiling an ideal prefix cache allows, (1 - f) x (2N - 2) / (2N + 1): every call but
the first of each step (answer, sources) served from cache; the questions step runs once
and each step has its own system instruction, so its prefix differs. About 51 % at
f = 0.25, N = 10. A layout that puts anything varying before the documents gets ~0 %.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any
from unittest import mock

from bench.harness import documents, gemini_against_fake, table
from pipelines import prompts
from pipelines.faq.chain import build_faq
from pipelines.llm.base import TokenUsage
from pipelines.prompts import PromptTemplate
from pipelines.steps import PipelineContext, Trace
from tests.fakes.gemini_scripts import faq_answers

SHARE_OF_CEILING = 0.8


def documents_last(template: PromptTemplate) -> PromptTemplate:
    """The same template with its leading `$documents` block moved to the end."""
    rest = template.user.removeprefix("$documents\n\n")
    if rest == template.user:
        raise ValueError(f"{template.name} does not start with $documents")
    return replace(template, user=f"{rest}\n\n$documents")


@contextmanager
def documents_last_templates() -> Iterator[None]:
    """`pipelines.faq.chain` uses the moved-documents variants while the block runs."""
    variants: dict[str, Any] = {
        name: documents_last(getattr(prompts, name))
        for name in ("FAQ_QUESTIONS", "FAQ_ANSWER", "FAQ_SOURCES")
    }
    with mock.patch.multiple("pipelines.faq.chain", **variants):
        yield


@dataclass
class Cost:
    layout: str
    calls: int
    usage: TokenUsage

    def billed(self, cached_price: float) -> float:
        """Input tokens at full-price equivalent: uncached + f x cached."""
        cached = self.usage.cached_tokens
        return self.usage.input_tokens - cached + cached_price * cached


async def measure(layout: str, n: int, paragraphs: int) -> Cost:
    """One FAQ on a fresh fake (an empty cache); no warm-up, which would warm the cache."""
    patch = documents_last_templates() if layout == "documents last" else nullcontext()
    async with gemini_against_fake(
        faq_answers(n), latency_s=0.05, max_concurrency=2 * n + 2, rpm=100_000
    ) as (llm, fake, settings):
        trace = Trace("bench", {})
        with patch:
            result = await build_faq(
                PipelineContext(llm, settings, trace), documents(paragraphs), n
            )
        if len(result.items) != n:
            raise RuntimeError(f"{layout}: {len(result.items)} items, expected {n}")
        return Cost(layout, (await fake.stats())["calls"], trace.usage)


async def main(n: int, paragraphs: int, cached_price: float) -> int:
    first = await measure("documents first", n, paragraphs)
    last = await measure("documents last", n, paragraphs)
    saving = 1 - first.billed(cached_price) / last.billed(cached_price)
    ceiling = (1 - cached_price) * (2 * n - 2) / (2 * n + 1)
    target = SHARE_OF_CEILING * ceiling
    ok = saving >= target
    print(
        f"FAQ cost: N = {n} over 3 documents ({paragraphs} paragraphs each), cached tokens "
        f"billed at {cached_price:g} x the input price (an assumption, see --help)"
    )
    rows = [
        [c.layout, str(c.calls), f"{c.usage.input_tokens:,}", f"{c.usage.cached_tokens:,}",
         f"{c.billed(cached_price):,.0f}", f"{c.billed(cached_price) / n:,.0f}"]
        for c in (first, last)
    ]  # fmt: skip
    rows[0] += [f"{saving:.1%}", f">= {target:.1%}", "ok" if ok else "MISSED"]
    rows[1] += ["-", "-", ""]
    headers = ["layout", "calls", "input tok", "cached tok", "billed-eq tok",
               "billed/question", "saving", "target", ""]  # fmt: skip
    print(table(headers, rows))
    print(f"ceiling (ideal prefix cache, this billing factor): {ceiling:.1%}")
    if not ok:
        print(f"missed: saving {saving:.1%} < {target:.1%}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10, help="questions per FAQ")
    parser.add_argument(
        "--paragraphs",
        type=int,
        default=24,
        help="paragraphs per document (24: a ~2,800-token document block, above the "
        "2,048-token minimum Google now lists for Gemini 2.5 implicit caching)",
    )
    parser.add_argument(
        "--cached-price", type=float, default=0.25, help="price of a cached input token"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.n, args.paragraphs, args.cached_price)))
