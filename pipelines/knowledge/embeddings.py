"""Dense vectors for passages and questions: Gemini's embedding model, cached by content.

A passage's vector is stored under the hash of its text and the model's name
(`storage.knowledge`), so re-adding or re-indexing unchanged text costs no call; only
missing vectors are requested, in batches, through the same `CallGate` as every other
LLM call. Vectors are L2-normalised float32, so a dot product is the cosine similarity.

The offline provider has no embedding model: retrieval is then BM25 alone, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from pipelines.config import LLMSettings
from pipelines.llm.base import LLM
from storage.db import Sessions
from storage.knowledge import save_vectors, stored_vectors

Task = Literal["document", "query"]
Matrix = npt.NDArray[np.float32]
BATCH = 100  # texts per batchEmbedContents request (the API's limit)
TASK_TYPES = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}
MAX_EMBED_CHARS = 8_000  # well under the model's input limit; passages are far shorter


class Embedder(Protocol):
    model: str

    async def embed(self, texts: Sequence[str], task: Task) -> Matrix: ...


class GeminiEmbedder:
    """Batches texts into `embed_content` calls on the Gemini client (its gate, its session)."""

    def __init__(self, gemini: LLM, model: str, dimensions: int) -> None:
        self._gemini = gemini
        self.model = f"{model}@{dimensions}"  # the stored vectors' key
        self._name = model
        self._dimensions = dimensions

    async def embed(self, texts: Sequence[str], task: Task) -> Matrix:
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = [text[:MAX_EMBED_CHARS] for text in texts[start : start + BATCH]]
            rows += await self._gemini.embed(  # type: ignore[attr-defined]
                batch, model=self._name, task_type=TASK_TYPES[task], dimensions=self._dimensions
            )
        return normalised(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1))


def normalised(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)


def embedder_for(llm: LLM, settings: LLMSettings) -> Embedder | None:
    """Gemini's embedder when Gemini answers (directly or behind the offline fallback);
    None for the offline provider and for stand-ins, which then search with BM25 alone."""
    gemini = getattr(llm, "primary", llm)
    if settings.embedding_model == "" or not hasattr(gemini, "embed"):
        return None
    return GeminiEmbedder(gemini, settings.embedding_model, settings.embedding_dimensions)


async def vectors_for(
    sessions: Sessions, embedder: Embedder, texts: dict[str, str]
) -> dict[str, Matrix]:
    """The vector of each text (keyed by content hash): stored ones read back, the missing
    ones embedded in batches and stored for every process and every later run."""
    stored = await stored_vectors(sessions, embedder.model, list(texts))
    found = {h: np.frombuffer(data, dtype=np.float32) for h, data in stored.items()}
    missing = [h for h in texts if h not in found]
    if missing:
        matrix = await embedder.embed([texts[h] for h in missing], "document")
        fresh = {
            h: (int(row.shape[0]), row.tobytes()) for h, row in zip(missing, matrix, strict=True)
        }
        await save_vectors(sessions, embedder.model, fresh)
        found.update(dict(zip(missing, matrix, strict=True)))
    return found
