"""`python -m bot.cli`: the same commands as the `supportbot` script."""

from bot.cli.main import main

main()
