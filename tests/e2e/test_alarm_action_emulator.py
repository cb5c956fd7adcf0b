"""End to end: the alarm function as it ships.

``spotops deploy`` puts ``alarm_action``, its role, its four EventBridge rules (alarm state
changes, Spot interruptions, placement failures, the 15-minute capacity check) and its
subscription to the site's alarm topic into the moto server with the rest of the ops stack.
moto drops ``AWS::SNS::Subscription`` (``tests/integration/ops/test_package.py`` asserts it on
the template) and cannot invoke a Lambda, so the handler is imported from the deployed zip in
a fresh process and fed the events as SNS and EventBridge would, under moto's IAM
enforcement, holding only its own policy (conditions stripped: it has none).

moto's CloudFormation also drops the service's capacity provider strategy and the
autoscaling target: the tests put back what site.yaml says (a Spot strategy, 1-3 tasks).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.alarms import (
    SPOT_STRATEGY,
    eventbridge_alarm,
    prepare_service,
    put_alarm,
    scheduled,
    sns_alarm,
    spot_interruption,
)
from tests.support.iam import enforced_iam, principal_with_policy
from tests.support.ops_stage import APP, STAGE, Stage, deployed_stage, spotops
from tests.support.packaged_handler import invoke
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator

FUNCTION = "alarm_action"
PREFIX = f"{APP}-{STAGE}-"
ON_DEMAND = [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


def _without_conditions(policy: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(policy)
    for statement in document["Statement"]:
        statement.pop("Condition", None)
    return document


def run(
    stage: Stage, event: Any, credentials: dict[str, str] | None = None, **overrides: str
) -> dict[str, Any]:
    env = {**stage.environment(FUNCTION, credentials), **overrides}
    return invoke(stage.zip_dir, FUNCTION, event, env, stage.tmp_path)


def the_site(stage: Stage, desired: int = 2) -> None:
    prepare_service(
        stage.client("ecs"),
        stage.client("application-autoscaling"),
        cluster=stage.site["ClusterName"],
        service=stage.site["ServiceName"],
        desired=desired,
        max_tasks=3,
    )


# ---- the deploy ------------------------------------------------------------------------------


def test_the_ops_stack_deploys_the_alarm_function_and_its_rules(stage: Stage) -> None:
    function = stage.function(FUNCTION)
    env = function["Environment"]["Variables"]
    assert function["Handler"] == f"app.{FUNCTION}"
    assert function["Timeout"] == 120
    assert env["ALARM_TOPIC_ARN"] == stage.site["AlarmTopicArn"]
    assert str(env["REMEDIATION_MAX_PER_HOUR"]) == "3"
    assert env["SLACK_WEBHOOK_SECRETS_BY_SEVERITY"] == ""
    assert function["Role"] not in {
        stage.function(n)["Role"] for n in ("redeploy_on_push", "chaos_tick")
    }
    events = stage.client("events")
    mine = {}
    for rule in events.list_rules()["Rules"]:
        (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if target["Arn"] == function["FunctionArn"]:
            assert target["DeadLetterConfig"]["Arn"].endswith(f":{APP}-{STAGE}-events-dlq")
            mine[rule["Name"]] = rule
    patterns = [json.loads(r["EventPattern"]) for r in mine.values() if r.get("EventPattern")]
    kinds = sorted(p["detail-type"][0] for p in patterns)
    assert kinds == ["CloudWatch Alarm State Change", "ECS Service Action", "ECS Task State Change"]
    alarms = next(p for p in patterns if p["source"] == ["aws.cloudwatch"])
    assert alarms["detail"]["alarmName"] == [{"prefix": PREFIX}]
    spot = next(p for p in patterns if p["detail-type"] == ["ECS Task State Change"])
    assert spot["detail"]["clusterArn"][0].endswith(f":cluster/{stage.site['ClusterName']}")
    assert spot["detail"]["group"] == [f"service:{stage.site['ServiceName']}"]
    assert [r["ScheduleExpression"] for r in mine.values() if r.get("ScheduleExpression")] == [
        "rate(15 minutes)"
    ]
    (group,) = stage.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{APP}-{STAGE}-{FUNCTION}"
    )["logGroups"]
    assert group["retentionInDays"] == 7  # config/dev.json LogRetentionDays


# ---- as shipped, under IAM enforcement ------------------------------------------------------


def test_alarms_are_alerted_and_remediated_holding_only_its_own_policy(
    stage: Stage, slack: SlackStub
) -> None:
    hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr
    the_site(stage)
    ecs = stage.client("ecs")
    before = stage.service()["deployments"][0]["id"]
    credentials = principal_with_policy(
        stage.client("iam"), "ops-alarm", _without_conditions(stage.role_policy(FUNCTION))
    )
    now = time.time()
    cluster, service = stage.site["ClusterName"], stage.site["ServiceName"]
    # The alarms as the site stack makes them, in ALARM (moto's CloudFormation drops them):
    # the function reads each alarm again before it acts.
    for name in ("unhealthy-hosts", "cpu-high"):
        put_alarm(stage.client("cloudwatch"), f"{PREFIX}{name}", "ALARM")

    # Four actions in a row: more than the deployed hourly budget of 3 allows.
    limits = {"REMEDIATION_MAX_PER_HOUR": "4"}
    with enforced_iam(stage.emulator):
        unhealthy = run(stage, sns_alarm(f"{PREFIX}unhealthy-hosts", at=now), credentials, **limits)
        cpu = run(stage, eventbridge_alarm(f"{PREFIX}cpu-high", at=now), credentials, **limits)
        spots = [
            run(
                stage,
                spot_interruption(cluster, service, f"task{n}", at=now + n),
                credentials,
                **limits,
            )
            for n in range(3)
        ]
        check = run(stage, scheduled(), credentials, CAPACITY_RETURN_AFTER_SECONDS="0", **limits)

    assert unhealthy["result"]["status"] == "acted", unhealthy["logs"]
    assert cpu["result"]["status"] == "acted", cpu["logs"]
    assert [s["result"]["status"] for s in spots] == ["noticed", "noticed", "acted"]
    assert check["result"]["status"] == "acted", check["logs"]  # Spot back at once (return 0 s)
    described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert described["desiredCount"] == 3
    assert described["deployments"][0]["id"] != before
    assert described["capacityProviderStrategy"] == SPOT_STRATEGY
    for ran in (unhealthy, cpu, *spots, check):
        assert "AccessDenied" not in ran["logs"]
        assert ran["origins"]["chalicelib"].startswith(str(stage.zip_dir))
    assert [text.split(" ", 1)[0] for text in slack.texts()] == [
        ":rotating_light:",  # unhealthy-hosts: the alert
        ":wrench:",  # forced a new deployment
        ":rotating_light:",  # cpu-high
        ":wrench:",  # scaled out 2 -> 3
        ":zap:",
        ":zap:",
        ":zap:",  # the third interruption
        ":wrench:",  # shifted to on-demand
        ":wrench:",  # and back
    ]


def test_a_role_without_update_service_fails_the_remediation_and_says_so(
    stage: Stage, slack: SlackStub
) -> None:
    hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr
    the_site(stage)
    policy = _without_conditions(stage.role_policy(FUNCTION))
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"] != "ecs:UpdateService"]
    credentials = principal_with_policy(stage.client("iam"), "ops-alarm-short", policy)
    put_alarm(stage.client("cloudwatch"), f"{PREFIX}memory-high", "ALARM")

    with enforced_iam(stage.emulator):
        ran = run(stage, sns_alarm(f"{PREFIX}memory-high", at=time.time()), credentials)

    assert ran["result"]["status"] == "failed", ran["logs"]
    assert stage.service()["desiredCount"] == 2
    assert slack.texts()[-1].startswith(":x: Remediation failed: scale-out")
    assert "access denied" in slack.texts()[-1]


@pytest.mark.parametrize(
    "event",
    [
        {"Records": []},  # Chalice's own SNS wrapper would raise IndexError here
        {"Records": [{"Sns": {"Message": "{cut sho", "Subject": "no alarm"}}]},
        {"version": "0", "source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        {"hello": "world"},
    ],
)
def test_bad_input_to_the_deployed_handler_is_ignored_not_raised(
    stage: Stage, event: dict[str, Any]
) -> None:
    ran = run(stage, event)
    assert ran["result"]["status"] == "ignored", ran["logs"]
    assert "event ignored" in ran["logs"]
