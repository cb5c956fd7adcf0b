"""Deployment outcome reporting and the reconcile schedule, against moto."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from moto.backends import get_backend

from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent, ScheduledEvent
from chalicelib.outcome import handle_deployment_state
from chalicelib.redeploy import handle_push, reconcile
from chalicelib.toolkit import Toolkit
from tests.functional.ops.world import ACCOUNT, REGION, World, make_kit
from tests.support.events import load_event
from tests.support.slack_stub import SlackStub

# Several jobs run in one test process; in Lambda each invocation is one job.
pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

FAILED_RUNBOOK = "https://runbooks.example.com/spotops/deploy-failed.md"


def deploy(world: World, kit: Toolkit, tag: str = "v1.2.3") -> dict[str, Any]:
    digest = world.push_image(tag)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    result = handle_push(EcrImageActionEvent(event), kit)
    assert result["status"] == "deploying"
    return result


def state_event(name: str, deployment_id: str, event_id: str | None = None) -> Any:
    event = load_event(name)
    event["detail"]["deploymentId"] = deployment_id
    if event_id:
        event["id"] = event_id
    return EcsDeploymentStateChangeEvent(event)


def test_completed_deployment_is_reported_as_success_and_releases_the_lock(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    svc = kit.settings.service_key

    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", started["deployment_id"]), kit
    )

    assert result["status"] == "succeeded"
    assert kit.ledger.get_lock(svc) is None
    assert kit.ledger.get_deployment(svc)["status"] == "COMPLETED"  # type: ignore[index]
    assert "Deployed v1.2.3" in slack.texts()[-1]


def test_failed_deployment_reports_the_reason_and_the_runbook(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    svc = kit.settings.service_key

    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )

    assert result["status"] == "failed"
    assert result["lock_released"] is True
    assert kit.ledger.get_lock(svc) is None
    assert kit.ledger.get_deployment(svc)["status"] == "FAILED"  # type: ignore[index]
    report = str(slack.bodies[-1])
    assert "Deployment failed: v1.2.3" in slack.texts()[-1]
    assert "ECS deployment circuit breaker: task failed to start." in report
    assert FAILED_RUNBOOK in report
    assert "Deployed" not in report


def test_rollback_is_reported_as_failure_and_its_completion_never_as_success(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    svc = kit.settings.service_key

    rolling = handle_deployment_state(
        state_event("ecsDeploymentStateChangeRollback", "ecs-svc/rollback-1", "evt-rb-1"), kit
    )
    assert rolling["status"] == "rolling-back"
    assert "rolling back" in slack.texts()[-1]
    assert FAILED_RUNBOOK in str(slack.bodies[-1])

    # ECS rolled the service back to the previous task definition.
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", "ecs-svc/rollback-1", "evt-rb-2"), kit
    )

    assert done["status"] == "rolled-back"
    assert "NOT deployed" in slack.texts()[-1]
    assert FAILED_RUNBOOK in str(slack.bodies[-1])
    assert not any("Deployed v1.2.3" in text for text in slack.texts())
    assert kit.ledger.get_lock(svc) is None
    assert kit.ledger.get_deployment(svc)["status"] == "ROLLED_BACK"  # type: ignore[index]
    assert started["deployment_id"] == kit.ledger.get_deployment(svc)["deployment_id"]  # type: ignore[index]


def test_completion_of_our_deployment_while_service_runs_another_image_is_a_rollback(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )

    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", started["deployment_id"]), kit
    )

    assert result["status"] == "rolled-back"
    assert not any("Deployed" in text for text in slack.texts())


def test_in_progress_event_is_only_logged(world: World, kit: Toolkit, slack: SlackStub) -> None:
    started = deploy(world, kit)
    before = len(slack.bodies)

    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeInProgress", started["deployment_id"]), kit
    )

    assert result["status"] == "ignored"
    assert len(slack.bodies) == before
    assert kit.ledger.get_lock(kit.settings.service_key) is not None


def test_duplicate_outcome_event_is_reported_once(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    event = state_event("ecsDeploymentStateChangeFailed", started["deployment_id"])

    handle_deployment_state(event, kit)
    again = handle_deployment_state(event, make_kit(world))

    assert again["status"] == "failed"
    assert sum("Deployment failed" in text for text in slack.texts()) == 1


def test_outcome_for_another_service_or_malformed_is_ignored(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    other = load_event("ecsDeploymentStateChangeFailed")
    other["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/other"]
    no_detail = load_event("ecsDeploymentStateChangeFailed")
    no_detail.pop("detail")
    bad_id = load_event("ecsDeploymentStateChangeFailed")
    bad_id["detail"]["deploymentId"] = 42
    no_resources = load_event("ecsDeploymentStateChangeFailed")
    no_resources["resources"] = []

    for raw in (other, no_detail, bad_id, no_resources):
        result = handle_deployment_state(EcsDeploymentStateChangeEvent(raw), kit)
        assert result["status"] == "ignored"
    assert slack.bodies == []


def test_failure_does_not_release_a_chaos_lock(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    assert kit.ledger.acquire_lock(svc, holder="chaos:1", action="chaos", ttl_seconds=600).acquired

    handle_deployment_state(state_event("ecsDeploymentStateChangeFailed", "ecs-svc/9"), kit)

    lock = kit.ledger.get_lock(svc)
    assert lock is not None
    assert lock["action"] == "chaos"


# ---- reconcile ---------------------------------------------------------------------------------


def _age_images(world: World, ages: dict[str, int]) -> None:
    """Make moto's push times differ (it stores whole seconds)."""
    backend = get_backend("ecr")[ACCOUNT][REGION]
    now = int(dt.datetime.now(dt.UTC).timestamp())
    for image in backend.repositories[world.repository].images:
        for tag, age in ages.items():
            if tag in (image.image_tags or []) or image.image_tag == tag:
                image.image_pushed_at = now - age


def test_reconcile_deploys_the_newest_matching_image_once(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    world.push_image("v1.0.0")
    newest = world.push_image("v1.1.0")
    world.push_image("latest", seed="latest-build")
    _age_images(world, {"v1.0.0": 300, "v1.1.0": 200, "latest": 10})
    scheduled = ScheduledEvent(load_event("scheduledEvent"))

    result = reconcile(scheduled, kit)

    assert result["status"] == "deploying"
    assert world.site_image() == f"{world.repository_uri}@{newest}"
    assert world.revisions() == 2
    # The next run finds the service on that image and does nothing.
    again = reconcile(scheduled, make_kit(world))
    assert again["status"] == "up-to-date"
    assert world.revisions() == 2


def test_reconcile_and_a_late_push_event_start_one_deployment(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v2.0.0")
    assert reconcile(ScheduledEvent(load_event("scheduledEvent")), kit)["status"] == "deploying"

    event = world.push_event(load_event("ecrImageActionPush"), digest, "v2.0.0")
    late = handle_push(EcrImageActionEvent(event), make_kit(world))

    assert late["status"] in ("duplicate", "already-running")
    assert world.revisions() == 2


def test_reconcile_reports_an_image_held_back_by_dry_run_once_not_every_run(
    world: World, slack: SlackStub
) -> None:
    world.push_image("v4.0.0")
    scheduled = ScheduledEvent(load_event("scheduledEvent"))

    first = reconcile(scheduled, make_kit(world, DRY_RUN="true"))
    second = reconcile(scheduled, make_kit(world, DRY_RUN="true"))

    assert first["status"] == second["status"] == "dry-run"
    assert world.revisions() == 1
    dry_run_posts = [text for text in slack.texts() if "dry run" in text]
    assert len(dry_run_posts) == 1, slack.texts()


def test_reconcile_with_nothing_matching_does_nothing(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    world.push_image("latest")

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), kit)

    assert result["status"] == "ignored"
    assert world.revisions() == 1


def test_reconcile_does_not_retry_an_image_that_failed(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit, tag="v3.0.0")
    handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), make_kit(world))

    assert result["status"] == "skipped"
    assert "failed" in result["reason"]
    assert world.site_image().endswith(":bootstrap")


def test_reconcile_waits_while_a_deployment_is_in_progress(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    world.push_image("v1.0.0")
    world.clients.ecs.update_service(cluster=world.cluster, service=world.service, desiredCount=2)
    backend = get_backend("ecs")[ACCOUNT][REGION]
    service = backend.services[f"{world.cluster}:{world.service}"]
    service.deployments[0]["rolloutState"] = "IN_PROGRESS"

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), kit)

    assert result["status"] == "in-progress"
    assert world.revisions() == 1
