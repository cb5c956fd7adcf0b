"""The reconcile run settles a deployment record only from what ECS clearly says about it
(issue 22, item 7): it reads the ledger first, then ECS, and never settles a young record
from ECS's silence about it."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from chalicelib.events import EcrImageActionEvent, ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_outcome import state_event
from tests.support.ecs_deployments import (
    EcsDeployments,
    LaggingDescribe,
    backend_service,
    set_primary_deployment,
)
from tests.support.events import load_event
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")


def push_event(world: World, tag: str) -> EcrImageActionEvent:
    digest = world.push_image(tag)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    event["id"] = f"push-{tag}"
    event["time"] = "2026-12-01T10:00:00Z"
    return EcrImageActionEvent(event)


def ecs_kit(world: World, ecs: Any) -> Toolkit:
    kit = make_kit(world)
    return dataclasses.replace(kit, ecs=dataclasses.replace(ecs, real=kit.ecs))


def scheduled() -> ScheduledEvent:
    return ScheduledEvent(load_event("scheduledEvent"))


def age_record(world: World, kit: Toolkit, seconds: float) -> None:
    """The deployment record was last changed ``seconds`` ago."""
    world.clients.dynamodb.update_item(
        TableName=world.ledger_table,
        Key={"pk": {"S": f"DEPLOYMENT#{kit.settings.service_key}"}, "sk": {"S": "LATEST"}},
        UpdateExpression="SET updated_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time() - seconds))}},
    )


def posted(slack: SlackStub, words: str) -> int:
    return sum(words in json.dumps(body) for body in slack.bodies)


def test_a_push_landing_between_the_reads_is_not_settled_rolled_back(
    world: World, slack: SlackStub
) -> None:
    release = push_event(world, "v1.1.0")  # in ECR; its event not handled yet
    ecs = EcsDeployments(None)
    pushed: list[dict[str, Any]] = []

    @dataclasses.dataclass
    class PushLandsDuringTheRead(EcsDeployments):
        def describe_services(self, **kwargs: Any) -> Any:
            answer = self.real.describe_services(**kwargs)
            if not pushed:  # the push is handled right after ECS answered the reconcile run
                pushed.append(handle_push(release, ecs_kit(world, ecs)))
            return answer

    kit = make_kit(world)
    run = reconcile(scheduled(), dataclasses.replace(kit, ecs=PushLandsDuringTheRead(kit.ecs)))

    started = pushed[0]
    assert started["status"] == "deploying", started
    svc = kit.settings.service_key
    record, lock = kit.ledger.read_deployment(svc), kit.ledger.read_lock(svc)
    assert record is not None
    assert lock is not None  # not freed mid-deployment
    assert (record.deployment_id, record.status) == (started["deployment_id"], "IN_PROGRESS")
    assert lock.deployment_id == started["deployment_id"]
    assert posted(slack, "NOT deployed") == 0, slack.texts()
    assert ecs.calls.count("update_service") == 1  # and reconcile deployed nothing itself
    assert run["status"] != "deploying", run
    assert "rolled_back" not in [h.outcome for h in kit.ledger.read_history(svc)]

    # ECS's real outcome is not stale: it completes the record and frees the lock.
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", started["deployment_id"]),
        make_kit(world),
    )
    assert done["status"] == "succeeded", done
    assert kit.ledger.read_lock(svc) is None


def test_describe_services_lagging_the_update_settles_nothing_until_ecs_says(
    world: World, slack: SlackStub
) -> None:
    before = world.clients.ecs.describe_services(cluster=world.cluster, services=[world.service])
    ecs = EcsDeployments(None)
    started = handle_push(push_event(world, "v1.1.0"), ecs_kit(world, ecs))
    assert started["status"] == "deploying"
    kit = make_kit(world)
    svc = kit.settings.service_key

    lagging = reconcile(scheduled(), dataclasses.replace(kit, ecs=LaggingDescribe(kit.ecs, before)))

    assert lagging["status"] == "in-progress", lagging  # waits for the open deployment
    assert lagging["settled"] is None
    record, lock = kit.ledger.read_deployment(svc), kit.ledger.read_lock(svc)
    assert record is not None
    assert record.status == "IN_PROGRESS"
    assert lock is not None
    assert posted(slack, "NOT deployed") == 0
    assert ecs.calls.count("update_service") == 1

    # ECS then says our deployment completed (its outcome event was lost): settled, posted.
    settled = reconcile(scheduled(), make_kit(world))
    assert settled["settled"] == "COMPLETED", settled
    assert kit.ledger.read_lock(svc) is None
    assert posted(slack, ":white_check_mark: Deployed v1.1.0") == 1


def test_a_lost_rollback_outcome_is_settled_once_the_record_is_past_the_grace_period(
    world: World, slack: SlackStub
) -> None:
    ecs = EcsDeployments(None)
    started = handle_push(push_event(world, "v1.1.0"), ecs_kit(world, ecs))
    kit = make_kit(world)
    svc = kit.settings.service_key
    # ECS rolled back: a deployment of its own on the old revision; ours is no longer listed.
    set_primary_deployment(world.cluster, world.service, "ecs-svc/rollback", world.bootstrap_td)

    young = reconcile(scheduled(), make_kit(world))
    assert young["settled"] is None, young
    assert kit.ledger.read_lock(svc) is not None

    age_record(world, kit, 3600)  # an hour: past SETTLE_GRACE_SECONDS (10 minutes)
    old = reconcile(scheduled(), make_kit(world))

    assert old["settled"] == "ROLLED_BACK", old
    record = kit.ledger.read_deployment(svc)
    assert record is not None
    assert (record.deployment_id, record.status) == (started["deployment_id"], "ROLLED_BACK")
    assert kit.ledger.read_lock(svc) is None
    assert posted(slack, "NOT deployed") == 1
    assert ecs.calls.count("update_service") == 1
    # ECS undid it and the outcome event was lost: pushes freeze as after any ECS rollback.
    freeze = kit.ledger.read_freeze(svc)
    assert freeze is not None
    assert (freeze.frozen, freeze.by, freeze.deployment_id) == (
        True,
        "ecs",
        started["deployment_id"],
    )
    assert posted(slack, "are now frozen") == 1


def test_a_lost_rollback_found_after_an_unfreeze_does_not_freeze_again(
    world: World, slack: SlackStub
) -> None:
    """On-call unfroze after the deployment began (they knew of it): the reconcile run's late
    finding of its rollback must not undo that."""
    ecs = EcsDeployments(None)
    handle_push(push_event(world, "v1.1.0"), ecs_kit(world, ecs))
    kit = make_kit(world)
    svc = kit.settings.service_key
    set_primary_deployment(world.cluster, world.service, "ecs-svc/rollback", world.bootstrap_td)
    age_record(world, kit, 3600)
    kit.ledger.freeze(svc, at=time.time() - 7200, reason="planned", by="freeze-command")
    kit.ledger.unfreeze(svc, by="alice")

    settled = reconcile(scheduled(), make_kit(world))

    assert settled["settled"] == "ROLLED_BACK", settled
    freeze = kit.ledger.read_freeze(svc)
    assert freeze is not None
    assert not freeze.frozen
    assert posted(slack, "are now frozen") == 0
    assert posted(slack, "NOT deployed") == 1


def test_a_failed_rollout_still_running_its_image_freezes_nothing(
    world: World, slack: SlackStub
) -> None:
    ecs = EcsDeployments(None)
    handle_push(push_event(world, "v1.1.0"), ecs_kit(world, ecs))
    kit = make_kit(world)
    backend_service(world.cluster, world.service).deployments[0]["rolloutState"] = "FAILED"

    assert reconcile(scheduled(), make_kit(world))["settled"] == "FAILED"
    assert kit.ledger.read_freeze(kit.settings.service_key) is None


def test_a_failed_rollout_still_running_its_image_is_settled_failed_and_said_so(
    world: World, slack: SlackStub
) -> None:
    """ECS says our rollout FAILED while the service still runs its image (nothing rolled
    back): the record is FAILED and the post says "failed", not "NOT deployed"."""
    ecs = EcsDeployments(None)
    handle_push(push_event(world, "v1.1.0"), ecs_kit(world, ecs))
    kit = make_kit(world)
    primary = backend_service(world.cluster, world.service).deployments[0]
    primary["rolloutState"] = "FAILED"

    settled = reconcile(scheduled(), make_kit(world))

    assert settled["settled"] == "FAILED", settled
    record = kit.ledger.read_deployment(kit.settings.service_key)
    assert record is not None
    assert record.status == "FAILED"
    assert posted(slack, "Deployment failed: v1.1.0") == 1
    assert posted(slack, "NOT deployed") == 0
