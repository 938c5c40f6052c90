"""All configuration of the bot (SPEC section 7), from the environment and an optional `.env`.

A command that needs a value calls `require(...)`, which stops with one clear line naming
the missing variables instead of a traceback deep inside an SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bot.errors import SettingsError
from pipelines.config import LLMSettings

if TYPE_CHECKING:  # storage pulls in SQLAlchemy: not for `supportbot --version`
    from pipelines.faq.limits import FaqLimits
    from storage.retention import RetentionPolicy
    from storage.sla import SlaPolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///supportbot.db"

LogFormat = Literal["text", "json"]


def _split_ids(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    return value


class Settings(LLMSettings):
    """Slack, database and routing configuration on top of the LLM settings."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # repr=False: a PostgreSQL URL may carry a password.
    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)

    # Comma-separated in the environment ("C1,C2"), not JSON: NoDecode hands the raw string
    # to the validator below.
    support_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    support_triage_channel: str | None = None
    support_agent_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)

    port: int = Field(default=3000, ge=1, le=65535)
    # Replies appear as they are written (`bot.messages.stream`) where Slack allows it
    # and the provider streams; false posts each reply once, finished.
    slack_stream_replies: bool = True
    log_message_text: bool = False
    log_format: LogFormat = "text"  # `bot.logs`: a terminal's lines, or JSON for a collector
    # Bodies of POST /slack/events over this are refused with 413 before they are read
    # (`bot.http_guard`); Slack's requests are a few KB, a large modal submission far below.
    slack_max_body_bytes: int = Field(default=512 * 1024, ge=4096)
    # When set, GET /metrics wants `Authorization: Bearer <token>` (401 otherwise).
    metrics_token: SecretStr | None = None
    # Days before `storage.retention` deletes finished jobs, traces and the turns of
    # resolved tickets (swept by every worker, or `supportbot purge`); 0 keeps them forever.
    job_retention_days: int = Field(default=30, ge=0)
    trace_retention_days: int = Field(default=90, ge=0)
    turn_retention_days: int = Field(default=0, ge=0)
    # /faq size for requesters who are not support agents (`pipelines.faq.limits`); agents
    # get the chain's maximum (50 questions over 400,000 characters).
    faq_max_questions_customer: int = Field(default=10, ge=1, le=50)
    faq_max_document_chars_customer: int = Field(default=100_000, ge=1_000, le=400_000)

    # The satisfaction question when an agent resolves a ticket (`bot.feedback.csat`): the
    # share of tickets asked (0 = never), and days a customer is not asked again after one.
    csat_sample: float = Field(default=1.0, ge=0.0, le=1.0)
    # Escalated tickets: claimed round-robin for an agent who is not away
    # (`bot.triage.assignment`), at most this many claimed tickets each; "off" leaves them
    # for anyone to claim.
    support_assignment: Literal["off", "round_robin"] = "off"
    support_max_open_per_agent: int = Field(default=5, ge=1)
    csat_quiet_days: int = Field(default=7, ge=0)
    # SLAs of escalated tickets (`storage.sla`, checked by `bot.triage.sla`): targets per
    # priority in business time ("off" for none), the business hours, their time zone
    # and weekdays, and how often the worker checks.
    sla_first_response: str = "urgent=1h,normal=4h"
    sla_resolution: str = "urgent=8h,normal=24h"
    sla_business_hours: str = "09:00-17:00"
    sla_timezone: str = "UTC"
    sla_weekdays: str = "mon-fri"
    sla_check_seconds: float = Field(default=60.0, ge=0.05)

    @field_validator("support_channels", "support_agent_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_ids(value)

    @field_validator("sla_first_response", "sla_resolution")
    @classmethod
    def _sla_targets(cls, value: str) -> str:
        from storage.sla import SlaConfigError, parse_targets

        try:
            parse_targets(value)
        except SlaConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("sla_business_hours", "sla_timezone")
    @classmethod
    def _sla_hours(cls, value: str, info: ValidationInfo) -> str:
        from storage.sla import SlaConfigError, parse_business_hours

        hours, zone = (
            (value, "UTC") if info.field_name == "sla_business_hours" else ("09:00-17:00", value)
        )
        try:
            parse_business_hours(hours, zone, "mon")
        except SlaConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("sla_weekdays")
    @classmethod
    def _sla_weekdays(cls, value: str) -> str:
        from storage.sla import SlaConfigError, parse_weekdays

        try:
            if not parse_weekdays(value):
                raise SlaConfigError("no weekdays")
        except SlaConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def sla_policy(self) -> SlaPolicy:
        from storage.sla import (
            FIRST_RESPONSE,
            RESOLUTION,
            SlaPolicy,
            parse_business_hours,
            parse_targets,
        )

        return SlaPolicy(
            parse_business_hours(self.sla_business_hours, self.sla_timezone, self.sla_weekdays),
            {
                FIRST_RESPONSE: parse_targets(self.sla_first_response),
                RESOLUTION: parse_targets(self.sla_resolution),
            },
        )

    @property
    def retention(self) -> RetentionPolicy:
        from storage.retention import RetentionPolicy

        return RetentionPolicy(
            job_days=self.job_retention_days,
            trace_days=self.trace_retention_days,
            turn_days=self.turn_retention_days,
        )

    @property
    def faq_limits(self) -> FaqLimits:
        from pipelines.faq.limits import FaqLimits

        return FaqLimits(
            customer_questions=self.faq_max_questions_customer,
            customer_document_chars=self.faq_max_document_chars_customer,
        )

    def require(self, *names: str) -> None:
        """Stop with a clear message when any of these settings is unset."""
        missing = [name.upper() for name in names if not getattr(self, name)]
        if missing:
            raise SettingsError(f"missing required setting(s): {', '.join(missing)}")


def load_settings() -> Settings:
    """Read settings; an invalid value becomes a `SettingsError` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper() or "?"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
