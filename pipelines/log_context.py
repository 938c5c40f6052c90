"""Fields that every log line of one unit of work carries (job id, ticket, run id, ...).

The worker binds `job_id` around each job, the support pipeline binds `run_id` and
`ticket` when it starts a run, and every record logged meanwhile, by any module, carries
them: call sites never format ids into their messages. The fields live in a context
variable, and asyncio copies the context into each task at creation, so the tasks a job
starts inherit its fields while concurrent jobs (each its own task) never see each
other's. This module sits in `pipelines` so the pipelines can bind fields too; the
formatter that prints them is `bot.logs`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_EMPTY: Mapping[str, object] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, object]] = ContextVar("log_fields", default=_EMPTY)


def _merged(fields: Mapping[str, object]) -> Mapping[str, object]:
    """The current fields updated with `fields`; None values are left out (nothing known)."""
    known = {name: value for name, value in fields.items() if value is not None}
    return MappingProxyType({**_FIELDS.get(), **known})


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add `fields` to every log record inside the block (and in tasks started there)."""
    token = _FIELDS.set(_merged(fields))
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bind(**fields: object) -> None:
    """Add `fields` for the rest of the current task.

    For a unit of work that already runs in its own task (a worker's job, a CLI command)
    where a `with` block would indent a whole function; the job's `bound` block restores
    the fields it found when the job ends.
    """
    _FIELDS.set(_merged(fields))


def current_fields() -> Mapping[str, object]:
    """The fields bound here, for a formatter or a test."""
    return _FIELDS.get()


class ContextFieldsFilter(logging.Filter):
    """Copies the bound fields onto each record as attributes, as `extra=` would.

    Attached to a handler, it runs in the task that logged, so it sees that task's
    fields. A field passed explicitly with `extra=` wins over a bound one of that name.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _FIELDS.get()
        for name, value in fields.items():
            if name not in record.__dict__:
                setattr(record, name, value)
        record._context_fields = tuple(fields)  # a formatter prints these first
        return True


__all__ = ["ContextFieldsFilter", "bind", "bound", "current_fields"]
