"""Read-only wrappers around the raw EventBridge events the ops functions handle.

Each handler wraps its raw event once; the rest of the code reads snake_case properties.
Required fields use ``self[...]``; ``problem()`` checks an event before anything reads it and
returns why it cannot be used (or ``None``), so a malformed event is logged and dropped,
never raised into a Lambda retry loop.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _str_field(container: Any, key: str) -> str | None:
    """Return why ``container[key]`` is not a non-empty string, or ``None`` when it is."""
    if not isinstance(container, dict):
        return "is not an object"
    if key not in container:
        return f"{key} is missing"
    value = container[key]
    if not isinstance(value, str):
        return f"{key} is {type(value).__name__}, not a string"
    if not value:
        return f"{key} is empty"
    return None


class _EcrImageEvent(EventBridgeEvent):
    """What every ECR event about one image carries: its repository and digest.

    See https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html
    """

    DETAIL_TYPE = ""
    REQUIRED: tuple[str, ...] = ("repository-name", "image-digest")

    @property
    def repository_name(self) -> str:
        return str(self["detail"]["repository-name"])

    @property
    def image_digest(self) -> str:
        """Content digest of the image manifest, ``sha256:<64 hex>``."""
        return str(self["detail"]["image-digest"])

    def _shape_problem(self) -> str | None:
        """Why this is not a well-formed event of this class (``None``: it is)."""
        if self.get("source") != "aws.ecr" or self.get("detail-type") != self.DETAIL_TYPE:
            return f"not an {self.DETAIL_TYPE} event"
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        for key in self.REQUIRED:
            reason = _str_field(detail, key)
            if reason:
                return f"detail.{reason}"
        return None

    def _image_problem(self, repository_name: str) -> str | None:
        """Why the image is not one of ``repository_name``'s, by a well-formed digest."""
        if self.repository_name != repository_name:
            return f"repository {self.repository_name} is not {repository_name}"
        if not DIGEST_RE.match(self.image_digest):
            return "image-digest is not sha256:<64 hex digits>"
        return None


class EcrImageActionEvent(_EcrImageEvent):
    """``ECR Image Action`` (source ``aws.ecr``): an image was pushed or deleted."""

    DETAIL_TYPE = "ECR Image Action"
    REQUIRED = ("action-type", "result", "repository-name", "image-digest")

    @property
    def action_type(self) -> str:
        """``PUSH`` or ``DELETE``."""
        return str(self["detail"]["action-type"])

    @property
    def result(self) -> str:
        """``SUCCESS`` or ``FAILURE`` of the action."""
        return str(self["detail"]["result"])

    @property
    def image_tag(self) -> str | None:
        """Tag the image was pushed with (absent for a push by digest)."""
        tag = self["detail"].get("image-tag")
        return tag if isinstance(tag, str) and tag else None

    @property
    def at(self) -> float | None:
        """Epoch seconds of the event's ``time``: when the push happened (a re-tag of an old
        digest included), whenever the event is delivered; ``None`` when unreadable."""
        value = self.get("time")
        if not isinstance(value, str) or not value:
            return None
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment.timestamp() if moment.tzinfo is not None else None

    def problem(self, repository_name: str) -> str | None:
        """Why this event must not trigger a redeploy of ``repository_name`` (``None``: fine)."""
        shape = self._shape_problem()
        if shape:
            return shape
        if "image-tag" in self["detail"] and not isinstance(self["detail"]["image-tag"], str):
            return "detail.image-tag is not a string"
        if self.action_type != "PUSH":
            return f"action-type is {self.action_type}, not PUSH"
        if self.result != "SUCCESS":
            return f"result is {self.result}, not SUCCESS"
        return self._image_problem(repository_name)


def _counts_problem(counts: Any) -> str | None:
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()
    ):
        return "detail.finding-severity-counts is not an object of counts"
    return None


def _image_tags(detail: Any) -> list[str]:
    tags = detail.get("image-tags") if isinstance(detail, dict) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _severity_counts(detail: Any) -> dict[str, int]:
    """Findings per severity (``CRITICAL``, ``HIGH``, ...); absent severities are 0, and
    Inspector's ``TOTAL`` (a sum, not a severity) is left out."""
    counts = detail.get("finding-severity-counts") if isinstance(detail, dict) else None
    if not isinstance(counts, dict):
        return {}
    return {
        str(k).upper(): v
        for k, v in counts.items()
        if isinstance(v, int) and str(k).upper() != "TOTAL"
    }


class EcrImageScanEvent(_EcrImageEvent):
    """``ECR Image Scan`` (source ``aws.ecr``): a basic scan of an image finished.

    ``finding-severity-counts`` holds only the severities found (no ``HIGH`` key: no HIGH
    finding); a scan with no findings may carry no counts at all.
    """

    DETAIL_TYPE = "ECR Image Scan"
    REQUIRED = ("scan-status", "repository-name", "image-digest")

    @property
    def scan_status(self) -> str:
        """``COMPLETE`` or ``FAILED`` (e.g. an unsupported base image); ``ACTIVE`` is ECR's
        word for a finished enhanced (continuous) scan."""
        return str(self["detail"]["scan-status"])

    @property
    def image_tags(self) -> list[str]:
        return _image_tags(self["detail"])

    @property
    def severity_counts(self) -> dict[str, int]:
        """Findings per severity (``CRITICAL``, ``HIGH``, ...); absent severities are 0."""
        return _severity_counts(self["detail"])

    def problem(self, repository_name: str) -> str | None:
        """Why this event says nothing about ``repository_name``'s images (``None``: it does)."""
        shape = self._shape_problem()
        if shape:
            return shape
        counts = _counts_problem(self["detail"].get("finding-severity-counts", {}))
        if counts:
            return counts
        return self._image_problem(repository_name)


ECR_IMAGE_ARN_RE = re.compile(
    r"^arn:[a-z-]+:ecr:[a-z0-9-]+:\d{12}:repository/(?P<name>[a-z0-9._/-]+?)"
    r"(?:/(?P<digest>sha256:[0-9a-f]{64}))?$"
)
INSPECTOR_SOURCE = "aws.inspector2"


def repository_of(arn: str) -> str:
    """The repository name in an ECR repository or image ARN (``""``: not one).

    >>> repository_of("arn:aws:ecr:us-east-2:123456789012:repository/amazon/sample")
    'amazon/sample'
    """
    found = ECR_IMAGE_ARN_RE.match(arn)
    return found.group("name") if found else ""


class InspectorScanEvent(EventBridgeEvent):
    """``Inspector2 Scan`` (source ``aws.inspector2``): Amazon Inspector finished the initial
    enhanced scan of an ECR image (ECR's enhanced scanning sends this, not ``ECR Image Scan``).

    ``detail.repository-name`` is the repository's **ARN**; ``finding-severity-counts``
    holds ``CRITICAL``, ``HIGH``, ``MEDIUM`` and ``TOTAL`` (a severity without findings may be
    left out). See https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-events.html
    """

    DETAIL_TYPE = "Inspector2 Scan"

    @property
    def scan_status(self) -> str:
        """``INITIAL_SCAN_COMPLETE``: the findings are available (and kept up to date)."""
        return str(self["detail"]["scan-status"])

    @property
    def repository_name(self) -> str:
        """The repository's name, from the ARN in ``detail.repository-name``."""
        return repository_of(str(self["detail"]["repository-name"]))

    @property
    def image_digest(self) -> str:
        return str(self["detail"]["image-digest"])

    @property
    def image_tags(self) -> list[str]:
        return _image_tags(self["detail"])

    @property
    def severity_counts(self) -> dict[str, int]:
        """Findings per severity; ``TOTAL`` (a sum, not a severity) left out."""
        return _severity_counts(self["detail"])

    def problem(self, repository_name: str) -> str | None:
        """Why this event says nothing about ``repository_name``'s images (``None``: it does)."""
        if self.get("source") != INSPECTOR_SOURCE or self.get("detail-type") != self.DETAIL_TYPE:
            return f"not an {self.DETAIL_TYPE} event"
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        for key in ("scan-status", "repository-name", "image-digest"):
            reason = _str_field(detail, key)
            if reason:
                return f"detail.{reason}"
        counts = _counts_problem(detail.get("finding-severity-counts", {}))
        if counts:
            return counts
        if not self.repository_name:
            return "detail.repository-name is not an ECR repository ARN"
        if self.repository_name != repository_name:
            return f"repository {self.repository_name} is not {repository_name}"
        if not DIGEST_RE.match(self.image_digest):
            return "image-digest is not sha256:<64 hex digits>"
        return None


class InspectorFindingEvent(EventBridgeEvent):
    """``Inspector2 Finding`` (source ``aws.inspector2``): one finding of Amazon Inspector was
    created, updated or closed; here, a package vulnerability in an ECR image.

    ``detail`` is one finding (Inspector's ``Finding``): ``severity`` (``CRITICAL``,
    ``HIGH``, ``MEDIUM``, ``LOW``, ``INFORMATIONAL``, ``UNTRIAGED``), ``status`` (``ACTIVE``,
    ``SUPPRESSED``, ``CLOSED``), ``title``, ``findingArn``, and ``resources[]`` whose
    ``details.awsEcrContainerImage`` names the image (``repositoryName``, ``imageHash``,
    ``imageTags``). See https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-events.html
    and https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html
    """

    DETAIL_TYPE = "Inspector2 Finding"

    @property
    def severity(self) -> str:
        return str(self["detail"]["severity"]).upper()

    @property
    def status(self) -> str:
        """The finding's status: ``ACTIVE`` (open), ``SUPPRESSED`` or ``CLOSED``."""
        return str(self["detail"]["status"]).upper()

    @property
    def title(self) -> str:
        """``CVE-2019-17498 - libssh2``: the vulnerability and the package."""
        title = self["detail"].get("title")
        return title if isinstance(title, str) else ""

    @property
    def finding_arn(self) -> str:
        arn = self["detail"].get("findingArn")
        return arn if isinstance(arn, str) else ""

    @property
    def _image(self) -> dict[str, Any]:
        for resource in self["detail"].get("resources") or []:
            if isinstance(resource, dict) and resource.get("type") == "AWS_ECR_CONTAINER_IMAGE":
                image = (resource.get("details") or {}).get("awsEcrContainerImage")
                if isinstance(image, dict):
                    return image
        return {}

    @property
    def repository_name(self) -> str:
        return str(self._image.get("repositoryName", ""))

    @property
    def image_digest(self) -> str:
        """The image's manifest digest (Inspector's ``imageHash``)."""
        return str(self._image.get("imageHash", ""))

    @property
    def image_tags(self) -> list[str]:
        tags = self._image.get("imageTags")
        return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []

    def problem(self, repository_name: str) -> str | None:
        """Why this finding is not about an image of ``repository_name`` (``None``: it is)."""
        if self.get("source") != INSPECTOR_SOURCE or self.get("detail-type") != self.DETAIL_TYPE:
            return f"not an {self.DETAIL_TYPE} event"
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        for key in ("severity", "status"):
            reason = _str_field(detail, key)
            if reason:
                return f"detail.{reason}"
        if not self._image:
            return "the finding is not about an ECR image (no awsEcrContainerImage resource)"
        if self.repository_name != repository_name:
            return f"repository {self.repository_name or '(none)'} is not {repository_name}"
        if not DIGEST_RE.match(self.image_digest):
            return "imageHash is not sha256:<64 hex digits>"
        return None


class EcsDeploymentStateChangeEvent(EventBridgeEvent):
    """``ECS Deployment State Change`` (source ``aws.ecs``).

    See https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html
    """

    @property
    def event_type(self) -> str:
        """``INFO`` or ``ERROR``."""
        return str(self["detail"]["eventType"])

    @property
    def event_name(self) -> str:
        """``SERVICE_DEPLOYMENT_IN_PROGRESS``, ``..._COMPLETED`` or ``..._FAILED``."""
        return str(self["detail"]["eventName"])

    @property
    def deployment_id(self) -> str:
        """The deployment the event is about, e.g. ``ecs-svc/123``."""
        return str(self["detail"]["deploymentId"])

    @property
    def reason(self) -> str:
        """Human-readable cause; names the circuit breaker or alarm on failure and rollback."""
        reason = self["detail"].get("reason")
        return reason if isinstance(reason, str) else ""

    @property
    def updated_at(self) -> str | None:
        """When the deployment changed state (ISO 8601)."""
        return self["detail"].get("updatedAt")

    @property
    def service_arn(self) -> str:
        """The service ARN from ``resources``."""
        return str(self["resources"][0])

    @property
    def cluster_and_service(self) -> tuple[str, str]:
        """``(cluster, service)`` parsed from ``arn:...:service/<cluster>/<service>``."""
        resource = self.service_arn.split(":", 5)[-1]
        parts = resource.split("/")
        if len(parts) == 3:
            return parts[1], parts[2]
        return "", parts[-1]

    @property
    def is_rollback(self) -> bool:
        """True for the IN_PROGRESS event that starts a circuit breaker or alarm rollback."""
        return "rolling back" in self.reason.lower()

    def problem(self, cluster_name: str, service_name: str) -> str | None:
        """Why this event is not about our service's deployment (``None``: it is)."""
        if self.get("source") != "aws.ecs" or self.get("detail-type") != (
            "ECS Deployment State Change"
        ):
            return "not an ECS Deployment State Change event"
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        for key in ("eventName", "deploymentId"):
            reason = _str_field(detail, key)
            if reason:
                return f"detail.{reason}"
        resources = self.get("resources")
        if not isinstance(resources, list) or not resources or not isinstance(resources[0], str):
            return "resources does not hold the service ARN"
        cluster, service = self.cluster_and_service
        if service != service_name or (cluster and cluster != cluster_name):
            return f"service {cluster}/{service} is not {cluster_name}/{service_name}"
        return None


class ScheduledEvent(EventBridgeEvent):
    """``Scheduled Event`` (source ``aws.events``) from an EventBridge schedule rule."""

    @property
    def rule_arn(self) -> str | None:
        """ARN of the rule that fired."""
        resources = self.get("resources")
        if isinstance(resources, list) and resources and isinstance(resources[0], str):
            return resources[0]
        return None
