"""JSON log lines and the drain flag shared between processes."""

from __future__ import annotations

import json
import logging
from multiprocessing.sharedctypes import RawValue

from website.lifecycle import DrainState
from website.logs import JsonFormatter


def test_log_line_is_one_json_object_with_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "website.access", "levelname": "INFO", "msg": "GET %s", "args": ("/",)}
    )
    record.status = 200

    line = JsonFormatter(service="spotops-dev").format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["service"] == "spotops-dev"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "website.access"
    assert entry["message"] == "GET /"
    assert entry["status"] == 200
    assert entry["timestamp"].endswith("+00:00")


def test_exceptions_stay_inside_the_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("website", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()

    entry = json.loads(JsonFormatter().format(record))

    assert "ValueError: boom" in entry["exception"]


def test_drain_begins_once() -> None:
    drain = DrainState()

    assert drain.is_draining is False
    assert drain.begin() is True
    assert drain.begin() is False
    assert drain.is_draining is True


def test_drain_flag_in_shared_memory_is_seen_by_every_reader() -> None:
    shared = RawValue("b", 0)
    main, worker = DrainState(), DrainState()
    main.attach(shared)
    worker.attach(shared)

    main.begin()

    assert worker.is_draining is True
