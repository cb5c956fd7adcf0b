"""End to end: the ops toolkit as it ships.

``spotops deploy`` packages ``ops_lambdas/`` (Chalice, merged with ``ops.yaml``, translated
from SAM), uploads the zip and deploys network -> site -> ops into the moto server. The
handlers are then imported **from the deployed zip** (downloaded from the emulator's S3), in
a fresh process with the function's deployed environment, and fed events shaped exactly as
AWS documents them (the emulator emits none and cannot invoke a Lambda itself).

moto keeps the functions, rules, tables, queues and parameters, but drops a function's
``TracingConfig`` and ``Layers``, EventInvokeConfig and the secret; those are asserted on the
packaged template in ``tests/integration/ops/test_package.py``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import load_event
from tests.support.iam import enforced_iam, principal_with_policy
from tests.support.ops_stage import (
    APP,
    FUNCTIONS,
    STAGE,
    Stage,
    deployed_stage,
    project_copy,
    spotops,
)
from tests.support.packaged_handler import PROVIDED, SHIPPED
from tests.support.slack_stub import SlackStub
from tests.support.smoke_target import SmokeTarget

pytestmark = pytest.mark.emulator

DEV_DESIRED_COUNT = json.loads(
    (Path(__file__).resolve().parents[2] / "config" / "dev.json").read_text()
)["parameters"]["DesiredCount"]


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


# ---- the deploy -------------------------------------------------------------------------


def test_deploy_makes_three_stacks_and_a_second_deploy_changes_nothing(stage: Stage) -> None:
    stacks = {f"{APP}-{STAGE}-{p}" for p in ("network", "site", "ops")}
    assert set(stage.outputs) == {*stacks, f"{APP}-bootstrap"}  # the app's artifact bucket

    again = spotops(stage.project, stage.emulator, "deploy", "--yes")

    assert again.returncode == 0, again.stderr[-3000:]
    for part in ("network", "site", "ops"):
        assert f"{APP}-{STAGE}-{part}: up to date" in again.stderr


def test_the_toolkit_and_everything_it_needs_exist_in_the_emulator(stage: Stage) -> None:
    roles = set()
    for name in FUNCTIONS:
        function = stage.function(name)
        env = function["Environment"]["Variables"]
        assert function["Handler"] == f"app.{name}"
        assert function["Runtime"] == "python3.11"
        roles.add(function["Role"])
        # Names the packager took from the site stack...
        assert env["CLUSTER_NAME"] == stage.site["ClusterName"]
        assert env["SERVICE_NAME"] == stage.site["ServiceName"]
        assert env["REPOSITORY_NAME"] == stage.site["RepositoryName"]
        # ...and resources of the ops stack, which must exist under those names.
        assert env["LEDGER_TABLE_NAME"] == stage.ops["LedgerTableName"]
        stage.client("dynamodb").describe_table(TableName=env["LEDGER_TABLE_NAME"])
        stage.client("dynamodb").describe_table(TableName=env["IDEMPOTENCY_TABLE_NAME"])
        stage.client("sqs").get_queue_attributes(QueueUrl=env["SLACK_DLQ_URL"])
        ssm = stage.client("ssm")
        assert ssm.get_parameter(Name=env["KILL_SWITCH_PARAMETER"])["Parameter"]["Value"] == "off"
        assert ssm.get_parameter(Name=env["DRY_RUN_PARAMETER"])["Parameter"]["Value"] == "false"
        # config/dev.json's DesiredCount (moto keeps a Ref to a Number as a number).
        assert str(env["INITIAL_DESIRED_COUNT"]) == str(DEV_DESIRED_COUNT)
        assert env["SLACK_WEBHOOK_SECRET_NAME"] == stage.ops["SlackWebhookSecretName"]
    assert len(roles) == len(FUNCTIONS) == 7  # one role per function

    rules = stage.client("events").list_rules()["Rules"]
    patterns = [json.loads(r["EventPattern"]) for r in rules if r.get("EventPattern")]
    push = next(p for p in patterns if p["source"] == ["aws.ecr"])
    assert push["detail"]["repository-name"] == [stage.site["RepositoryName"]]
    deployments = [p for p in patterns if p["detail-type"] == ["ECS Deployment State Change"]]
    # deployment_outcome takes every state change; image_scan_alert only completions.
    outcome = next(p for p in deployments if "detail" not in p)
    service = f"service/{stage.site['ClusterName']}/{stage.site['ServiceName']}"
    assert outcome["resources"][0]["wildcard"].endswith(service)
    assert sorted(r["ScheduleExpression"] for r in rules if r.get("ScheduleExpression")) == [
        "rate(15 minutes)",  # alarm_action's capacity check
        "rate(15 minutes)",  # reconcile_images
        "rate(60 minutes)",  # chaos_tick
    ]


def test_deploying_ops_before_the_site_exists_names_the_order(emulator, tmp_path) -> None:
    project = project_copy(tmp_path)
    done = spotops(project, emulator, "package", "--stage", STAGE)

    assert done.returncode == 1
    assert "network -> site -> ops" in done.stderr
    assert "Traceback" not in done.stderr


# ---- the package, run as Lambda runs it --------------------------------------------------


def test_the_zip_holds_what_runs_and_nothing_the_runtime_brings(stage: Stage) -> None:
    tops = {name.split("/", 1)[0] for name in stage.zip_names}
    assert {"app.py", "chalicelib", "slack_sdk"} <= tops
    for absent in ("boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk", "tests"):
        assert absent not in tops
    assert not [n for n in stage.zip_names if "/test_" in n or n.startswith("test")]


def test_first_push_serves_traffic_and_slack_waits_in_the_dead_letter_queue(
    stage: Stage, slack: SlackStub
) -> None:
    assert stage.service()["desiredCount"] == 0  # first deploy: no image yet
    digest = stage.push_image("v1.0.0")

    ran = stage.run("redeploy_on_push", stage.push_event(digest, "v1.0.0"))

    assert ran["result"]["status"] == "deploying", ran["logs"]
    assert stage.service()["desiredCount"] == DEV_DESIRED_COUNT  # config/dev.json's
    assert stage.site_image().endswith(f"@{digest}")
    for module in SHIPPED:
        assert ran["origins"][module].startswith(str(stage.zip_dir)), ran["origins"]
    for module in PROVIDED:
        assert not ran["origins"][module].startswith(str(stage.zip_dir)), ran["origins"]
    # No webhook yet: the message is kept, with the way to fix it.
    (kept,) = stage.slack_dead_letters()
    assert "spotops slack-webhook set --stage dev" in kept["reason"]
    assert kept["message"]["text"].startswith(":rocket: deploying v1.0.0")

    # ECS reports the deployment done (the emulator runs no tasks, so the event is ours).
    done = stage.run("deployment_outcome", stage.completed_event(ran["result"]["deployment_id"]))
    assert done["result"]["status"] == "succeeded", done["logs"]

    # Once the webhook is set, the next push is posted.
    set_hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert set_hook.returncode == 0, set_hook.stderr
    second = stage.push_image("v1.0.1")
    assert (
        stage.run("redeploy_on_push", stage.push_event(second, "v1.0.1"))["result"]["status"]
        == "deploying"
    )
    assert slack.texts()[-1].startswith(":rocket: deploying v1.0.1")
    assert stage.service()["desiredCount"] == DEV_DESIRED_COUNT


# ---- least privilege ----------------------------------------------------------------------


def _without_conditions(policy: dict[str, Any]) -> dict[str, Any]:
    """moto does not evaluate Condition blocks (the harness refuses them rather than let them
    over-grant); the conditions themselves are asserted on the packaged template."""
    document = copy.deepcopy(policy)
    for statement in document["Statement"]:
        statement.pop("Condition", None)
    return document


def test_each_function_succeeds_holding_only_its_own_policy(stage: Stage, slack: SlackStub) -> None:
    hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr
    iam = stage.client("iam")
    credentials = {
        name: principal_with_policy(
            iam, f"ops-{name}", _without_conditions(stage.role_policy(name))
        )
        for name in FUNCTIONS
    }
    first = stage.push_image("v2.0.0")

    with enforced_iam(stage.emulator):
        pushed = stage.run(
            "redeploy_on_push", stage.push_event(first, "v2.0.0"), credentials["redeploy_on_push"]
        )
        completed = stage.completed_event(pushed["result"].get("deployment_id", "none"))
        outcome = stage.run("deployment_outcome", completed, credentials["deployment_outcome"])
    # A newer image whose push event is lost: only the reconcile run can find it.
    newer = stage.push_image("v2.0.1")
    with enforced_iam(stage.emulator):
        reconciled = stage.run(
            "reconcile_images", load_event("scheduledEvent"), credentials["reconcile_images"]
        )

    # The image now running turns out vulnerable; a new revision is smoke-tested by ECS.
    target = SmokeTarget()
    stage.client("ecr").start_image_scan(
        repositoryName=stage.site["RepositoryName"], imageId={"imageDigest": newer}
    )
    try:
        with enforced_iam(stage.emulator):
            scanned = stage.run(
                "image_scan_alert",
                stage.scan_event(newer, {"HIGH": 2, "LOW": 5}),
                credentials["image_scan_alert"],
            )
            # ... and, its scan finished, the deployment that put it there completes.
            deployed = stage.run(
                "image_scan_alert",
                stage.completed_event(reconciled["result"].get("deployment_id", "none")),
                credentials["image_scan_alert"],
            )
            hook_event = target.hook_event(load_event("ecsLifecycleHookPostTestTrafficShift"))
            # The target revision is one of this stage's service (the role may read no other).
            hook_event["executionDetails"]["targetServiceRevisionArn"] = (
                stage.service_arn.replace(":service/", ":service-revision/") + "/1"
            )
            hooked = stage.run("deployment_hook", hook_event, credentials["deployment_hook"])
    finally:
        target.close()

    assert pushed["result"]["status"] == "deploying", pushed["logs"]
    assert outcome["result"]["status"] == "succeeded", outcome["logs"]
    assert reconciled["result"]["status"] == "deploying", reconciled["logs"]
    assert scanned["result"]["status"] == "alerted", scanned["logs"]
    assert deployed["result"]["status"] == "alerted", deployed["logs"]
    assert deployed["result"]["alerted"] == [newer]
    assert hooked["result"] == {"hookStatus": "SUCCEEDED"}, hooked["logs"]
    assert stage.site_image().endswith(f"@{newer}")
    every_log = pushed["logs"] + outcome["logs"] + reconciled["logs"] + scanned["logs"]
    every_log += deployed["logs"]
    assert "AccessDenied" not in every_log + hooked["logs"]
    # Every message reached Slack: the secret and the webhook were readable.
    assert [text.split(" ", 1)[0] for text in slack.texts()] == [
        ":rocket:",
        ":white_check_mark:",
        ":rocket:",
        ":warning:",  # the scan event
        ":warning:",  # the completed deployment
    ]


def test_a_policy_missing_one_action_fails_the_same_push(stage: Stage) -> None:
    policy = _without_conditions(stage.role_policy("redeploy_on_push"))
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        statement["Action"] = [a for a in actions if a != "ecs:UpdateService"] or [
            "ecs:ListServices"
        ]
    credentials = principal_with_policy(stage.client("iam"), "ops-short", policy)
    digest = stage.push_image("v3.0.0")

    with enforced_iam(stage.emulator):
        ran = stage.run("redeploy_on_push", stage.push_event(digest, "v3.0.0"), credentials)

    assert ran["result"]["status"] == "failed", ran["logs"]
    assert "AccessDeniedException" in ran["result"]["reason"]
    assert not stage.site_image().endswith(f"@{digest}")
