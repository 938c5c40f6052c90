"""LLM_RPM as the provider counts it: at most `rpm` requests in any 60 s window.

A leaky bucket either lets a whole minute's budget through at once and then leaks on (so
a sliding window can see almost 2 x rpm: the pattern that makes a provider answer 429),
or keeps its bucket small and spreads the budget evenly, so a burst of customers waits
for tokens the quota would have allowed. A moving window (`limits`, a maintained library)
admits a burst of up to `rpm` at once and never more in any window.

Waiters leave in arrival order (`asyncio.Lock` is FIFO), so when the budget is spent the
oldest request goes first, and each waits only as long as the window requires. Our window
only counts this process's calls: when the provider answers 429 with a RetryInfo delay
(another process, a restart in the middle of a busy minute, a quota smaller than LLM_RPM),
`hold` stops every new call for that long, and for the next window admits calls one at a
time at the sustained rate (rpm / 60 per second) instead of in bursts, since the
provider's window is evidently full and frees one slot at a time.
"""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

WINDOW_SECONDS = 60


class SlidingWindowLimiter:
    """`await acquire()` returns once a request fits in the moving window."""

    def __init__(self, limit: int, window_seconds: int = WINDOW_SECONDS) -> None:
        self.limit = max(1, limit)
        self.window_seconds = window_seconds
        self._item: RateLimitItem = RateLimitItemPerSecond(self.limit, window_seconds)
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._turn = asyncio.Lock()
        self._held_until = 0.0  # time.monotonic()
        self._paced_until = 0.0  # after a 429: one call per `_spacing` until then
        self._spacing = window_seconds / self.limit
        self._last_admitted = 0.0
        self.waiting = 0  # callers queued behind a spent budget, for a status or a metric

    def hold(self, seconds: float) -> None:
        """Admit nothing for `seconds` (the provider said so with a 429), then pace calls
        at the sustained rate for a window."""
        now = time.monotonic()
        self._held_until = max(self._held_until, now + seconds)
        self._paced_until = self._held_until + self.window_seconds

    async def acquire(self) -> None:
        self.waiting += 1
        try:
            async with self._turn:
                while True:
                    now = time.monotonic()
                    held = self._held_until - now
                    if now < self._paced_until:
                        held = max(held, self._last_admitted + self._spacing - now)
                    if held > 0:
                        await asyncio.sleep(held)
                    elif await self._window.hit(self._item, "llm"):
                        self._last_admitted = time.monotonic()
                        return
                    else:
                        stats = await self._window.get_window_stats(self._item, "llm")
                        await asyncio.sleep(max(0.001, stats.reset_time - time.time()))
        finally:
            self.waiting -= 1


def build_rate_limiter(rpm: int, window_seconds: int = WINDOW_SECONDS) -> SlidingWindowLimiter:
    """The limiter of one process: LLM_RPM requests per minute (its share with N workers)."""
    return SlidingWindowLimiter(rpm, window_seconds)


__all__ = ["WINDOW_SECONDS", "SlidingWindowLimiter", "build_rate_limiter"]
