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

import ast
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.events import load_event
from tests.support.iam import enforced_iam, principal_with_policy
from tests.support.images import put_image
from tests.support.packaged_handler import PROVIDED, SHIPPED, invoke
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]
APP, STAGE = "spotops", "dev"
FUNCTIONS = ("redeploy_on_push", "deployment_outcome", "reconcile_images")
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# ---- the deployed stage ---------------------------------------------------------------


def _project(tmp_path: Path) -> Path:
    """A copy of what `spotops deploy` reads, so its build and record stay in tmp."""
    project = tmp_path / "checkout"
    for part in ("infra", "config", "ops_lambdas"):
        shutil.copytree(
            ROOT / part,
            project / part,
            ignore=shutil.ignore_patterns("__pycache__", "deployments"),
        )
    return project


def spotops(project: Path, emulator: str, *args: str, stdin: str | None = None):
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "spotops", "--project-dir", str(project), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


class Stage:
    """The deployed stage: its outputs, clients, the unpacked zip and helpers."""

    def __init__(self, emulator: str, project: Path, tmp_path: Path) -> None:
        self.emulator = emulator
        self.project = project
        self.tmp_path = tmp_path
        config = Config(retries={"max_attempts": 1})

        def client(service: str) -> Any:
            return boto3.client(
                service, endpoint_url=emulator, region_name="us-east-1", config=config
            )

        self.client: Callable[[str], Any] = client
        stacks = client("cloudformation").describe_stacks()["Stacks"]
        self.outputs = {
            s["StackName"]: {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}
            for s in stacks
        }
        self.site = self.outputs[f"{APP}-{STAGE}-site"]
        self.ops = self.outputs[f"{APP}-{STAGE}-ops"]
        self.zip_dir = self._unpack_deployed_zip()
        # Read now: inside an IAM-enforced block only the principal under test may call.
        self.functions = {name: self._function(name) for name in FUNCTIONS}
        self.service_arn = str(self.service()["serviceArn"])

    def _unpack_deployed_zip(self) -> Path:
        s3 = self.client("s3")
        bucket = self.site["ArtifactBucketName"]
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        assert len(keys) == 1, keys
        body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
        assert keys[0].endswith(f"{hashlib.sha256(body).hexdigest()}.zip")
        archive = self.tmp_path / "deployed.zip"
        archive.write_bytes(body)
        target = self.tmp_path / "lambda-task-root"
        with zipfile.ZipFile(archive) as unzipped:
            self.zip_names = unzipped.namelist()
            unzipped.extractall(target)
        return target

    def function(self, name: str) -> dict[str, Any]:
        return self.functions[name]

    def _function(self, name: str) -> dict[str, Any]:
        lam = self.client("lambda")
        found: dict[str, Any] = lam.get_function_configuration(FunctionName=f"{APP}-{STAGE}-{name}")
        return found

    def environment(self, name: str, credentials: dict[str, str] | None = None) -> dict[str, str]:
        """The function's deployed environment, pointed at the emulator."""
        # Lambda passes strings; moto keeps a Ref to a Number parameter as a number.
        env = {k: str(v) for k, v in self.function(name)["Environment"]["Variables"].items()}
        env.update(
            {
                "AWS_ENDPOINT_URL": self.emulator,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_LAMBDA_FUNCTION_NAME": f"{APP}-{STAGE}-{name}",
                "AWS_MAX_ATTEMPTS": "1",
                "SLACK_TIMEOUT_SECONDS": "1",
                "SLACK_MAX_TOTAL_SECONDS": "3",
                **(credentials or FAKE_CREDENTIALS),
            }
        )
        return env

    def run(
        self, name: str, event: dict[str, Any], credentials: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return invoke(self.zip_dir, name, event, self.environment(name, credentials), self.tmp_path)

    def push_image(self, tag: str) -> str:
        return put_image(self.client("ecr"), self.site["RepositoryName"], tag)

    def push_event(self, digest: str, tag: str) -> dict[str, Any]:
        event = load_event("ecrImageActionPush")
        event["id"] = f"push-{tag}"
        event["detail"].update(
            {
                "repository-name": self.site["RepositoryName"],
                "image-digest": digest,
                "image-tag": tag,
            }
        )
        return event

    def completed_event(self, deployment_id: str) -> dict[str, Any]:
        event = load_event("ecsDeploymentStateChangeCompleted")
        event["id"] = f"completed-{deployment_id}"
        event["resources"] = [self.service_arn]
        event["detail"]["deploymentId"] = deployment_id
        return event

    def service(self) -> dict[str, Any]:
        found: dict[str, Any] = self.client("ecs").describe_services(
            cluster=self.site["ClusterName"], services=[self.site["ServiceName"]]
        )["services"][0]
        return found

    def site_image(self) -> str:
        arn = self.service()["taskDefinition"]
        definition = self.client("ecs").describe_task_definition(taskDefinition=arn)
        containers = definition["taskDefinition"]["containerDefinitions"]
        return str(next(c["image"] for c in containers if c["name"] == "site"))

    def slack_dead_letters(self) -> list[dict[str, Any]]:
        messages = (
            self.client("sqs")
            .receive_message(QueueUrl=self.ops["SlackDeadLetterQueueUrl"], MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        return [json.loads(m["Body"]) for m in messages]

    def role_policy(self, name: str) -> dict[str, Any]:
        """The one inline policy of the function's role, as the emulator's IAM holds it."""
        iam = self.client("iam")
        role = self.function(name)["Role"].rsplit("/", 1)[-1]
        names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        assert len(names) == 1, names
        document = iam.get_role_policy(RoleName=role, PolicyName=names[0])["PolicyDocument"]
        if not isinstance(document, str):
            return dict(document)
        try:
            parsed: dict[str, Any] = json.loads(document)
        except ValueError:
            # moto 5.2.5 stores a CloudFormation inline policy as Python's repr of the dict.
            parsed = ast.literal_eval(document)
        return parsed


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    project = _project(tmp_path)
    done = spotops(project, emulator, "deploy", "--yes")
    assert done.returncode == 0, done.stderr[-3000:]
    return Stage(emulator, project, tmp_path)


# ---- the deploy -------------------------------------------------------------------------


def test_deploy_makes_three_stacks_and_a_second_deploy_changes_nothing(stage: Stage) -> None:
    assert set(stage.outputs) == {f"{APP}-{STAGE}-{p}" for p in ("network", "site", "ops")}

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
        # config/dev.json: DesiredCount 2 (moto keeps a Ref to a Number as a number).
        assert str(env["INITIAL_DESIRED_COUNT"]) == "2"
        assert env["SLACK_WEBHOOK_SECRET_NAME"] == stage.ops["SlackWebhookSecretName"]
    assert len(roles) == 3  # one role per function

    rules = stage.client("events").list_rules()["Rules"]
    patterns = [json.loads(r["EventPattern"]) for r in rules if r.get("EventPattern")]
    push = next(p for p in patterns if p["source"] == ["aws.ecr"])
    assert push["detail"]["repository-name"] == [stage.site["RepositoryName"]]
    outcome = next(p for p in patterns if p["source"] == ["aws.ecs"])
    service = f"service/{stage.site['ClusterName']}/{stage.site['ServiceName']}"
    assert outcome["resources"][0]["wildcard"].endswith(service)
    assert [r["ScheduleExpression"] for r in rules if r.get("ScheduleExpression")] == [
        "rate(15 minutes)"
    ]


def test_deploying_ops_before_the_site_exists_names_the_order(emulator, tmp_path) -> None:
    project = _project(tmp_path)
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
    assert stage.service()["desiredCount"] == 2
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
    assert stage.service()["desiredCount"] == 2


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

    assert pushed["result"]["status"] == "deploying", pushed["logs"]
    assert outcome["result"]["status"] == "succeeded", outcome["logs"]
    assert reconciled["result"]["status"] == "deploying", reconciled["logs"]
    assert stage.site_image().endswith(f"@{newer}")
    assert "AccessDenied" not in pushed["logs"] + outcome["logs"] + reconciled["logs"]
    # Every message reached Slack: the secret and the webhook were readable.
    assert [text.split(" ", 1)[0] for text in slack.texts()] == [
        ":rocket:",
        ":white_check_mark:",
        ":rocket:",
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
