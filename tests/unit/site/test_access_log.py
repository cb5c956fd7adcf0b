"""The access log: the JsonFormatter's fields, rendered without logging, written once per
event-loop turn, in order."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from website.logs import AccessLog, JsonFormatter, StdoutLines, access_level

WHEN = 1_795_000_000.25  # 2026-11-18T11:06:40.250+00:00


def render(log: AccessLog, **overrides: Any) -> str:
    facts: dict[str, Any] = {
        "when": WHEN,
        "method": "GET",
        "path": "/",
        "status": 200,
        "duration_ms": 1.23456,
        "request_id": "req-1",
        "xray_trace_id": None,
        "client_ip": "198.51.100.7",
        "user_agent": "curl/8",
    }
    facts.update(overrides)
    return log.line(**facts)


@pytest.fixture
def access_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("website.access")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_access_line_matches_what_the_json_formatter_writes(
    access_logger: logging.Logger,
) -> None:
    access_logger.setLevel(logging.INFO)
    record = logging.makeLogRecord(
        {"name": "website.access", "levelname": "INFO", "msg": "GET / 200", "created": WHEN}
    )
    for key, value in {
        "method": "GET",
        "path": "/",
        "status": 200,
        "duration_ms": 1.235,
        "request_id": "req-1",
        "xray_trace_id": None,
        "client_ip": "198.51.100.7",
        "user_agent": "curl/8",
    }.items():
        setattr(record, key, value)

    line = render(AccessLog("spotops-dev"))

    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == json.loads(JsonFormatter(service="spotops-dev").format(record))


@pytest.mark.parametrize(
    ("status", "level"), [(200, "INFO"), (304, "INFO"), (404, "WARNING"), (431, "WARNING")]
)
def test_client_errors_are_warnings_not_errors(
    access_logger: logging.Logger, status: int, level: str
) -> None:
    access_logger.setLevel(logging.INFO)

    entry = json.loads(render(AccessLog("spotops"), status=status))

    assert entry["level"] == level
    assert "exception" not in entry


def test_server_errors_are_errors_without_a_traceback(access_logger: logging.Logger) -> None:
    access_logger.setLevel(logging.INFO)

    entry = json.loads(render(AccessLog("spotops"), status=503))

    assert (entry["level"], access_level(503)) == ("ERROR", logging.ERROR)
    assert "exception" not in entry


def test_the_loggers_level_filters_access_lines(access_logger: logging.Logger) -> None:
    access_logger.setLevel(logging.WARNING)
    log = AccessLog("spotops")

    assert render(log, status=200) == ""
    assert json.loads(render(log, status=404))["status"] == 404


def test_whatever_a_client_sends_stays_inside_its_json_string(
    access_logger: logging.Logger,
) -> None:
    access_logger.setLevel(logging.INFO)
    nasty = 'a"b\\c\n{"level":"ERROR"}\x00\udcff\u2028é'

    line = render(AccessLog("spotops"), path="/" + nasty, user_agent=nasty, request_id=nasty)

    assert line.count("\n") == 1
    entry = json.loads(line)
    assert entry["user_agent"] == nasty
    assert entry["path"] == "/" + nasty
    assert entry["level"] == "INFO"


def test_timestamp_and_duration(access_logger: logging.Logger) -> None:
    access_logger.setLevel(logging.INFO)

    entry = json.loads(render(AccessLog("spotops"), duration_ms=None))
    later = json.loads(render(AccessLog("spotops"), when=WHEN + 0.5, duration_ms=0.0004))

    assert entry["timestamp"] == datetime.fromtimestamp(WHEN, UTC).isoformat(
        timespec="milliseconds"
    )
    assert later["timestamp"].endswith(":40.750+00:00")
    assert entry["duration_ms"] is None
    assert later["duration_ms"] == 0.0


def test_without_a_loop_each_line_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    lines = StdoutLines()

    lines.add("one\n")
    lines.add_later(lambda n: f"two {n}\n", 2)

    assert capsys.readouterr().out == "one\ntwo 2\n"


def test_in_a_loop_a_turns_lines_are_written_together_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = StdoutLines()
    seen: list[str] = []

    async def turn() -> None:
        lines.add("a\n")
        lines.add_later(lambda: "b\n")
        lines.add("c\n")
        seen.append(capsys.readouterr().out)  # nothing written yet
        await asyncio.sleep(0)
        seen.append(capsys.readouterr().out)

    asyncio.run(turn())

    assert seen == ["", "a\nb\nc\n"]


def test_a_line_that_fails_to_render_costs_only_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = StdoutLines()

    def broken() -> str:
        raise ValueError("boom")

    async def turn() -> None:
        lines.add("before\n")
        lines.add_later(broken)
        lines.add("after\n")

    asyncio.run(turn())
    lines.flush()

    before, failed, after = capsys.readouterr().out.splitlines()
    assert (before, after) == ("before", "after")
    assert json.loads(failed)["error"] == "ValueError('boom')"
