"""The deployment diagnosis from recorded-shape responses: reasons, grouping, order, trimming."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.stub import Stubber

from chalicelib.diagnosis import Diagnosis, diagnose, stop_reason, task_id
from tests.support.aws_responses import load_response

STOPPED = load_response("ecsDescribeTasksStopped")["tasks"]
NEWEST, _, OOM, PULL = (task_id(t["taskArn"]) for t in STOPPED)


def tasks() -> list[dict[str, Any]]:
    return list(load_response("ecsDescribeTasksStopped")["tasks"])


def health() -> list[dict[str, Any]]:
    return list(load_response("elbv2DescribeTargetHealth")["TargetHealthDescriptions"])


def events() -> list[dict[str, Any]]:
    return list(load_response("logsGetLogEvents")["events"])


@pytest.mark.parametrize(
    ("service", "operation", "fixture", "params"),
    [
        ("ecs", "describe_tasks", "ecsDescribeTasksStopped", {"tasks": ["t"]}),
        (
            "elbv2",
            "describe_target_health",
            "elbv2DescribeTargetHealth",
            {"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:tg/x/1"},
        ),
        (
            "logs",
            "get_log_events",
            "logsGetLogEvents",
            {"logGroupName": "/ecs/spotops-dev/site", "logStreamName": "site/site/x"},
        ),
    ],
)
def test_the_recorded_responses_have_the_shape_botocore_knows(
    service: str, operation: str, fixture: str, params: dict[str, Any]
) -> None:
    """The Stubber refuses a response that does not match the service's output model."""
    client = boto3.client(
        service,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),  # stubbed: nothing is signed or sent
    )
    with Stubber(client) as stubber:
        stubber.add_response(operation, load_response(fixture), params)
        getattr(client, operation)(**params)


def test_a_stop_names_the_reason_and_the_non_zero_exit_codes_only() -> None:
    newest = tasks()[0]
    assert stop_reason(newest) == "Essential container in task exited; site exited 1"
    assert stop_reason(tasks()[2]) == (
        "Essential container in task exited; site exited 137 "
        "(OutOfMemoryError: Container killed due to memory usage)"
    )


def test_identical_stops_are_counted_once_newest_first_with_the_targets_after() -> None:
    found = diagnose(tasks(), health())

    assert found.findings == (
        f"2 tasks stopped (newest {NEWEST}): Essential container in task exited; site exited 1",
        f"task {OOM} stopped: Essential container in task exited; site exited 137 "
        "(OutOfMemoryError: Container killed due to memory usage)",
        f"task {PULL} stopped: CannotPullContainerError: pull image "
        "manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr."
        "us-east-1.amazonaws.com/my-repository-name:v9: not found",
        "2 targets (e.g. 10.0.1.5:8080) unhealthy: Target.ResponseCodeMismatch "
        "(Health checks failed with these codes: [500])",
        "target 10.0.2.8:8080 unhealthy: Target.Timeout (Request timed out)",
    )


def test_a_stop_without_a_reason_falls_back_to_the_stop_code() -> None:
    task = {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/ab",
        "stopCode": "SpotInterruption",
    }
    assert diagnose([task]).findings == ("task ab stopped: SpotInterruption",)


def test_the_log_lines_follow_oldest_first_without_trailing_newlines() -> None:
    text = diagnose(tasks(), (), events(), log_task=tasks()[0]["taskArn"]).text()

    assert text.endswith(
        f"last log lines of task {NEWEST}:\n"
        "  [2020-05-23 12:22:00 +0000] [1] [INFO] Starting worker [1]\n"
        "  Traceback (most recent call last):\n"
        '    File "/app/site/app.py", line 41, in <module>\n'
        "  KeyError: 'DATABASE_URL'"
    )


def test_what_could_not_be_read_is_said_and_nothing_found_is_said_too() -> None:
    partial = diagnose(unreadable=["the stopped tasks (list_tasks: AccessDeniedException)"])
    assert partial.text() == "could not read the stopped tasks (list_tasks: AccessDeniedException)"
    assert "no stopped task of this deployment" in diagnose().text()


def test_text_at_exactly_the_limit_is_whole_and_one_under_is_trimmed_to_whole_lines() -> None:
    found = diagnose(tasks(), health(), events(), log_task=NEWEST)
    full = found.text()

    assert found.text(len(full)) == full
    trimmed = found.text(len(full) - 1)
    assert len(trimmed) <= len(full) - 1
    assert trimmed.endswith("… 1 more line left out")
    assert trimmed.splitlines()[:-1] == full.splitlines()[: len(trimmed.splitlines()) - 1]


@pytest.mark.parametrize("limit", [0, 1, 5, 40, 200, 3000])
def test_text_never_exceeds_its_budget(limit: int) -> None:
    many = Diagnosis(findings=tuple(f"task {i:032x} stopped: x" * 3 for i in range(200)))
    assert len(many.text(limit)) <= limit


def test_a_diagnosis_of_many_tasks_fits_a_slack_section_and_says_how_much_was_left_out() -> None:
    many = [
        dict(
            tasks()[0],
            taskArn=f"arn:aws:ecs:::task/c/{i:032x}",
            stoppedReason=f"r{i}",
            stoppedAt=float(i),
        )
        for i in range(100)
    ]
    text = diagnose(many).text(3000)

    assert len(text) <= 3000
    assert text.splitlines()[0].startswith("task 00000000000000000000000000000063 stopped: r99")
    assert text.splitlines()[-1].endswith("more lines left out")
