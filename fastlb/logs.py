"""Logging of the control plane: startup, reloads, health and admin changes,
errors.  Python's logging, on stderr, as text or as JSON lines.

    setup("info", "json")
    logging.getLogger("fastlb").info("reloaded %s", path, extra={"event": "reload"})

A JSON line is one object: time (ISO 8601, UTC, milliseconds), level
(lowercase), logger, message, then the record's extra fields, and
"exception" with the traceback when there is one.  The text format is
"time LEVEL logger: message"; extra fields are for JSON only, so a message
says everything on its own.  The data plane's access logs are separate
(a listener's access_log), written by the C engine."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "setup"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; the others came from `extra`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler setup() installs (and replaces on the next call)."""


def setup(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's records at `level` (debug, info, warning or
    error) and above to `stream` (stderr) in `fmt` (text or json); Python
    warnings too.  Calling it again replaces what it set up before, and
    leaves other handlers alone.  Returns the handler.  Raises ValueError
    for an unknown level or format."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of: {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of: {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    return handler
