"""JSON logs, one object per line (python-json-logger + msgspec), carrying the request id."""

from __future__ import annotations

import logging
import logging.config
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

import msgspec
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.msgspec import MsgspecFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# LogRecord attribute → JSON key. Fields passed with `extra=` (method, route, status,
# duration_ms on access lines) are added under their own names; `exc_info` holds a traceback.
FIELDS = {"levelname": "level", "name": "logger", "message": "msg"}
# uvicorn adds an ANSI-coloured copy of some messages; the JSON keeps the plain one.
SKIPPED = (*RESERVED_ATTRS, "color_message")
MAX_PENDING = 256  # lines a handler holds before writing them out
access_log = logging.getLogger("backend.access")
_encode_json = msgspec.json.Encoder().encode


def add_request_id(record: logging.LogRecord) -> bool:
    """Logging filter: tag records logged while serving a request with its id."""
    if (request_id := request_id_var.get()) is not None:
        record.request_id = request_id
    return True


def json_formatter() -> MsgspecFormatter:
    """Each record as one JSON object: time (RFC 3339, UTC), level, logger, msg, extras."""
    return MsgspecFormatter(
        list(FIELDS), rename_fields=FIELDS, timestamp="time", reserved_attrs=SKIPPED
    )


class TickFlushedHandler(logging.StreamHandler[TextIO]):
    """StreamHandler that holds lines and writes them in one go on `flush()`.

    WARNING and above, and every MAX_PENDING lines, flush at once; the server flushes on its
    0.1 s tick (`flush_logs`), and logging flushes every handler at exit. A write per line is
    a system call per request (stdout is unbuffered in the image: PYTHONUNBUFFERED=1), which
    cost more than formatting the line (bench/README.md, "Backend").
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pending.append(self.format(record))
            if record.levelno >= logging.WARNING or len(self.pending) >= MAX_PENDING:
                self.flush()
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Hold a line formatted elsewhere (the access line, see `log_access`)."""
        with self.lock:  # type: ignore[union-attr]  # created in Handler.__init__
            self.pending.append(line)
        if len(self.pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created in Handler.__init__
            if self.pending:
                self.stream.write("\n".join(self.pending) + "\n")
                self.pending.clear()
            self.stream.flush()


def json_handler(stream: TextIO) -> logging.Handler:
    """A handler writing JSON lines with the request id to `stream`."""
    handler = TickFlushedHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(add_request_id)
    return handler


def log_access(
    method: str,
    route: str,
    status: int,
    seconds: float,
    request_id: str,
    level: int = logging.INFO,
) -> None:
    """The access line of one request that took `seconds`, at `level` (the caller checks that
    `access_log` is enabled for it).

    It is the JSON object the formatter would write for `access_log.info("request",
    extra=...)` (same keys, same order, same time format), encoded by msgspec and held by the
    stdout handlers (`TickFlushedHandler`) directly: building a LogRecord and passing it
    through logging and python-json-logger cost ~9 µs per request against ~2 µs this way
    (bench/README.md, "Backend"). Only those handlers receive it: no LogRecord exists.
    """
    line = _encode_json(
        {
            "level": logging.getLevelName(level),
            "logger": access_log.name,
            "msg": "request",
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1e6) / 1000,  # ms to the µs; faster than round(ms, 3)
            "request_id": request_id,
            "time": datetime.fromtimestamp(time.time(), UTC),
        }
    ).decode()
    for handler in logging.root.handlers:
        if isinstance(handler, TickFlushedHandler):
            handler.write_line(line)


def flush_logs() -> None:
    """Write out the lines the root logger's handlers hold (called on the server's tick)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure_logging(level: str) -> None:
    """Route every logger (ours, uvicorn's, psycopg's) to stdout as JSON lines.

    The record attributes the JSON never shows are not collected (the Logging HOWTO's
    "Optimization": no caller frame lookup, thread or process names).
    """
    logging._srcfile = None  # no sys._getframe() walk per record (pathname, lineno, funcName)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"stdout": {"()": json_handler, "stream": "ext://sys.stdout"}},
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
        }
    )
