"""Inputs AWS would refuse mid-creation, refused before any change set, with the values that
would do."""

from __future__ import annotations

from pathlib import Path

import pytest

from spotops.checks import changed_immutable, fargate_memory_choices, stage_problems
from spotops.config import STACKS, StageConfig
from spotops.deploy import check_immutable, plan_stacks
from spotops.errors import ParameterError
from spotops.stacks import StackInfo

ROOT = Path(__file__).resolve().parents[3]


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
