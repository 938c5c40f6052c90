"""The one way to queue durable work from the Slack layer: `Jobs.submit`.

Listeners store a job and acknowledge; a worker does the work. An embedded worker (inside
`serve`) is woken at once by every new job instead of waiting for its next poll, whichever
feature submitted it: before there was one `submit`, /faq queued through the bare queue and
its jobs waited up to a poll interval while messages did not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage.queue import JobQueue


class Jobs:
    """Submit jobs to the shared queue and wake the local worker, if there is one."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self._on_submitted: Callable[[], None] | None = None

    def on_submitted(self, wake: Callable[[], None] | None) -> None:
        """Call `wake` after each new job (an embedded worker starts it without polling)."""
        self._on_submitted = wake

    def wake(self) -> None:
        """Tell the local worker a job was stored some other way (with another write)."""
        if self._on_submitted is not None:
            self._on_submitted()

    async def submit(self, kind: str, key: str, payload: dict[str, Any], **options: Any) -> bool:
        """Store a job once per `key`; False when that key was already submitted.

        `options` are `JobQueue.enqueue`'s (`max_attempts`, `run_after`).
        """
        created = await self.queue.enqueue(kind, key, payload, **options)
        if created and self._on_submitted is not None:
            self._on_submitted()
        return created


__all__ = ["Jobs"]
