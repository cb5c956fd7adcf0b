"""ECS deployments as ECS makes them, where moto does not (tests only).

moto's ``UpdateService`` keeps the old deployment's id and task definition, so two
deployments started one after the other look like one. :class:`EcsDeployments` wraps an ECS
client: each ``UpdateService`` with a task definition starts a new PRIMARY deployment with
its own id (``ecs-svc/<n>``), as ECS does, and every call is counted, so a test can say how
many deployments a job started.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.support.ops_world import ACCOUNT, REGION

_IDS = itertools.count(1000)


def backend_service(cluster: str, service: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[ACCOUNT][REGION].services[f"{cluster}:{service}"]


def set_primary_deployment(
    cluster: str, service: str, deployment_id: str, task_definition: str
) -> None:
    """Make ECS's PRIMARY deployment of the service ``deployment_id`` on ``task_definition``."""
    moto_service = backend_service(cluster, service)
    primary = dict(moto_service.deployments[0])
    primary.update(id=deployment_id, taskDefinition=task_definition, status="PRIMARY")
    moto_service.deployments = [primary]
    moto_service.task_definition = task_definition


@dataclass
class EcsDeployments:
    """An ECS client that starts a new deployment id per ``UpdateService`` and counts calls."""

    real: Any
    calls: list[str] = field(default_factory=list)

    def update_service(self, **kwargs: Any) -> Any:
        self.calls.append("update_service")
        response = self.real.update_service(**kwargs)
        if kwargs.get("taskDefinition"):
            set_primary_deployment(
                kwargs["cluster"],
                kwargs["service"],
                f"ecs-svc/{next(_IDS)}",
                str(response["service"]["taskDefinition"]),
            )
        described = self.real.describe_services(
            cluster=kwargs["cluster"], services=[kwargs["service"]]
        )
        return {"service": described["services"][0]}

    def register_task_definition(self, **kwargs: Any) -> Any:
        self.calls.append("register_task_definition")
        return self.real.register_task_definition(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@dataclass
class LaggingDescribe:
    """An ECS client whose ``DescribeServices`` answers with ``snapshot``: the service as it
    was before the last ``UpdateService`` (ECS's reads are eventually consistent)."""

    real: Any
    snapshot: dict[str, Any]

    def describe_services(self, **kwargs: Any) -> Any:
        return self.snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
