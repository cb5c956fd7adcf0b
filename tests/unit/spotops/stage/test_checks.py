"""Inputs AWS would refuse mid-creation, refused before any change set, with the values that
would do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spotops.errors import ParameterError
from spotops.stage.checks import changed_immutable, fargate_memory_choices, stage_problems
from spotops.stage.config import STACKS, StageConfig
from spotops.stage.deploy import check_immutable, plan_stacks
from spotops.stage.stacks import StackInfo

ROOT = Path(__file__).resolve().parents[4]


def _config(**parameters: str) -> StageConfig:
    return StageConfig("dev", {"AppName": "spotops", "StageName": "dev", **parameters})


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (256, [512, 1024, 2048]),
        (512, [1024, 2048, 3072, 4096]),
        (4096, list(range(8192, 30721, 1024))),
    ],
)
def test_fargate_offers_these_memory_sizes(cpu, expected):
    assert fargate_memory_choices(cpu) == expected


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"TaskCpu": "256", "TaskMemory": "1536"}, "TaskMemory must be 512, 1024, 2048"),
        ({"TaskCpu": "1024", "TaskMemory": "1024"}, "2048 to 8192 in steps of 1024"),
        ({"TaskCpu": "300", "TaskMemory": "512"}, "TaskCpu 300 is not a Fargate size"),
        ({"MinTasks": "4", "MaxTasks": "2"}, "MinTasks 4 is more than MaxTasks 2"),
    ],
)
def test_what_fargate_or_autoscaling_would_refuse_is_named_with_the_fix(values, says):
    (problem,) = stage_problems(values)
    assert says in problem


def test_good_values_have_no_problem():
    assert (
        stage_problems({"TaskCpu": "512", "TaskMemory": "2048", "MinTasks": "2", "MaxTasks": "2"})
        == []
    )


def test_planning_refuses_a_rule_the_emulator_would_ignore():
    with pytest.raises(
        ParameterError, match="OnDemandWeight and SpotWeight must not both be 0"
    ) as caught:
        plan_stacks(ROOT, STACKS, _config(SpotWeight="0", OnDemandWeight="0"))
    assert caught.value.exit_code == 2


def test_planning_refuses_a_task_size_fargate_does_not_offer():
    with pytest.raises(
        ParameterError, match="Fargate does not offer TaskMemory 512 with TaskCpu 1024"
    ):
        plan_stacks(ROOT, STACKS, _config(TaskCpu="1024", TaskMemory="512"))


def test_a_live_stack_keeps_its_fixed_parameters():
    (network, *_rest) = plan_stacks(ROOT, STACKS, _config())
    deployed = StackInfo(
        network.name, "UPDATE_COMPLETE", {}, {"ZoneCount": "3", "VpcCidr": "10.0.0.0/16"}
    )

    with pytest.raises(ParameterError, match="ZoneCount of spotops-dev-network is '3'") as caught:
        check_immutable(network, deployed, {"ZoneCount": "2"})
    assert "destroy the stage" in str(caught.value)
    check_immutable(network, deployed, {"ZoneCount": "3", "NatMode": "single"})  # may change
    check_immutable(network, None, {"ZoneCount": "2"})  # a new stack takes anything


def test_a_stack_deployed_before_a_fixed_parameter_existed_runs_as_its_default():
    (network, *_rest) = plan_stacks(ROOT, STACKS, _config())
    before = StackInfo(network.name, "UPDATE_COMPLETE", {}, {"NatMode": "none"})  # 3 zones

    with pytest.raises(ParameterError, match="keep the deployed value in config"):
        check_immutable(network, before, {"ZoneCount": "2"})


def test_an_unchanged_default_is_no_change():
    assert (
        changed_immutable("s", ("VpcCidr",), {"VpcCidr": "10.0.0.0/16"}, {"VpcCidr": "10.0.0.0/16"})
        == []
    )


# ---- changes a live stack may not make (Metadata.spotops.frozen-conditions) ----------


def _site_plan():
    return next(plan for plan in plan_stacks(ROOT, STACKS, _config()) if plan.spec.part == "site")


def _live(plan, **parameters: str) -> StackInfo:
    return StackInfo(plan.name, "UPDATE_COMPLETE", {}, parameters)


@pytest.mark.parametrize("deployed", ["CANARY", "LINEAR"])
def test_a_live_traffic_shifting_site_cannot_go_back_to_rolling(deployed):
    site = _site_plan()

    with pytest.raises(ParameterError) as caught:
        check_immutable(site, _live(site, DeploymentStrategy=deployed), {})  # default ROLLING
    message = str(caught.value)
    assert f"DeploymentStrategy {deployed!r} -> 'ROLLING' on live stack spotops-dev-site" in message
    assert "alternate target group" in message
    assert "before any change set" in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("deployed", "asked"),
    [
        ({"DeploymentStrategy": "CANARY"}, {"DeploymentStrategy": "LINEAR"}),
        ({"DeploymentStrategy": "LINEAR"}, {"DeploymentStrategy": "CANARY", "CanaryPercent": "5"}),
        ({"DeploymentStrategy": "ROLLING"}, {"DeploymentStrategy": "CANARY"}),
        # Deployed before DeploymentStrategy existed: it runs as ROLLING did.
        ({"NatMode": "none"}, {"DeploymentStrategy": "LINEAR"}),
        # Without traffic shifting the domain may come and go as before.
        ({"DeploymentStrategy": "ROLLING"}, {"DomainName": "www.example.com"}),
    ],
)
def test_changes_that_keep_the_listener_rules_are_allowed(deployed, asked):
    site = _site_plan()
    check_immutable(site, _live(site, **deployed), asked)


def test_a_new_stack_may_start_with_any_strategy():
    site = _site_plan()
    check_immutable(site, None, {"DeploymentStrategy": "ROLLING"})


def test_a_live_traffic_shifting_site_keeps_its_domain_setting():
    site = _site_plan()
    live = _live(site, DeploymentStrategy="CANARY")

    with pytest.raises(ParameterError, match=r"DomainName '' -> 'www\.example\.com'"):
        check_immutable(
            site,
            live,
            {
                "DeploymentStrategy": "CANARY",
                "DomainName": "www.example.com",
                "HostedZoneId": "Z0123456789ABC",
            },
        )


def test_frozen_conditions_are_read_from_the_template_and_checked():
    from spotops.errors import ConfigError
    from spotops.stage.templates import FrozenCondition, frozen_conditions

    rules = frozen_conditions(_site_plan().template)
    assert all(isinstance(rule, FrozenCondition) for rule in rules)
    assert {(rule.while_, rule.keep) for rule in rules} == {
        ("IsTrafficShifting", ("IsTrafficShifting",)),
        ("IsTrafficShifting", ("HasDomain",)),
    }
    broken = {"Conditions": {"A": {"Fn::Equals": ["1", "1"]}}}
    with pytest.raises(ConfigError, match="needs while, keep and reason"):
        frozen_conditions(
            {**broken, "Metadata": {"spotops": {"frozen-conditions": [{"while": "A"}]}}}
        )
    with pytest.raises(ConfigError, match="undefined conditions: B"):
        frozen_conditions(
            {
                **broken,
                "Metadata": {
                    "spotops": {"frozen-conditions": [{"while": "A", "keep": ["B"], "reason": "r"}]}
                },
            }
        )


def test_a_frozen_condition_names_every_parameter_that_turns_it():
    from spotops.stage.checks import changed_frozen_conditions

    template = {
        "Parameters": {"Mode": {"Type": "String", "Default": "a"}, "Extra": {"Default": "x"}},
        "Conditions": {
            "IsB": {"Fn::Equals": [{"Ref": "Mode"}, "b"]},
            "IsBOrX": {"Fn::Or": [{"Condition": "IsB"}, {"Fn::Equals": [{"Ref": "Extra"}, "y"]}]},
        },
        "Metadata": {
            "spotops": {
                "frozen-conditions": [{"while": "IsBOrX", "keep": ["IsBOrX"], "reason": "Why."}]
            }
        },
    }
    assert changed_frozen_conditions("s", template, {"Mode": "b"}, {"Mode": "a"}) == [
        "Mode 'b' -> 'a' on live stack s: Why."
    ]
    assert changed_frozen_conditions("s", template, {"Mode": "b"}, {"Extra": "y"}) == []
    assert changed_frozen_conditions("s", template, {"Mode": "a"}, {"Mode": "b"}) == []


# ---- parameters a live stack keeps while traffic shifts (frozen-parameters) -----------


def _frozen_while_traffic_shifts() -> tuple[str, ...]:
    from spotops.stage.templates import frozen_parameters

    return tuple(
        name
        for rule in frozen_parameters(_site_plan().template)
        if rule.while_ == "IsTrafficShifting"
        for name in rule.parameters
    )


# A value each frozen parameter's template constraints accept, other than its default.
OTHER_VALUE = {"ContainerPort": "8081"}


def test_every_frozen_parameter_has_a_test_value():
    assert set(_frozen_while_traffic_shifts()) == set(OTHER_VALUE)


@pytest.mark.parametrize("strategy", ["CANARY", "LINEAR"])
@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_a_frozen_parameter_is_refused_on_a_live_traffic_shifting_site(name, strategy):
    site = _site_plan()
    deployed = site.declared[name].default
    asked = OTHER_VALUE[name]
    assert site.declared[name].problem(asked) is None  # fine on a new stack

    with pytest.raises(ParameterError) as caught:
        check_immutable(
            site,
            _live(site, DeploymentStrategy=strategy),
            {"DeploymentStrategy": strategy, name: asked},
        )
    message = str(caught.value)
    assert f"{name} {deployed!r} -> {asked!r} on live stack spotops-dev-site" in message
    assert "target group" in message
    assert "before any change set" in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_the_same_change_passes_on_a_rolling_site_and_on_a_new_stack(name):
    site = _site_plan()
    asked = {name: OTHER_VALUE[name]}

    check_immutable(site, _live(site, DeploymentStrategy="ROLLING"), asked)
    check_immutable(site, None, {"DeploymentStrategy": "CANARY", **asked})


def test_a_frozen_parameter_kept_at_its_deployed_value_passes():
    site = _site_plan()
    live = _live(site, DeploymentStrategy="CANARY", ContainerPort="9000")

    check_immutable(site, live, {"DeploymentStrategy": "LINEAR", "ContainerPort": "9000"})
    with pytest.raises(ParameterError, match=r"ContainerPort '9000' -> '8080'"):
        check_immutable(site, live, {"DeploymentStrategy": "CANARY"})  # back to the default


def test_frozen_parameters_are_read_from_the_template_and_checked():
    from spotops.errors import ConfigError
    from spotops.stage.checks import changed_frozen_parameters
    from spotops.stage.templates import frozen_parameters

    template: dict[str, Any] = {
        "Parameters": {"Mode": {"Default": "a"}, "Port": {"Default": "1"}},
        "Conditions": {"IsB": {"Fn::Equals": [{"Ref": "Mode"}, "b"]}},
        "Metadata": {
            "spotops": {
                "frozen-parameters": [{"while": "IsB", "parameters": ["Port"], "reason": "Why."}]
            }
        },
    }
    assert changed_frozen_parameters("s", template, {"Mode": "b", "Port": "1"}, {"Port": "2"}) == [
        "Port '1' -> '2' on live stack s: Why."
    ]
    assert changed_frozen_parameters("s", template, {"Mode": "a", "Port": "1"}, {"Port": "2"}) == []
    assert changed_frozen_parameters("s", template, {"Mode": "b", "Port": "1"}, {"Port": "1"}) == []

    def broken(entry: dict[str, Any]) -> dict[str, Any]:
        return {**template, "Metadata": {"spotops": {"frozen-parameters": [entry]}}}

    with pytest.raises(ConfigError, match="needs while, parameters and reason"):
        frozen_parameters(broken({"while": "IsB", "parameters": ["Port"]}))
    with pytest.raises(ConfigError, match="undefined condition: IsC"):
        frozen_parameters(broken({"while": "IsC", "parameters": ["Port"], "reason": "r"}))
    with pytest.raises(ConfigError, match="undeclared parameters: Nope"):
        frozen_parameters(broken({"while": "IsB", "parameters": ["Nope"], "reason": "r"}))
