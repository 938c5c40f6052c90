"""The reliability suite reuses the end-to-end fixtures (fake Slack, bot server)."""

from tests.e2e.conftest import fake_slack  # noqa: F401
