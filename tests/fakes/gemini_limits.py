"""The fake Gemini endpoint's quota and implicit prefix cache (tests/fakes/fake_gemini.py).

Both are simplified models of the provider's behaviour, enough for the benchmarks to
measure the client's pacing (a sliding-window quota) and prompt layout (prefix caching).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4


@dataclass
class PrefixCache:
    """Implicit prefix caching: a prompt sharing >= min_tokens of prefix with a recent one."""

    min_tokens: int = 1024
    ttl_s: float = 300.0
    max_entries: int = 64
    entries: deque[tuple[float, str, str]] = field(default_factory=deque)

    def cached_tokens(self, model: str, text: str, now: float) -> int:
        while self.entries and now - self.entries[0][0] > self.ttl_s:
            self.entries.popleft()
        best = max(
            (common_prefix(text, old) for _, m, old in self.entries if m == model), default=0
        )
        if len(text) >= self.min_tokens * CHARS_PER_TOKEN:
            self.entries.append((now, model, text))
            if len(self.entries) > self.max_entries:
                self.entries.popleft()
        tokens = best // CHARS_PER_TOKEN
        return tokens if tokens >= self.min_tokens else 0


def common_prefix(a: str, b: str) -> int:
    """Length of the shared prefix, by binary search over C-speed slice comparisons."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass
class SlidingQuota:
    """At most `limit` admitted requests in any `window_s`; rejected ones do not count."""

    limit: int
    window_s: float = 60.0
    admitted: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> float | None:
        """None when admitted, else seconds until the oldest admission leaves the window."""
        while self.admitted and now - self.admitted[0] >= self.window_s:
            self.admitted.popleft()
        if len(self.admitted) >= self.limit:
            return self.admitted[0] + self.window_s - now
        self.admitted.append(now)
        return None
