"""What runs now: stacks, the service and its deployments, each task (capacity provider,
load balancer health, image digest), CPU and memory, the image, alarms in ALARM, and the ops
toolkit (each function's last error, whether the Slack webhook is set, the dead-letter
queues' depth)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from spotops.errors import UsageError, is_error
from spotops.ops.switches import check_webhook_url
from spotops.stage.images import describe_service, image_of_service
from spotops.stage.stacks import StackDeployer, StackInfo

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import FilteredLogEventTypeDef

    from spotops.aws import ClientFactory

# The ops stack's dead-letter queues, by output name.
DEAD_LETTER_OUTPUTS = {
    "SlackDeadLetterQueueUrl": "Slack messages",
    "EventsDeadLetterQueueUrl": "events and invocations",
}
# How far back `status` looks for an ops function's last error.
ERROR_LOOKBACK = timedelta(hours=24)
# Powertools' JSON lines at level ERROR and the runtime's "[ERROR]" lines; and timeouts,
# which the runtime logs without the word. (One pattern each: the local emulator does not
# understand the ?a ?b form.)
ERROR_PATTERNS = ("ERROR", '"Task timed out"')


@dataclass(frozen=True)
class DeploymentStatus:
    status: str
    rollout_state: str
    task_definition: str
    desired: int
    running: int
    pending: int
    reason: str = ""


@dataclass(frozen=True)
class TaskStatus:
    """One task of the service."""

    task_id: str
    last_status: str
    capacity_provider: str
    zone: str = ""
    address: str = ""
    health: str = "-"  # the load balancer's view of it: healthy, unhealthy, draining...
    digest: str = ""

    @property
    def spot(self) -> bool:
        return self.capacity_provider == "FARGATE_SPOT"


@dataclass
class ServiceStatus:
    cluster: str
    name: str
    status: str = "MISSING"
    desired: int = 0
    running: int = 0
    pending: int = 0
    strategy: list[str] = field(default_factory=list)
    tasks: list[TaskStatus] = field(default_factory=list)
    deployments: list[DeploymentStatus] = field(default_factory=list)
    image: str = ""
    cpu_percent: float | None = None
    memory_percent: float | None = None

    @property
    def tasks_by_provider(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = {}
        for task in self.tasks:
            counts.setdefault(task.capacity_provider, Counter())[task.last_status] += 1
        return {k: dict(v) for k, v in sorted(counts.items())}

    @property
    def digests(self) -> list[str]:
        return sorted({t.digest for t in self.tasks if t.digest})


@dataclass(frozen=True)
class FunctionStatus:
    """An ops function and its last error within :data:`ERROR_LOOKBACK`."""

    name: str
    last_error_at: datetime | None = None
    last_error: str = ""
    exists: bool = True


@dataclass
class OpsStatus:
    functions: list[FunctionStatus] = field(default_factory=list)
    dead_letters: dict[str, int | None] = field(default_factory=dict)
    # "set", or why no message can reach Slack; None when the stack names no secret.
    slack_webhook: str | None = None


WEBHOOK_SET = "set"


def webhook_state(secret_string: str) -> str:
    """Whether the webhook secret's value can be posted to, read as the functions read it
    (JSON ``{"url": ...}`` or ``{"webhook_url": ...}``, or a plain URL). Never the URL."""
    try:
        value = json.loads(secret_string)
    except ValueError:
        value = secret_string
    if isinstance(value, dict):
        value = value.get("url") or value.get("webhook_url") or ""
    elif secret_string.strip().startswith(("{", "[")):
        return "unreadable: the secret is not a JSON object"
    if not isinstance(value, str) or not value.strip():
        return "NOT SET"
    try:
        check_webhook_url(value)
    except UsageError:
        return "NOT SET: the secret holds no https webhook URL"
    return WEBHOOK_SET


@dataclass
class StatusReport:
    region: str
    stacks: list[tuple[str, StackInfo | None]]
    service: ServiceStatus | None = None
    alarms: list[tuple[str, str]] = field(default_factory=list)
    site_url: str = ""
    ops: OpsStatus | None = None
    pushes: str = ""  # whether pushes deploy or are frozen ("" when unknown: no ops stack)
    failure: list[str] = field(default_factory=list)  # why the last deployment failed
    budget: list[str] = field(default_factory=list)  # per objective: budget left, burn rates

    @property
    def deployed(self) -> bool:
        return any(info is not None for _, info in self.stacks)


class StatusReader:
    """Gather a :class:`StatusReport` from CloudFormation, ECS, ELB, CloudWatch, Logs, SQS.

    ``clients`` makes boto3 clients by service name (``session.client``).
    """

    def __init__(
        self, deployer: StackDeployer, clients: ClientFactory, *, now: datetime | None = None
    ) -> None:
        self._stacks = deployer
        self._client = clients
        self._now = now

    def _time(self) -> datetime:
        return self._now or datetime.now(UTC)

    def read(
        self,
        region: str,
        stack_names: list[str],
        site_stack: str,
        prefix: str,
        *,
        ops_stack: str | None = None,
        functions: tuple[str, ...] = (),
    ) -> StatusReport:
        report = StatusReport(region, [(name, self._stacks.describe(name)) for name in stack_names])
        stacks = dict(report.stacks)
        site = stacks.get(site_stack)
        outputs = site.outputs if site else {}
        report.site_url = outputs.get("SiteUrl", "")
        if outputs.get("ClusterName") and outputs.get("ServiceName"):
            report.service = self._service(outputs["ClusterName"], outputs["ServiceName"])
        if report.deployed:
            report.alarms = self._alarms(prefix, outputs.get("AlarmTopicArn"))
        ops = stacks.get(ops_stack) if ops_stack else None
        if ops is not None:
            report.ops = self._ops(prefix, ops.outputs, functions)
            if report.service is not None and ops.outputs.get("LedgerTableName"):
                report.pushes = self._pushes(ops.outputs["LedgerTableName"], report.service)
            report.budget = self._budget(ops.parameters)
        if report.service is not None:
            report.failure = self._failure(report.service, ops.outputs if ops else {})
        return report

    def _failure(self, service: ServiceStatus, ops_outputs: Mapping[str, str]) -> list[str]:
        """Why the last deployment failed, when ECS or the ledger says it did."""
        from spotops.reports.diagnosis import last_failure  # puts ops_lambdas on the path

        rollouts = [(d.rollout_state, d.task_definition) for d in service.deployments]
        ledger = ops_outputs.get("LedgerTableName")
        return last_failure(self._client, service.cluster, service.name, rollouts, ledger)

    def _pushes(self, table: str, service: ServiceStatus) -> str:
        """The freeze of push-redeploys, read from the ledger as the redeploy function does."""
        from spotops.ops.freeze import read_pushes  # imported here: it puts ops_lambdas on the path

        return read_pushes(self._client("dynamodb"), table, f"{service.cluster}/{service.name}")

    def _budget(self, ops_parameters: Mapping[str, str]) -> list[str]:
        """Each objective's error budget, read as chaos and the alarm alert read it."""
        from spotops.reports.budget import budget_rows, read_budgets  # puts ops_lambdas on the path

        return budget_rows(read_budgets(self._client, ops_parameters, self._time()))

    # ---- the service -------------------------------------------------------------------

    def _service(self, cluster: str, name: str) -> ServiceStatus:
        status = ServiceStatus(cluster=cluster, name=name)
        ecs = self._client("ecs")
        raw = describe_service(ecs, cluster, name)
        if raw is None:
            return status
        status.status = str(raw.get("status", ""))
        status.desired = int(raw.get("desiredCount", 0))
        status.running = int(raw.get("runningCount", 0))
        status.pending = int(raw.get("pendingCount", 0))
        status.strategy = [
            f"{s.get('capacityProvider')} base={s.get('base', 0)} weight={s.get('weight', 0)}"
            for s in raw.get("capacityProviderStrategy", [])
        ]
        for deployment in raw.get("deployments", []):
            status.deployments.append(
                DeploymentStatus(
                    status=str(deployment.get("status", "")),
                    rollout_state=str(deployment.get("rolloutState", "")),
                    task_definition=str(deployment.get("taskDefinition", "")),
                    desired=int(deployment.get("desiredCount", 0)),
                    running=int(deployment.get("runningCount", 0)),
                    pending=int(deployment.get("pendingCount", 0)),
                    reason=str(deployment.get("rolloutStateReason", "")),
                )
            )
        status.image = image_of_service(ecs, raw) or ""
        health = self._target_health(raw)
        status.tasks = self._tasks(cluster, name, health)
        status.cpu_percent = self._utilisation("CPUUtilization", cluster, name)
        status.memory_percent = self._utilisation("MemoryUtilization", cluster, name)
        return status

    def _target_health(self, service: dict[str, Any]) -> dict[str, str]:
        """``{target IP: state}`` for every target group the service registers with: with
        CANARY or LINEAR deployments also the alternate one (the tasks sit in either)."""
        health: dict[str, str] = {}
        elbv2 = self._client("elbv2")
        arns = []
        for balancer in service.get("loadBalancers", []):
            arns.append(balancer.get("targetGroupArn"))
            arns.append(
                (balancer.get("advancedConfiguration") or {}).get("alternateTargetGroupArn")
            )
        for arn in arns:
            if not arn:
                continue
            try:
                found = elbv2.describe_target_health(TargetGroupArn=arn)
            except ClientError as exc:
                if is_error(exc, "TargetGroupNotFound", "TargetGroupNotFoundException"):
                    continue
                raise
            for target in found.get("TargetHealthDescriptions", []):
                address = str(target.get("Target", {}).get("Id", ""))
                health[address] = str(target.get("TargetHealth", {}).get("State", "-"))
        return health

    def _tasks(self, cluster: str, name: str, health: dict[str, str]) -> list[TaskStatus]:
        ecs = self._client("ecs")
        arns: list[str] = []
        for desired in ("RUNNING", "PENDING"):
            page = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus=desired)
            arns.extend(page.get("taskArns", []))
        tasks = []
        for start in range(0, len(arns), 100):
            described = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])
            for task in described.get("tasks", []):
                address = _task_address(task)
                digests = [
                    c["imageDigest"] for c in task.get("containers", []) if c.get("imageDigest")
                ]
                tasks.append(
                    TaskStatus(
                        task_id=str(task.get("taskArn", "")).rsplit("/", 1)[-1],
                        last_status=str(task.get("lastStatus", "?")),
                        capacity_provider=str(
                            task.get("capacityProviderName") or task.get("launchType") or "?"
                        ),
                        zone=str(task.get("availabilityZone", "")),
                        address=address,
                        health=health.get(address, "-") if address else "-",
                        digest=str(digests[0]) if digests else "",
                    )
                )
        return sorted(tasks, key=lambda t: (t.capacity_provider, t.task_id))

    def _utilisation(self, metric: str, cluster: str, name: str) -> float | None:
        """The service's average over the last 5 complete minutes (free AWS/ECS metrics)."""
        now = self._time()
        found = self._client("cloudwatch").get_metric_statistics(
            Namespace="AWS/ECS",
            MetricName=metric,
            Dimensions=[
                {"Name": "ClusterName", "Value": cluster},
                {"Name": "ServiceName", "Value": name},
            ],
            StartTime=now - timedelta(minutes=10),
            EndTime=now,
            Period=300,
            Statistics=["Average"],
        )
        points = sorted(found.get("Datapoints", []), key=lambda p: p["Timestamp"])
        return float(points[-1]["Average"]) if points else None

    # ---- alarms ------------------------------------------------------------------------

    def _alarms(self, prefix: str, topic_arn: str | None) -> list[tuple[str, str]]:
        alarms: list[tuple[str, str]] = []
        paginator = self._client("cloudwatch").get_paginator("describe_alarms")
        for page in paginator.paginate(StateValue="ALARM"):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                name = str(alarm.get("AlarmName", ""))
                ours = name.startswith(prefix) or (
                    topic_arn is not None and topic_arn in alarm.get("AlarmActions", [])
                )
                if ours:
                    alarms.append((name, str(alarm.get("StateReason", ""))))
        return alarms

    # ---- the ops toolkit ---------------------------------------------------------------

    def _ops(self, prefix: str, outputs: dict[str, str], functions: tuple[str, ...]) -> OpsStatus:
        ops = OpsStatus()
        for function in functions:
            ops.functions.append(self._last_error(f"{prefix}-{function}"))
        secret = outputs.get("SlackWebhookSecretName")
        if secret:
            ops.slack_webhook = self._webhook(secret)
        sqs = self._client("sqs")
        for output, label in DEAD_LETTER_OUTPUTS.items():
            url = outputs.get(output)
            if not url:
                continue
            try:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                ops.dead_letters[label] = int(attributes.get("ApproximateNumberOfMessages", 0))
            except ClientError as exc:
                if not is_error(
                    exc, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"
                ):
                    raise
                ops.dead_letters[label] = None
        return ops

    def _webhook(self, secret: str) -> str:
        try:
            found = self._client("secretsmanager").get_secret_value(SecretId=secret)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            if is_error(exc, "ResourceNotFoundException"):
                return f"NOT SET: secret {secret} does not exist"
            return f"unreadable: {code}"
        return webhook_state(str(found.get("SecretString") or ""))

    def _last_error(self, function: str) -> FunctionStatus:
        since = self._time() - ERROR_LOOKBACK
        last: FilteredLogEventTypeDef | None = None
        logs = self._client("logs")
        for pattern in ERROR_PATTERNS:
            kwargs: dict[str, Any] = {
                "logGroupName": f"/aws/lambda/{function}",
                "startTime": int(since.timestamp() * 1000),
                "filterPattern": pattern,
            }
            try:
                while True:
                    page = logs.filter_log_events(**kwargs)
                    for event in page.get("events", []):
                        if last is None or event["timestamp"] >= last["timestamp"]:
                            last = event
                    token = page.get("nextToken")
                    if not token or token == kwargs.get("nextToken"):
                        break
                    kwargs["nextToken"] = token
            except ClientError as exc:
                if is_error(exc, "ResourceNotFoundException"):
                    return FunctionStatus(function, exists=False)
                raise
        if last is None:
            return FunctionStatus(function)
        return FunctionStatus(
            function,
            last_error_at=datetime.fromtimestamp(last["timestamp"] / 1000, UTC),
            last_error=_error_text(str(last.get("message", ""))),
        )


def _task_address(task: Mapping[str, Any]) -> str:
    """The private IP of the task's network interface: the load balancer's target id."""
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail.get("value", ""))
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            if interface.get("privateIpv4Address"):
                return str(interface["privateIpv4Address"])
    return ""


def _error_text(message: str) -> str:
    """The readable part of a log line: a Powertools JSON line's message, else the line."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return message.strip()
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("errorMessage") or message).strip()
    return message.strip()
