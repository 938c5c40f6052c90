"""Slack surface, worker and command line. Top layer: uses `pipelines` and `storage`."""

__version__ = "0.1.0"
