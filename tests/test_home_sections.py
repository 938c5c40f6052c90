"""App Home is assembled from the sections features contribute (`bot.home.feature`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.blocks import Block
from bot.home.feature import HomeFeature, HomeViewer
from bot.home.views import MAX_HOME_BLOCKS
from bot.jobs import Jobs


class OnlyFor:
    """A section shown to agents or to customers, with `count` blocks."""

    def __init__(self, *, agents: bool, text: str, count: int = 1) -> None:
        self.agents, self.text, self.count = agents, text, count
        self.seen: list[HomeViewer] = []

    async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
        self.seen.append(viewer)
        if viewer.is_agent != self.agents:
            return []
        return [{"type": "section", "text": {"type": "mrkdwn", "text": self.text}}] * self.count


@dataclass
class SectionFeature:
    sections: list[Any]

    def home_sections(self, slack: Any) -> Sequence[Any]:
        return self.sections


@dataclass
class Directory:
    agents: set[str]

    async def is_agent(self, user: str) -> bool:
        return user in self.agents


@dataclass
class Client:
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def views_publish(self, *, user_id: str, view: dict[str, Any]) -> None:
        self.published.append((user_id, view))


@dataclass
class Runtime:
    features: list[Any]
    agents: Directory
    client: Client = field(default_factory=Client)


class App:
    def __init__(self) -> None:
        self.events: dict[str, Any] = {}

    def event(self, name: str) -> Any:
        return lambda listener: self.events.setdefault(name, listener)


def registered(*sections: Any) -> tuple[HomeFeature, Runtime]:
    home = HomeFeature()
    runtime = Runtime(features=[SectionFeature(list(sections))], agents=Directory({"UAGENT"}))
    home.register(App(), runtime)  # type: ignore[arg-type]
    return home, runtime


async def test_a_feature_section_appears_for_its_audience_only() -> None:
    queue = OnlyFor(agents=True, text="agent queue")
    mine = OnlyFor(agents=False, text="your things")
    home, runtime = registered(queue, mine)

    await home.publish_home("UAGENT", "T1")
    await home.publish_home("UCUSTOMER", "T1")

    (agent, agent_view), (customer, customer_view) = runtime.client.published
    assert (agent, customer) == ("UAGENT", "UCUSTOMER")
    assert [b["text"]["text"] for b in agent_view["blocks"]] == ["agent queue"]
    assert [b["text"]["text"] for b in customer_view["blocks"]] == ["your things"]
    assert [v.is_agent for v in queue.seen] == [True, False]
    assert queue.seen[1].team_id == "T1"


async def test_sections_keep_the_feature_order_and_fit_slacks_limit() -> None:
    first = OnlyFor(agents=False, text="first", count=60)
    second = OnlyFor(agents=False, text="second", count=60)
    home, _ = registered(first, second)

    view = await home.home_view("UCUSTOMER", "T1")

    texts = [b["text"]["text"] for b in view["blocks"]]
    assert len(texts) == MAX_HOME_BLOCKS
    assert texts[:60] == ["first"] * 60 and texts[60:] == ["second"] * 40


async def test_a_failing_section_is_logged_not_raised(caplog: Any) -> None:
    class Broken:
        async def blocks(self, viewer: HomeViewer) -> Sequence[Block]:
            raise RuntimeError("database down")

    home, runtime = registered(Broken())
    await home.publish_home("UCUSTOMER", "T1")
    assert runtime.client.published == []
    assert "could not publish the App Home of UCUSTOMER" in caplog.text


class Queue:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], **_: Any) -> bool:
        created = key not in self.keys
        self.keys.add(key)
        return created


async def test_submit_wakes_the_worker_once_per_new_job() -> None:
    woken: list[str] = []
    jobs = Jobs(Queue())  # type: ignore[arg-type]
    jobs.on_submitted(lambda: woken.append("wake"))

    assert await jobs.submit("faq_build", "faq:T:V1", {}) is True
    assert await jobs.submit("faq_build", "faq:T:V1", {}) is False  # a redelivered submission
    assert await jobs.submit("triage_card", "card:1", {}) is True
    assert woken == ["wake", "wake"]
