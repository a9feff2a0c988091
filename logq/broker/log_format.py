"""How the broker process logs: text lines for people (the default), or JSON lines for log shippers.

A JSON line is one event: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``
and ``fields``: the process and thread, the values a log call passed in ``extra=``, and ``exception``
(the traceback's text) when one was logged. json.dumps escapes newlines, so an event never spans two
lines; Python's warnings and threads' uncaught exceptions are logged as events too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has: anything else on a record came from a log call's ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12+
}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"process": record.process, "thread": record.threadName}
        fields.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        event = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "fields": fields,
        }
        return json.dumps(event, default=repr, ensure_ascii=False)


def _utc_iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send the process's log records to stderr in ``log_format`` ("text" or "json")."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == "json":
        # What Python would print on stderr by itself would break the one-event-a-line stream: warnings
        # and a thread's uncaught exception become events too.
        logging.captureWarnings(True)
        threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):  # what the default hook ignores too
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    logging.getLogger("logq.broker").error("uncaught exception in thread %s", name, exc_info=exc_info)
