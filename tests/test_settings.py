"""Configuration (SPEC section 7): clear errors naming the variable, parsing, no secret leaks.

The autouse fixture in conftest.py has cleared the bot's variables from the environment and
moved into an empty temporary directory, so only what a test sets is seen.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import __version__
from bot.cli import app
from bot.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, load_settings


def supportbot_command() -> list[str]:
    """The installed console script (the real entry point), next to this interpreter."""
    script = Path(sys.executable).with_name("supportbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli.main"]


def run_supportbot(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*supportbot_command(), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- a bad value is one line naming the variable, exit status 2 -------------------------


def test_invalid_value_exits_2_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run_supportbot("db", "upgrade", env={"LLM_RPM": "abc"})

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "LLM_RPM" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "supportbot.db").exists()  # stopped before touching the database


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LLM_RPM", "abc"),
        ("LLM_RPM", "0"),
        ("LLM_MAX_CONCURRENCY", "many"),
        ("PORT", "http"),
        ("LLM_PROVIDER", "gpt-5"),
    ],
)
def test_each_invalid_setting_is_named(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)

    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # not an uncaught error
    assert result.stderr.startswith(f"error: invalid setting {variable}: ")
    assert result.stderr.count("\n") == 1
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_invalid_value_in_dotenv_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LLM_RPM=lots\n")

    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 2
    assert "LLM_RPM" in result.stderr


def test_require_names_the_missing_slack_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as both:
        load_settings().require("slack_bot_token", "slack_signing_secret")
    assert str(both.value) == ("missing required setting(s): SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET")

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(SettingsError) as one:
        load_settings().require("slack_bot_token", "slack_signing_secret")
    assert str(one.value) == "missing required setting(s): SLACK_SIGNING_SECRET"

    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3")
    load_settings().require("slack_bot_token", "slack_signing_secret")


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("U1", ["U1"]),
        ("U1,U2", ["U1", "U2"]),
        (" U1 , U2,,U3 ,", ["U1", "U2", "U3"]),
        ("U1;U2", ["U1", "U2"]),
        ("", []),
    ],
)
def test_support_agent_ids_are_comma_separated(
    raw: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORT_AGENT_IDS", raw)
    monkeypatch.setenv("SUPPORT_CHANNELS", raw.replace("U", "C"))

    settings = load_settings()

    assert settings.support_agent_ids == expected
    assert settings.support_channels == [item.replace("U", "C") for item in expected]


def test_defaults_without_any_configuration() -> None:
    settings = load_settings()

    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.support_agent_ids == [] and settings.support_channels == []
    assert settings.slack_bot_token is None
    assert settings.port == 3000
    assert settings.resolved_provider == "offline"


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SUPPORT_AGENT_IDS=UA1,UA2\nLLM_RPM=42\n")

    settings = load_settings()

    assert settings.support_agent_ids == ["UA1", "UA2"]
    assert settings.llm_rpm == 42


@pytest.mark.parametrize(
    ("provider", "key", "resolved"),
    [
        (None, None, "offline"),
        ("auto", None, "offline"),
        ("auto", "", "offline"),  # `GEMINI_API_KEY=` in a .env is no key
        ("auto", "AIza-test", "gemini"),
        (None, "AIza-test", "gemini"),
        ("offline", "AIza-test", "offline"),
        ("gemini", None, "gemini"),
    ],
)
def test_llm_provider_resolution(
    provider: str | None, key: str | None, resolved: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if provider is not None:
        monkeypatch.setenv("LLM_PROVIDER", provider)
    if key is not None:
        monkeypatch.setenv("GEMINI_API_KEY", key)

    assert load_settings().resolved_provider == resolved


# --- secrets ----------------------------------------------------------------------------

SECRETS = {
    "GEMINI_API_KEY": "AIza-gemini-secret-1",
    "SLACK_BOT_TOKEN": "xoxb-bot-secret-2",
    "SLACK_SIGNING_SECRET": "signing-secret-3",
    "SLACK_APP_TOKEN": "xapp-app-secret-4",
}
DB_PASSWORD = "pg-password-5"


def test_secrets_never_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql+asyncpg://bot:{DB_PASSWORD}@db.internal:5432/support"
    )

    settings = load_settings()

    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        for secret in [*SECRETS.values(), DB_PASSWORD]:
            assert secret not in text
    # ...while the values stay usable.
    assert settings.gemini_api_key is not None
    assert settings.gemini_api_key.get_secret_value() == SECRETS["GEMINI_API_KEY"]
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == SECRETS["SLACK_BOT_TOKEN"]
    assert DB_PASSWORD in settings.database_url


def test_settings_errors_do_not_echo_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRETS["SLACK_BOT_TOKEN"])
    monkeypatch.setenv("LLM_MAX_ATTEMPTS", "not-a-number-xoxb")

    with pytest.raises(SettingsError) as error:
        load_settings()

    assert "LLM_MAX_ATTEMPTS" in str(error.value)
    assert SECRETS["SLACK_BOT_TOKEN"] not in str(error.value)
    assert "not-a-number" not in str(error.value)


# --- the command line -------------------------------------------------------------------


def test_version() -> None:
    result = run_supportbot("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"supportbot {__version__}"
    assert __version__ == importlib.metadata.version("supportbot")


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])

    assert result.exit_code == 0
    for word in ("--version", "db", "demo-ids"):
        assert word in result.output
    db_help = CliRunner().invoke(app, ["db", "--help"])
    assert db_help.exit_code == 0
    assert "upgrade" in db_help.output and "seed" in db_help.output


def test_isolation_fixture_hides_the_developers_configuration(tmp_path: Path) -> None:
    assert Path.cwd() == tmp_path
    leaked = [
        name
        for name in os.environ
        if name.lower() in Settings.model_fields or name.upper() == "DATABASE_URL"
    ]
    assert leaked == []


@pytest.mark.real_env
def test_real_env_marker_opts_out_of_the_isolation(tmp_path: Path) -> None:
    assert Path.cwd() != tmp_path
