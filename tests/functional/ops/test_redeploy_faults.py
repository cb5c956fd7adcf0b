"""The eight ways the redeploy and outcome jobs went wrong under faults, one test each.

Each test is a scenario a review ran against moto (see the fault-proof redeploy issue); each
failed before the fix. The fault matrix (``test_fault_matrix.py``) covers every step x
fault; these name the cases an operator would recognise.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent, ScheduledEvent
from chalicelib.ledger import SafetyLedger
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.faults import Faults, FaultyClient, InjectedCrash
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")
DENIED_RUNBOOK = "https://runbooks.example.com/spotops/ops-access-denied.md"


def push_event(
    world: World, tag: str, seed: str | None = None, *, time: str | None = None
) -> EcrImageActionEvent:
    """A push and its event; ``time``: the push's (the fixture's own time otherwise)."""
    digest = world.push_image(tag, seed=seed)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    event["id"] = f"push-{tag}"
    if time is not None:
        event["time"] = time
    return EcrImageActionEvent(event)


def pushed_at(world: World, digest: str, time: str) -> None:
    """ECR's imagePushedAt of ``digest``."""
    from moto.backends import get_backend

    from tests.support.ops_world import ACCOUNT, REGION

    moment = datetime.datetime.fromisoformat(time.replace("Z", "+00:00"))
    for image in get_backend("ecr")[ACCOUNT][REGION].repositories[world.repository].images:
        if image.get_image_digest() == digest:
            image.image_pushed_at = int(moment.timestamp())


def state(world: World, name: str, deployment_id: str, event_id: str) -> Any:
    event = load_event(name)
    event["id"] = event_id
    event["resources"] = [world.service_desc()["serviceArn"]]
    event["detail"]["deploymentId"] = deployment_id
    return EcsDeploymentStateChangeEvent(event)


def with_faults(kit: Toolkit, faults: Faults, world: World) -> Toolkit:
    return dataclasses.replace(
        kit,
        ecs=FaultyClient(kit.ecs, "ecs", faults),
        ecr=FaultyClient(kit.ecr, "ecr", faults),
        ledger=SafetyLedger(
            FaultyClient(kit.ledger._ddb, "dynamodb", faults, world.ledger_table),
            world.ledger_table,
        ),
    )


def test_1_a_crash_between_register_and_update_does_not_wedge_the_service(
    world: World, slack: SlackStub
) -> None:
    faults = Faults(step="ecs.update_service", fault="crash")
    event = push_event(world, "v1.0.0")

    with pytest.raises(InjectedCrash):
        handle_push(event, with_faults(make_kit(world), faults, world))
    retried = handle_push(event, make_kit(world))  # Lambda's first async retry

    assert retried["status"] == "deploying", retried
    assert "@" in world.site_image()
    # The revision the crashed attempt registered was removed, or reused: never two.
    assert world.revisions() == 2


def test_2_a_failure_of_someone_elses_deployment_leaves_ours_alone(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    ours = handle_push(push_event(world, "v1.0.0"), kit)["deployment_id"]

    foreign = handle_deployment_state(
        state(world, "ecsDeploymentStateChangeFailed", "ecs-svc/not-ours", "e1"), kit
    )
    completed = handle_deployment_state(
        state(world, "ecsDeploymentStateChangeCompleted", ours, "e2"), make_kit(world)
    )

    assert foreign["status"] == "alerted"  # on-call hears of it (issue 22, item 11)...
    assert completed["status"] == "succeeded"  # ...and ours goes on unharmed
    texts = slack.texts()
    assert not any("Rolled back" in text or "Deployment failed" in text for text in texts)
    assert sum("did not start failed: ecs-svc/not-ours" in text for text in texts) == 1


def test_3_reconcile_never_undoes_a_manual_rollback(world: World, slack: SlackStub) -> None:
    kit = make_kit(world)
    bad = handle_push(push_event(world, "v2.0.0", seed="bad"), kit)
    handle_deployment_state(
        state(world, "ecsDeploymentStateChangeCompleted", bad["deployment_id"], "e1"), kit
    )
    # On-call rolls back by hand (runbooks/redeploy.md), and a day passes: the idempotency
    # records of the bad image expire.
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )
    for item in world.clients.dynamodb.scan(TableName=world.idempotency_table)["Items"]:
        world.clients.dynamodb.delete_item(
            TableName=world.idempotency_table, Key={"id": item["id"]}
        )

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), make_kit(world))

    assert result["status"] == "skipped", result
    assert world.site_image().endswith(":bootstrap")
    latest = kit.ledger.read_deployment(kit.settings.service_key)
    assert latest is not None
    assert latest.status == "SUPERSEDED"


def test_4_rolling_back_by_pushing_a_new_tag_on_an_older_digest_deploys_it(
    world: World, slack: SlackStub
) -> None:
    kit = make_kit(world)
    good = push_event(world, "v1.0.0", seed="good", time="2026-11-28T10:00:00Z")
    # ECR's imagePushedAt as on that day (moto stamps the wall clock: two first pushes a
    # moment apart today would be ordered by the second each happened to land in).
    pushed_at(world, good.image_digest, "2026-11-28T10:00:00Z")
    first = handle_push(good, kit)
    handle_deployment_state(
        state(world, "ecsDeploymentStateChangeCompleted", first["deployment_id"], "e1"), kit
    )
    bad = push_event(world, "v1.1.0", seed="bad", time="2026-11-28T10:10:00Z")
    pushed_at(world, bad.image_digest, "2026-11-28T10:10:00Z")
    second = handle_push(bad, make_kit(world))
    handle_deployment_state(
        state(world, "ecsDeploymentStateChangeCompleted", second["deployment_id"], "e2"), kit
    )

    # Tags are immutable: the rollback is the good digest under a new tag, pushed later
    # (ECR's imagePushedAt of the good digest stays its first push; the event's time moves).
    rollback = push_event(world, "v1.1.1", seed="good", time="2026-11-28T10:20:00Z")
    result = handle_push(rollback, make_kit(world))

    assert result["status"] == "deploying", result
    assert world.site_image().endswith(f"@{good.image_digest}")


def test_5_a_request_ecs_refuses_is_posted_once_and_not_retried_until_a_new_push(
    world: World, slack: SlackStub
) -> None:
    refused = ClientError(
        {"Error": {"Code": "ClientException", "Message": "Invalid container definition"}},
        "RegisterTaskDefinition",
    )

    class RefusingEcs:
        def __init__(self, real: Any) -> None:
            self._real = real

        def register_task_definition(self, **kwargs: Any) -> Any:
            raise refused

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    event = push_event(world, "v1.0.0")

    def refusing_kit() -> Toolkit:
        kit = make_kit(world)
        return dataclasses.replace(kit, ecs=RefusingEcs(kit.ecs))

    first = handle_push(event, refusing_kit())
    again = handle_push(event, refusing_kit())  # a duplicate delivery
    runs = [reconcile(ScheduledEvent(load_event("scheduledEvent")), refusing_kit()) for _ in "abcd"]

    assert first["status"] == "failed"
    assert again["status"] == "duplicate"
    assert {run["status"] for run in runs} == {"skipped"}
    assert sum(text.startswith(":x: Redeploy failed") for text in slack.texts()) == 1
    assert world.revisions() == 1
    assert make_kit(world).ledger.read_lock(make_kit(world).settings.service_key) is None


def test_6_a_lost_update_service_reply_is_reported_as_the_deployment_it_is(
    world: World, slack: SlackStub
) -> None:
    class LosingEcs:
        def __init__(self, real: Any) -> None:
            self._real = real

        def update_service(self, **kwargs: Any) -> Any:
            self._real.update_service(**kwargs)  # ECS took it...
            raise ReadTimeoutError(endpoint_url="https://ecs.invalid")  # ...the answer is lost

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    kit = make_kit(world)
    result = handle_push(
        push_event(world, "v1.0.0"), dataclasses.replace(kit, ecs=LosingEcs(kit.ecs))
    )
    done = handle_deployment_state(
        state(world, "ecsDeploymentStateChangeCompleted", result.get("deployment_id", "?"), "e1"),
        make_kit(world),
    )

    assert result["status"] == "deploying", result
    assert done["status"] == "succeeded"
    assert not any("failed" in text.lower() for text in slack.texts())


def test_7_a_ledger_error_after_the_outcome_is_decided_never_posts_twice(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = handle_push(push_event(world, "v1.0.0"), kit)
    event = state(world, "ecsDeploymentStateChangeFailed", started["deployment_id"], "e1")
    faults = Faults(step="ledger.HISTORY", fault="throttle")

    with pytest.raises(Exception, match="ThrottlingException"):
        handle_deployment_state(event, with_faults(make_kit(world), faults, world))
    retried = handle_deployment_state(event, make_kit(world))  # Lambda's retry

    assert retried["status"] == "failed"
    assert sum("Deployment failed" in text for text in slack.texts()) == 1


def test_8_access_denied_on_a_read_is_an_alert_with_its_runbook(
    world: World, slack: SlackStub
) -> None:
    faults = Faults(step="ecs.describe_services", fault="denied")
    event = push_event(world, "v1.0.0")

    result = handle_push(event, with_faults(make_kit(world), faults, world))

    assert result["status"] == "failed"
    assert "AccessDeniedException" in result["reason"]
    (alert,) = slack.bodies
    assert DENIED_RUNBOOK in str(alert)
