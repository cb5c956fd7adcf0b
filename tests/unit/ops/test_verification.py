"""The verification marker's parser and the pieces that make a marked run change nothing."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from chalicelib.controls import DryRunState, KillSwitchState
from chalicelib.hook.smoke import Target
from chalicelib.slack import build_message
from chalicelib.verification import (
    MARKER_KEY,
    ForcedDryRun,
    MalformedVerificationError,
    ReadOnlyClient,
    RecordedNotices,
    Suppressed,
    WriteRefusedError,
    hook_plan,
    is_read_operation,
    run_hook,
    verification_id,
)

# Clients are only built, never called over the network: every call below is either refused
# or suppressed before botocore would send it.
SESSION = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
)


@pytest.mark.parametrize("good", ["a", "verify-1", "A" * 64, "0-0-0", "abcDEF-123"])
def test_a_valid_id_is_returned(good: str) -> None:
    assert verification_id({"source": "aws.ecr", MARKER_KEY: good}) == good


@pytest.mark.parametrize("event", [{}, {"source": "aws.ecr"}, [], "text", None])
def test_an_event_without_the_marker_is_an_ordinary_event(event: Any) -> None:
    assert verification_id(event) is None


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("", "got ''"),
        ("a" * 65, "1 to 64 letters"),
        ("has space", "got 'has space'"),
        ("under_score", "got 'under_score'"),
        ("new-line\n", "1 to 64 letters"),  # `$` would accept a trailing newline
        ("é", "got 'é'"),
        (123, "got int"),
        (None, "got NoneType"),
        (["a"], "got list"),
    ],
)
def test_a_marker_that_is_not_a_valid_id_is_malformed_and_says_why(value: Any, said: str) -> None:
    with pytest.raises(MalformedVerificationError, match=MARKER_KEY) as raised:
        verification_id({MARKER_KEY: value})
    assert said in str(raised.value)


def test_a_long_bad_id_is_not_echoed_whole() -> None:
    with pytest.raises(MalformedVerificationError) as raised:
        verification_id({MARKER_KEY: "x" * 1000 + " "})
    assert len(str(raised.value)) < 150


@pytest.mark.parametrize(
    ("api", "reads"),
    [
        ("DescribeServices", True),
        ("ListTasks", True),
        ("GetParameter", True),
        ("BatchGetImage", True),
        ("Query", True),
        ("UpdateService", False),
        ("RegisterTaskDefinition", False),
        ("StopTask", False),
        ("PutItem", False),
        ("PutParameter", False),
        ("SendMessage", False),
        ("PutImage", False),
        ("RegisterScalableTarget", False),
    ],
)
def test_only_describe_list_get_query_and_scan_operations_read(api: str, reads: bool) -> None:
    assert is_read_operation(api) is reads


def test_a_write_to_ecs_is_refused_before_it_is_sent() -> None:
    ecs = ReadOnlyClient(SESSION.client("ecs"), "verify-1", Suppressed())
    with pytest.raises(WriteRefusedError, match=r"verify-1 refused ecs:UpdateService"):
        ecs.update_service(cluster="c", service="s", desiredCount=3)
    with pytest.raises(WriteRefusedError, match=r"ecs:StopTask"):
        ecs.stop_task(cluster="c", task="t")


def test_reads_and_non_operations_pass_through() -> None:
    inner = SESSION.client("ecs")
    ecs = ReadOnlyClient(inner, "verify-1", Suppressed())
    assert ecs.describe_services == inner.describe_services
    assert ecs.meta is inner.meta
    assert ecs.get_paginator("list_tasks") is not None


def test_a_ledger_write_is_suppressed_and_listed_not_made() -> None:
    suppressed = Suppressed()
    ddb = ReadOnlyClient(SESSION.client("dynamodb"), "verify-1", suppressed)
    assert ddb.put_item(TableName="ledger", Item={"pk": {"S": "x"}}) == {}
    assert ddb.update_item(TableName="ledger", Key={"pk": {"S": "x"}}) == {}
    assert suppressed.writes == ["dynamodb:PutItem ledger", "dynamodb:UpdateItem ledger"]
    with pytest.raises(WriteRefusedError, match="dynamodb:DeleteTable"):
        ddb.delete_table(TableName="ledger")


class EngagedNowhere:
    def kill_switch(self) -> KillSwitchState:
        return KillSwitchState(False, "kill switch /ops/kill-switch is off")

    def dry_run(self) -> DryRunState:
        return DryRunState(False, "DRY_RUN is false and no DRY_RUN_PARAMETER is set")


def test_dry_run_is_forced_even_when_every_control_would_let_automation_act() -> None:
    controls = ForcedDryRun(EngagedNowhere(), "verify-1")
    assert controls.dry_run() == DryRunState(True, "verification event verify-1 (dry run forced)")
    assert controls.kill_switch().engaged is False  # read as it stands, reported as it is


def test_a_notice_is_recorded_by_title_and_not_delivered() -> None:
    suppressed = Suppressed()
    result = RecordedNotices(suppressed).post(
        build_message(":x: Deployment failed", "body"), job="redeploy"
    )
    assert result.delivered is False
    assert result.dead_lettered is False
    assert suppressed.notices == [":x: Deployment failed"]


def test_the_hook_plan_names_the_target_header_and_revision() -> None:
    target = Target("http://127.0.0.1:8080", {"X-Spotops-Test-Traffic": "qa"})
    arn = "arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/1"
    assert hook_plan(target, "", arn) == (
        "run the smoke tests on http://127.0.0.1:8080 with header X-Spotops-Test-Traffic "
        f"and compare /version with the image of {arn}"
    )
    assert hook_plan(None, "hookDetails.baseUrl is not an http(s) URL", None) == (
        "answer FAILED: cannot test: hookDetails.baseUrl is not an http(s) URL"
    )


def never() -> dict[str, str]:
    raise AssertionError("a marked or malformed hook event must not be decided")


def test_a_marked_hook_event_is_in_progress_and_not_decided() -> None:
    answer = run_hook({MARKER_KEY: "verify-1"}, job="hook", decide=never, plan=lambda: "plan")
    assert answer == {
        "hookStatus": "IN_PROGRESS",
        "verification": "verify-1",
        "dry_run": True,
        "would": "plan",
    }


def test_a_hook_event_with_a_bad_marker_fails_and_is_not_decided() -> None:
    assert run_hook({MARKER_KEY: "bad id"}, job="hook", decide=never, plan=never) == {
        "hookStatus": "FAILED"
    }


def test_an_ordinary_hook_event_is_decided() -> None:
    decided = run_hook({}, job="hook", decide=lambda: {"hookStatus": "SUCCEEDED"}, plan=never)
    assert decided == {"hookStatus": "SUCCEEDED"}
