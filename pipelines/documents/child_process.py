"""Running a reader in a child process that is killed at its time limit.

A thread cannot be stopped: a hostile file kept its extraction thread busy long after the
caller gave up, and a few of them filled the event loop's default executor, where aiohttp
resolves host names, so every Slack call waited. A child process can be killed.

- Start method `forkserver`, preloaded with the readers: each child is a fork of a small
  server that has already imported them, so it starts fast. `spawn` would import them
  again for every child, and `fork` would copy this process with its event loop, its
  signal wake-up pipe and whatever locks its threads hold (figures: bench/README.md).
- One child per call: it ends with its file, so nothing a hostile file did (memory, a
  stuck parser) outlives it, and there is no worker to replace.
- Starting a child blocks briefly (the first start, while the server imports the readers,
  much longer), so it runs on a one-thread executor of this module, never the loop's
  default executor. The result comes back over a pipe read by the event loop itself.
- The time limit counts from the start of the child; waiting for one of the MAX_CHILDREN
  slots does not count. At the limit the child is killed (SIGKILL); cancelling the caller
  kills it too, and a child that outlives its parent ends by its own alarm.
- As with any `multiprocessing` program, the main script must be importable without side
  effects (`if __name__ == "__main__":`); the server imports it once (`supportbot` is).
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import signal
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

MAX_CHILDREN = 4  # per event loop: each child may use a core and a lot of memory
ALARM_MARGIN_S = 1  # a child's own alarm fires this long after its limit
READ_CHUNK_BYTES = 1024 * 1024
CHILD_NICENESS = 10  # readers are background work: the event loop wins the CPU

CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["__main__", "pipelines.documents.extract"])
STARTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="document-child-start")
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class ChildTimedOut(Exception):
    """The child ran past its limit and was killed."""


class ChildFailed(Exception):
    """The child ended without a result (it crashed, or was killed from outside)."""


async def call_in_child(
    function: Callable[..., Any], args: tuple[Any, ...], *, limit_s: float
) -> Any:
    """`function(*args)` in a fresh child process; returns its JSON-compatible result.

    `function` must be importable by name (it is sent to the child as a reference). Raises
    `ChildTimedOut` when the child has run `limit_s` seconds (it is killed), `ChildFailed`
    when it ends without a result.
    """
    async with _slot():
        reader, writer = CONTEXT.Pipe(duplex=False)
        process = CONTEXT.Process(
            target=_child_main, args=(writer, function, args, limit_s), daemon=True
        )
        started = asyncio.get_running_loop().run_in_executor(STARTER, process.start)
        finished = False
        try:
            await asyncio.shield(started)
            writer.close()  # the child holds the only write end now: its exit means EOF
            async with asyncio.timeout(limit_s):
                payload = await _read_to_end(reader.fileno())
            finished = True
        except TimeoutError:
            raise ChildTimedOut(f"still running after {limit_s:g} s") from None
        finally:
            reader.close()
            await _settle(started, process, writer, kill=not finished)
    try:
        return json.loads(payload)
    except ValueError:  # nothing, or a part: the child died while writing
        raise ChildFailed(f"ended without a result (exit code {process.exitcode})") from None


def _slot() -> asyncio.Semaphore:
    """A semaphore per event loop (asyncio primitives belong to the loop that waits)."""
    return _slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(MAX_CHILDREN))


async def _read_to_end(fd: int) -> bytes:
    """Everything the child writes, until it closes the pipe, read by the event loop as it
    arrives (the reader is added and removed synchronously, so cancelling leaves none)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    chunks: list[bytes] = []

    def on_readable() -> None:
        try:
            chunk = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        if chunk:
            chunks.append(chunk)
        elif not done.done():
            done.set_result(b"".join(chunks))

    os.set_blocking(fd, False)
    loop.add_reader(fd, on_readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


async def _settle(
    started: asyncio.Future[None], process: BaseProcess, writer: Connection, *, kill: bool
) -> None:
    """Close our end and end the child. A caller cancelled while the child was starting
    waits for the start (milliseconds) so that the child cannot outlive it."""
    try:
        await asyncio.shield(started)
    except asyncio.CancelledError:  # cancelled again: end the child when it has started
        started.add_done_callback(lambda start: _abandon(start, process, writer))
        raise
    except Exception:  # the start failed: there is no child, and the caller gets the error
        pass
    writer.close()
    _end(process, kill=kill)


def _abandon(start: asyncio.Future[None], process: BaseProcess, writer: Connection) -> None:
    writer.close()
    if not start.cancelled() and start.exception() is None:
        _end(process, kill=True)


def _end(process: BaseProcess, *, kill: bool) -> None:
    """Kill the child if asked and it still runs; reap it once it has gone, without
    blocking the loop (so `multiprocessing.active_children()` does not list it)."""
    if process.pid is None:  # it never started
        return
    if kill and process.exitcode is None:
        process.kill()
    loop = asyncio.get_running_loop()
    sentinel = process.sentinel

    def reap() -> None:
        loop.remove_reader(sentinel)
        process.join(timeout=0)

    loop.add_reader(sentinel, reap)


def _child_main(
    output: Connection, function: Callable[..., Any], args: tuple[Any, ...], limit_s: float
) -> None:
    """In the child: yield the CPU to the bot, leave Ctrl-C to the parent (which kills
    it), arm the alarm, call `function`, write its result as JSON, and exit."""
    os.nice(CHILD_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the default action ends the process
    signal.alarm(math.ceil(limit_s) + ALARM_MARGIN_S)
    payload = json.dumps(function(*args)).encode()
    with open(output.fileno(), "wb", closefd=False) as out:
        out.write(payload)
    output.close()


__all__ = ["ChildFailed", "ChildTimedOut", "call_in_child"]
