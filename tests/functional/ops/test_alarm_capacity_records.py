"""Issue 22, item 10 (the alarm function's part): a placement failure whose event names no
capacity provider, and the capacity-shift record that expired while the service was shifted.

In-process against moto, Slack on 127.0.0.1, a fake clock (the helpers of
``test_alarm_action``).
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.alarms.facts import RemediationRecords
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_alarm_action import (
    ON_DEMAND,
    Clock,
    all_text,
    kit_for,
    run,
    titles,
)
from tests.support.alarms import SPOT_STRATEGY, placement_failure, prepare_service, scheduled
from tests.support.ops_world import World
from tests.support.slack_stub import SlackStub


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


def unnamed_placement_failure(site: World, at: float, event_id: str = "p-1") -> dict[str, Any]:
    """ECS's placement failure event without ``capacityProviderArns``."""
    event = placement_failure(site.cluster, site.service, at=at, event_id=event_id)
    del event["detail"]["capacityProviderArns"]
    return event


def shift_item(kit: Toolkit, site: World) -> dict[str, Any] | None:
    key = {"pk": {"S": f"CAPACITY#{kit.settings.service_key}"}, "sk": {"S": "SHIFT"}}
    found = kit.dynamodb.get_item(TableName=site.ledger_table, Key=key, ConsistentRead=True)
    return found.get("Item")


def strategy(site: World) -> list[dict[str, Any]]:
    return list(site.service_desc()["capacityProviderStrategy"])


# ---- (a) a placement failure without capacityProviderArns ----------------------------------


def test_a_placement_failure_naming_no_provider_on_a_spot_service_shifts(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    result = run(kit, unnamed_placement_failure(site, clock()), clock)

    assert result["status"] == "acted", result
    assert result["on_spot"] is True
    assert strategy(site) == ON_DEMAND  # the UpdateService of the shift
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 1
    assert titles(slack) == [
        ":no_entry_sign: Task placement failed: servicetest",
        ":wrench: Remediation: capacity-shift for Spot placement failure of servicetest",
    ]
    notice = all_text(slack.bodies[0])
    assert "not named in the event; the service's strategy: FARGATE weight 0, FARGATE_SPOT" in (
        notice
    )


def test_a_placement_failure_naming_no_provider_on_an_on_demand_service_is_only_alerted(
    world: World, clock: Clock, slack: SlackStub
) -> None:
    on_demand = [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}]
    prepare_service(
        world.clients.ecs, None, cluster=world.cluster, service=world.service, strategy=on_demand
    )
    kit = kit_for(world, clock)

    result = run(kit, unnamed_placement_failure(world, clock()), clock)

    assert result["status"] == "alerted", result
    assert strategy(world) == on_demand
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 0
    assert titles(slack) == [":no_entry_sign: Task placement failed: servicetest"]
    assert "not a Spot shortage" in all_text(slack.bodies[0])


# ---- (b) the record of a shift in force never expires; a lost one is found ----------------


def test_the_record_of_a_shift_in_force_has_no_expiry(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    assert run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)["status"] == (
        "acted"
    )
    item = shift_item(kit, site)
    assert item is not None
    assert "ttl" not in item  # DynamoDB's TTL would delete it, stranding the service


def test_a_shift_recorded_with_an_expiry_loses_it_at_the_next_capacity_check(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    """A shift recorded before the fix (ttl = shifted_at + 30 days), still in force."""
    run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)
    key = {"pk": {"S": f"CAPACITY#{kit.settings.service_key}"}, "sk": {"S": "SHIFT"}}
    kit.dynamodb.update_item(
        TableName=site.ledger_table,
        Key=key,
        UpdateExpression="SET #t = :t",
        ExpressionAttributeNames={"#t": "ttl"},
        ExpressionAttributeValues={":t": {"N": str(int(clock()) + 30 * 86400)}},
    )
    clock.advance(15 * 60)

    assert run(kit, scheduled("check-1"), clock)["status"] == "waiting"

    item = shift_item(kit, site)
    assert item is not None
    assert "ttl" not in item
    assert strategy(site) == ON_DEMAND


def test_a_service_found_shifted_without_a_record_is_reported_and_returned_to_spot(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)
    assert strategy(site) == ON_DEMAND
    # 30 days later DynamoDB's TTL deleted the record (as it did before the fix).
    clock.advance(30 * 86400)
    kit.dynamodb.delete_item(
        TableName=site.ledger_table,
        Key={"pk": {"S": f"CAPACITY#{svc}"}, "sk": {"S": "SHIFT"}},
    )
    posted = len(slack.bodies)

    found = run(kit, scheduled("check-1"), clock)

    assert found["status"] == "adopted", found
    assert "with no shift on record" in found["reason"]
    assert titles(slack)[posted:] == [
        ":mag: On-demand with no shift on record: servicetest",
    ]
    shift = RemediationRecords(kit.dynamodb, site.ledger_table).shift(svc)
    assert shift is not None
    assert shift.trigger == "found-shifted"
    assert [i.as_dict() for i in shift.original] == [
        {"capacityProvider": i["capacityProvider"], "weight": i["weight"], "base": i["base"]}
        for i in SPOT_STRATEGY
    ]
    # The next checks wait out the quiet period (and post nothing), then return to Spot,
    # within the return's limits: one UpdateService, the budget counted, the record gone.
    clock.advance(15 * 60)
    assert run(kit, scheduled("check-2"), clock)["status"] == "waiting"
    assert len(slack.bodies) == posted + 1
    clock.advance(46 * 60)
    back = run(kit, scheduled("check-3"), clock)
    assert back["status"] == "acted", back
    assert strategy(site) == SPOT_STRATEGY
    assert titles(slack)[-1].startswith(":wrench: Remediation: capacity-return")
    assert RemediationRecords(kit.dynamodb, site.ledger_table).shift(svc) is None
    assert kit.ledger.read_lock(svc) is None
    assert run(kit, scheduled("check-4"), clock)["status"] == "not-shifted"


def test_a_found_shift_is_returned_only_within_the_limits(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)
    clock.advance(30 * 86400)
    kit.dynamodb.delete_item(
        TableName=site.ledger_table,
        Key={"pk": {"S": f"CAPACITY#{svc}"}, "sk": {"S": "SHIFT"}},
    )
    assert run(kit, scheduled("check-1"), clock)["status"] == "adopted"
    site.set_kill_switch("on")
    clock.advance(61 * 60)

    held = run(kit, scheduled("check-2"), clock)

    assert held["status"] == "kill-switch", held
    assert strategy(site) == ON_DEMAND


def test_on_demand_with_no_spot_strategy_known_is_reported_once_a_week_and_left_alone(
    world: World, clock: Clock, slack: SlackStub
) -> None:
    prepare_service(
        world.clients.ecs, None, cluster=world.cluster, service=world.service, strategy=ON_DEMAND
    )
    kit = kit_for(world, clock)

    first = run(kit, scheduled("check-1"), clock)
    clock.advance(15 * 60)
    second = run(kit, scheduled("check-2"), clock)

    assert (first["status"], second["status"]) == ("on-demand-unknown", "on-demand-unknown")
    assert "no Spot strategy known to return to" in first["reason"]
    assert titles(slack) == [":grey_question: On-demand, no Spot strategy known: servicetest"]
    assert strategy(world) == ON_DEMAND
    assert (
        RemediationRecords(kit.dynamodb, world.ledger_table).shift(kit.settings.service_key) is None
    )


def test_a_strategy_an_operator_chose_is_not_taken_for_a_shift(
    world: World, clock: Clock, slack: SlackStub
) -> None:
    """On-demand by the site's parameters (SpotWeight 0 keeps FARGATE_SPOT in the strategy)."""
    chosen = [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
        {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 0},
    ]
    prepare_service(
        world.clients.ecs, None, cluster=world.cluster, service=world.service, strategy=chosen
    )
    kit = kit_for(world, clock)
    assert run(kit, scheduled(), clock)["status"] == "not-shifted"
    assert slack.bodies == []
    assert strategy(world) == chosen
