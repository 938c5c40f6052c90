"""Wiring the Slack layer of one process: client, jobs, intake, job handlers, features.

Built on `bot.runtime.open_runtime` (database, LLM, `SupportService`). `serve`, `serve
--socket`, `worker` and `python -m bot.cli.server` all open the same `SlackRuntime` with the
same `FEATURES`; they differ only in what they run (HTTP server, Socket Mode connection,
worker loop).

Customer messages are the core (`bot.messages`); everything else plugs in as a `Feature`:
it registers its listeners on the Bolt app, contributes job handlers for the kinds it
submits and sections to App Home, so the same feature works in a `serve` process and in a
separate `worker` process. A new feature is a package under `bot/` and one line in
`FEATURES`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, runtime_checkable

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.app import build_app, build_client, pooled_slack_session
from bot.confirmations.feature import ConfirmationsFeature
from bot.faq.feature import FaqFeature
from bot.feedback.feature import FeedbackFeature
from bot.home.feature import HomeFeature, HomeSection
from bot.jobs import Jobs
from bot.knowledge.feature import KnowledgeFeature
from bot.messages.intake import SLACK_MESSAGE_JOB, Intake, IntakeConfig
from bot.messages.reply_job import AnswersMessages, SlackReplyJob
from bot.runtime import Runtime, open_runtime
from bot.settings import Settings, SettingsError
from bot.slack_calls import FATAL_SLACK_ERRORS
from bot.triage.agents import AgentDirectory
from bot.triage.feature import TriageFeature
from bot.worker import JobHandler, PeriodicCheck, Sweep, Worker
from pipelines.llm.base import LLM, StreamingLLM
from storage.conversations import ConversationStore
from storage.migrate import apply_migrations
from storage.queue import JobQueue
from storage.retention import purge_expired
from storage.tickets import TicketStore

logger = logging.getLogger(__name__)


class Feature(Protocol):
    """A Slack feature living beside the message listeners."""

    def register(self, app: AsyncApp, slack: SlackRuntime) -> None:
        """Add listeners (they must ack fast: the app processes before responding)."""
        ...

    def job_handlers(self, slack: SlackRuntime) -> Mapping[str, JobHandler]:
        """Handlers for the job kinds this feature submits."""
        ...

    def home_sections(self, slack: SlackRuntime) -> Sequence[HomeSection]:
        """What this feature shows in App Home (`bot.home`); empty for none."""
        ...


@runtime_checkable
class HasPeriodicChecks(Protocol):
    """A feature with work every worker does now and then (`bot.worker.PeriodicCheck`)."""

    def periodic_checks(self, slack: SlackRuntime) -> Sequence[PeriodicCheck]: ...


def default_features() -> list[Feature]:
    """The features of every entry point, in App Home's order. Add yours here."""
    return [
        HomeFeature(),
        TriageFeature(),
        FaqFeature(),
        KnowledgeFeature(),
        FeedbackFeature(),
        ConfirmationsFeature(),
    ]


@dataclass
class SlackRuntime:
    core: Runtime
    client: AsyncWebClient
    jobs: Jobs
    intake: Intake
    service: AnswersMessages
    agents: AgentDirectory
    features: Sequence[Feature] = ()
    handlers: dict[str, JobHandler] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def queue(self) -> JobQueue:
        return self.jobs.queue

    @property
    def submit(self) -> Callable[..., Awaitable[bool]]:
        """`Jobs.submit`: store a durable job once per key and wake the embedded worker."""
        return self.jobs.submit

    def build_app(
        self, *, socket_mode: bool = False, identity: AsyncSlackResponse | None = None
    ) -> AsyncApp:
        """The Bolt app, with a client of its own: Bolt deep-copies each request, client
        included, for lazy listeners (the assistant's prompts), and `self.client`'s pooled
        HTTP session cannot be copied. Listeners make few calls; the jobs make the rest.
        `identity`: the start-up `check_slack_token`'s answer, so no request asks again."""
        return build_app(
            self.settings,
            self.intake,
            client=build_client(self.settings),
            socket_mode=socket_mode,
            registrars=[partial(feature.register, slack=self) for feature in self.features],
            identity=identity,
        )

    def build_worker(
        self,
        *,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
        shutdown_grace: float = 20.0,
    ) -> Worker:
        worker = Worker(
            self.queue,
            self.handlers,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            poll_interval=poll_interval,
            shutdown_grace=shutdown_grace,
            throttle=self.intake.busy,
            sweep=self._retention_sweep(),
            checks=[
                check
                for feature in self.features
                if isinstance(feature, HasPeriodicChecks)
                for check in feature.periodic_checks(self)
            ],
        )
        self.jobs.on_submitted(worker.wake)  # an embedded worker starts at once, without polling
        return worker

    def _retention_sweep(self) -> Sweep | None:
        """The worker's periodic delete of expired rows (`storage.retention`), when any."""
        policy = self.settings.retention
        if not policy.deletes_anything:
            return None
        return partial(purge_expired, self.core.db.sessions, policy)


async def check_slack_token(client: AsyncWebClient) -> AsyncSlackResponse | None:
    """Fail fast on a token Slack refuses; only warn when Slack cannot be reached.

    A wrong token would otherwise dead-letter every job with `invalid_auth`; a network
    blip at startup should not stop the process (the queue absorbs it). Returns auth.test's
    answer (None when Slack could not give one), which the Bolt app reuses.
    """
    try:
        identity = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in FATAL_SLACK_ERRORS:
            raise SettingsError(
                f"Slack refused SLACK_BOT_TOKEN: {error} ({FATAL_SLACK_ERRORS[error]})"
            ) from None
        logger.warning("auth.test failed (%s); going on", error)
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("Slack unreachable at startup (%s); going on", exc)
    else:
        logger.info(
            "connected to Slack as %s (team %s)", identity.get("user"), identity.get("team_id")
        )
        return identity
    return None


@asynccontextmanager
async def open_slack_runtime(
    settings: Settings,
    *,
    service: AnswersMessages | None = None,
    llm: LLM | None = None,
    features: Sequence[Feature] | None = None,
    migrate: bool = True,
    backoff_base: float = 4.0,
    backoff_cap: float = 300.0,
) -> AsyncIterator[SlackRuntime]:
    """Migrate, then yield everything a serve or worker process needs.

    `service` replaces the `SupportService` (tests use slow or failing stand-ins);
    `features` replaces `default_features()` (tests pick the ones they exercise).
    """
    if migrate:
        await apply_migrations(settings.database_url)
    async with (
        open_runtime(settings, llm=llm, migrate=False) as core,
        pooled_slack_session() as http,
    ):
        jobs = Jobs(JobQueue(core.db, backoff_base=backoff_base, backoff_cap=backoff_cap))
        conversations = ConversationStore(core.db.sessions)
        intake = Intake(
            jobs,
            conversations,
            IntakeConfig(
                support_channels=frozenset(settings.support_channels),
                agent_ids=frozenset(settings.support_agent_ids),
                log_message_text=settings.log_message_text,
                triage_channel=settings.support_triage_channel,
            ),
        )
        client = build_client(settings, http)
        answer = service or core.support
        slack = SlackRuntime(
            core=core,
            client=client,
            jobs=jobs,
            intake=intake,
            service=answer,
            agents=AgentDirectory(
                client, settings.support_agent_ids, settings.support_triage_channel
            ),
            features=default_features() if features is None else features,
            handlers={
                SLACK_MESSAGE_JOB: SlackReplyJob(
                    client,
                    answer,
                    conversations,
                    TicketStore(core.db.sessions),
                    # Streaming shows text as the provider writes it: the offline one
                    # answers at once, so its replies are simply posted.
                    stream_replies=settings.slack_stream_replies
                    and isinstance(core.llm, StreamingLLM),
                    checkpoint=jobs.queue.checkpoint,
                )
            },
        )
        for feature in slack.features:
            slack.handlers.update(feature.job_handlers(slack))
        await slack.agents.check_triage_channel()  # warns when it is public or shared
        yield slack


__all__ = [
    "Feature",
    "SlackRuntime",
    "check_slack_token",
    "default_features",
    "open_slack_runtime",
]
