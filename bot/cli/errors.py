"""How every `supportbot` command reports a problem (one red line, never a traceback),
and reads its settings (only when it runs: `--version` and `--help` load no settings)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from bot.errors import SettingsError

if TYPE_CHECKING:
    from bot.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` in red and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A configuration problem raised anywhere in a command exits 2 with one clear line."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            raise fail(str(exc)) from None

    return wrapper


def load_settings() -> Settings:
    """`bot.settings.load_settings`, imported when a command runs."""
    from bot.settings import load_settings as load

    return load()
