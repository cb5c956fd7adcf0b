"""Deployment outcome reporting, against moto."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent
from chalicelib.redeploy.flow import handle_push
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, World, make_kit
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
    assert kit.ledger.read_lock(svc) is None
    assert kit.ledger.read_deployment(svc).status == "COMPLETED"  # type: ignore[union-attr]
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
    assert kit.ledger.read_lock(svc) is None
    assert kit.ledger.read_deployment(svc).status == "FAILED"  # type: ignore[union-attr]
    report = str(slack.bodies[-1])
    assert "Deployment failed: v1.2.3" in slack.texts()[-1]
    assert "ECS deployment circuit breaker: task failed to start." in report
    assert FAILED_RUNBOOK in report
    assert "Deployed" not in report


def test_a_circuit_breaker_rollback_fails_ours_and_its_own_events_change_nothing(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    """ECS fails our deployment, then rolls back under a deployment id of its own: only the
    event about our id changes the ledger and frees the lock."""
    started = deploy(world, kit)
    svc = kit.settings.service_key

    failed = handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"], "evt-f"), kit
    )
    rolling = handle_deployment_state(
        state_event("ecsDeploymentStateChangeRollback", "ecs-svc/rollback-1", "evt-rb-1"), kit
    )
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", "ecs-svc/rollback-1", "evt-rb-2"), kit
    )

    assert failed["status"] == "failed"
    assert rolling["status"] == done["status"] == "ignored"
    assert "not started by the redeploy job" in done["reason"]
    assert kit.ledger.read_lock(svc) is None
    assert kit.ledger.read_deployment(svc).status == "FAILED"  # type: ignore[union-attr]
    assert [t.split(":", 2)[1] for t in slack.texts()] == ["rocket", "x"]
    assert FAILED_RUNBOOK in str(slack.bodies[-1])


def test_a_rollback_notice_for_our_deployment_then_its_completion_is_rolled_back(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    svc = kit.settings.service_key

    rolling = handle_deployment_state(
        state_event("ecsDeploymentStateChangeRollback", started["deployment_id"], "evt-1"), kit
    )
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", started["deployment_id"], "evt-2"), kit
    )

    assert rolling["status"] == "rolling-back"
    assert done["status"] == "rolled-back"
    assert "NOT deployed" in slack.texts()[-1]
    assert not any("Deployed v1.2.3" in text for text in slack.texts())
    assert kit.ledger.read_lock(svc) is None
    assert kit.ledger.read_deployment(svc).status == "ROLLED_BACK"  # type: ignore[union-attr]


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
    assert kit.ledger.read_lock(kit.settings.service_key) is not None


def test_duplicate_outcome_event_is_reported_once(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit)
    event = state_event("ecsDeploymentStateChangeFailed", started["deployment_id"])

    handle_deployment_state(event, kit)
    again = handle_deployment_state(event, make_kit(world))

    assert again["status"] == "duplicate"
    assert again["original_status"] == "failed"
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

    lock = kit.ledger.read_lock(svc)
    assert lock is not None
    assert lock.action == "chaos"


# ---- a failed deployment the redeploy job did not start (issue 22, item 11) -------------


def test_a_failed_deployment_we_did_not_start_is_reported_once_and_changes_nothing(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    """A stack update (or the console) starts a deployment that fails: our records are not
    about it, but on-call hears of it once, with ECS's reason and the runbook."""
    started = deploy(world, kit)
    svc = kit.settings.service_key
    record_before = kit.ledger.read_deployment(svc)
    lock_before = kit.ledger.read_lock(svc)
    posts = len(slack.bodies)

    reported = handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", "ecs-svc/cfn-7", "evt-cfn-1"), kit
    )
    again = handle_deployment_state(  # another event about the same failure
        state_event("ecsDeploymentStateChangeFailed", "ecs-svc/cfn-7", "evt-cfn-2"), kit
    )

    assert reported["status"] == "alerted"
    assert "not started by the redeploy job" in reported["reason"]
    assert again["status"] == "duplicate"
    assert kit.ledger.read_deployment(svc) == record_before  # ours, untouched
    assert kit.ledger.read_lock(svc) == lock_before  # still held for our deployment
    assert started["deployment_id"] != "ecs-svc/cfn-7"
    assert len(slack.bodies) == posts + 1
    report = str(slack.bodies[-1])
    assert (
        "A deployment the redeploy job did not start failed: ecs-svc/cfn-7" in (slack.texts()[-1])
    )
    assert "ECS deployment circuit breaker: task failed to start." in report
    assert FAILED_RUNBOOK in report


def test_the_rollback_after_our_own_failure_is_not_reported_a_second_time(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    """ECS rolls our failed deployment back under an id of its own: its events are not a
    second, foreign failure."""
    started = deploy(world, kit)
    handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"], "evt-f"), kit
    )
    posts = len(slack.bodies)

    rolling = handle_deployment_state(
        state_event("ecsDeploymentStateChangeRollback", "ecs-svc/rollback-1", "evt-rb-1"), kit
    )

    assert rolling["status"] == "ignored"
    assert len(slack.bodies) == posts


def test_a_foreign_failure_with_no_deployment_of_ours_on_record_is_reported(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", "ecs-svc/console-1"), kit
    )

    assert result["status"] == "alerted"
    assert kit.ledger.read_deployment(kit.settings.service_key) is None
    assert kit.ledger.read_lock(kit.settings.service_key) is None
    assert [t.split(":", 2)[1] for t in slack.texts()] == ["x"]
