"""The ECS and ECR calls of the redeploy and outcome jobs, behind one narrow class.

Every failure leaves as one :class:`AwsCallError` carrying its :class:`FailureKind`, so the
flows decide by kind (retry later, alert, ask AWS) and never by message text.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.deployments import ImageFacts, ServiceDeployment
from chalicelib.diagnosis import Diagnosis, diagnose, task_id
from chalicelib.errors import OpsError
from chalicelib.failures import FailureKind, failure_kind

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient

# Fields of DescribeTaskDefinition's output that RegisterTaskDefinition accepts.
_REGISTER_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
)


# ``imageScanStatus.status`` values under which the findings are there to read: ``COMPLETE``
# (basic scanning) and ``ACTIVE`` (enhanced scanning by Amazon Inspector: "the scan is complete
# and the findings are available", kept up to date as new vulnerabilities are published).
# ``PENDING``, ``IN_PROGRESS``, ``FAILED``, ``UNSUPPORTED_IMAGE``, ``FINDINGS_UNAVAILABLE``,
# ``SCAN_ELIGIBILITY_EXPIRED``, ``LIMIT_EXCEEDED``, ``IMAGE_ARCHIVED``: nothing to read.
SCAN_FINISHED = frozenset({"COMPLETE", "ACTIVE"})


class AwsCallError(OpsError):
    """An ECS or ECR call failed; ``kind`` says how to treat it, ``code`` is AWS's code."""

    def __init__(self, operation: str, kind: FailureKind, code: str) -> None:
        super().__init__(f"{operation} failed: {code or 'no answer'} ({kind.value})")
        self.operation = operation
        self.kind = kind
        self.code = code or "no answer"


def _failure(operation: str, exc: Exception) -> AwsCallError:
    code = error_code(exc) if isinstance(exc, ClientError) else ""
    return AwsCallError(operation, failure_kind(code), code or type(exc).__name__)


@dataclass(frozen=True)
class ServiceFacts:
    """What the flows need of ``DescribeServices``."""

    arn: str
    task_definition: str
    desired_count: int | None
    deployments: list[ServiceDeployment]


@dataclass(frozen=True)
class TaskDefinition:
    """A task definition as ``DescribeTaskDefinition`` returns it, with its tags."""

    raw: dict[str, Any]

    @property
    def arn(self) -> str:
        return str(self.raw.get("taskDefinitionArn", ""))

    @property
    def family(self) -> str:
        return str(self.raw.get("family", ""))

    def image_of(self, container: str) -> str | None:
        for definition in self.raw.get("containerDefinitions", []):
            if definition.get("name") == container:
                return str(definition.get("image", ""))
        return None


class EcsGateway:
    """The calls, with failures classified.

    Parameters
    ----------
    ecs, ecr:
        boto3 clients.
    cluster, service:
        The service the jobs manage.
    """

    def __init__(
        self, ecs: ECSClient, ecr: ECRClient | None, *, cluster: str, service: str
    ) -> None:
        self._ecs = ecs
        self._ecr = ecr
        self._cluster = cluster
        self._service = service

    @property
    def _ecr_client(self) -> ECRClient:
        # RemediationGateway is made without ECR (it reads no images); calling an ECR method
        # on it is a programming error (it raised AttributeError on None before).
        if self._ecr is None:
            raise TypeError("this gateway was made without an ECR client")
        return self._ecr

    def _call(self, client: BaseClient, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(operation, exc) from exc

    # ---- ECR ----------------------------------------------------------------------------

    def image(self, repository: str, digest: str) -> ImageFacts | None:
        """The image, or ``None`` when it (or the repository) no longer exists."""
        try:
            response = self._call(
                self._ecr_client,
                "describe_images",
                repositoryName=repository,
                imageIds=[{"imageDigest": digest}],
            )
        except AwsCallError as exc:
            if exc.kind is FailureKind.MISSING:
                return None
            raise
        details = response.get("imageDetails") or [{}]
        return _image_facts(details[0], digest)

    def digest_of_tag(self, repository: str, tag: str) -> str | None:
        """The digest ``repository:tag`` points at, or ``None`` when the tag is gone."""
        try:
            response = self._call(
                self._ecr_client,
                "describe_images",
                repositoryName=repository,
                imageIds=[{"imageTag": tag}],
            )
        except AwsCallError as exc:
            if exc.kind is FailureKind.MISSING:
                return None
            raise
        details = response.get("imageDetails") or [{}]
        digest = details[0].get("imageDigest")
        return str(digest) if digest else None

    def scan_counts(self, repository: str, digest: str) -> dict[str, int] | None:
        """Findings per severity of the image's finished scan (``SCAN_FINISHED``: basic or
        enhanced); ``None`` while it has none (never scanned, in progress, failed)."""
        try:
            response = self._call(
                self._ecr_client,
                "describe_image_scan_findings",
                repositoryName=repository,
                imageId={"imageDigest": digest},
                maxResults=1,
            )
        except AwsCallError as exc:
            if exc.kind is FailureKind.MISSING:
                return None
            raise
        if (response.get("imageScanStatus") or {}).get("status") not in SCAN_FINISHED:
            return None
        counts = (response.get("imageScanFindings") or {}).get("findingSeverityCounts") or {}
        return {str(k).upper(): int(v) for k, v in counts.items() if isinstance(v, int)}

    def repository_uri(self, repository: str) -> str:
        response = self._call(
            self._ecr_client, "describe_repositories", repositoryNames=[repository]
        )
        return str(response["repositories"][0]["repositoryUri"])

    def tagged_images(self, repository: str) -> list[tuple[ImageFacts, list[str]]]:
        """Every tagged image with its tags."""
        found = []
        try:
            pages = self._ecr_client.get_paginator("describe_images").paginate(
                repositoryName=repository, filter={"tagStatus": "TAGGED"}
            )
            for page in pages:
                for detail in page.get("imageDetails", []):
                    found.append((_image_facts(detail, detail["imageDigest"]), detail["imageTags"]))
        except (ClientError, BotoCoreError) as exc:
            raise _failure("describe_images", exc) from exc
        return found

    # ---- ECS ----------------------------------------------------------------------------

    def service(self) -> ServiceFacts | None:
        """The service, or ``None`` when it (or its cluster) does not exist or is not active."""
        raw = self.describe_active_service()
        return _service_facts(raw) if raw is not None else None

    def describe_active_service(self) -> dict[str, Any] | None:
        """``DescribeServices``' entry for the service, or ``None`` when it (or its cluster)
        does not exist or is not active."""
        try:
            response = self._call(
                self._ecs, "describe_services", cluster=self._cluster, services=[self._service]
            )
        except AwsCallError as exc:
            if exc.kind is FailureKind.MISSING:
                return None
            raise
        active = [s for s in response.get("services", []) if s.get("status") == "ACTIVE"]
        return dict(active[0]) if active else None

    def task_definition(self, reference: str) -> TaskDefinition:
        """By ARN, or by family for its latest ACTIVE revision."""
        response = self._call(
            self._ecs, "describe_task_definition", taskDefinition=reference, include=["TAGS"]
        )
        raw = dict(response["taskDefinition"])
        if response.get("tags"):
            raw["tags"] = response["tags"]
        return TaskDefinition(raw)

    def register_copy(self, task_definition: TaskDefinition, container: str, image: str) -> str:
        """Register ``task_definition`` again with only ``container``'s image changed, and
        its ``IMAGE_DIGEST`` set to the image's digest when it is pinned by one."""
        raw = task_definition.raw
        request = {k: copy.deepcopy(raw[k]) for k in _REGISTER_FIELDS if raw.get(k)}
        if raw.get("tags"):
            request["tags"] = copy.deepcopy(raw["tags"])
        digest = image.rsplit("@", 1)[1] if "@" in image else None
        for definition in request["containerDefinitions"]:
            if definition.get("name") == container:
                definition["image"] = image
                if digest:
                    # The digest exists only once the image is pushed, so the image cannot
                    # carry it: the site's /version reports it from here, which is how the
                    # smoke-test hook tells the revision under test from the old one.
                    kept = [
                        e for e in definition.get("environment", []) if e["name"] != "IMAGE_DIGEST"
                    ]
                    definition["environment"] = [*kept, {"name": "IMAGE_DIGEST", "value": digest}]
        response = self._call(self._ecs, "register_task_definition", **request)
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def update_service(self, task_definition: str, desired_count: int | None) -> ServiceFacts:
        request: dict[str, Any] = {
            "cluster": self._cluster,
            "service": self._service,
            "taskDefinition": task_definition,
        }
        if desired_count is not None:
            request["desiredCount"] = desired_count
        response = self._call(self._ecs, "update_service", **request)
        return _service_facts(response.get("service", {}))

    def running_image(self, service: ServiceFacts | None, container: str) -> str:
        """The image ``container`` runs in the service's task definition (``""``: none)."""
        if service is None:
            return ""
        return self.task_definition(service.task_definition).image_of(container) or ""

    def running_digest(self, service: ServiceFacts | None, container: str) -> str | None:
        """The digest the service runs; ``None`` when it runs a tag (the first deploy's
        placeholder) or there is no service."""
        image = self.running_image(service, container)
        return image.rsplit("@", 1)[1] if "@" in image else None

    def images_in_service(self, service: ServiceFacts, container: str) -> set[str]:
        """The images ``container`` runs in every deployment of the service (during a
        deployment, the old and the new one)."""
        references = {service.task_definition}
        references.update(d.task_definition for d in service.deployments if d.task_definition)
        images = {self.task_definition(ref).image_of(container) for ref in sorted(references)}
        return {image for image in images if image}

    def deregister(self, task_definition: str) -> None:
        self._call(self._ecs, "deregister_task_definition", taskDefinition=task_definition)


class DiagnosisReads:
    """The reads behind a :class:`~chalicelib.diagnosis.Diagnosis` of a failed deployment.

    Every read may fail (no permission, the task or stream gone): what failed is named in
    the diagnosis and the others still run, so a report is never held up by it.

    Parameters
    ----------
    ecs, elbv2, logs:
        boto3 clients (the functions' or spotops's own).
    cluster, service:
        The service whose deployment failed.
    """

    def __init__(self, ecs: Any, elbv2: Any, logs: Any, *, cluster: str, service: str) -> None:
        self._ecs = ecs
        self._elbv2 = elbv2
        self._logs = logs
        self._cluster = cluster
        self._service = service

    def _call(self, client: Any, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(operation, exc) from exc

    def diagnose(self, task_definition: str, *, log_lines: int = 20) -> Diagnosis:
        """Why the deployment of ``task_definition`` failed (``""``: any revision's, when
        the caller cannot tell which failed), from its stopped tasks, the target health and
        one task's last ``log_lines`` log lines."""
        unreadable: list[str] = []
        service: dict[str, Any] = {}
        try:
            found = self._call(
                self._ecs, "describe_services", cluster=self._cluster, services=[self._service]
            ).get("services") or [{}]
            service = dict(found[0])
        except AwsCallError as exc:
            unreadable.append(f"the service ({_why(exc)})")
        tasks: list[dict[str, Any]] = []
        try:
            tasks = self.stopped_tasks(task_definition)
        except AwsCallError as exc:
            unreadable.append(f"the stopped tasks ({_why(exc)})")
        health: list[dict[str, Any]] = []
        for group in [
            lb["targetGroupArn"]
            for lb in service.get("loadBalancers") or []
            if lb.get("targetGroupArn")
        ]:
            try:
                health.extend(self.target_health(group))
            except AwsCallError as exc:
                unreadable.append(f"the target health of {group.rsplit(':', 1)[-1]} ({_why(exc)})")
        failed = _task_to_read(tasks)
        events: list[dict[str, Any]] = []
        logged = ""  # the task whose log was read: none when it does not log to CloudWatch
        if failed is not None:
            try:
                group, stream = self.log_stream(failed)
                if group:
                    events = self.log_tail(group, stream, log_lines)
                    logged = str(failed.get("taskArn", ""))
            except AwsCallError as exc:
                unreadable.append(
                    f"the log of task {task_id(str(failed.get('taskArn')))} ({_why(exc)})"
                )
        return diagnose(tasks, health, events, log_task=logged, unreadable=unreadable)

    def stopped_tasks(self, task_definition: str) -> list[dict[str, Any]]:
        """The service's stopped tasks (ECS keeps them about an hour) of ``task_definition``
        (every one when ``""``), as ``DescribeTasks`` returns them."""
        arns = self._call(
            self._ecs,
            "list_tasks",
            cluster=self._cluster,
            serviceName=self._service,
            desiredStatus="STOPPED",
            maxResults=100,
        ).get("taskArns", [])
        if not arns:
            return []
        tasks = self._call(self._ecs, "describe_tasks", cluster=self._cluster, tasks=arns)
        return [
            dict(t)
            for t in tasks.get("tasks", [])
            if not task_definition or t.get("taskDefinitionArn") == task_definition
        ]

    def target_health(self, target_group_arn: str) -> list[dict[str, Any]]:
        """``TargetHealthDescriptions`` of one target group."""
        response = self._call(
            self._elbv2, "describe_target_health", TargetGroupArn=target_group_arn
        )
        return [dict(d) for d in response.get("TargetHealthDescriptions", [])]

    def log_stream(self, task: dict[str, Any]) -> tuple[str, str]:
        """The awslogs group and stream of ``task``'s failed container (``<prefix>/<container>
        /<task id>``); ``("", "")`` when it does not log to CloudWatch Logs."""
        container = _failed_container(task)
        raw = self._call(
            self._ecs, "describe_task_definition", taskDefinition=task["taskDefinitionArn"]
        )["taskDefinition"]
        for definition in raw.get("containerDefinitions", []):
            if container and definition.get("name") != container:
                continue
            config = definition.get("logConfiguration") or {}
            options = config.get("options") or {}
            if config.get("logDriver") == "awslogs" and options.get("awslogs-group"):
                prefix = options.get("awslogs-stream-prefix", "")
                stream = f"{prefix}/{definition['name']}/{task_id(str(task['taskArn']))}"
                return str(options["awslogs-group"]), stream
        return "", ""

    def log_tail(self, group: str, stream: str, lines: int) -> list[dict[str, Any]]:
        """The last ``lines`` events of the stream, oldest first."""
        response = self._call(
            self._logs,
            "get_log_events",
            logGroupName=group,
            logStreamName=stream,
            limit=lines,
            startFromHead=False,
        )
        return [dict(e) for e in response.get("events", [])]


def _why(exc: AwsCallError) -> str:
    return f"{exc.operation}: {exc.code}"


def _failed_container(task: dict[str, Any]) -> str:
    """The container that exited non-zero (the one whose log says why), else ``""``."""
    for container in task.get("containers") or []:
        if container.get("exitCode") not in (None, 0):
            return str(container.get("name", ""))
    return ""


def _task_to_read(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest task a container of which exited non-zero, else the newest."""
    if not tasks:
        return None

    def newest(task: dict[str, Any]) -> tuple[bool, float]:
        stopped = task.get("stoppedAt")
        at = stopped.timestamp() if isinstance(stopped, datetime) else float(stopped or 0)
        return (bool(_failed_container(task)), at)

    return max(tasks, key=newest)


def service_deployments(raw: Mapping[str, Any]) -> list[ServiceDeployment]:
    """The ``deployments`` of a ``DescribeServices`` entry."""
    return [
        ServiceDeployment(
            deployment_id=str(d.get("id", "")),
            status=str(d.get("status", "")),
            task_definition=str(d.get("taskDefinition", "")),
            rollout_state=str(d.get("rolloutState", "")),
        )
        for d in raw.get("deployments", [])
    ]


def _service_facts(raw: dict[str, Any]) -> ServiceFacts:
    desired = raw.get("desiredCount")
    return ServiceFacts(
        arn=str(raw.get("serviceArn", "")),
        task_definition=str(raw.get("taskDefinition", "")),
        desired_count=desired if isinstance(desired, int) else None,
        deployments=service_deployments(raw),
    )


def _image_facts(detail: Mapping[str, Any], digest: str) -> ImageFacts:
    pushed = detail.get("imagePushedAt")
    tags = detail.get("imageTags") or []
    return ImageFacts(
        digest=str(detail.get("imageDigest") or digest),
        tag=str(tags[0]) if tags else None,
        pushed_at=pushed.timestamp() if isinstance(pushed, datetime) else 0.0,
    )
