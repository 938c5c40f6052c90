"""`supportbot --version` and `--help` load no heavy module: each command imports what it
runs. Checked on the modules loaded (deterministic), not on a timing."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "google.genai", "slack_bolt", "pydantic_settings", "bm25s", "pypdf")


def test_the_cli_module_loads_no_heavy_dependency() -> None:
    code = (
        "import json, sys; import bot.cli; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(loaded) == []


def test_version_still_answers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("supportbot ")
