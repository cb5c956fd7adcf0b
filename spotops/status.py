"""What runs now: stacks, the service and its deployments, the image, alarms in ALARM."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from spotops.images import site_container
from spotops.stacks import StackDeployer, StackInfo


@dataclass(frozen=True)
class DeploymentStatus:
    status: str
    rollout_state: str
    task_definition: str
    desired: int
    running: int
    pending: int
    reason: str = ""


@dataclass
class ServiceStatus:
    cluster: str
    name: str
    status: str = "MISSING"
    desired: int = 0
    running: int = 0
    pending: int = 0
    strategy: list[str] = field(default_factory=list)
    tasks_by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    deployments: list[DeploymentStatus] = field(default_factory=list)
    image: str = ""
    digests: list[str] = field(default_factory=list)


@dataclass
class StatusReport:
    region: str
    stacks: list[tuple[str, StackInfo | None]]
    service: ServiceStatus | None = None
    alarms: list[tuple[str, str]] = field(default_factory=list)
    site_url: str = ""

    @property
    def deployed(self) -> bool:
        return any(info is not None for _, info in self.stacks)


class StatusReader:
    """Gather a :class:`StatusReport` from CloudFormation, ECS and CloudWatch."""

    def __init__(self, deployer: StackDeployer, ecs: Any, cloudwatch: Any) -> None:
        self._stacks = deployer
        self._ecs = ecs
        self._cloudwatch = cloudwatch

    def read(
        self, region: str, stack_names: list[str], site_stack: str, prefix: str
    ) -> StatusReport:
        report = StatusReport(region, [(name, self._stacks.describe(name)) for name in stack_names])
        site = dict(report.stacks).get(site_stack)
        outputs = site.outputs if site else {}
        report.site_url = outputs.get("SiteUrl", "")
        if outputs.get("ClusterName") and outputs.get("ServiceName"):
            report.service = self._service(outputs["ClusterName"], outputs["ServiceName"])
        if report.deployed:
            report.alarms = self._alarms(prefix, outputs.get("AlarmTopicArn"))
        return report

    def _service(self, cluster: str, name: str) -> ServiceStatus:
        status = ServiceStatus(cluster=cluster, name=name)
        try:
            found = self._ecs.describe_services(cluster=cluster, services=[name])["services"]
        except ClientError as exc:
            if "ClusterNotFound" in str(exc):
                return status
            raise
        if not found:
            return status
        raw = found[0]
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
        primary = [d for d in status.deployments if d.status == "PRIMARY"]
        task_definition = raw.get("taskDefinition") or (
            primary[0].task_definition if primary else None
        )
        if task_definition:
            definition = self._ecs.describe_task_definition(taskDefinition=task_definition)
            containers = definition["taskDefinition"].get("containerDefinitions", [])
            if containers:
                status.image = str(site_container(containers).get("image", ""))
        self._tasks(status)
        return status

    def _tasks(self, status: ServiceStatus) -> None:
        arns: list[str] = []
        for desired in ("RUNNING", "PENDING"):
            page = self._ecs.list_tasks(
                cluster=status.cluster, serviceName=status.name, desiredStatus=desired
            )
            arns.extend(page.get("taskArns", []))
        if not arns:
            return
        counts: dict[str, Counter[str]] = {}
        digests: set[str] = set()
        for start in range(0, len(arns), 100):
            described = self._ecs.describe_tasks(
                cluster=status.cluster, tasks=arns[start : start + 100]
            )
            for task in described.get("tasks", []):
                provider = str(task.get("capacityProviderName") or task.get("launchType") or "?")
                counts.setdefault(provider, Counter())[str(task.get("lastStatus", "?"))] += 1
                for container in task.get("containers", []):
                    if container.get("imageDigest"):
                        digests.add(str(container["imageDigest"]))
        status.tasks_by_provider = {k: dict(v) for k, v in sorted(counts.items())}
        status.digests = sorted(digests)

    def _alarms(self, prefix: str, topic_arn: str | None) -> list[tuple[str, str]]:
        alarms: list[tuple[str, str]] = []
        paginator = self._cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(StateValue="ALARM"):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                name = str(alarm.get("AlarmName", ""))
                ours = name.startswith(prefix) or (
                    topic_arn is not None and topic_arn in alarm.get("AlarmActions", [])
                )
                if ours:
                    alarms.append((name, str(alarm.get("StateReason", ""))))
        return alarms
