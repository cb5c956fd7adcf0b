"""Issue 22, item 8: a Spot placement failure shifts capacity during a deployment too.

A Fargate Spot shortage stalls a deployment (the tasks it cannot place never trip the
circuit breaker, and CANARY/LINEAR have none), so the shift may not wait for the deployment
to end. The redeploy job holds the service lock for its deployment until ECS reports: the
shift shares that lock (it never takes it from the redeploy job), starts the deployment
that goes on on on-demand FARGATE (``UpdateService`` with the strategy and
``forceNewDeployment``), hands the redeploy job's record over to it, and leaves the lock held
for it; that deployment's outcome event settles the record and frees the lock. Every other
limit holds: dry run, kill switch, cooldown, budget, and a lock of anyone else.

In-process against moto, Slack on 127.0.0.1, a fake clock (the fixtures of
``test_alarm_action``).
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.ecs.models import ecs_backends

from chalicelib.alarms.facts import RemediationRecords
from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent
from chalicelib.redeploy.flow import handle_push
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_alarm_action import (
    ON_DEMAND,
    Clock,
    all_text,
    kit_for,
    run,
    titles,
)
from tests.support.alarms import (
    SPOT_STRATEGY,
    placement_failure,
    prepare_service,
    spot_interruption,
)
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, World
from tests.support.slack_stub import SlackStub

# Several jobs run in one test process; in Lambda each invocation is one job.
pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(world: World) -> World:
    """2 tasks on a Fargate Spot strategy, autoscaling 2-4 (as in ``test_alarm_action``)."""
    prepare_service(
        world.clients.ecs,
        world.clients.autoscaling,
        cluster=world.cluster,
        service=world.service,
        desired=2,
        max_tasks=4,
    )
    return world


@pytest.fixture
def kit(site: World, clock: Clock) -> Toolkit:
    return kit_for(site, clock)


def _ecs_service(world: World) -> Any:
    return ecs_backends[ACCOUNT][REGION].services[f"{world.cluster}:{world.service}"]


def pushed_and_rolling(world: World, kit: Toolkit) -> str:
    """The redeploy job deploys v2.0.0 (its lock, held for its deployment, and its record),
    and ECS is still rolling it out: the Spot tasks it needs cannot be placed. The id of the
    deployment."""
    digest = world.push_image("v2.0.0")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v2.0.0")
    started = handle_push(EcrImageActionEvent(event), kit)
    assert started["status"] == "deploying", started
    deployment = str(started["deployment_id"])
    primary = _ecs_service(world).deployments[0]
    assert primary["id"] == deployment
    primary["rolloutState"] = "IN_PROGRESS"  # moto completes nothing on its own
    lock = kit.ledger.read_lock(kit.settings.service_key)
    assert lock is not None
    assert (lock.action, lock.deployment_id) == ("redeploy", deployment)
    return deployment


def outcome(name: str, deployment_id: str) -> EcsDeploymentStateChangeEvent:
    event = load_event(name)
    event["detail"]["deploymentId"] = deployment_id
    event["id"] = f"outcome-{deployment_id}"
    return EcsDeploymentStateChangeEvent(event)


def budget(kit: Toolkit) -> int:
    return kit.ledger.budget_used(f"remediation:{kit.settings.service_key}")


def test_a_spot_placement_failure_during_a_deployment_shifts_and_the_deployment_goes_on(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    stalled = pushed_and_rolling(site, kit)
    posted = len(slack.bodies)

    result = run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)

    # The verdict, and the action: one UpdateService to on-demand FARGATE, a new deployment.
    assert result["status"] == "acted", result
    assert "during the deployment in progress (ECS is rolling out" in result["reason"]
    desc = site.service_desc()
    assert desc["capacityProviderStrategy"] == ON_DEMAND
    successor = desc["deployments"][0]["id"]
    assert successor != stalled  # forceNewDeployment: the deployment goes on as a new one
    assert f"deployment {stalled} goes on as {successor}" in result["reason"]
    # The redeploy job's record follows the deployment; the lock stays the redeploy job's,
    # now held for the new deployment, with no guest left in it.
    record = kit.ledger.read_deployment(svc)
    assert record is not None
    assert (record.deployment_id, record.status) == (successor, "IN_PROGRESS")
    assert record.superseded_id == stalled
    lock = kit.ledger.read_lock(svc)
    assert lock is not None
    assert lock.action == "redeploy"
    assert lock.deployment_id == successor
    assert lock.guest is None
    # Within the limits: the budget counted once, the cooldown started, the way back kept.
    assert budget(kit) == 1
    assert kit.ledger.cooldown_remaining(svc, "remediation:spot-placement-failure") == 1800
    shift = RemediationRecords(kit.dynamodb, site.ledger_table).shift(svc)
    assert shift is not None
    assert [i.as_dict() for i in shift.original] == [
        {"capacityProvider": i["capacityProvider"], "weight": i["weight"], "base": i["base"]}
        for i in SPOT_STRATEGY
    ]
    # Reported: the alert, then the follow-up that says it acted during the deployment.
    assert titles(slack)[posted:] == [
        ":no_entry_sign: Task placement failed: servicetest",
        ":wrench: Remediation: capacity-shift for Spot placement failure of servicetest",
    ]
    follow_up = all_text(slack.bodies[-1])
    assert "during the deployment in progress" in follow_up
    assert "during a deployment too" in follow_up

    # The new deployment's outcome event settles the redeploy job's record and frees the lock.
    done = handle_deployment_state(outcome("ecsDeploymentStateChangeCompleted", successor), kit)
    assert done["status"] == "succeeded", done
    assert kit.ledger.read_lock(svc) is None
    settled = kit.ledger.read_deployment(svc)
    assert settled is not None
    assert settled.status == "COMPLETED"


def test_during_a_deployment_the_shift_still_honours_dry_run(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    stalled = pushed_and_rolling(site, kit)
    site.set_dry_run("true")

    result = run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)

    assert result["status"] == "dry-run", result
    assert "would shift servicetest to on-demand FARGATE" in result["reason"]
    assert "during the deployment in progress" in result["reason"]
    assert site.service_desc()["capacityProviderStrategy"] == SPOT_STRATEGY
    assert site.service_desc()["deployments"][0]["id"] == stalled
    assert budget(kit) == 0
    lock = kit.ledger.read_lock(svc)
    assert lock is not None
    assert (lock.deployment_id, lock.guest is not None) == (stalled, False)
    assert titles(slack)[-1].startswith(":test_tube: [dry run] capacity-shift")


@pytest.mark.parametrize("limit", ["kill-switch", "cooldown", "budget"])
def test_during_a_deployment_the_shift_stays_within_its_limits(
    site: World, clock: Clock, slack: SlackStub, limit: str
) -> None:
    kit = kit_for(site, clock, REMEDIATION_MAX_PER_HOUR="1")
    svc = kit.settings.service_key
    stalled = pushed_and_rolling(site, kit)
    if limit == "kill-switch":
        site.set_kill_switch("on")
    elif limit == "cooldown":
        kit.ledger.start_cooldown(svc, "remediation:spot-placement-failure", 600)
    else:
        assert kit.ledger.consume_budget(f"remediation:{svc}", 1)

    result = run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)

    assert result["status"] == limit, result
    assert site.service_desc()["capacityProviderStrategy"] == SPOT_STRATEGY
    assert site.service_desc()["deployments"][0]["id"] == stalled
    lock = kit.ledger.read_lock(svc)
    assert lock is not None
    assert (lock.action, lock.deployment_id, lock.guest is not None) == (
        "redeploy",
        stalled,
        False,
    )
    record = kit.ledger.read_deployment(svc)
    assert record is not None
    assert record.deployment_id == stalled


def test_a_lock_not_held_for_the_deployment_is_never_shared(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    """A chaos kill (or another remediation) holds the lock during a deployment ECS runs on
    its own (CloudFormation, the console): the shift waits for it, as before."""
    svc = kit.settings.service_key
    _ecs_service(site).deployments[0]["rolloutState"] = "IN_PROGRESS"
    chaos = kit.ledger.acquire_lock(svc, holder="chaos:run-1", action="chaos", ttl_seconds=900)
    assert chaos.acquired

    result = run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)

    assert result["status"] == "locked", result
    assert "locked by chaos (chaos:run-1)" in result["reason"]
    assert site.service_desc()["capacityProviderStrategy"] == SPOT_STRATEGY
    lock = kit.ledger.read_lock(svc)
    assert lock is not None
    assert (lock.holder, lock.guest is not None) == ("chaos:run-1", False)


def test_a_deployment_ecs_runs_on_its_own_takes_the_free_lock_and_releases_it(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    _ecs_service(site).deployments[0]["rolloutState"] = "IN_PROGRESS"

    result = run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)

    assert result["status"] == "acted", result
    assert site.service_desc()["capacityProviderStrategy"] == ON_DEMAND
    assert kit.ledger.read_lock(svc) is None
    assert kit.ledger.read_deployment(svc) is None  # the toolkit's records are not invented


def test_spot_interruptions_still_wait_for_the_deployment(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    """Interruptions replace tasks and stall nothing: that shift waits, as every other rule."""
    stalled = pushed_and_rolling(site, kit)
    statuses = []
    for n in range(3):
        clock.advance(60)
        event = spot_interruption(site.cluster, site.service, f"task{n}", at=clock())
        statuses.append(run(kit, event, clock)["status"])
    assert statuses == ["noticed", "noticed", "deployment-in-progress"]
    assert site.service_desc()["capacityProviderStrategy"] == SPOT_STRATEGY
    assert site.service_desc()["deployments"][0]["id"] == stalled


def test_the_lock_of_a_deployment_has_one_guest_at_a_time_and_keeps_its_holder(
    kit: Toolkit, clock: Clock
) -> None:
    """Two placement failures at once (two events, two invocations): one shift."""
    svc = kit.settings.service_key
    ledger = kit.ledger
    held = ledger.acquire_lock(
        svc, holder="redeploy:sha256:ab", action="redeploy", ttl_seconds=3600
    )
    assert held.acquired
    # Before its UpdateService the redeploy job's lock has no deployment: never shared.
    first = "remediation:spot-placement-failure:p-1"
    early = ledger.share_lock(svc, guest=first, deployment_id="ecs-svc/1", ttl_seconds=300)
    assert not early.acquired
    ledger.update_lock(svc, "redeploy:sha256:ab", {"deployment_id": "ecs-svc/1"})

    shared = ledger.share_lock(svc, guest=first, deployment_id="ecs-svc/1", ttl_seconds=300)
    assert shared.acquired
    assert not shared.retaken
    ledger.update_share(svc, first, {"budget_taken": True})
    twin = "remediation:spot-placement-failure:p-2"
    refused = ledger.share_lock(svc, guest=twin, deployment_id="ecs-svc/1", ttl_seconds=300)
    assert not refused.acquired
    assert refused.lock.guest.holder == first
    # A retry of the same work re-shares it and finds what it recorded.
    again = ledger.share_lock(svc, guest=first, deployment_id="ecs-svc/1", ttl_seconds=300)
    assert again.retaken
    assert again.lock.guest.budget_taken is True
    # Nobody else takes the lock meanwhile.
    assert not ledger.acquire_lock(svc, holder="chaos:1", action="chaos", ttl_seconds=60).acquired

    assert ledger.end_share(svc, guest=first, deployment_id="ecs-svc/2")
    lock = ledger.read_lock(svc)
    assert lock is not None
    assert (lock.holder, lock.deployment_id, lock.guest is not None) == (
        "redeploy:sha256:ab",
        "ecs-svc/2",
        False,
    )
    # A guest that crashed is gone after its own few minutes; the holder's hour is untouched.
    assert ledger.share_lock(svc, guest=first, deployment_id="ecs-svc/2", ttl_seconds=300).acquired
    assert not ledger.share_lock(
        svc, guest=twin, deployment_id="ecs-svc/2", ttl_seconds=300
    ).acquired
    clock.advance(301)
    assert ledger.share_lock(svc, guest=twin, deployment_id="ecs-svc/2", ttl_seconds=300).acquired
    assert ledger.read_lock(svc) is not None
