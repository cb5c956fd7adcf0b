"""Nothing that protects production depends on a record that expires (issue 22, item 4): the
reconcile run never deploys a rolled-back or superseded image, even after every record with a
TTL (deployment, image, history, idempotency) is gone."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from chalicelib.events import ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from tests.functional.ops.test_redeploy import (
    completed,
    forget_idempotency,
    push_at,
    pushed_at,
    state_event,
)
from tests.support.ecs_deployments import EcsDeployments
from tests.support.events import load_event
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")


def expire_everything_with_a_ttl(world: World) -> list[str]:
    """DynamoDB TTL ran (30 days later): every ledger item with a ``ttl`` is gone, and so
    are the idempotency records. Returns the keys that survived."""
    ddb = world.clients.dynamodb
    survivors = []
    for item in ddb.scan(TableName=world.ledger_table)["Items"]:
        if "ttl" in item:
            ddb.delete_item(TableName=world.ledger_table, Key={"pk": item["pk"], "sk": item["sk"]})
        else:
            survivors.append(f"{item['pk']['S']}/{item['sk']['S']}")
    forget_idempotency(world)
    return survivors


def test_reconcile_never_deploys_a_rolled_back_image_after_the_records_expired(
    world: World, slack: SlackStub
) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    good, good_event = push_at(world, "v1.0.0", now - 900)
    bad, bad_event = push_at(world, "v1.1.0", now - 600)
    pushed_at(world, good, now - 900)
    pushed_at(world, bad, now - 600)
    kit = make_kit(world)
    first = handle_push(good_event, kit)
    completed(kit, first)
    second = handle_push(bad_event, make_kit(world))
    assert second["status"] == "deploying"
    # ECS's circuit breaker rolls the bad image back: the service runs the good one again.
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=first["task_definition"]
    )
    failed = state_event("ecsDeploymentStateChangeFailed", second["deployment_id"])
    assert handle_deployment_state(failed, make_kit(world))["status"] == "failed"
    revisions = world.revisions()
    announced = sum(":rocket: deploying" in text for text in slack.texts())

    survivors = expire_everything_with_a_ttl(world)
    ecs = EcsDeployments(None)
    later = make_kit(world)
    result = reconcile(
        ScheduledEvent(load_event("scheduledEvent")),
        dataclasses.replace(later, ecs=dataclasses.replace(ecs, real=later.ecs)),
    )

    # Nothing on ECS: no revision, no UpdateService; the good image keeps running.
    assert ecs.calls == [], ecs.calls
    assert world.revisions() == revisions
    assert world.site_image() == f"{world.repository_uri}@{good}"
    assert sum(":rocket: deploying" in text for text in slack.texts()) == announced
    assert later.ledger.read_lock(later.settings.service_key) is None
    assert result["status"] == "skipped", result
    assert "not newer than the newest image ever deployed" in result["reason"]
    # What held it back is one small item without TTL (the other is the freeze the failed
    # deployment's rollback began; the hold-back alone keeps the image out after an unfreeze).
    svc = later.settings.service_key
    assert sorted(survivors) == [f"FREEZE#{svc}/STATE", f"HOLD#{svc}/NEWEST"]


def test_the_hold_back_only_moves_forward_and_a_new_image_still_deploys(
    world: World, slack: SlackStub
) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    old, old_event = push_at(world, "v1.0.0", now - 900)
    pushed_at(world, old, now - 900)
    kit = make_kit(world)
    completed(kit, handle_push(old_event, kit))
    svc = kit.settings.service_key
    mark = kit.ledger.read_high_water(svc)
    assert mark is not None
    assert (mark.digest, mark.tag) == (old, "v1.0.0")
    assert not kit.ledger.raise_high_water(svc, now - 1800, digest="sha256:older", tag="v0")
    assert kit.ledger.read_high_water(svc) == mark

    expire_everything_with_a_ttl(world)
    new = world.push_image("v1.2.0")  # pushed now: its event was lost
    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), make_kit(world))

    assert result["status"] == "deploying", result
    assert world.site_image() == f"{world.repository_uri}@{new}"
