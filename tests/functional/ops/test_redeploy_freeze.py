"""The freeze after a rollback (issue 26, item 2), Lambda side, against moto: a push while
frozen is recorded and reported, not deployed; the reconcile run deploys nothing while
frozen; a rollback by ECS (ours or not) and by remediation freezes; a late rollback event
does not freeze again after an unfreeze."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from chalicelib.events import EcsDeploymentStateChangeEvent, ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_redeploy import iso, push_at
from tests.support.events import load_event
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")


def now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def freeze(kit: Toolkit, at: float) -> None:
    reason = "ECS rolled back deployment ecs-svc/1 (circuit breaker)"
    assert kit.ledger.freeze(kit.settings.service_key, at=at, reason=reason, by="ecs")


def snowflakes(slack: SlackStub) -> list[str]:
    return [text for text in slack.texts() if ":snowflake: Push not deployed" in text]


def frozen_lines(slack: SlackStub) -> list[str]:
    return [text for text in slack.texts() if "are now frozen" in text]


def rollback_event(name: str, deployment_id: str, event_id: str, at: float) -> Any:
    """A recorded ECS deployment event about ``deployment_id``, whose own time is ``at``."""
    event = load_event(name)
    event["id"] = event_id
    event["time"] = iso(at)
    event["detail"]["deploymentId"] = deployment_id
    return EcsDeploymentStateChangeEvent(event)


def test_a_push_while_frozen_is_recorded_posted_once_and_deployed_after_the_unfreeze(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    freeze(kit, now() - 60)
    running = world.site_image()
    digest, event = push_at(world, "v2.0.0", now())

    first = handle_push(event, make_kit(world))
    again = handle_push(event, make_kit(world))  # EventBridge delivers it twice

    for result in (first, again):
        assert result["status"] == "frozen", result
        assert "pushes are frozen since" in result["reason"]
    assert world.revisions() == 1  # no revision registered, no UpdateService
    assert world.site_image() == running
    record = kit.ledger.read_image(svc, digest)
    assert record is not None
    assert (record.outcome, record.tag, record.event_at) == ("frozen", "v2.0.0", event.at)
    frozen_history = [h for h in kit.ledger.read_history(svc) if h.outcome == "frozen"]
    assert len(frozen_history) == 1, frozen_history
    [notice] = snowflakes(slack)
    assert f"v2.0.0 ({digest[:19]})" in notice
    assert "after a rollback (ECS rolled back deployment ecs-svc/1 (circuit breaker))" in notice
    assert "`spotops unfreeze --deploy-latest` deploys the newest push" in notice
    assert "rollback.md" in notice
    assert kit.ledger.read_lock(svc) is None
    assert kit.ledger.budget_used("redeploy") == 0

    # `spotops unfreeze --deploy-latest`: the freeze lifted, the same event delivered again.
    assert kit.ledger.unfreeze(svc, by="test") is not None
    deployed = handle_push(event, make_kit(world))
    assert deployed["status"] == "deploying", deployed
    assert world.site_image() == f"{world.repository_uri}@{digest}"
    assert handle_push(event, make_kit(world))["status"] == "duplicate"
    assert world.revisions() == 2  # deployed exactly once
    assert len(snowflakes(slack)) == 1


def test_reconcile_deploys_no_lost_push_while_frozen_and_then_only_the_lost_one(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    freeze(kit, now() - 60)
    lost = world.push_image("v2.0.0")  # its push event never arrived
    scheduled = ScheduledEvent(load_event("scheduledEvent"))

    result = reconcile(scheduled, make_kit(world))

    assert result["status"] == "skipped", result
    assert result["reason"].startswith(f"reconcile: v2.0.0 ({lost[:19]}) not deployed: pushes")
    assert "frozen since" in result["reason"]
    assert world.revisions() == 1
    assert kit.ledger.read_image(svc, lost) is None  # nothing recorded: not a push refused
    assert snowflakes(slack) == []

    # After the unfreeze, the lost push is one never handled: reconcile deploys it.
    assert kit.ledger.unfreeze(svc, by="test") is not None
    assert reconcile(scheduled, make_kit(world))["status"] == "deploying"
    assert world.site_image() == f"{world.repository_uri}@{lost}"


def test_reconcile_leaves_a_push_refused_while_frozen_after_a_plain_unfreeze(
    world: World, kit: Toolkit
) -> None:
    svc = kit.settings.service_key
    freeze(kit, now() - 60)
    digest, event = push_at(world, "v2.0.0", now())
    assert handle_push(event, make_kit(world))["status"] == "frozen"
    scheduled = ScheduledEvent(load_event("scheduledEvent"))
    assert reconcile(scheduled, make_kit(world))["status"] == "skipped"

    assert kit.ledger.unfreeze(svc, by="test") is not None
    result = reconcile(scheduled, make_kit(world))

    assert result["status"] == "skipped", result
    assert "was pushed while pushes were frozen and not deployed" in result["reason"]
    assert world.revisions() == 1
    assert world.site_image() != f"{world.repository_uri}@{digest}"


def test_ecs_rolling_back_our_deployment_freezes_and_says_so_once(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    _, event = push_at(world, "v1.0.0", now() - 120)
    started = handle_push(event, make_kit(world))
    ours = started["deployment_id"]
    at = now() - 30
    rollback = rollback_event("ecsDeploymentStateChangeRollback", ours, "e-rollback", at)

    result = handle_deployment_state(rollback, make_kit(world))

    assert (result["status"], result["froze"]) == ("rolling-back", True), result
    state = kit.ledger.read_freeze(svc)
    assert state is not None
    assert state.frozen
    assert (state.by, state.deployment_id, state.since) == ("ecs", ours, pytest.approx(at))
    assert state.reason == (
        f"ECS rolled back deployment {ours} (ECS deployment circuit breaker: rolling back to "
        "deploymentId deploymentID.)"
    )
    [line] = frozen_lines(slack)
    assert "Rolling back" in line or "rolling back" in line
    assert "`spotops unfreeze` resumes" in line

    # The same event again, and the failure that follows: the freeze is not posted again.
    assert handle_deployment_state(rollback, make_kit(world))["status"] == "duplicate"
    failed = rollback_event("ecsDeploymentStateChangeFailed", ours, "e-failed", at + 5)
    assert handle_deployment_state(failed, make_kit(world))["froze"] is False
    assert len(frozen_lines(slack)) == 1
    assert kit.ledger.read_freeze(svc).since == pytest.approx(at)  # type: ignore[union-attr]

    # A push now is not deployed.
    _, later = push_at(world, "v1.1.0", now())
    assert handle_push(later, make_kit(world))["status"] == "frozen"


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("ecsDeploymentStateChangeFailed", "alerted"),  # its failure is posted, with the line
        ("ecsDeploymentStateChangeRollback", "ignored"),  # nothing else says so: a notice
    ],
)
def test_ecs_rolling_back_a_deployment_not_ours_freezes_even_in_dry_run(
    world: World, slack: SlackStub, name: str, status: str
) -> None:
    world.set_dry_run("true")  # the rollback is ECS's, real: dry run holds back only ours
    kit = make_kit(world)
    event = rollback_event(name, "ecs-svc/by-hand", "e1", now())

    result = handle_deployment_state(event, kit)

    assert (result["status"], result["froze"]) == (status, True), result
    state = kit.ledger.read_freeze(kit.settings.service_key)
    assert state is not None
    assert (state.frozen, state.deployment_id) == (True, "ecs-svc/by-hand")
    [line] = frozen_lines(slack)
    assert "ecs-svc/by-hand" in line
    again = rollback_event(name, "ecs-svc/by-hand", "e2", now())  # another delivery, new id
    assert handle_deployment_state(again, kit)["froze"] is False
    assert len(frozen_lines(slack)) == 1


def test_a_late_rollback_event_does_not_freeze_again_after_the_unfreeze(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    first = rollback_event("ecsDeploymentStateChangeRollback", "ecs-svc/1", "e1", now() - 600)
    assert handle_deployment_state(first, make_kit(world))["froze"] is True
    assert kit.ledger.unfreeze(svc, by="test") is not None

    # ECS's failure event of that deployment, delivered after the unfreeze: it happened before.
    late = rollback_event("ecsDeploymentStateChangeFailed", "ecs-svc/1", "e2", now() - 590)
    result = handle_deployment_state(late, make_kit(world))

    assert result["froze"] is False, result
    state = kit.ledger.read_freeze(svc)
    assert state is not None
    assert state.frozen is False
    assert len(frozen_lines(slack)) == 1
    # A rollback that happens after the unfreeze freezes again.
    new = rollback_event("ecsDeploymentStateChangeFailed", "ecs-svc/2", "e3", now() + 5)
    assert handle_deployment_state(new, make_kit(world))["froze"] is True
    assert len(frozen_lines(slack)) == 2
    assert "ecs-svc/2" in json.dumps(slack.bodies[-1])
