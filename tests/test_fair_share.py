"""LLM_RPM under a tight quota: who is served next (`pipelines.llm.rate_limit.FairOrder`).

A user past their share of the window waits behind everyone else; otherwise the oldest work
goes first, so one conversation's next call is not queued behind newer conversations.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from pipelines.llm.budget import spending_as
from pipelines.llm.rate_limit import (
    FairOrder,
    OrderedSlots,
    SlidingWindowLimiter,
    build_rate_limiter,
)


async def _call(
    limiter: SlidingWindowLimiter,
    user: str,
    label: str,
    order: list[str],
    since: float | None = None,
) -> None:
    with spending_as(user, since=since):
        await limiter.acquire()
    order.append(label)


async def test_a_user_past_their_share_waits_behind_the_others() -> None:
    """One user's big batch (a 50-question /faq) cannot take a tight quota from a
    customer who asks later: the customer's calls go first once the batch is past its share."""
    limiter = build_rate_limiter(2, window_seconds=1, margin_s=0)
    order: list[str] = []
    heavy = [asyncio.create_task(_call(limiter, "U_FAQ", f"faq{i}", order)) for i in range(6)]
    await asyncio.sleep(0.05)  # the batch took the window and queued the rest
    light = [asyncio.create_task(_call(limiter, "U_CUST", f"cust{i}", order)) for i in range(2)]
    await asyncio.wait_for(asyncio.gather(*heavy, *light), timeout=10)

    assert order[:2] == ["faq0", "faq1"]  # the whole window, as nobody else asked
    assert order[2:4] == ["cust0", "cust1"]  # then the newcomer, before the batch goes on
    assert order[4:] == ["faq2", "faq3", "faq4", "faq5"]


async def test_older_work_goes_first_when_the_budget_is_spent() -> None:
    """Conversation A began before B: A's second call (queued after B's first) is served
    first, so answers come out in the order customers wrote."""
    limiter = build_rate_limiter(3, window_seconds=1, margin_s=0)
    order: list[str] = []
    start = time.monotonic()
    await _call(limiter, "U_X", "x1", order, since=start - 1)
    await _call(limiter, "U_X", "x2", order, since=start - 1)
    await _call(limiter, "U_A", "a-router", order, since=start)  # the window is full
    b_first = asyncio.create_task(_call(limiter, "U_B", "b-router", order, since=start + 0.01))
    await asyncio.sleep(0.01)
    a_second = asyncio.create_task(_call(limiter, "U_A", "a-planner", order, since=start))
    await asyncio.wait_for(asyncio.gather(b_first, a_second), timeout=10)
    assert order[2:] == ["a-router", "a-planner", "b-router"]


async def test_calls_with_no_spender_share_one_queue_in_arrival_order() -> None:
    limiter = build_rate_limiter(1, window_seconds=1, margin_s=0)
    order: list[int] = []

    async def one(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = []
    for n in range(3):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert order == [0, 1, 2] and limiter.waiting == 0


async def test_a_cancelled_waiter_hands_its_turn_on() -> None:
    """A job cancelled while it waits (timeout, shutdown) must not leave the next one
    asleep: the queue moves on and nothing is admitted past the window."""
    limiter = build_rate_limiter(1, window_seconds=1, margin_s=0)
    order: list[str] = []
    await _call(limiter, "U_A", "a", order)
    doomed = asyncio.create_task(_call(limiter, "U_B", "b", order))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(_call(limiter, "U_C", "c", order))
    await asyncio.sleep(0.01)
    doomed.cancel()
    started = time.monotonic()
    await asyncio.wait_for(waiting, timeout=5)
    assert order == ["a", "c"] and limiter.waiting == 0
    assert 0.8 < time.monotonic() - started + 0.02 < 1.5  # the next window, not later


async def _slot(slots: OrderedSlots, user: str, since: float, order: list[str]) -> None:
    with spending_as(user, since=since):
        await slots.acquire()
    order.append(user)
    slots.release()


async def test_a_freed_slot_goes_to_the_oldest_work_not_the_first_to_ask() -> None:
    """LLM_MAX_CONCURRENCY's slots follow the limiter's order: a newer conversation's first
    call that asked first does not get the slot before an older conversation's next call."""
    slots = OrderedSlots(1, FairOrder(100, 60))
    await slots.acquire()  # every slot taken
    order: list[str] = []
    now = time.monotonic()
    newer = asyncio.create_task(_slot(slots, "U_NEWER", now, order))
    await asyncio.sleep(0.01)
    older = asyncio.create_task(_slot(slots, "U_OLDER", now - 30, order))
    await asyncio.sleep(0.01)
    slots.release()
    await asyncio.wait_for(asyncio.gather(newer, older), timeout=5)
    assert order == ["U_OLDER", "U_NEWER"]


async def test_a_cancelled_slot_waiter_neither_keeps_nor_loses_a_slot() -> None:
    slots = OrderedSlots(1, FairOrder(100, 60))
    await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.01)
    waiting.cancel()  # cancelled while waiting: gone from the queue
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    slots.release()
    await asyncio.wait_for(slots.acquire(), 0.5)  # the slot is free again

    handed = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.01)
    slots.release()  # handed over to the waiter...
    handed.cancel()  # ...which is cancelled before it runs: the slot is passed on
    with contextlib.suppress(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(slots.acquire(), 0.5)
