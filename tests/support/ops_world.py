"""The ops functional world: the moto resources the jobs touch, settings and a toolkit for them.

Plain helpers (no fixtures) so the functional and integration tests and ``make bench`` can
build the same world; the fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from chalicelib.aws import AwsClients
from chalicelib.observability import logger as ops_logger
from chalicelib.toolkit import Toolkit, build_toolkit, load_toolkit_settings
from spotops.local.images import put_image
from tests.support.alarms import put_alarm

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


class SkippedWaits:
    """A clock that runs with real time plus every wait asked of ``sleep``, which returns at
    once: the Slack notifier's pacing and backoff cost no real time, and its budgets still
    count them. One per kit, so each "container" paces its own posts."""

    def __init__(self) -> None:
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)

    def clock(self) -> float:
        return time.monotonic() + self.slept


def kit_of(env: dict[str, str]) -> Toolkit:
    """A fresh toolkit for a function's environment (its own clients, caches and Slack
    pacing, like a new container), whose Slack waits cost no real time."""
    waits = SkippedWaits()
    return build_toolkit(
        load_toolkit_settings(env),
        AwsClients(max_attempts=1, session=SESSION),
        sleep=waits.sleep,
        clock=waits.clock,
    )


def make_kit(world: World, **overrides: str) -> Toolkit:
    """A fresh toolkit for ``world`` (its own clients and caches, like a new container)."""
    return kit_of(settings_env(world, **overrides)).with_context(FakeLambdaContext())


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

    def records(self) -> list[dict[str, Any]]:
        """The lines as JSON objects (Powertools writes one per record)."""
        return [json.loads(line) for line in self.lines]


# ---- chaos: a load-balanced service with running tasks (tests/functional/ops/test_chaos.py) --


CHAOS_SERVICE = "site-chaos"
CHAOS_LEASH = "/ops/chaos-leash"


@dataclass
class ChaosLambdaContext(FakeLambdaContext):
    """The chaos function's context: 900 s, its Lambda timeout, to watch recovery in."""

    function_name: str = "spotops-test-chaos_tick"
    remaining_millis: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass
class ChaosWorld:
    """The redeploy world plus what chaos needs: a VPC, a target group, an opted-in service
    with ``desired`` tasks RUNNING (moto's state manager keeps them so) registered as healthy
    targets, the chaos leash (created ``on``, as the ops stack creates it)."""

    base: World
    subnet: str
    security_group: str
    target_group: str
    service: str = CHAOS_SERVICE
    targets: dict[str, str] = field(default_factory=dict)  # task ARN -> target IP

    @property
    def clients(self) -> AwsClients:
        return self.base.clients

    @property
    def service_key(self) -> str:
        return f"{self.base.cluster}/{self.service}"

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """The chaos function's environment: the shared one plus the chaos settings."""
        # The budget guard off: moto has no PR() statistic to read a latency budget from
        # (tests/functional/ops/test_chaos.py turns it on where the budget is the subject).
        env = settings_env(
            self.base, CHAOS_LEASH_PARAMETER=CHAOS_LEASH, CHAOS_MIN_BUDGET_PERCENT="0"
        )
        env.update(overrides)
        return env

    def kit(self, **overrides: str) -> Toolkit:
        return kit_of(self.settings_env(**overrides)).with_context(ChaosLambdaContext())

    def service_arn(self) -> str:
        described = self.clients.ecs.describe_services(
            cluster=self.base.cluster, services=[self.service]
        )
        return str(described["services"][0]["serviceArn"])

    def tag(self, **tags: str) -> None:
        """Tag the service (``chaos="on"`` is ``spotops:chaos=on``; ``mtbk_hours``...)."""
        keys = {"chaos": "spotops:chaos", "mtbk_hours": "spotops:chaos-mtbk-hours"}
        keys["min_gap_hours"] = "spotops:chaos-min-gap-hours"
        self.clients.ecs.tag_resource(
            resourceArn=self.service_arn(),
            tags=[{"key": keys[name], "value": value} for name, value in tags.items()],
        )

    def start_task(self) -> str:
        """Start one task of the service (as ECS would) and register it as a healthy target."""
        task = self.clients.ecs.run_task(
            cluster=self.base.cluster,
            taskDefinition=self.base.bootstrap_td,
            count=1,
            group=f"service:{self.service}",
            startedBy="ecs-svc/chaos-test",
            capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [self.subnet],
                    "securityGroups": [self.security_group],
                }
            },
        )["tasks"][0]
        details = task["attachments"][0]["details"]
        ip = next(d["value"] for d in details if d["name"] == "privateIPv4Address")
        self.clients.elbv2.register_targets(
            TargetGroupArn=self.target_group, Targets=[{"Id": ip, "Port": 8080}]
        )
        self.targets[task["taskArn"]] = ip
        return str(task["taskArn"])

    def running_tasks(self) -> list[str]:
        arns = self.clients.ecs.list_tasks(cluster=self.base.cluster, desiredStatus="RUNNING")
        return sorted(arns["taskArns"])

    def stopped(self) -> dict[str, str]:
        """Stopped tasks and their stop reasons."""
        arns = self.clients.ecs.list_tasks(cluster=self.base.cluster, desiredStatus="STOPPED")
        if not arns["taskArns"]:
            return {}
        tasks = self.clients.ecs.describe_tasks(cluster=self.base.cluster, tasks=arns["taskArns"])
        return {t["taskArn"]: t.get("stoppedReason", "") for t in tasks["tasks"]}

    def replace_stopped(self) -> str:
        """What ECS does after a task stops: deregister its target, start a replacement."""
        for arn in self.stopped():
            ip = self.targets.pop(arn, None)
            if ip is not None:
                self.clients.elbv2.deregister_targets(
                    TargetGroupArn=self.target_group, Targets=[{"Id": ip, "Port": 8080}]
                )
        return self.start_task()

    def interrupt_by_spot(self, task_arn: str, stopped_at: Any) -> None:
        """Fargate Spot reclaims the task (moto has no stopCode: set it on its task)."""
        from moto.ecs.models import ecs_backends

        self.clients.ecs.stop_task(
            cluster=self.base.cluster, task=task_arn, reason="Your Spot Task was interrupted."
        )
        task = ecs_backends[ACCOUNT][REGION].tasks[self.base.cluster][task_arn]
        task.stop_code = "SpotInterruption"
        task.stopped_at = stopped_at

    def start_deployment(self) -> None:
        """A second deployment rolling out (moto's UpdateService starts none)."""
        from moto.ecs.models import ecs_backends

        service = ecs_backends[ACCOUNT][REGION].services[f"{self.base.cluster}:{self.service}"]
        primary = dict(service.deployments[0])
        service.deployments = [
            {**primary, "id": "ecs-svc/rolling", "rolloutState": "IN_PROGRESS"},
            {**primary, "status": "ACTIVE"},
        ]

    def set_running_count(self, count: int) -> None:
        """ECS's own ``runningCount`` (moto sets it only from UpdateService's desired count)."""
        from moto.ecs.models import ecs_backends

        service = ecs_backends[ACCOUNT][REGION].services[f"{self.base.cluster}:{self.service}"]
        service.running_count = count

    def set_alarm(self, name: str, state: str = "ALARM") -> None:
        put_alarm(self.clients.cloudwatch, name, state)

    def set_leash(self, value: str) -> None:
        self.clients.ssm.put_parameter(Name=CHAOS_LEASH, Value=value, Type="String", Overwrite=True)


def build_chaos_world(
    base: World, *, desired: int = 2, minimum_healthy_percent: int = 50
) -> ChaosWorld:
    """Add the chaos pieces to ``base`` inside an active ``mock_aws``; tasks stay RUNNING
    until stopped (call ``moto_api.state_manager.unset_transition("ecs::task")`` after)."""
    from moto.moto_api import state_manager

    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": 10**9}
    )
    ec2 = SESSION.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)
    c = base.clients
    target_group = c.elbv2.create_target_group(
        Name="site-chaos", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    c.ecs.create_service(
        cluster=base.cluster,
        serviceName=CHAOS_SERVICE,
        taskDefinition=base.bootstrap_td,
        desiredCount=0,
        loadBalancers=[
            {"targetGroupArn": target_group, "containerName": SITE_CONTAINER, "containerPort": 8080}
        ],
    )
    c.ecs.update_service(
        cluster=base.cluster,
        service=CHAOS_SERVICE,
        desiredCount=desired,
        deploymentConfiguration={
            "minimumHealthyPercent": minimum_healthy_percent,
            "maximumPercent": 200,
        },
    )
    c.ssm.put_parameter(Name=CHAOS_LEASH, Value="on", Type="String")
    world = ChaosWorld(base, subnet, group["GroupId"], target_group)
    for _ in range(desired):
        world.start_task()
    return world


def add_chaos_service(first: ChaosWorld, name: str, *, desired: int = 2) -> ChaosWorld:
    """A second service beside ``first`` (same cluster, subnet and security group), with its
    own target group and ``desired`` tasks RUNNING; not tagged (call ``tag`` on it)."""
    c = first.clients
    vpc = c.elbv2.describe_target_groups(TargetGroupArns=[first.target_group])["TargetGroups"][0][
        "VpcId"
    ]
    target_group = c.elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    c.ecs.create_service(
        cluster=first.base.cluster,
        serviceName=name,
        taskDefinition=first.base.bootstrap_td,
        desiredCount=0,
        loadBalancers=[
            {"targetGroupArn": target_group, "containerName": SITE_CONTAINER, "containerPort": 8080}
        ],
    )
    c.ecs.update_service(
        cluster=first.base.cluster,
        service=name,
        desiredCount=desired,
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200},
    )
    world = ChaosWorld(first.base, first.subnet, first.security_group, target_group, service=name)
    for _ in range(desired):
        world.start_task()
    return world


def add_alternate_target_group(chaos: ChaosWorld, *, move_tasks: bool) -> str:
    """Make ``chaos``'s service a CANARY/LINEAR one: its load balancer gets an
    ``advancedConfiguration.alternateTargetGroupArn`` (as site.yaml writes it when
    ``DeploymentStrategy`` is CANARY or LINEAR). With ``move_tasks`` the tasks serve from the
    alternate group, as after an odd number of deployments (ECS swaps the groups' roles on
    each one), and replacements register there. Returns the alternate group's ARN."""
    from moto.ecs.models import ecs_backends

    c = chaos.clients
    vpc = c.elbv2.describe_target_groups(TargetGroupArns=[chaos.target_group])["TargetGroups"][0][
        "VpcId"
    ]
    alternate = c.elbv2.create_target_group(
        Name=f"{chaos.service}-alt", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    service = ecs_backends[ACCOUNT][REGION].services[f"{chaos.base.cluster}:{chaos.service}"]
    service.load_balancers = [
        {
            "targetGroupArn": chaos.target_group,
            "containerName": SITE_CONTAINER,
            "containerPort": 8080,
            "advancedConfiguration": {
                "alternateTargetGroupArn": alternate,
                "productionListenerRule": f"{vpc}-production-rule",
                "testListenerRule": f"{vpc}-test-rule",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/traffic-shift",
            },
        }
    ]
    if move_tasks:
        targets = [{"Id": ip, "Port": 8080} for ip in chaos.targets.values()]
        c.elbv2.deregister_targets(TargetGroupArn=chaos.target_group, Targets=targets)
        c.elbv2.register_targets(TargetGroupArn=alternate, Targets=targets)
        chaos.target_group = alternate
    return alternate
