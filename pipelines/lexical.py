"""A BM25 index (bm25s) over fixed texts: below the offline provider, the knowledge base
and the evaluation alike, so none of them has to import another for it."""

from __future__ import annotations

import bm25s


class LexicalIndex:
    """A BM25 index over fixed documents, built once and searched many times."""

    def __init__(self, documents: list[str]) -> None:
        self.size = len(documents)
        self._retriever: bm25s.BM25 | None = None
        self._vocab: set[str] = set()
        if not documents:
            return
        tokens = bm25s.tokenize(documents, stopwords="en", show_progress=False)
        if not tokens.vocab or not any(len(ids) for ids in tokens.ids):
            return  # nothing indexable (only stop words, emoji, punctuation)
        self._retriever = bm25s.BM25()
        self._retriever.index(tokens, show_progress=False)
        self._vocab = set(tokens.vocab)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Indexes of the `k` best matches of `query`, best first (score > 0)."""
        if self._retriever is None or not query.strip():
            return []
        query_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not any(word in self._vocab for word in query_tokens.vocab):
            return []
        found, scores = self._retriever.retrieve(
            query_tokens, k=min(k, self.size), show_progress=False
        )
        return [(int(i), float(s)) for i, s in zip(found[0], scores[0], strict=True) if s > 0]


def rank(query: str, documents: list[str], k: int) -> list[tuple[int, float]]:
    """One-off search: indexes of the `k` best BM25 matches of `query` in `documents`."""
    return LexicalIndex(documents).search(query, k)


__all__ = ["LexicalIndex", "rank"]
