"""The process's log output: plain text for a terminal, or one JSON object a line.

`LOG_FORMAT=text` (the default) prints `time LEVEL logger: message` followed by the
record's fields as ` key=value`; `LOG_FORMAT=json` prints `time`, `level`, `logger`,
`message`, the fields and `exc_info` as one object a line, for a log collector to index.
Fields are whatever `pipelines.log_context` has bound (job_id, ticket, run_id, ...) plus
what a call passed with `extra=`; call sites never format them into the message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import TextIO

from bot.settings import LogFormat, Settings
from pipelines.log_context import ContextFieldsFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record is a field. `color_message`
# is uvicorn's coloured copy of the message, not information.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName", "color_message"}

# These libraries log whole request bodies at DEBUG, tokens and message texts included.
QUIET_LOGGERS = ("slack_sdk", "slack_bolt")


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The record's fields: the bound context first, then `extra=`; None values left out."""
    first = getattr(record, "_context_fields", ())
    fields: dict[str, object] = {}
    for name in [*first, *record.__dict__]:
        value = record.__dict__.get(name)
        if value is not None and name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
            fields.setdefault(name, value)
    return fields


def _text_value(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in "\"='" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """The classic one-line format, the record's fields appended as ` key=value`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = record_fields(record)
        if not fields:
            return line
        return line + "".join(f" {name}={_text_value(value)}" for name, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object a line; the fields sit beside `message` so a collector can index them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # A field never replaces one of the four keys above.
        entry.update({k: v for k, v in record_fields(record).items() if k not in entry})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _OurHandler(logging.StreamHandler):
    """Marks the handler `configure_logging` installed, so a second call replaces it.

    Without a stream of its own it writes to whatever `sys.stderr` is at each record, as
    the standard library's last-resort handler does: a command run in-process (tests,
    Click's runner) swaps stderr and closes it afterwards, and a handler that kept the
    old object would fail on every later record.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._own_stream = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return self._own_stream if self._own_stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # set by StreamHandler.__init__; the property decides


def build_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) printing `log_format`, with the bound fields."""
    handler = _OurHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFieldsFilter())
    return handler


def configure_logging(settings: Settings, *, level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr in `settings.log_format`.

    Calling it again (tests, two commands in one process) replaces the handler it added
    instead of doubling every line; handlers installed by others (pytest's) stay.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(handler)
    root.addHandler(build_handler(settings.log_format))
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


__all__ = [
    "QUIET_LOGGERS",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "build_handler",
    "configure_logging",
    "record_fields",
]
