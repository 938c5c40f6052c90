"""What a button click says, read once from Bolt's `body` and `action` payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Click:
    """Who clicked, in which channel (empty in App Home), and the button's value."""

    user: str
    channel: str
    value: str

    @classmethod
    def of(cls, body: Mapping[str, Any], action: Mapping[str, Any]) -> Click:
        return cls(
            user=str((body.get("user") or {}).get("id") or ""),
            channel=str((body.get("channel") or {}).get("id") or ""),
            value=str(action.get("value") or ""),
        )


__all__ = ["Click"]
