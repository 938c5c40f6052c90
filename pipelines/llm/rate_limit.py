"""LLM_RPM as the provider counts it: at most `rpm` requests in any 60 s window.

A leaky bucket either lets a whole minute's budget through at once and then leaks on (so
a sliding window can see almost 2 x rpm: the pattern that makes a provider answer 429),
or keeps its bucket small and spreads the budget evenly, so a burst of customers waits
for tokens the quota would have allowed. A moving window (`limits`, a maintained library)
admits a burst of up to `rpm` at once and never more in any window.

When the budget is spent, who goes next is decided by `FairOrder`, not by call arrival:
- a user who already had a fair share of the recent budget (two windows' limit over the
  users active in them) waits behind everyone else, so one big `/faq` or one noisy
  customer cannot take the whole shared quota;
- otherwise the oldest piece of work goes first (`Spender.since`: when the customer wrote
  the message, or when a /faq job began), so a conversation's next call is not queued
  behind the first calls of conversations that arrived after it: answers come out in
  arrival order. A call the provider refused with a 429 waits here too, in its place.

A call that waits for its turn (a concurrency slot, then this limiter: `CallGate`) longer
than `QUEUE_NOTE_AFTER_S` tells the listener set with `reporting_queue_waits` (the support
pipeline shows the customer a "you're in line" step), and tells it again when its turn
comes: a customer behind a spent quota sees why nothing is happening, and a short wait
shows nothing.

Our window only counts this process's calls: when the provider answers 429 with a
RetryInfo delay (another process, a restart in the middle of a busy minute, a quota
smaller than LLM_RPM), `hold` stops every new call for that long, and for the next window
admits calls one at a time at the sustained rate (rpm / 60 per second) instead of in
bursts, since the provider's window is evidently full and frees one slot at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from pipelines.llm.budget import Spender, current_spender

WINDOW_SECONDS = 60
# Our window is a second longer than the provider's. The provider counts a call when it
# arrives, which under load is a while after we admitted it; a slot we free exactly one
# window after our oldest admission can reach the provider before its own window has let
# that call go: a 429 at every window's edge, and a window of pacing after it.
EDGE_MARGIN_S = 1
QUEUE_NOTE_AFTER_S = 1.0
_ORDER = itertools.count()
_last_queued = 0.0  # monotonic: when a call last had to wait for LLM_RPM, in any limiter


def quota_recently_tight(within_s: float = WINDOW_SECONDS) -> bool:
    """True if a call waited for LLM_RPM in the last `within_s` (this process): optional
    calls, such as a speculative planner, are not worth a slot then."""
    return _last_queued > 0 and time.monotonic() - _last_queued < within_s


# Told True once a queued call has waited QUEUE_NOTE_AFTER_S, then False when admitted.
QueueListener = Callable[[bool], None]
_queue_listener: ContextVar[QueueListener | None] = ContextVar("llm_queue", default=None)


@contextlib.contextmanager
def reporting_queue_waits(listener: QueueListener) -> Iterator[None]:
    """Tell `listener` when a call made inside the block waits long for its turn."""
    token = _queue_listener.set(listener)
    try:
        yield
    finally:
        _queue_listener.reset(token)


@contextlib.contextmanager
def waiting_for_a_turn() -> Iterator[None]:
    """Around a call's wait for its turn (a concurrency slot, then the rate limiter): past
    `QUEUE_NOTE_AFTER_S` the listener hears True, and False when the wait ends."""
    listener = _queue_listener.get()
    if listener is None:
        yield
        return
    shown: list[bool] = []

    def show() -> None:
        shown.append(True)
        listener(True)

    note = asyncio.get_running_loop().call_later(QUEUE_NOTE_AFTER_S, show)
    try:
        yield
    finally:
        note.cancel()
        if shown:
            listener(False)


@dataclass(eq=False)
class _Waiter:
    user: str
    since: float  # when the caller's piece of work began (monotonic)
    seq: int = field(default_factory=lambda: next(_ORDER))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    handed: bool = False  # OrderedSlots: a slot was handed over to this waiter


def _waiter(spender: Spender | None) -> _Waiter:
    """A caller about to wait: its spender's user and the age of its work."""
    return _Waiter(
        spender.user_id if spender else "", spender.since if spender else time.monotonic()
    )


class FairOrder:
    """Per-user admissions over the last two windows, and which waiter is served next.

    Two windows, not one: a slot frees exactly when old admissions leave the window, so
    counting only the current window would forget a heavy user's calls at the very moment
    the next call is chosen. A user's share is two windows' budget over the active users.
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = 2 * limit
        self.window_seconds = 2 * window_seconds
        self._admitted: defaultdict[str, deque[float]] = defaultdict(deque)

    def record(self, user: str, now: float) -> None:
        self._admitted[user].append(now)

    def _count(self, user: str, now: float) -> int:
        times = self._admitted.get(user)
        if times is None:
            return 0
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if not times:
            del self._admitted[user]
        return len(times)

    def next_waiter(self, waiters: list[_Waiter], now: float) -> _Waiter:
        """Under-share users first, then the oldest work, then the first to ask."""
        counts = {w.user: self._count(w.user, now) for w in waiters}
        active = {u for u in list(self._admitted) if self._count(u, now)} | set(counts)
        share = max(1, self.limit // max(1, len(active)))
        return min(waiters, key=lambda w: (counts[w.user] >= share, w.since, w.seq))


class SlidingWindowLimiter:
    """`await acquire()` returns once a request fits in the moving window."""

    def __init__(self, limit: int, window_seconds: int = WINDOW_SECONDS) -> None:
        self.limit = max(1, limit)
        self.window_seconds = window_seconds
        self._item: RateLimitItem = RateLimitItemPerSecond(self.limit, window_seconds)
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self.order = FairOrder(self.limit, window_seconds)
        self._waiters: list[_Waiter] = []
        self._held_until = 0.0  # time.monotonic()
        self._paced_until = 0.0  # after a 429: one call per `_spacing` until then
        self._spacing = window_seconds / self.limit
        self._last_admitted = 0.0

    @property
    def waiting(self) -> int:
        """Callers queued behind a spent budget, for a status or a metric."""
        return len(self._waiters)

    def hold(self, seconds: float) -> None:
        """Admit nothing for `seconds` (the provider said so with a 429), then pace calls
        at the sustained rate for a window."""
        now = time.monotonic()
        self._held_until = max(self._held_until, now + seconds)
        self._paced_until = self._held_until + self.window_seconds

    async def acquire(self) -> None:
        spender = current_spender()
        user = spender.user_id if spender else ""
        if not self._waiters and self._delay(time.monotonic()) <= 0 and await self._admit(user):
            return  # the common case: nobody queued, room in the window
        global _last_queued
        _last_queued = time.monotonic()
        me = _waiter(spender)
        self._waiters.append(me)
        try:
            while True:
                me.wake.clear()
                now = time.monotonic()
                if self.order.next_waiter(self._waiters, now) is not me:
                    # Shares shift as the window slides: whoever is next now may be asleep.
                    self._notify()
                    await me.wake.wait()
                    continue
                wait = self._delay(now)
                if wait <= 0:
                    if await self._admit(user):
                        return
                    stats = await self._window.get_window_stats(self._item, "llm")
                    wait = max(0.001, stats.reset_time - time.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(me.wake.wait(), wait)
        finally:
            self._waiters.remove(me)
            self._notify()

    def _delay(self, now: float) -> float:
        """How long a 429's hold (and the pacing after it) still keeps every call back."""
        held = self._held_until - now
        if now < self._paced_until:
            held = max(held, self._last_admitted + self._spacing - now)
        return held

    async def _admit(self, user: str) -> bool:
        if not await self._window.hit(self._item, "llm"):
            return False
        self._last_admitted = now = time.monotonic()
        self.order.record(user, now)
        return True

    def _notify(self) -> None:
        """Wake the waiter that is next now (one left, or the shares shifted)."""
        if self._waiters:
            self.order.next_waiter(self._waiters, time.monotonic()).wake.set()


class OrderedSlots:
    """LLM_MAX_CONCURRENCY's slots, handed out in the rate limiter's order when all are
    taken (`FairOrder`: under-share users, then the oldest work), not first come first
    served. A call waiting for the quota holds its slot, so with more calls than slots a
    FIFO semaphore let the first calls of later messages take every slot freed, ahead of
    the next call of a conversation that came before them."""

    def __init__(self, slots: int, order: FairOrder) -> None:
        self._free = slots
        self._order = order
        self._waiters: list[_Waiter] = []

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        me = _waiter(current_spender())
        self._waiters.append(me)
        try:
            await me.wake.wait()
        except BaseException:
            if me.handed:
                self.release()  # handed a slot but cancelled before using it: pass it on
            else:
                self._waiters.remove(me)
            raise

    def release(self) -> None:
        if not self._waiters:
            self._free += 1
            return
        chosen = self._order.next_waiter(self._waiters, time.monotonic())
        self._waiters.remove(chosen)
        chosen.handed = True
        chosen.wake.set()


def build_rate_limiter(
    rpm: int, window_seconds: int = WINDOW_SECONDS, margin_s: int = EDGE_MARGIN_S
) -> SlidingWindowLimiter:
    """The limiter of one process: LLM_RPM requests per minute (its share with N workers),
    over a window `margin_s` longer than the provider's `window_seconds`."""
    return SlidingWindowLimiter(rpm, window_seconds + margin_s)


__all__ = [
    "EDGE_MARGIN_S",
    "QUEUE_NOTE_AFTER_S",
    "WINDOW_SECONDS",
    "FairOrder",
    "OrderedSlots",
    "QueueListener",
    "SlidingWindowLimiter",
    "build_rate_limiter",
    "quota_recently_tight",
    "reporting_queue_waits",
    "waiting_for_a_turn",
]
