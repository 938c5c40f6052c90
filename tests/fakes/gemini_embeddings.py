"""Embeddings for the fake Gemini endpoint: `:embedContent` and `:batchEmbedContents`.

Deterministic and dependency-free: each word (lower-cased, cut to its first five letters,
a crude stem so "resetting" meets "reset") is hashed into one of `dimensions` buckets,
and the counts are the vector. Texts that share words are close; nothing is semantic, so
figures measured against this fake show the plumbing, not a real model's quality.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

WORD = re.compile(r"[a-z0-9]+")
STEM = 5
DEFAULT_DIMENSIONS = 768


def fake_vector(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in WORD.findall(text.lower()):
        if len(word) < 3:
            continue
        digest = hashlib.blake2b(word[:STEM].encode(), digest_size=8).digest()
        vector[int.from_bytes(digest, "big") % dimensions] += 1.0
    return vector


def _text(content: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in content.get("parts", []))


def _dimensions(request: dict[str, Any]) -> int:
    config = request.get("embedContentConfig") or request
    return int(config.get("outputDimensionality") or DEFAULT_DIMENSIONS)


def embed_answer(method: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The response body of one embedding call, and how many texts it embedded."""
    if method == "embedContent":
        values = fake_vector(_text(body.get("content") or {}), _dimensions(body))
        return {"embedding": {"values": values}}, 1
    requests = body.get("requests") or []
    embeddings = [
        {"values": fake_vector(_text(r.get("content") or {}), _dimensions(r))} for r in requests
    ]
    return {"embeddings": embeddings}, len(requests)
