"""verify's log search: it asks for the function's line by the JSON filter pattern CloudWatch
Logs documents (``{ $.verification = "<id>" }``), polls until the line is there or the wait is
over, and treats a log group not yet created as nothing found.

moto 5.2.5's ``filter_log_events`` does not evaluate JSON filter patterns (it finds nothing
for them), so a recording fake stands in for the service here."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from spotops.proof.verify_facts import logged_in_group

GROUP = "/aws/lambda/spotops-dev-chaos_tick"


class RecordingLogs:
    """Answers ``filter_log_events`` with nothing ``misses`` times, then with one event."""

    def __init__(self, misses: int) -> None:
        self.misses = misses
        self.calls: list[dict[str, Any]] = []

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if len(self.calls) <= self.misses:
            return {"events": []}
        return {"events": [{"message": '{"verification": "verify-aaaa"}'}]}


def search(logs: Any, wait_seconds: float, slept: list[float]) -> bool:
    ticks = iter(float(n) for n in range(100))
    return logged_in_group(
        logs,
        GROUP,
        "verify-aaaa",
        since_ms=1_800_000_000_000,
        wait_seconds=wait_seconds,
        poll_seconds=1.0,
        clock=lambda: next(ticks),
        sleep=slept.append,
    )


def test_the_line_is_asked_for_by_its_json_filter_pattern_until_it_comes() -> None:
    logs, slept = RecordingLogs(misses=2), []

    assert search(logs, wait_seconds=10, slept=slept) is True
    assert slept == [1.0, 1.0]
    assert logs.calls[0] == {
        "logGroupName": GROUP,
        "filterPattern": '{ $.verification = "verify-aaaa" }',
        "startTime": 1_800_000_000_000,
        "limit": 1,
    }


def test_the_search_gives_up_when_the_wait_is_over() -> None:
    logs, slept = RecordingLogs(misses=100), []

    assert search(logs, wait_seconds=3, slept=slept) is False
    assert len(logs.calls) == 3


@mock_aws
def test_a_log_group_not_yet_created_is_nothing_found_rather_than_an_error() -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    assert search(logs, wait_seconds=0, slept=[]) is False
