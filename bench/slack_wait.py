"""The customer's wait: from sending a DM to the first visible text and the finished reply.

`supportbot serve` (SQLite in a temp directory, embedded worker, settings from a clean
environment: the README's defaults unless a flag says otherwise) gets signed Events API
DMs over HTTP; its LLM steps go through the real google-genai client to the fake Gemini
endpoint (fixed latency L per call, streamed by the fake in pieces, optional sliding-window
quota), its replies to the fake Slack Web API. Times are the fake Slack's arrival times of
the calls minus the time the event was sent (both CLOCK_MONOTONIC, shared by the
processes): "first text" is the first call that puts text in the customer's thread (the
stream's start with the plan's task cards, or the reply's post), "words" the first words
of the answer itself, "finished" the finished reply (the streamed message's final
chat.update, or the post). With the README's defaults replies stream.

Two message kinds: an order status DM (router -> planner -> synthesizer: 3 calls) and a
three-part message (invoice, return, order: router -> planner -> billing's extraction ->
synthesizer: 4 calls). Scenarios: 1 customer (median of a few in a row), a burst of 40
and of 200 customers within one second, and 40 order-status customers under a provider
quota of 60 requests per minute. Each burst gets a fresh server, so no run inherits the
previous one's LLM_RPM window.

"serve CPU ms/msg" is the serve process's CPU time (user + system, from /proc) over a
scenario, over its messages: one process answers a burst no faster than its CPU allows
(single-customer rows include the server's first-use costs).

`--postgres ADMIN_URL [--workers N]` runs the README's scale-out instead (tuned, printed):
a fresh PostgreSQL database per scenario, `serve --no-worker` and N `supportbot worker`
processes, each with 1/N of LLM_RPM and LLM_MAX_CONCURRENCY; the CPU column then adds up
all of them.

Targets (issue 14): burst 40 p95 <= 1.5 x single, burst 200 <= 2 x, one reply each;
under the quota 0 failures, last answer <= 1.2 x the quota arithmetic, p95 rank error <= 5.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import (
    BENCH_BOT_TOKEN,
    RemoteFake,
    RemoteSlack,
    ServerProcess,
    keep_alive_session,
    server_environment,
    supportbot_serve,
    table,
)
from bench.scale_out import Deployment, ScaleOut, scale_out_deployment
from pipelines.config import LLMSettings
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.gemini_scripts import StepAnswer, user_text
from tests.slack_signing import SIGNING_SECRET, encode, event_callback, signed_headers

QUOTA_RPM = 60
SINGLE_RUNS = 3
CALLS = {"order status": 3, "three-part": 4}
TEXTS = {
    "order status": "Hi, where is my order ORD-10011? ({n})",
    "three-part": "Invoice INV-10011 looks too high, I want to return the Mechanical Keyboard "
    "because it is incompatible, and where is ORD-10012? ({n})",
}
# A reply of a usual length: the fake streams it in 100-character pieces over the call.
REPLY = (
    "Thanks for your patience. Here is where things stand with each part of your request, "
    "with the details below. I'll keep this thread open in case anything else comes up: "
    "if a delivery date changes the carrier emails you, and you can always reply here to "
    "reach a person from the support team."
)
# Settings a flag changed from the README's defaults (printed; reported next to the defaults).
TUNED: dict[str, str] = {}
SCALE_OUT: ScaleOut | None = None  # --postgres/--workers: the README's scale-out (tuned)
TARGET_40, TARGET_200, TARGET_QUOTA, TARGET_RANK = 1.5, 2.0, 1.2, 5
FIRST_TEXT_TARGET_L = {"order status": 2.2, "three-part": 3.2}  # x L, one customer


def answers() -> dict[str, StepAnswer]:
    """Valid answers for both kinds; the plan is read from the message in the prompt."""

    def classify(body: dict[str, Any]) -> dict[str, Any]:
        several = "INV-" in user_text(body)
        intent = "billing_inquiry" if several else "order_status"
        return {"intent": intent, "confidence": 0.93, "multiple_requests": several}

    def plan(body: dict[str, Any]) -> dict[str, Any]:
        text = user_text(body)
        tasks: list[dict[str, Any]] = []
        if invoice := re.search(r"INV-\d+", text):
            tasks.append({"kind": "billing_inquiry", "invoice_number": invoice[0]})
        if product := re.search(r"return the (.+?) because", text):
            tasks.append(
                {"kind": "product_return", "product_name": product[1], "reason": "incompatible"}
            )
        if order := re.search(r"ORD-\d+", text):
            tasks.append({"kind": "status_update", "order_id": order[0]})
        return {"tasks": tasks}

    return {
        "classify_intent": classify,
        "plan_tasks": plan,
        "extract_concern": lambda body: {
            "wants_investigation": True,
            "concern": "the total looks too high",
        },
        "synthesize_reply": lambda body: {"reply": REPLY},
    }


Thread = tuple[str, str]


@dataclass
class Seen:
    """When a thread first showed text, the answer's words, and the finished reply."""

    first_text: float | None = None
    words: float | None = None
    finished: float | None = None
    messages: int = 0


def _has_words(params: dict[str, Any]) -> bool:
    chunks = params.get("chunks") or []
    return bool(params.get("markdown_text")) or any(
        isinstance(c, dict) and c.get("type") == "markdown_text" for c in chunks
    )


class SeenTracker:
    """What each thread's customer saw when, from the calls the fake Slack received.

    Incremental: each look reads only the calls since the last one, so asking every
    0.2 s does not stall the fake Slack's event loop as the calls pile up.
    """

    def __init__(self) -> None:
        self.seen: dict[Thread, Seen] = {}
        self._read = 0

    def _note(self, thread: Thread, at: float, words: bool, finished: bool) -> None:
        entry = self.seen.setdefault(thread, Seen())
        entry.first_text = min(entry.first_text or at, at)
        if words:
            entry.words = min(entry.words or at, at)
        if finished:
            entry.finished = min(entry.finished or at, at)

    def update(self, slack: FakeSlack) -> dict[Thread, Seen]:
        calls = slack.calls[self._read :]
        self._read += len(calls)
        for call in calls:
            params = call.params
            thread = (str(params.get("channel")), str(params.get("thread_ts")))
            if call.method == "chat.postMessage":
                self._note(thread, call.at, True, True)
            elif call.method == "chat.startStream":
                self._note(thread, call.at, _has_words(params), False)
            elif call.method in ("chat.appendStream", "chat.update"):
                stream = slack.streams.get(str(params.get("ts")))
                if stream is not None:
                    done = call.method == "chat.update" and bool(params.get("metadata"))
                    self._note((stream.channel, stream.thread_ts), call.at,
                               _has_words(params) or done, done)  # fmt: skip
        counts: Counter[Thread] = Counter(
            (posted.channel, posted.thread_ts) for posted in slack.messages if posted.thread_ts
        )
        for thread, entry in self.seen.items():
            entry.messages = counts[thread]
        return self.seen


class TimedSlack(RemoteSlack):
    """RemoteSlack that also reports what each thread showed when."""

    tracker = SeenTracker()  # lives in the fake Slack's process (forked)

    @classmethod
    def _answer(cls, conn: Connection, slack: FakeSlack) -> None:
        if conn.recv() == "calls":
            conn.send(Counter(call.method for call in slack.calls))
        else:
            conn.send(cls.tracker.update(slack))

    def seen(self) -> dict[Thread, Seen]:
        assert self._conn is not None
        self._conn.send("seen")
        found: dict[Thread, Seen] = self._conn.recv()
        return found

    def calls(self) -> Counter[str]:
        """Web API calls received so far, by method."""
        assert self._conn is not None
        self._conn.send("calls")
        counts: Counter[str] = self._conn.recv()
        return counts


@dataclass
class Run:
    label: str
    sent: dict[Thread, float] = field(default_factory=dict)  # thread -> send time
    waits: dict[Thread, float] = field(default_factory=dict)  # finished reply - sent
    first_text: dict[Thread, float] = field(default_factory=dict)  # first text - sent
    words: dict[Thread, float] = field(default_factory=dict)  # the answer's words - sent
    posts: Counter[Thread] = field(default_factory=Counter)
    bad_acks: int = 0
    llm: dict[str, int] = field(default_factory=dict)
    cpu_s: float = float("nan")  # the serve process's CPU time over the scenario

    def pct(self, q: float, of: dict[Thread, float] | None = None) -> float:
        return percentile(list((self.waits if of is None else of).values()), q)

    @property
    def failures(self) -> int:
        unanswered = sum(1 for thread in self.sent if thread not in self.waits)
        return unanswered + self.bad_acks

    @property
    def exactly_once(self) -> bool:
        return all(self.posts[thread] == 1 for thread in self.sent)

    def rank_error_p95(self) -> float:
        """p95 of |rank by answer time - rank by send time|."""
        by_arrival = sorted(self.sent, key=self.sent.__getitem__)
        by_answer = sorted(self.waits, key=lambda t: self.sent[t] + self.waits[t])
        answer_rank = {thread: rank for rank, thread in enumerate(by_answer)}
        errors = sorted(
            abs(answer_rank[t] - r) for r, t in enumerate(by_arrival) if t in answer_rank
        )
        return float(errors[max(1, round(0.95 * len(errors))) - 1]) if errors else float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, round(q / 100 * len(ordered))) - 1] if ordered else float("nan")


def dms(kind: str, tag: str, count: int) -> list[dict[str, Any]]:
    """`count` DMs, each from its own customer (the flood guard is per user)."""
    base = int(time.time())
    return [
        {
            "type": "message",
            "user": f"U{tag}{n:04d}",
            "text": TEXTS[kind].format(n=n),
            "ts": f"{base}.{n:06d}",
            "event_ts": f"{base}.{n:06d}",
            "channel": f"D{tag}{n:04d}",
            "channel_type": "im",
        }
        for n in range(count)
    ]


async def send_burst(server: ServerProcess, events: Sequence[dict[str, Any]], run: Run) -> None:
    """POST every event at once, one connection each, noting when each was sent."""
    url = server.url + "/slack/events"

    async def send(session: aiohttp.ClientSession, event: dict[str, Any]) -> None:
        body = encode(event_callback(event))
        run.sent[(event["channel"], event["ts"])] = time.monotonic()
        async with session.post(url, data=body, headers=signed_headers(body)) as response:
            await response.read()
            run.bad_acks += response.status != 200

    async with keep_alive_session(max(1, len(events))) as session:
        await asyncio.gather(*(send(session, event) for event in events))


async def collect(slack: TimedSlack, run: Run, timeout_s: float) -> None:
    """Wait for every thread's reply (or the timeout), then count posts per thread."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = slack.seen()
        if all(seen.get(t, Seen()).finished is not None for t in run.sent):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # a late duplicate would show up here
    for thread, entry in slack.seen().items():
        if thread not in run.sent:
            continue
        sent = run.sent[thread]
        run.posts[thread] = entry.messages
        if entry.finished is not None:
            run.waits[thread] = entry.finished - sent
        if entry.first_text is not None:
            run.first_text[thread] = entry.first_text - sent
        if entry.words is not None:
            run.words[thread] = entry.words - sent


@asynccontextmanager
async def bot(
    slack: TimedSlack, gemini: RemoteFake, workdir: Path, name: str, serve_args: Sequence[str]
) -> AsyncIterator[Deployment]:
    """A fresh `supportbot serve` on its own database, default LLM settings (or, with
    `--postgres`, the README's scale-out on a fresh PostgreSQL database)."""
    env = server_environment(
        SLACK_BOT_TOKEN=BENCH_BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / (name + '.db')}",
        LLM_PROVIDER="gemini",
        GEMINI_API_KEY="bench-key",
        GOOGLE_GEMINI_BASE_URL=gemini.base_url,
    )
    env.update(TUNED)
    if SCALE_OUT is not None:
        async with scale_out_deployment(SCALE_OUT, env, workdir, name) as deployment:
            yield deployment
        return
    async with supportbot_serve(env, workdir, *serve_args) as server:
        yield Deployment(server, [server.pid])


async def scenario(
    slack: TimedSlack,
    gemini: RemoteFake,
    workdir: Path,
    kind: str,
    count: int,
    serve_args: Sequence[str],
    timeout_s: float,
) -> Run:
    """One burst of `count` customers (count 1: SINGLE_RUNS customers one after another)."""
    tag = f"{kind[0].upper()}{count}{'Q' if gemini._quota_rpm else ''}"
    run = Run(f"{kind}, {'1 customer' if count == 1 else f'burst of {count}'}")
    async with bot(slack, gemini, workdir, tag, serve_args) as deployment:
        server = deployment.server
        await gemini.stats(reset=True)
        cpu_before = deployment.cpu_seconds()
        if count == 1:
            for n, event in enumerate(dms(kind, tag, SINGLE_RUNS)):
                event["user"], event["channel"] = f"U{tag}S{n}", f"D{tag}S{n}"
                await send_burst(server, [event], run)
                await collect(slack, run, timeout_s)
        else:
            await send_burst(server, dms(kind, tag, count), run)
            await collect(slack, run, timeout_s)
        run.llm = await gemini.stats()
        run.cpu_s = deployment.cpu_seconds() - cpu_before
    return run


def single_wait(run: Run, of: dict[Thread, float] | None = None) -> float:
    values = list((run.waits if of is None else of).values())
    return statistics.median(values) if values else float("nan")


def first_text_table(
    runs: list[tuple[Run, str, int]], latency_s: float, problems: list[str]
) -> str:
    """One customer at a time: when text first appears, the answer's words, the finished
    reply (medians, in seconds and in L), against the issue's first-text targets."""
    rows = []
    for run, kind, count in runs:
        if count != 1:
            continue
        first, words, done = (single_wait(run, of) for of in (run.first_text, run.words, None))
        target = FIRST_TEXT_TARGET_L[kind]
        verdict = "ok" if first <= target * latency_s else "MISSED"
        if verdict == "MISSED":
            problems.append(f"{run.label}: first text {first / latency_s:.2f} L > {target} L")
        rows.append([run.label, f"{first:.2f} ({first / latency_s:.2f} L)",
                     f"{words:.2f} ({words / latency_s:.2f} L)",
                     f"{done:.2f} ({done / latency_s:.2f} L)", f"<= {target} L", verdict])  # fmt: skip
    headers = ["one customer", "first text s", "answer's words s", "finished s",
               "first text target", ""]  # fmt: skip
    return table(headers, rows)


async def main(
    latency_s: float, quick: bool, serve_args: Sequence[str], quota_only: bool = False
) -> int:
    settings = LLMSettings(_env_file=None).model_copy(
        update={key.lower(): int(value) for key, value in TUNED.items() if value.isdigit()}
    )
    concurrency = next(
        (serve_args[i + 1] for i, a in enumerate(serve_args[:-1]) if a == "--concurrency"),
        "default",
    )
    print(
        f"Settings: LLM_MAX_CONCURRENCY={settings.llm_max_concurrency} "
        f"LLM_RPM={settings.llm_rpm} serve --concurrency={concurrency} L={latency_s:.2f} s "
        f"{' '.join(f'{k}={v}' for k, v in TUNED.items()) or '(README defaults)'}"
        f"{'; ' + SCALE_OUT.describe() if SCALE_OUT else ''}; "
        "times from the event sent; wait = the finished reply"
    )
    plan = [("order status", 1), ("order status", 40), ("three-part", 1), ("three-part", 40)]
    if not quick:
        plan.append(("order status", 200))
    if quota_only:
        plan = []
    timeout_s = 240.0
    rows: list[list[str]] = []
    problems: list[str] = []
    singles: dict[str, float] = {}
    slack = TimedSlack(BENCH_BOT_TOKEN)
    with (
        tempfile.TemporaryDirectory(prefix="bench-wait-") as tmp,
        slack,
    ):
        workdir = Path(tmp)
        runs: list[tuple[Run, str, int]] = []
        with RemoteFake(answers(), latency_s, None) as gemini:
            for kind, count in plan:
                run = await scenario(slack, gemini, workdir, kind, count, serve_args, timeout_s)
                runs.append((run, kind, count))
                if count == 1:
                    singles[kind] = single_wait(run)
        quota_run: Run | None = None
        if not quick or quota_only:
            with RemoteFake(answers(), latency_s, QUOTA_RPM) as gemini:
                quota_run = await scenario(
                    slack, gemini, workdir, "order status", 40, serve_args, timeout_s
                )
                quota_run.label += f", quota {QUOTA_RPM}/min"
                runs.append((quota_run, "order status", 40))
    print(first_text_table(runs, latency_s, problems))
    for run, kind, count in runs:
        single = singles.get(kind, float("nan"))
        ratio = run.pct(95) / single
        target = {40: TARGET_40, 200: TARGET_200}.get(count) if run is not quota_run else None
        verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
        rows.append([run.label, f"{run.pct(50):.2f}", f"{run.pct(95):.2f}",
                     f"{max(run.waits.values(), default=float('nan')):.2f}",
                     f"{ratio:.2f}" if count > 1 else "1.00",
                     f"<= {target}" if target else "", f"{run.pct(95, run.first_text):.2f}",
                     "yes" if run.exactly_once else "NO",
                     str(run.failures), str(run.llm.get("rate_limited", 0)),
                     str(run.llm.get("max_in_flight", 0)),
                     f"{run.cpu_s * 1000 / max(1, len(run.sent)):.0f}", verdict])  # fmt: skip
        if not run.exactly_once or run.failures:
            problems.append(
                f"{run.label}: {run.failures} failures, exactly once {run.exactly_once}"
            )
        if verdict == "MISSED":
            problems.append(f"{run.label}: p95 {ratio:.2f} x single > {target}")
    headers = ["scenario", "p50 s", "p95 s", "max s", "p95/single", "target",
               "first text p95 s", "once", "failures", "429s", "LLM in flight",
               "serve CPU ms/msg", ""]  # fmt: skip
    print(table(headers, rows))
    if quota_run is not None:
        calls = CALLS["order status"] * len(quota_run.sent)
        # Empty window at the start: QUOTA_RPM calls at once, the rest one window later each.
        bound = max(0, calls - QUOTA_RPM) / QUOTA_RPM * 60 + CALLS["order status"] * latency_s
        last = max(quota_run.waits.values(), default=float("nan"))
        rank = quota_run.rank_error_p95()
        print(
            f"quota run: {calls} calls at {QUOTA_RPM}/min: last answer {last:.1f} s vs "
            f"arithmetic {bound:.1f} s = {last / bound:.2f} x (target <= {TARGET_QUOTA}); "
            f"p95 rank error of answer vs arrival order {rank:.0f} (target <= {TARGET_RANK})"
        )
        if not last <= TARGET_QUOTA * bound:
            problems.append(f"quota run: last answer {last / bound:.2f} x the arithmetic")
        if not rank <= TARGET_RANK:
            problems.append(f"quota run: p95 rank error {rank:.0f}")
    for problem in problems:
        print("missed:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.5, help="L, seconds per LLM call")
    parser.add_argument("--quick", action="store_true", help="no burst of 200, no quota run")
    parser.add_argument("--quota-only", action="store_true", help="only the quota run")
    parser.add_argument("--concurrency", type=int, help="serve --concurrency (default: none)")
    parser.add_argument("--llm-max-concurrency", type=int, help="LLM_MAX_CONCURRENCY (tuned)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="another setting for serve (tuned; printed), e.g. SLACK_STREAM_REPLIES=false",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", metavar="ADMIN_URL",
        help="run the README's scale-out instead (tuned): a fresh database on this server "
        "(postgresql+asyncpg://...), serve --no-worker and --workers workers",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="workers with --postgres")
    args = parser.parse_args()
    if args.postgres:
        SCALE_OUT = ScaleOut(args.postgres, max(1, args.workers))
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        TUNED[name.strip().upper()] = value.strip()
    if args.llm_max_concurrency:
        TUNED["LLM_MAX_CONCURRENCY"] = str(args.llm_max_concurrency)
    extra = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    sys.exit(asyncio.run(main(args.latency, args.quick, extra, quota_only=args.quota_only)))
