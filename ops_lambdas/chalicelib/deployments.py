"""The service's deployments and images as ECS, ECR and the ledger know them: the facts
every job reads before it changes the service."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

BOOTSTRAP_TAG = "bootstrap"


def is_bootstrap_image(image: str) -> bool:
    """True for the ``<repository uri>:bootstrap`` placeholder: no image was ever deployed."""
    return "@" not in image and image.rsplit("/", 1)[-1].endswith(f":{BOOTSTRAP_TAG}")


class DeploymentStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    ROLLING_BACK = "ROLLING_BACK"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"
    SUPERSEDED = "SUPERSEDED"


OPEN_STATUSES = frozenset({DeploymentStatus.IN_PROGRESS, DeploymentStatus.ROLLING_BACK})


@dataclass(frozen=True)
class DeploymentRecord:
    """The latest deployment the redeploy job started, as the ledger holds it."""

    deployment_id: str
    digest: str
    tag: str
    status: DeploymentStatus
    task_definition: str = ""
    pushed_at: float = 0.0
    previous_task_definition: str = ""
    updated_at: float = 0.0  # when the record last changed (its COMPLETED time, once done)
    event_at: float = 0.0  # the time of the push event that started it (0: reconcile's)

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> DeploymentRecord | None:
        if not item or not item.get("deployment_id"):
            return None
        try:
            status = DeploymentStatus(str(item.get("status", "")))
        except ValueError:
            return None
        return cls(
            deployment_id=str(item["deployment_id"]),
            digest=str(item.get("digest", "")),
            tag=str(item.get("tag", "")),
            status=status,
            task_definition=str(item.get("task_definition", "")),
            pushed_at=float(item.get("pushed_at", 0) or 0),
            previous_task_definition=str(item.get("previous_task_definition", "")),
            updated_at=float(item.get("updated_at", 0) or 0),
            event_at=float(item.get("event_at", 0) or 0),
        )

    @property
    def label(self) -> str:
        return f"{self.tag or 'untagged'} ({self.digest[:19]})"


@dataclass(frozen=True)
class ServiceDeployment:
    """One entry of ``DescribeServices``' ``deployments``."""

    deployment_id: str
    status: str  # PRIMARY, ACTIVE, INACTIVE
    task_definition: str
    rollout_state: str = ""


def primary_deployment_of(deployments: list[ServiceDeployment], task_definition: str) -> str | None:
    """The id of the PRIMARY deployment when it runs ``task_definition``, else ``None``.

    After a transport error on ``UpdateService`` this tells whether ECS took our update."""
    for deployment in deployments:
        if deployment.status == "PRIMARY" and deployment.task_definition == task_definition:
            return deployment.deployment_id
    return None


def deployment_in_progress(deployments: list[ServiceDeployment]) -> bool:
    """More than one deployment, or one still rolling out, means ECS is busy."""
    return len(deployments) > 1 or any(d.rollout_state == "IN_PROGRESS" for d in deployments)


@dataclass(frozen=True)
class ImageFacts:
    """One image of the repository: digest, a matching tag, when it was pushed."""

    digest: str
    tag: str | None
    pushed_at: float
