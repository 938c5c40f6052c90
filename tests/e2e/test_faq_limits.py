"""/faq size by role and the daily token budget, over HTTP: signed submissions, the fake
Slack serving the files, the embedded worker, a recording LLM.

A non-agent asking for more questions than FAQ_MAX_QUESTIONS_CUSTOMER is refused in the
modal, and again by the job when the submission is forged past the modal; an agent is
not. A requester over the daily budget is told so in the modal, and by the job, with no
download and no LLM call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.faq.feature import FaqFeature
from bot.faq.job import FAQ_JOB
from bot.faq.modal import Submission, read_submission
from bot.faq.state import FaqJobRequest
from bot.settings import Settings
from pipelines.faq.limits import FAQ_BUDGET_TEXT
from pipelines.llm.offline import OfflineLLM
from storage.budgets import TokenLedger
from storage.models import Faq, Job
from tests.e2e.conftest import AGENT_ID, BotServer, run_bot_server
from tests.e2e.test_faq_slack import (
    FAQ_CHANNEL,
    INTERVAL,
    USER,
    count,
    interact,
    open_modal,
    settle,
    submission,
    three_files,
    top_level,
)
from tests.fakes.fake_slack import FakeSlack
from tests.scripted_llm import ScriptedLLM

TOO_MANY = "you can ask for up to 10 questions (support agents up to 50); you asked for 40."


@pytest.fixture(autouse=True)
def everyone_is_in_every_channel(fake_slack: FakeSlack) -> None:
    fake_slack.default_members = [USER, AGENT_ID]


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM(fallback=OfflineLLM())  # answers offline, records every call


@pytest.fixture
async def bot(settings: Settings, llm: ScriptedLLM) -> AsyncIterator[BotServer]:
    settings = settings.model_copy(update={"llm_daily_tokens_per_user": 1_000})
    features = [FaqFeature(progress_interval=INTERVAL)]
    async with run_bot_server(settings, features=features, llm=llm) as server:
        yield server


async def submit_modal(
    bot: BotServer, fake: FakeSlack, *, questions: str, user: str = USER, view_id: str
) -> dict[str, object]:
    view = await open_modal(bot, fake)
    payload = submission(view, view_id=view_id, files=three_files(fake)[:1], questions=questions)
    payload["user"] = {"id": user, "team_id": "T0TEST"}
    answer: dict[str, object] = (await interact(bot, payload)).json()
    await settle(bot)
    return answer


async def forge_job(bot: BotServer, fake: FakeSlack, *, questions: int, view_id: str) -> None:
    """Queue a `faq_build` job as a submission would, past the modal's checks."""
    view = await open_modal(bot, fake)
    form = submission(view, view_id=view_id, files=three_files(fake)[:1])
    valid = read_submission(form["view"])
    assert isinstance(valid, Submission)
    request = FaqJobRequest(
        team_id="T0TEST",
        user_id=USER,
        channel_id=valid.channel_id,
        files=valid.files,
        questions=questions,
        view_id=view_id,
    )
    payload = {"request": request.model_dump(mode="json"), "enqueued_at": f"{time.time():.6f}"}
    assert await bot.slack.submit(FAQ_JOB, f"faq:T0TEST:{view_id}", payload)
    await settle(bot)


def refusal_shown(fake: FakeSlack) -> str:
    [root] = top_level(fake, FAQ_CHANNEL)
    return root.text


async def test_a_customers_40_questions_are_refused_in_the_modal(
    bot: BotServer, fake_slack: FakeSlack, llm: ScriptedLLM
) -> None:
    answer = await submit_modal(bot, fake_slack, questions="40", view_id="V0FORTY")

    assert answer == {
        "response_action": "errors",
        "errors": {"faq_questions": TOO_MANY[0].upper() + TOO_MANY[1:]},
    }
    assert await count(bot, Job) == 0 and llm.calls == []


async def test_an_agents_40_questions_are_accepted(
    bot: BotServer, fake_slack: FakeSlack, llm: ScriptedLLM
) -> None:
    answer = await submit_modal(
        bot, fake_slack, questions="40", user=AGENT_ID, view_id="V0AGENTFORTY"
    )

    assert answer["response_action"] == "update"
    assert await count(bot, Faq) == 1 and llm.calls
    assert "No FAQ" not in refusal_shown(fake_slack)


async def test_a_forged_40_question_job_is_refused_by_the_job(
    bot: BotServer, fake_slack: FakeSlack, llm: ScriptedLLM
) -> None:
    await forge_job(bot, fake_slack, questions=40, view_id="V0FORGED")

    assert refusal_shown(fake_slack) == f"No FAQ: {TOO_MANY}"
    assert llm.calls == [] and not fake_slack.downloads and await count(bot, Faq) == 0


async def test_a_requester_over_budget_is_told_in_the_modal_and_by_the_job(
    bot: BotServer, fake_slack: FakeSlack, llm: ScriptedLLM
) -> None:
    await TokenLedger(bot.slack.core.db.sessions).add(USER, 1_000)

    answer = await submit_modal(bot, fake_slack, questions="5", view_id="V0SPENT")
    text = FAQ_BUDGET_TEXT["user"]
    assert answer == {
        "response_action": "errors",
        "errors": {"faq_questions": text[0].upper() + text[1:]},
    }
    await forge_job(bot, fake_slack, questions=5, view_id="V0SPENTJOB")  # spent after the modal
    assert refusal_shown(fake_slack) == f"No FAQ: {text}"
    assert llm.calls == [] and not fake_slack.downloads and await count(bot, Faq) == 0
