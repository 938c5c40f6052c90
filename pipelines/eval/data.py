"""The labelled data of `supportbot eval`: JSONL items, validated line by line with Pydantic.

One format for every file (documented in eval/README.md): each line has a `text` and at
least one expectation, `intent`, `tasks` or `sources`; an item is scored on exactly the
expectations it carries. A bad line stops the run with `path:line: problem`, because a
silently skipped label would quietly change every figure the eval prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.eval.metrics import TaskLabel
from pipelines.faq.chain import SourceDocument
from pipelines.support.schemas import Intent, TaskKind

KEY_PARAM: dict[str, str] = {
    "billing_inquiry": "invoice_number",
    "product_return": "product_name",
    "status_update": "order_id",
}
ALLOWED_PARAMS: dict[str, frozenset[str]] = {
    "billing_inquiry": frozenset({"invoice_number"}),
    "product_return": frozenset({"product_name", "reason"}),
    "status_update": frozenset({"order_id"}),
}
PARAM_NAMES = frozenset().union(*ALLOWED_PARAMS.values())
DOC_SUFFIXES = (".md", ".txt")


class DatasetError(ValueError):
    """A dataset problem, worded `path:line: problem` for the person running the eval."""


class ExpectedTask(BaseModel):
    """`{"type": "product_return", "params": {"product_name": "USB-C Hub", "reason": ...}}`.

    Also accepted, for hand-written files: `kind` or `task` instead of `type`, and the
    parameters inline next to the type instead of under `params`.
    """

    model_config = ConfigDict(extra="forbid")

    type: TaskKind
    params: dict[str, str | None]

    @model_validator(mode="before")
    @classmethod
    def _accept_variants(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias in ("kind", "task"):
            if "type" not in data and alias in data:
                data["type"] = data.pop(alias)
        if "params" not in data:
            data["params"] = {k: data.pop(k) for k in list(data) if k in PARAM_NAMES}
        return data

    @model_validator(mode="after")
    def _check_params(self) -> ExpectedTask:
        unknown = set(self.params) - ALLOWED_PARAMS[self.type]
        if unknown:
            raise ValueError(f"{self.type} has no parameter {', '.join(sorted(unknown))}")
        key = KEY_PARAM[self.type]
        if not (self.params.get(key) or "").strip():
            raise ValueError(f"{self.type} needs a non-empty {key}")
        return self

    def label(self) -> TaskLabel:
        return TaskLabel(self.type, self.params[KEY_PARAM[self.type]], self.params.get("reason"))


class EvalItem(BaseModel):
    """One labelled message; `expected_intent` etc. are accepted as spellings too."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    text: str = Field(min_length=1, max_length=4000)
    intent: Intent | None = Field(
        default=None, validation_alias=AliasChoices("intent", "expected_intent")
    )
    tasks: list[ExpectedTask] | None = Field(
        default=None, validation_alias=AliasChoices("tasks", "expected_tasks")
    )
    sources: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("sources", "expected_sources")
    )
    note: str | None = None

    @model_validator(mode="after")
    def _has_expectation(self) -> EvalItem:
        if not self.text.strip():
            raise ValueError("text is blank")
        if self.intent is None and self.tasks is None and self.sources is None:
            raise ValueError("needs at least one of intent, tasks, sources")
        return self


@dataclass(frozen=True)
class LoadedItem:
    """An item with where it came from, for error messages and per-file figures."""

    item: EvalItem
    path: Path
    line: int

    @property
    def dataset(self) -> str:
        return self.path.name

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    place = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{place}: {message}" if place else message


def parse_line(path: Path, number: int, line: str) -> LoadedItem:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}:{number}: expected a JSON object")
    try:
        return LoadedItem(EvalItem.model_validate(data), path, number)
    except ValidationError as exc:
        raise DatasetError(f"{path}:{number}: {_problem(exc)}") from None


def load_dataset(path: Path) -> list[LoadedItem]:
    """Every item of one JSONL file (blank lines skipped); the first bad line raises."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None
    items = [parse_line(path, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not items:
        raise DatasetError(f"{path}: no items")
    return items


def load_datasets(paths: Iterable[Path]) -> list[LoadedItem]:
    return [item for path in paths for item in load_dataset(path)]


def load_documents(folder: Path) -> list[SourceDocument]:
    """The FAQ documents, titled by file name as `/faq` titles uploaded files."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of documents")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in DOC_SUFFIXES)
    return [SourceDocument(title=p.name, text=p.read_text(encoding="utf-8")) for p in files]


def check_sources(items: Iterable[LoadedItem], docs: Iterable[SourceDocument]) -> None:
    """Expected sources must name given documents, or their recall could never be 1."""
    titles = {doc.title for doc in docs}
    for loaded in items:
        unknown = [s for s in loaded.item.sources or [] if s not in titles]
        if unknown:
            known = ", ".join(sorted(titles)) or "none"
            raise DatasetError(
                f"{loaded.where}: unknown source {unknown[0]!r} (documents: {known})"
            )
