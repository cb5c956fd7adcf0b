"""The first push serves traffic: ``INITIAL_DESIRED_COUNT`` lifts a never-deployed service.

The world's service is what the site stack creates before any image exists: desired count
0 and the site container on ``<repository uri>:bootstrap``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chalicelib.errors import SettingsError
from chalicelib.events import EcrImageActionEvent, ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub


class SpyEcs:
    """The moto ECS client, recording every UpdateService request."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.updates: list[dict[str, Any]] = []

    def update_service(self, **kwargs: Any) -> Any:
        self.updates.append(kwargs)
        return self._real.update_service(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def spied(kit: Toolkit) -> tuple[Toolkit, SpyEcs]:
    spy = SpyEcs(kit.ecs)
    return dataclasses.replace(kit, ecs=spy), spy


def push(world: World, kit: Toolkit, tag: str = "v1.2.3") -> tuple[str, dict[str, Any]]:
    digest = world.push_image(tag)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    return digest, handle_push(EcrImageActionEvent(event), kit)


def finish_deployment(kit: Toolkit) -> None:
    """What the outcome job does when ECS reports the deployment complete."""
    assert kit.ledger.release_lock(kit.settings.service_key, action="redeploy")


def test_first_push_sets_the_initial_desired_count_in_the_same_update(
    world: World, slack: SlackStub
) -> None:
    kit, spy = spied(make_kit(world, INITIAL_DESIRED_COUNT="2"))
    assert world.desired_count() == 0

    digest, result = push(world, kit)

    assert result["status"] == "deploying"
    assert result["desired_count"] == 2
    assert world.desired_count() == 2
    assert world.site_image() == f"{world.repository_uri}@{digest}"
    (update,) = spy.updates  # one call: new revision and count together
    assert update["desiredCount"] == 2
    assert update["taskDefinition"] == result["task_definition"]
    record = kit.ledger.read_deployment(kit.settings.service_key)
    assert record is not None
    assert record.desired_count == 2
    assert "*Desired count:* 0 → 2 (first deploy)" in str(slack.bodies[0]["blocks"])


def test_second_push_leaves_the_count_alone(world: World, slack: SlackStub) -> None:
    kit, spy = spied(make_kit(world, INITIAL_DESIRED_COUNT="2"))
    assert push(world, kit, tag="v1.0.0")[1]["status"] == "deploying"
    finish_deployment(kit)
    world.set_desired_count(5)  # autoscaling (or on-call) has moved it since

    _, result = push(world, kit, tag="v1.0.1")

    assert result["status"] == "deploying"
    assert "desired_count" not in result
    assert world.desired_count() == 5
    assert "desiredCount" not in spy.updates[-1]
    assert "Desired count" not in str(slack.bodies[-1]["blocks"])


def test_service_scaled_to_zero_on_a_real_image_is_not_lifted(
    world: World, slack: SlackStub
) -> None:
    # On-call took the site down: desired count 0 while a digest image is deployed.
    old = world.push_image("v1.0.0")
    world.run_image(f"{world.repository_uri}@{old}")
    assert world.desired_count() == 0
    kit, spy = spied(make_kit(world, INITIAL_DESIRED_COUNT="2"))

    digest, result = push(world, kit, tag="v1.0.1")

    assert result["status"] == "deploying"
    assert world.site_image() == f"{world.repository_uri}@{digest}"
    assert world.desired_count() == 0
    assert "desiredCount" not in spy.updates[0]


def test_without_initial_desired_count_the_count_is_untouched(
    world: World, slack: SlackStub
) -> None:
    kit, spy = spied(make_kit(world))

    _, result = push(world, kit)

    assert result["status"] == "deploying"
    assert world.desired_count() == 0
    assert "desiredCount" not in spy.updates[0]
    assert "Desired count" not in str(slack.bodies[0]["blocks"])


@pytest.mark.parametrize("value", ["-1", "two", "2.0"])
def test_bad_initial_desired_count_names_the_variable(world: World, value: str) -> None:
    with pytest.raises(SettingsError, match="INITIAL_DESIRED_COUNT"):
        make_kit(world, INITIAL_DESIRED_COUNT=value)


def test_dry_run_reports_the_count_change_and_changes_nothing(
    world: World, slack: SlackStub
) -> None:
    _, result = push(world, make_kit(world, INITIAL_DESIRED_COUNT="2", DRY_RUN="true"))

    assert result["status"] == "dry-run"
    assert "setting its desired count from 0 to 2" in result["reason"]
    assert "setting its desired count from 0 to 2" in slack.texts()[0]
    assert world.desired_count() == 0
    assert world.revisions() == 1


def test_kill_switch_reports_the_count_change_and_changes_nothing(
    world: World, slack: SlackStub
) -> None:
    world.set_kill_switch("on")

    _, result = push(world, make_kit(world, INITIAL_DESIRED_COUNT="2"))

    assert result["status"] == "kill-switch"
    assert "setting its desired count from 0 to 2" in result["reason"]
    assert "setting its desired count from 0 to 2" in slack.texts()[0]
    assert world.desired_count() == 0
    assert world.revisions() == 1


def test_reconcile_first_deploy_also_sets_the_count(world: World, slack: SlackStub) -> None:
    world.push_image("v3.0.0")  # its push event was lost

    result = reconcile(
        ScheduledEvent(load_event("scheduledEvent")), make_kit(world, INITIAL_DESIRED_COUNT="3")
    )

    assert result["status"] == "deploying"
    assert world.desired_count() == 3
