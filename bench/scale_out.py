"""The README's scale-out for benchmarks: PostgreSQL, `serve --no-worker`, N workers.

Each worker gets its share of the provider budget, as the README tells operators to
give it (LLM_RPM / N and LLM_MAX_CONCURRENCY / N), so a scale-out row is compared with
the single process at the same total budget. Every run gets a fresh database, created on
the server of the admin URL and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.harness import (
    SUPPORTBOT,
    ServerProcess,
    background_process,
    cpu_seconds,
    supportbot_serve,
)
from pipelines.config import LLMSettings
from tests.postgres_admin import create_database, drop_database


@dataclass(frozen=True)
class ScaleOut:
    """Where and how wide: the PostgreSQL server (an admin URL) and the worker count."""

    admin_url: str
    workers: int

    def worker_share(self) -> dict[str, str]:
        """Each worker's settings: its share of the README's default budget."""
        settings = LLMSettings(_env_file=None)
        return {
            "LLM_RPM": str(settings.llm_rpm // self.workers),
            "LLM_MAX_CONCURRENCY": str(max(1, settings.llm_max_concurrency // self.workers)),
        }

    def describe(self) -> str:
        share = ", ".join(f"{name}={value}" for name, value in self.worker_share().items())
        return (
            f"scale-out: PostgreSQL, serve --no-worker + {self.workers} x supportbot worker "
            f"(each {share})"
        )


@dataclass
class Deployment:
    """The process Slack talks to, and every process that answers (for their CPU time)."""

    server: ServerProcess
    pids: list[int] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        """The CPU time all its processes have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)


@asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty database on the admin URL's server (its SQLAlchemy URL); dropped after."""
    admin, name = make_url(admin_url), f"bench_wait_{secrets.token_hex(4)}"
    await create_database(admin, name)
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await drop_database(admin, name)


async def _wait_for_workers(logs: list[Path], within: float) -> None:
    """Until every worker has logged that it started (it migrates and connects first)."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if all(log.exists() and b"started (concurrency" in log.read_bytes() for log in logs):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"workers did not start: see {', '.join(map(str, logs))}")


@asynccontextmanager
async def scale_out_deployment(
    plan: ScaleOut, env: dict[str, str], workdir: Path, name: str
) -> AsyncIterator[Deployment]:
    """`serve --no-worker` and `plan.workers` workers on a fresh database of their own."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(fresh_database(plan.admin_url))
        shared = {**env, "DATABASE_URL": url}
        server = await stack.enter_async_context(supportbot_serve(shared, workdir, "--no-worker"))
        worker_env = {**shared, **plan.worker_share()}
        deployment = Deployment(server, [server.pid])
        logs = []
        for n in range(plan.workers):
            process, log = await stack.enter_async_context(
                background_process([SUPPORTBOT, "worker"], worker_env, workdir, f"{name}-w{n}.log")
            )
            deployment.pids.append(process.pid)
            logs.append(log)
        await _wait_for_workers(logs, within=60.0)
        yield deployment
