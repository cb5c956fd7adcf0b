"""Dry run switched at run time: ``DRY_RUN_PARAMETER`` in SSM, with ``DRY_RUN`` still forcing it.

The world creates the parameter (``false``) and the settings name it, as the ops stack does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.controls import Controls
from chalicelib.events import EcrImageActionEvent, ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub


def push(world: World, kit: Toolkit, tag: str = "v1.2.3") -> tuple[str, dict[str, Any]]:
    digest = world.push_image(tag)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    return digest, handle_push(EcrImageActionEvent(event), kit)


def push_again(world: World, kit: Toolkit, digest: str, tag: str = "v1.2.3") -> dict[str, Any]:
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    return handle_push(EcrImageActionEvent(event), kit)


@pytest.mark.parametrize("value", ["true", "on", "1", "yes"])
def test_parameter_on_makes_the_redeploy_dry(world: World, slack: SlackStub, value: str) -> None:
    world.set_dry_run(value)

    _, result = push(world, make_kit(world))

    assert result["status"] == "dry-run"
    assert f"dry-run parameter {world.dry_run_parameter} is {value!r}" in result["reason"]
    assert world.revisions() == 1
    assert world.site_image().endswith(":bootstrap")
    assert "[dry run] would deploy v1.2.3" in slack.texts()[0]
    assert world.dry_run_parameter in slack.texts()[0]


@pytest.mark.parametrize("value", ["false", "off", "0", "no"])
def test_parameter_off_lets_the_redeploy_act(world: World, slack: SlackStub, value: str) -> None:
    world.set_dry_run(value)

    assert push(world, make_kit(world))[1]["status"] == "deploying"
    assert world.revisions() == 2


@pytest.mark.parametrize("value", ["maybe", "disabled", "dry"])
def test_unrecognised_value_fails_safe(world: World, slack: SlackStub, value: str) -> None:
    world.set_dry_run(value)

    _, result = push(world, make_kit(world))

    assert result["status"] == "dry-run"
    assert "failing safe" in result["reason"]
    assert world.revisions() == 1


def test_missing_parameter_fails_safe(world: World, slack: SlackStub) -> None:
    world.clients.ssm.delete_parameter(Name=world.dry_run_parameter)

    _, result = push(world, make_kit(world))

    assert result["status"] == "dry-run"
    assert f"{world.dry_run_parameter} does not exist; failing safe" in result["reason"]
    assert world.revisions() == 1


class _DeniedSsm:
    """The moto SSM client, except that the dry-run parameter may not be read."""

    def __init__(self, real: Any, denied: str) -> None:
        self._real = real
        self._denied = denied

    def get_parameter(self, **kwargs: Any) -> Any:
        if kwargs["Name"] == self._denied:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                "GetParameter",
            )
        return self._real.get_parameter(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_unreadable_parameter_fails_safe(world: World, slack: SlackStub) -> None:
    kit = make_kit(world)
    s = kit.settings
    controls = Controls(
        ssm=_DeniedSsm(world.clients.ssm, world.dry_run_parameter),
        secretsmanager=world.clients.secretsmanager,
        kill_switch_parameter=s.kill_switch_parameter,
        kill_switch_cache_seconds=s.kill_switch_cache_seconds,
        dry_run=s.dry_run,
        dry_run_parameter=s.dry_run_parameter,
        webhook_secret_name=s.slack_webhook_secret_name,
        secret_cache_seconds=s.secret_cache_seconds,
        stage=s.stage,
    )

    _, result = push(world, dataclasses.replace(kit, controls=controls))

    assert result["status"] == "dry-run"
    assert "is unreadable (AccessDeniedException); failing safe" in result["reason"]
    assert world.revisions() == 1


@pytest.mark.parametrize("value", ["false", "off"])
def test_env_dry_run_forces_it_whatever_the_parameter_says(
    world: World, slack: SlackStub, value: str
) -> None:
    world.set_dry_run(value)

    _, result = push(world, make_kit(world, DRY_RUN="true"))

    assert result["status"] == "dry-run"
    assert result["reason"].startswith("dry run: DRY_RUN is true (set at deploy)")
    assert world.revisions() == 1


def test_without_a_parameter_only_the_env_decides(world: World, slack: SlackStub) -> None:
    world.set_dry_run("on")  # present but not named in the settings: ignored

    assert push(world, make_kit(world, DRY_RUN_PARAMETER=""))[1]["status"] == "deploying"


def test_switch_flips_without_a_deploy(world: World, slack: SlackStub) -> None:
    kit = make_kit(world)  # one container, kept across invocations (cache 0 in the tests)
    world.set_dry_run("on")
    digest, first = push(world, kit)
    assert first["status"] == "dry-run"

    world.set_dry_run("off")
    second = push_again(world, kit, digest)

    assert second["status"] == "deploying"  # a dry run is not remembered as done
    assert world.site_image() == f"{world.repository_uri}@{digest}"


def test_reconcile_obeys_the_parameter_too(world: World, slack: SlackStub) -> None:
    world.push_image("v4.0.0")
    scheduled = ScheduledEvent(load_event("scheduledEvent"))
    kit = make_kit(world)
    world.set_dry_run("on")

    held = reconcile(scheduled, kit)
    world.set_dry_run("off")
    done = reconcile(scheduled, kit)

    assert held["status"] == "dry-run"
    assert done["status"] == "deploying"
    assert world.revisions() == 2
