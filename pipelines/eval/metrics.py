"""Pure scoring functions of `supportbot eval`: counts, precision/recall/F1, confusion, tasks.

Kept free of I/O and LLM calls so each rule of the scoring can be tested on tiny hand-made
cases, and so the numbers printed by the eval mean exactly what this module says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

PRODUCT_MATCH_RATIO = 85.0  # rapidfuzz ratio, case-insensitive, for product names
REASON_WORD_RATIO = 80.0  # rapidfuzz ratio for each key word of an expected reason
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_REASON_STOPWORDS = frozenset(
    "the and not too with for was are its it's it is my a an of to in on that this from "
    "have has very really don't doesn't isn't didn't no".split()
)


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives of one comparison (or a sum)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """Share of predictions that were right; 1.0 when nothing was predicted or expected."""
        if self.tp + self.fp == 0:
            return 1.0 if self.fn == 0 else 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of expected items found; 1.0 when nothing was expected or predicted."""
        if self.tp + self.fn == 0:
            return 1.0 if self.fp == 0 else 0.0
        return self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def total(counts: Iterable[Counts]) -> Counts:
    """Micro-average: add the counts of every item before computing the ratios."""
    summed = Counts()
    for item in counts:
        summed = summed + item
    return summed


def set_counts(expected: Iterable[str], predicted: Iterable[str]) -> Counts:
    """Counts of two label sets (e.g. cited document titles); duplicates count once."""
    want, got = set(expected), set(predicted)
    return Counts(tp=len(want & got), fp=len(got - want), fn=len(want - got))


@dataclass
class Confusion:
    """Expected label -> predicted label -> count, for routing accuracy and per-intent P/R."""

    cells: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, expected: str, predicted: str) -> None:
        row = self.cells.setdefault(expected, {})
        row[predicted] = row.get(predicted, 0) + 1

    def count(self, expected: str, predicted: str) -> int:
        return self.cells.get(expected, {}).get(predicted, 0)

    @property
    def n(self) -> int:
        return sum(sum(row.values()) for row in self.cells.values())

    @property
    def accuracy(self) -> float:
        correct = sum(self.count(label, label) for label in self.cells)
        return correct / self.n if self.n else 0.0

    def counts_for(self, label: str) -> Counts:
        """One label as a binary problem: predicted-as-label vs expected-as-label."""
        tp = self.count(label, label)
        predicted = sum(row.get(label, 0) for row in self.cells.values())
        expected = sum(self.cells.get(label, {}).values())
        return Counts(tp=tp, fp=predicted - tp, fn=expected - tp)


@dataclass(frozen=True)
class TaskLabel:
    """One task reduced to what is scored: its kind, its key parameter and a reason.

    `key` is the invoice number, order id or product name; None when the task lacked its
    required parameter (a planned task that became a question to the customer).
    """

    kind: str
    key: str | None
    reason: str | None = None


def normalize_key(kind: str, key: str | None) -> str | None:
    """Ids compare upper-cased without spaces; product names compare lower-cased."""
    if key is None or not key.strip():
        return None
    cleaned = " ".join(key.split())
    return cleaned.lower() if kind == "product_return" else cleaned.upper().replace(" ", "")


def keys_match(kind: str, expected: str | None, predicted: str | None) -> bool:
    """Ids must be equal; product names may differ a little (rapidfuzz ratio >= 85)."""
    want, got = normalize_key(kind, expected), normalize_key(kind, predicted)
    if want is None or got is None:
        return False
    if kind == "product_return":
        return fuzz.ratio(want, got) >= PRODUCT_MATCH_RATIO
    return want == got


def tasks_match(expected: TaskLabel, predicted: TaskLabel, with_params: bool) -> bool:
    if expected.kind != predicted.kind:
        return False
    return not with_params or keys_match(expected.kind, expected.key, predicted.key)


def match_tasks(
    expected: Sequence[TaskLabel], predicted: Sequence[TaskLabel], with_params: bool
) -> list[tuple[TaskLabel, TaskLabel]]:
    """Pair expected with predicted tasks one-to-one, greedily in the expected order.

    Greedy is exact here: a predicted task can only match expected tasks with the same
    kind and key, which are interchangeable for scoring.
    """
    free = list(predicted)
    pairs: list[tuple[TaskLabel, TaskLabel]] = []
    for want in expected:
        for index, got in enumerate(free):
            if tasks_match(want, got, with_params):
                pairs.append((want, free.pop(index)))
                break
    return pairs


def task_counts(
    expected: Sequence[TaskLabel], predicted: Sequence[TaskLabel], with_params: bool
) -> Counts:
    tp = len(match_tasks(expected, predicted, with_params))
    return Counts(tp=tp, fp=len(predicted) - tp, fn=len(expected) - tp)


def _key_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _REASON_STOPWORDS]


def reason_matches(expected: str, predicted: str | None) -> bool:
    """Loose: every key word of the expected reason appears, fuzzily, in the predicted one.

    "incompatible" matches "it's not compatible with my laptop"; a reason is free text, so
    this is reported on its own and never decides whether a task counts as found.
    """
    if not predicted:
        return False
    want, got = _key_words(expected), _key_words(predicted)
    if not want:
        return fuzz.partial_ratio(expected.lower(), predicted.lower()) >= REASON_WORD_RATIO
    return all(
        any(fuzz.ratio(word, candidate) >= REASON_WORD_RATIO for candidate in got) for word in want
    )


def reason_counts(expected: Sequence[TaskLabel], predicted: Sequence[TaskLabel]) -> tuple[int, int]:
    """(matched, compared) reasons over the return tasks found with the right product."""
    pairs = match_tasks(expected, predicted, with_params=True)
    compared = [(w, g) for w, g in pairs if w.kind == "product_return" and w.reason]
    matched = sum(1 for w, g in compared if reason_matches(w.reason or "", g.reason))
    return matched, len(compared)
