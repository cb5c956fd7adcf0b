"""The ops functional world: the moto resources the jobs touch, settings and a toolkit for them.

Plain helpers (no fixtures) so the functional and integration tests and ``make bench`` can
build the same world; the fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import boto3

from chalicelib.aws import AwsClients
from chalicelib.observability import logger as ops_logger
from chalicelib.settings import Settings, load_settings
from chalicelib.toolkit import Toolkit, build_toolkit
from tests.support.images import put_image

ACCOUNT = "123456789012"
REGION = "us-east-1"
SITE_CONTAINER = "site"
# One boto3 session for every test: botocore then parses each service model once.
SESSION = boto3.session.Session()


# ---- the AWS world in moto -------------------------------------------------------------------


@dataclass
class World:
    """Names and clients of the moto resources one test runs against."""

    repository: str
    cluster: str
    service: str
    ledger_table: str
    idempotency_table: str
    secret_name: str
    kill_switch: str
    dlq_name: str
    clients: AwsClients
    dry_run_parameter: str = "/ops/dry-run"
    repository_uri: str = ""
    dlq_url: str = ""
    bootstrap_td: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def push_image(self, tag: str | None, seed: str | None = None) -> str:
        """Put an image in ECR (moto derives the digest from the layers); return its digest."""
        return put_image(self.clients.ecr, self.repository, tag, seed)

    def push_event(self, event: dict[str, Any], digest: str, tag: str | None) -> dict[str, Any]:
        event["detail"]["repository-name"] = self.repository
        event["detail"]["image-digest"] = digest
        if tag is None:
            event["detail"].pop("image-tag", None)
        else:
            event["detail"]["image-tag"] = tag
        return event

    def service_desc(self) -> dict[str, Any]:
        response = self.clients.ecs.describe_services(cluster=self.cluster, services=[self.service])
        return dict(response["services"][0])

    def running_task_definition(self) -> dict[str, Any]:
        arn = self.service_desc()["taskDefinition"]
        return dict(self.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])

    def site_image(self) -> str:
        for container in self.running_task_definition()["containerDefinitions"]:
            if container["name"] == SITE_CONTAINER:
                return str(container["image"])
        raise AssertionError("no site container")

    def revisions(self) -> int:
        arns = self.clients.ecs.list_task_definitions(familyPrefix="site")["taskDefinitionArns"]
        return len(arns)

    def dlq_messages(self) -> list[dict[str, Any]]:
        response = self.clients.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]

    def set_kill_switch(self, value: str) -> None:
        self.clients.ssm.put_parameter(
            Name=self.kill_switch, Value=value, Type="String", Overwrite=True
        )

    def set_dry_run(self, value: str) -> None:
        """Flip the dry-run parameter, as on-call would with ``aws ssm put-parameter``."""
        self.clients.ssm.put_parameter(
            Name=self.dry_run_parameter, Value=value, Type="String", Overwrite=True
        )

    def desired_count(self) -> int:
        return int(self.service_desc()["desiredCount"])

    def set_desired_count(self, count: int) -> None:
        """Scale the service as an operator (or autoscaling) would."""
        self.clients.ecs.update_service(
            cluster=self.cluster, service=self.service, desiredCount=count
        )

    def run_image(self, image: str) -> str:
        """Make the service run ``image`` (a new revision of its task definition); its ARN."""
        td = self.running_task_definition()
        containers = td["containerDefinitions"]
        for container in containers:
            if container["name"] == SITE_CONTAINER:
                container["image"] = image
        arn = self.clients.ecs.register_task_definition(
            family=td["family"],
            containerDefinitions=containers,
            networkMode=td["networkMode"],
            requiresCompatibilities=td["requiresCompatibilities"],
            cpu=td["cpu"],
            memory=td["memory"],
        )["taskDefinition"]["taskDefinitionArn"]
        self.clients.ecs.update_service(
            cluster=self.cluster, service=self.service, taskDefinition=arn
        )
        return str(arn)


def build_world(
    *,
    repository: str = "my-repository-name",
    cluster: str = "default",
    service: str = "servicetest",
    ledger_table: str = "ops-ledger",
    idempotency_table: str = "ops-idempotency",
    secret_name: str = "ops/slack-webhook",  # noqa: S107 - a name, not a secret
    kill_switch: str = "/ops/kill-switch",
    dry_run_parameter: str = "/ops/dry-run",
    dlq_name: str = "ops-slack-dlq",
    webhook_url: str,
) -> World:
    """Create every resource the redeploy job touches, inside an active ``mock_aws``."""
    world = World(
        repository=repository,
        cluster=cluster,
        service=service,
        ledger_table=ledger_table,
        idempotency_table=idempotency_table,
        secret_name=secret_name,
        kill_switch=kill_switch,
        dry_run_parameter=dry_run_parameter,
        dlq_name=dlq_name,
        clients=AwsClients(max_attempts=1, session=SESSION),
    )
    c = world.clients
    repo = c.ecr.create_repository(repositoryName=repository)["repository"]
    world.repository_uri = repo["repositoryUri"]
    c.ecs.create_cluster(clusterName=cluster)
    td = c.ecs.register_task_definition(
        family="site",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/site-execution",
        containerDefinitions=[
            {
                "name": SITE_CONTAINER,
                "image": f"{world.repository_uri}:bootstrap",
                "memory": 448,
                "essential": True,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "PORT", "value": "8080"}],
            },
            {
                "name": "log-router",
                "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                "memory": 64,
                "essential": False,
            },
        ],
        tags=[{"key": "spotops:app", "value": "spotops"}],
    )
    world.bootstrap_td = td["taskDefinition"]["taskDefinitionArn"]
    c.ecs.create_service(
        cluster=cluster, serviceName=service, taskDefinition=world.bootstrap_td, desiredCount=0
    )
    c.dynamodb.create_table(
        TableName=ledger_table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    c.dynamodb.create_table(
        TableName=idempotency_table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    c.secretsmanager.create_secret(Name=secret_name, SecretString=webhook_url)
    c.ssm.put_parameter(Name=kill_switch, Value="off", Type="String")
    c.ssm.put_parameter(Name=dry_run_parameter, Value="false", Type="String")
    world.dlq_url = c.sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    return world


def settings_env(world: World, **overrides: str) -> dict[str, str]:
    """The environment the functions would get for ``world``, with fast Slack timings."""
    env = {
        "APP_NAME": "spotops",
        "STAGE": "test",
        "CLUSTER_NAME": world.cluster,
        "SERVICE_NAME": world.service,
        "CONTAINER_NAME": SITE_CONTAINER,
        "REPOSITORY_NAME": world.repository,
        "LEDGER_TABLE_NAME": world.ledger_table,
        "IDEMPOTENCY_TABLE_NAME": world.idempotency_table,
        "SLACK_WEBHOOK_SECRET_NAME": world.secret_name,
        "SLACK_DLQ_URL": world.dlq_url,
        "SLACK_TIMEOUT_SECONDS": "0.3",
        "SLACK_MAX_ATTEMPTS": "3",
        "SLACK_MAX_TOTAL_SECONDS": "3",
        "SLACK_BACKOFF_BASE_SECONDS": "0.01",
        "KILL_SWITCH_PARAMETER": world.kill_switch,
        "KILL_SWITCH_CACHE_SECONDS": "0",
        "DRY_RUN_PARAMETER": world.dry_run_parameter,
        "SECRET_CACHE_SECONDS": "0",
        "RUNBOOK_BASE_URL": "https://runbooks.example.com/spotops",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.update(overrides)
    return env


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context Powertools reads."""

    function_name: str = "spotops-test-redeploy_on_push"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:spotops-test-redeploy_on_push"
    )
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def make_kit(world: World, **overrides: str) -> Toolkit:
    """A fresh toolkit for ``world`` (its own clients and caches, like a new container)."""
    settings: Settings = load_settings(settings_env(world, **overrides))
    kit = build_toolkit(settings, AwsClients(max_attempts=1, session=SESSION))
    return kit.with_context(FakeLambdaContext())


class LogLines(logging.Handler):
    """Every JSON line the Powertools logger writes during a test."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(ops_logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
