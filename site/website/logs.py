"""Structured JSON logs on stdout: one object per line, the shape Powertools Logger writes.

CloudWatch Logs Insights can then query the site's lines and the Lambdas' lines alike
(``level``, ``timestamp``, ``service``, ``message``, ``xray_trace_id``).

Two writers, one format, one stream. Lines about the site's life (start, drain, metadata)
go through ``logging`` and :class:`JsonFormatter`. The access log, one line per response,
is the hot path: :class:`AccessLog` writes the same fields without ``logging``. Building a
``LogRecord``, finding the caller, copying the record's attributes and ``json.dumps`` of a
dict cost about a quarter of a request's CPU; the access line needs none of it, since its
fields are fixed and only the strings need JSON escaping. The ``website.access`` logger's
level still decides which lines are written.

Both hand their lines to :data:`STDOUT`, which writes whatever accumulated during one turn
of the event loop in one ``write``: under load one system call carries many lines, and an
idle site still writes each line at the end of the turn that produced it (microseconds).
An access line is even rendered then (``add_later``): a request only records its facts,
and the lines of a turn are rendered together, in a loop that stays in the CPU's caches
(rendered one per request, between network calls, the same code costs several times more).
Lines keep their order. Without a running loop (start, shutdown, the main process) a line
is written at once; the server flushes when it stops.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

ACCESS_LOGGER = "website.access"


Render = Callable[..., str]


class StdoutLines:
    """Lines for stdout, rendered and written together at the end of each event-loop turn."""

    def __init__(self) -> None:
        self._pending: list[str | tuple[Render, tuple[Any, ...]]] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._wall_offset = time.time() - time.perf_counter()
        self._flush_at_exit = False

    def flush_at_exit(self) -> None:
        """Also flush when the interpreter exits (once, however often it is asked)."""
        if not self._flush_at_exit:
            self._flush_at_exit = True
            atexit.register(self.flush)

    def add(self, line: str) -> None:
        """Queue one line (ending in a newline)."""
        self._pending.append(line)
        self._schedule()

    def add_later(self, render: Render, *args: Any) -> None:
        """Queue ``render(*args)``, a line (or ``""`` for none), to be called at the flush."""
        self._pending.append((render, args))
        self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled_on is not loop:
            self._scheduled_on = loop
            loop.call_soon(self.flush)

    def wall_time(self, perf_counter: float) -> float:
        """Epoch seconds of a ``time.perf_counter()`` reading taken during this loop turn
        (one clock read per response instead of two)."""
        return perf_counter + self._wall_offset

    def flush(self) -> None:
        """Render and write every queued line now, in one write."""
        self._scheduled_on = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._wall_offset = time.time() - time.perf_counter()
        lines = []
        for item in pending:
            if isinstance(item, str):
                lines.append(item)
                continue
            render, args = item
            try:
                lines.append(render(*args))
            except Exception as exc:  # one bad line must not cost the others
                lines.append(_failed_line(render, exc))
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


def _failed_line(render: Render, exc: Exception) -> str:
    entry = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "ERROR",
        "logger": __name__,
        "message": "a log line could not be rendered",
        "render": getattr(render, "__qualname__", repr(render)),
        "error": repr(exc),
    }
    return json.dumps(entry, separators=(",", ":")) + "\n"


STDOUT = StdoutLines()


class StdoutHandler(logging.Handler):
    """A logging handler that queues formatted records on :data:`STDOUT`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        STDOUT.add(line + "\n")


# LogRecord attributes that are not "extra" fields.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; ``extra={...}`` keys become top-level fields."""

    def __init__(self, service: str = "spotops") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).strip()
        return json.dumps(entry, default=str, separators=(",", ":"))


def logging_config(service: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Sanic's loggers and ours, all JSON on stdout."""
    handler = {"class": f"{__name__}.StdoutHandler", "formatter": "json"}
    names = ("sanic.root", "sanic.error", "sanic.server", "sanic.websockets", "website")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"stdout": handler},
        "loggers": {
            **{
                name: {"level": "INFO", "handlers": ["stdout"], "propagate": False}
                for name in names
            },
            # Sanic's own access log is off (ACCESS_LOG=False); ours is website.access.
            "sanic.access": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
        },
    }


def access_level(status: int) -> int:
    """Server errors are ERROR, client errors (404, 405, 413, 431...) WARNING, the rest INFO.

    Example
    -------
    >>> logging.getLevelName(access_level(404))
    'WARNING'
    """
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO


# The level of each status class (1xx..5xx; index = status // 100), and zero-padded
# milliseconds: table lookups instead of formatting with a format spec, which costs more.
_LEVEL_OF_CLASS = [access_level(c * 100) for c in range(6)]
_MILLISECONDS = [f"{ms:03d}" for ms in range(1000)]


class AccessLog:
    """Renders one access line per response: the fields and order ``JsonFormatter`` gives
    ``extra={...}``, without the ``logging`` machinery (see the module docstring).

    Strings are escaped by the ``json`` module's own C escaper, so any header value a client
    sends (control characters, invalid UTF-8) stays inside its JSON string. The date part
    of the timestamp, and which levels the ``website.access`` logger lets through, are
    worked out once a second.
    """

    def __init__(self, service: str) -> None:
        self._head = (
            f'","service":{encode_basestring_ascii(service)},"logger":"{ACCESS_LOGGER}","message":'
        )
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._second = -1
        self._second_text = ""
        self._level_names: list[str] = []

    def _new_second(self, second: int) -> None:
        self._second = second
        self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        # "" for a level the logger filters out (its level may change while the site runs).
        self._level_names = [
            logging.getLevelName(level) if self._logger.isEnabledFor(level) else ""
            for level in _LEVEL_OF_CLASS
        ]

    def line(
        self,
        when: float,
        method: str,
        path: str,
        status: int,
        duration_ms: float | None,
        request_id: str,
        xray_trace_id: str | None,
        client_ip: str,
        user_agent: str,
    ) -> str:
        """The line for one response at epoch ``when``, or ``""`` if the logger's level
        filters it out."""
        second = int(when)
        if second != self._second:
            self._new_second(second)
        level = self._level_names[min(status // 100, 5)]
        if not level:
            return ""
        esc = encode_basestring_ascii
        millis = _MILLISECONDS[int((when - second) * 1000)]
        duration = "null" if duration_ms is None else f"{duration_ms:.3f}"
        trace = "null" if xray_trace_id is None else esc(xray_trace_id)
        return (
            f'{{"timestamp":"{self._second_text}.{millis}+00:00","level":"{level}{self._head}'
            f"{esc(f'{method} {path} {status}')},"
            f'"method":{esc(method)},"path":{esc(path)},"status":{status},'
            f'"duration_ms":{duration},"request_id":{esc(request_id)},"xray_trace_id":{trace},'
            f'"client_ip":{esc(client_ip)},"user_agent":{esc(user_agent)}}}\n'
        )
