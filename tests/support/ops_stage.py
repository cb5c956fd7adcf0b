"""A stage deployed into the moto server by ``spotops deploy``, and its ops functions run
from the deployed zip (see ``packaged_handler``). Shared by the emulator tests of every ops
function.
"""

from __future__ import annotations

import ast
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
from botocore.config import Config

from spotops.local.images import put_image
from tests.support.events import load_event
from tests.support.packaged_handler import invoke

ROOT = Path(__file__).resolve().parents[2]
APP, STAGE = "spotops", "dev"
FUNCTIONS = (
    "redeploy_on_push",
    "deployment_outcome",
    "reconcile_images",
    "chaos_tick",
    "alarm_action",
    "image_scan_alert",
    "deployment_hook",
)
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def project_copy(tmp_path: Path) -> Path:
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
        bucket = self.outputs[f"{APP}-bootstrap"]["ArtifactBucketName"]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{APP}/{STAGE}/ops/")["Contents"]
        keys = [o["Key"] for o in listed if o["Key"].endswith(".zip")]
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

    def scan_event(self, digest: str, counts: dict[str, int]) -> dict[str, Any]:
        """The documented ``ECR Image Scan`` event for ``digest`` of the site's repository."""
        event = load_event("ecrImageScanCompleted")
        event["id"] = f"scan-{digest[7:19]}"
        event["resources"] = [
            f"arn:aws:ecr:us-east-1:123456789012:repository/{self.site['RepositoryName']}"
        ]
        event["detail"].update(
            {
                "repository-name": self.site["RepositoryName"],
                "image-digest": digest,
                "finding-severity-counts": counts,
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


def deployed_stage(emulator: str, tmp_path: Path) -> Stage:
    """Deploy the three stacks of a copy of the checkout into the emulator; return the stage."""
    project = project_copy(tmp_path)
    done = spotops(project, emulator, "deploy", "--yes")
    assert done.returncode == 0, done.stderr[-3000:]
    return Stage(emulator, project, tmp_path)
