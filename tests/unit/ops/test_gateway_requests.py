"""What the redeploy sends ECS, recorded by a fake client (moto drops the service's
``deploymentConfiguration``, so it cannot show this)."""

from __future__ import annotations

from typing import Any

from chalicelib.gateway import EcsGateway


class RecordingEcs:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def update_service(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        return {"service": {"serviceArn": "arn", "taskDefinition": request["taskDefinition"]}}


def test_a_redeploy_follows_the_services_own_deployment_strategy() -> None:
    """The site template sets ROLLING, CANARY or LINEAR (and the hook) on the service; an
    UpdateService that names no deploymentConfiguration keeps them, so an image pushed by the
    redeploy Lambda is shifted and smoke-tested exactly like a `spotops deploy`."""
    ecs = RecordingEcs()
    gateway = EcsGateway(ecs, None, cluster="spotops-dev", service="spotops-dev-site")

    gateway.update_service("arn:aws:ecs:us-east-1:123456789012:task-definition/site:7", None)
    gateway.update_service("arn:aws:ecs:us-east-1:123456789012:task-definition/site:8", 2)

    assert [set(call) for call in ecs.calls] == [
        {"cluster", "service", "taskDefinition"},
        {"cluster", "service", "taskDefinition", "desiredCount"},
    ]
