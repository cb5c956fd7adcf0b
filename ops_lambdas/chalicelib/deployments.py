"""The service's deployments and images as ECS, ECR and the ledger know them: the facts
every job reads before it changes the service."""

from __future__ import annotations

from dataclasses import dataclass

# The ledger's record of a deployment is a ledger record; it is named here too, beside the
# ECS deployments it is compared with.
from chalicelib.ledger.records import OPEN_STATUSES, DeploymentRecord, DeploymentStatus

__all__ = [
    "BOOTSTRAP_TAG",
    "OPEN_STATUSES",
    "DeploymentRecord",
    "DeploymentStatus",
    "ImageFacts",
    "ServiceDeployment",
    "deployment_in_progress",
    "is_bootstrap_image",
    "primary_deployment_of",
]

BOOTSTRAP_TAG = "bootstrap"


def is_bootstrap_image(image: str) -> bool:
    """True for the ``<repository uri>:bootstrap`` placeholder: no image was ever deployed."""
    return "@" not in image and image.rsplit("/", 1)[-1].endswith(f":{BOOTSTRAP_TAG}")


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
