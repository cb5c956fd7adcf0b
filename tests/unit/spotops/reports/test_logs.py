"""Reading logs: sources, --since, merging, following, and how a line is shown."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotops.cli.render import log_line
from spotops.errors import UsageError
from spotops.reports.logs import LogLine, LogReader, LogSource, choose_sources, parse_since

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FUNCTIONS = ("redeploy_on_push", "chaos_tick")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", datetime(2026, 11, 28, 11, 59, 30, tzinfo=UTC)),
        ("10m", datetime(2026, 11, 28, 11, 50, tzinfo=UTC)),
        ("2h", datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
        ("2026-11-28T09:30:00Z", datetime(2026, 11, 28, 9, 30, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_a_time(text, expected):
    assert parse_since(text, NOW) == expected


def test_error_if_since_is_neither():
    with pytest.raises(UsageError, match="30s, 10m, 2h, 1d, 1w"):
        parse_since("yesterday", NOW)


def test_sources_default_to_the_site_and_name_groups_by_the_stage():
    assert choose_sources((), app="spotops", stage="qa", functions=FUNCTIONS) == [
        LogSource("site", "/ecs/spotops-qa/site")
    ]
    every = choose_sources(("all",), app="spotops", stage="qa", functions=FUNCTIONS)
    assert [s.group for s in every] == [
        "/ecs/spotops-qa/site",
        "/aws/lambda/spotops-qa-redeploy_on_push",
        "/aws/lambda/spotops-qa-chaos_tick",
    ]
    named = choose_sources(
        ("chaos_tick", "site"),
        app="spotops",
        stage="qa",
        functions=FUNCTIONS,
        site_outputs={"LogGroupName": "/custom/site"},
    )
    assert [s.group for s in named] == ["/aws/lambda/spotops-qa-chaos_tick", "/custom/site"]


class FakeLogs:
    def __init__(self, groups: dict[str, list[dict[str, Any]]]) -> None:
        self.groups = groups
        self.calls: list[dict[str, Any]] = []

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if kwargs["logGroupName"] not in self.groups:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "x"}}, "FilterLogEvents"
            )
        events = [
            e for e in self.groups[kwargs["logGroupName"]] if e["timestamp"] >= kwargs["startTime"]
        ]
        return {"events": events}


def _event(ms: int, message: str, event_id: str) -> dict[str, Any]:
    return {"timestamp": ms, "message": message, "eventId": event_id, "logStreamName": "s"}


def test_events_of_several_groups_are_merged_by_time_and_missing_groups_reported():
    start = int(NOW.timestamp() * 1000)
    logs = FakeLogs(
        {"a": [_event(start + 2, "second", "2")], "b": [_event(start + 1, "first", "1")]}
    )
    sources = [LogSource("a", "a"), LogSource("b", "b"), LogSource("c", "c")]

    lines, missing = LogReader(logs).read(sources, NOW)

    assert [line.message for line in lines] == ["first", "second"]
    assert missing == [LogSource("c", "c")]


def test_following_prints_each_event_once_and_picks_up_new_ones():
    start = int(NOW.timestamp() * 1000)
    events = [_event(start, "one", "1")]
    logs = FakeLogs({"g": events})
    polls = []

    def sleep(_: float) -> None:
        polls.append(1)
        events.append(_event(start + len(polls), f"new {len(polls)}", f"n{len(polls)}"))

    followed = LogReader(logs, sleep=sleep).follow([LogSource("g", "g")], NOW)

    assert [next(followed).message for _ in range(3)] == ["one", "new 1", "new 2"]


def test_following_says_once_when_it_has_caught_up_and_which_groups_are_missing():
    start = int(NOW.timestamp() * 1000)
    logs = FakeLogs({"g": [_event(start, "one", "1"), _event(start + 1, "two", "2")]})
    happened: list[object] = []

    def sleep(_: float) -> None:
        happened.append("sleep")
        if happened.count("sleep") == 2:
            logs.groups["g"].append(_event(start + 2, "three", "3"))

    followed = LogReader(logs, sleep=sleep).follow(
        [LogSource("g", "g"), LogSource("h", "h")],
        NOW,
        caught_up=lambda missing: happened.append(("caught up", list(missing))),
    )
    for _ in range(3):
        happened.append(next(followed).message)

    # After the backlog and before the first wait, once; not again on later polls.
    assert happened == [
        "one",
        "two",
        ("caught up", [LogSource("h", "h")]),
        "sleep",
        "sleep",
        "three",
    ]


def test_a_json_line_is_shown_with_its_level_message_and_fields():
    line = LogLine(
        NOW,
        "site",
        "s",
        json.dumps({"level": "ERROR", "timestamp": "x", "message": "boom", "path": "/", "n": 2}),
    )

    shown = log_line(line, width=4)

    assert "12:00:00" in shown
    assert "ERROR" in shown
    assert "boom" in shown
    assert "path=/ n=2" in shown
    assert "timestamp" not in shown


def test_a_plain_line_is_shown_as_it_is():
    shown = log_line(
        LogLine(NOW, "chaos_tick", "s", "REPORT RequestId: 1 Duration: 2 ms"), width=10
    )

    assert shown.endswith("REPORT RequestId: 1 Duration: 2 ms")
