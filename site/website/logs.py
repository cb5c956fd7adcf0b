"""Structured JSON logs on stdout: one object per line, the shape Powertools Logger writes.

CloudWatch Logs Insights can then query the site's lines and the Lambdas' lines alike
(``level``, ``timestamp``, ``service``, ``message``, ``xray_trace_id``).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

ACCESS_LOGGER = "website.access"

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
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": sys.stdout}
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
