"""How the fake Gemini endpoint cuts an answer into server-sent events, and when it sends them."""

from __future__ import annotations

from typing import Any


def stream_events(payload: dict[str, Any], chunk_chars: int) -> list[dict[str, Any]]:
    """A generateContent answer cut into the events a stream would carry.

    The text is split into pieces of `chunk_chars`; the finish reason and the usage
    metadata ride on the last event, as Gemini sends them. An answer without text (a
    block, no candidates) is one event.
    """
    candidates = payload.get("candidates") or []
    parts = candidates[0].get("content", {}).get("parts", []) if candidates else []
    text = "".join(part.get("text", "") for part in parts)
    if not text:
        return [payload]
    pieces = [text[i : i + chunk_chars] for i in range(0, len(text), max(1, chunk_chars))]
    extra = {key: value for key, value in payload.items() if key != "candidates"}
    events: list[dict[str, Any]] = []
    for number, piece in enumerate(pieces, 1):
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": piece}]},
            "index": 0,
        }
        event: dict[str, Any] = {"candidates": [candidate]}
        if number == len(pieces):
            candidate["finishReason"] = candidates[0].get("finishReason", "STOP")
            event.update(extra)
        else:
            event.update({k: v for k, v in extra.items() if k in ("modelVersion", "responseId")})
        events.append(event)
    return events


def event_fraction(index: int, count: int, first: float) -> float:
    """When event `index` of `count` is sent, as a fraction of the call's latency."""
    if count <= 1:
        return 1.0
    return first + (1.0 - first) * index / (count - 1)
