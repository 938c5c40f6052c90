"""The `supportbot` command line; `bot.cli.main` holds the Typer app."""

from bot.cli.main import app, main

__all__ = ["app", "main"]
