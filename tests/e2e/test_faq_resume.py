"""A /faq whose provider fails half-way: the retried job resumes the chain, over HTTP.

Before, a retry started the whole chain again (a 50-question FAQ past the job timeout
restarted from scratch up to four times). The job now saves the chain's progress in its
row; the retry asks only the questions that were still open.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from bot.faq.feature import FaqFeature
from bot.faq.job import FAQ_JOB
from pipelines.llm.base import LLMRequest, LLMResponse, LLMUnavailable
from pipelines.llm.offline import OfflineLLM
from storage.models import Faq, FaqEntry, Job
from storage.queue import DONE
from tests.e2e.conftest import make_settings, run_bot_server
from tests.e2e.test_faq_slack import (
    FAQ_CHANNEL,
    INTERVAL,
    count,
    faq_text,
    interact,
    open_modal,
    settle,
    submission,
)
from tests.fakes.fake_slack import FakeSlack


class OutageOnce(OfflineLLM):
    """The offline provider, down once: the fourth answer call fails as an outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.asked: list[str] = []

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.calls[request.step] += 1
        if request.step == "faq_answer":
            self.asked.append(str(request.inputs["question"]))
            if self.calls["faq_answer"] == 4:
                raise LLMUnavailable("provider down")
        return await super().generate(request)


async def test_a_retried_faq_asks_only_the_questions_left_open(
    database_url: str, fake_slack: FakeSlack
) -> None:
    fake_slack.default_members = ["U0CUST"]
    facts = "\n\n".join(
        f"The gadget kit{n} weighs {n + 100} grams and ships in a box of size {n}."
        for n in range(1, 11)
    )
    files = [fake_slack.host_file("gadgets.md", facts.encode(), "text/markdown")]
    llm = OutageOnce()
    settings = make_settings(fake_slack.api_url, database_url)
    features = [FaqFeature(progress_interval=INTERVAL)]
    async with run_bot_server(settings, features=features, llm=llm) as bot:
        view = await open_modal(bot, fake_slack)
        payload = submission(
            view, view_id="V0RESUME", files=files, questions="6", mode="sequential"
        )
        await interact(bot, payload)
        await settle(bot, within=20)

        async with bot.slack.core.db.sessions() as session:
            [job] = (await session.scalars(select(Job).where(Job.kind == FAQ_JOB))).all()
            entries = (await session.scalars(select(FaqEntry))).all()
        assert job.status == DONE and job.attempts == 2, (job.status, job.last_error)
        assert await count(bot, Faq) == 1 and len(entries) == 6
        assert "chain" not in (job.payload.get("checkpoint") or {}) or not job.payload[
            "checkpoint"
        ].get("chain")  # dropped once the FAQ was stored

    assert llm.calls["faq_questions"] == 1  # the retry reused the question list
    # three answered, the fourth failed; the retry asked the fourth again and the rest
    assert llm.calls["faq_answer"] == 7
    assert llm.asked[3] == llm.asked[4] and len(set(llm.asked)) == 6
    assert faq_text(fake_slack, FAQ_CHANNEL).count("*6. ") == 1
