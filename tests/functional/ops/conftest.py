"""Fixtures for the ops functional tests: moto in-process and a Slack stub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import toolkit as toolkit_module
from chalicelib.aws import AwsClients
from chalicelib.observability import logger as ops_logger
from chalicelib.observability import metrics
from chalicelib.settings import Settings, load_settings
from chalicelib.toolkit import Toolkit, build_toolkit
from tests.support.net import LOOPBACK

ACCOUNT = "123456789012"
REGION = "us-east-1"
SITE_CONTAINER = "site"
# One boto3 session for every test: botocore then parses each service model once.
SESSION = boto3.session.Session()


# ---- Slack stub ------------------------------------------------------------------------------


class SlackStub:
    """A webhook endpoint answering from a script: "200", ("429", "7"), "500", "400", "hang"."""

    def __init__(self) -> None:
        self.script: deque[Any] = deque()
        self.default: Any = "200"
        self.bodies: list[dict[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    stub.bodies.append(body)
                    behaviour = stub.script.popleft() if stub.script else stub.default
                if behaviour == "hang":
                    stub.release.wait(10)
                    return
                status, headers, text = 200, {}, "ok"
                if isinstance(behaviour, tuple) and behaviour[0] == "429":
                    status, headers, text = 429, {"Retry-After": behaviour[1]}, "rate_limited"
                elif behaviour == "500":
                    status, text = 500, "internal_error"
                elif behaviour == "400":
                    status, text = 400, "invalid_payload"
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.url = f"http://{LOOPBACK}:{port}/services/T00000000/B00000000/FAKEwebhookTOKEN"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def texts(self) -> list[str]:
        return [str(body.get("text", "")) for body in self.bodies]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    stub = SlackStub()
    try:
        yield stub
    finally:
        stub.close()


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
    repository_uri: str = ""
    dlq_url: str = ""
    bootstrap_td: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def push_image(self, tag: str | None, seed: str | None = None) -> str:
        """Put an image in ECR (moto derives the digest from the layers); return its digest."""
        seed = seed or tag or "untagged"
        layer = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 100,
                "digest": layer,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 100,
                    "digest": layer,
                }
            ],
        }
        kwargs: dict[str, Any] = {
            "repositoryName": self.repository,
            "imageManifest": json.dumps(manifest),
        }
        if tag:
            kwargs["imageTag"] = tag
        response = self.clients.ecr.put_image(**kwargs)
        return str(response["image"]["imageId"]["imageDigest"])

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


def build_world(
    *,
    repository: str = "my-repository-name",
    cluster: str = "default",
    service: str = "servicetest",
    ledger_table: str = "ops-ledger",
    idempotency_table: str = "ops-idempotency",
    secret_name: str = "ops/slack-webhook",  # noqa: S107 - a name, not a secret
    kill_switch: str = "/ops/kill-switch",
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
        "SECRET_CACHE_SECONDS": "0",
        "RUNBOOK_BASE_URL": "https://runbooks.example.com/spotops",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture(autouse=True)
def _clean_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "spotops-test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    toolkit_module.reset_toolkit()
    yield
    metrics.clear_metrics()
    toolkit_module.reset_toolkit()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def world(aws: None, slack: SlackStub) -> World:
    return build_world(webhook_url=slack.url)


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


@pytest.fixture
def kit(world: World) -> Toolkit:
    return make_kit(world)


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


@pytest.fixture
def logs() -> Iterator[LogLines]:
    handler = LogLines()
    stdlib_logger = logging.getLogger(ops_logger.name)
    stdlib_logger.addHandler(handler)
    try:
        yield handler
    finally:
        stdlib_logger.removeHandler(handler)
