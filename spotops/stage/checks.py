"""Checks of a stage's inputs that CloudFormation would only make mid-creation, or that the
local emulator never makes, run before any change set: Fargate CPU/memory pairs, the
autoscaling range, the templates' Rules, and parameters a live stack cannot change (fixed
ones, and changes a template's ``frozen-conditions`` and ``frozen-parameters`` forbid).

Each problem names the parameter, the value and the values that would do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from spotops.errors import ParameterError
from spotops.stage.templates import TemplateLogic, frozen_conditions, frozen_parameters

# Fargate's task sizes: CPU units -> (smallest, largest, step) memory in MiB.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
FARGATE_MEMORY: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),  # 512, 1024, 2048 (1536 is not offered)
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


# Counts of tasks and CPU/memory units: CloudFormation's Number type takes 1.5, and ECS then
# refuses it mid-creation (or the file and --param would be rounded differently), so a
# fraction is refused up front wherever it comes from.
WHOLE_NUMBERS = (
    "DesiredCount",
    "MinTasks",
    "MaxTasks",
    "OnDemandBase",
    "OnDemandWeight",
    "SpotWeight",
    "TaskCpu",
    "TaskMemory",
)


def fractional_counts(values: Mapping[str, str]) -> list[str]:
    """One sentence per count in ``values`` that is a number but not a whole one.

    Example
    -------
    >>> fractional_counts({"DesiredCount": "1.5", "MinTasks": "2"})
    ["DesiredCount '1.5' is not a whole number: it counts tasks or units (e.g. 1 or 2)"]
    """
    problems = []
    for name in WHOLE_NUMBERS:
        raw = values.get(name, "").strip()
        try:
            number = float(raw)
        except ValueError:
            continue  # not a number at all: the template's own type check names it
        if not number.is_integer() or not re.fullmatch(r"-?\d+", raw):
            low = int(number // 1)
            fix = f"write {low}" if number.is_integer() else f"e.g. {low} or {low + 1}"
            problems.append(
                f"{name} {raw!r} is not a whole number: it counts tasks or units ({fix})"
            )
    return problems


def fargate_memory_choices(cpu: int) -> list[int]:
    """The memory sizes (MiB) Fargate offers with ``cpu`` units.

    Example
    -------
    >>> fargate_memory_choices(256)
    [512, 1024, 2048]
    """
    if cpu not in FARGATE_MEMORY:
        return []
    low, high, step = FARGATE_MEMORY[cpu]
    choices = list(range(low, high + 1, step))
    return [m for m in choices if cpu != 256 or m != 1536]


def _describe_choices(values: list[int]) -> str:
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    step = values[1] - values[0]
    return f"{values[0]} to {values[-1]} in steps of {step}"


def _as_int(values: Mapping[str, str], name: str) -> int | None:
    raw = values.get(name, "").strip()
    try:
        return int(raw)
    except ValueError:
        return None  # the template's own type check names it


def stage_problems(values: Mapping[str, str]) -> list[str]:
    """What Fargate or Application Auto Scaling would refuse in these (effective) values.

    Parameters
    ----------
    values:
        Every parameter with its value or default (``TaskCpu``, ``TaskMemory``...).

    Returns
    -------
    list[str]
        One sentence per problem, naming the valid values; empty when all is well.
    """
    problems = fractional_counts(values)
    cpu, memory = _as_int(values, "TaskCpu"), _as_int(values, "TaskMemory")
    if cpu is not None and memory is not None:
        choices = fargate_memory_choices(cpu)
        if not choices:
            problems.append(
                f"TaskCpu {cpu} is not a Fargate size; use one of "
                f"{', '.join(str(c) for c in FARGATE_MEMORY)}"
            )
        elif memory not in choices:
            problems.append(
                f"Fargate does not offer TaskMemory {memory} with TaskCpu {cpu}; with {cpu} "
                f"CPU units TaskMemory must be {_describe_choices(choices)} (MiB)"
            )
    low, high = _as_int(values, "MinTasks"), _as_int(values, "MaxTasks")
    if low is not None and high is not None and low > high:
        problems.append(
            f"MinTasks {low} is more than MaxTasks {high}; autoscaling needs "
            f"MinTasks <= MaxTasks (e.g. MaxTasks={low} or more)"
        )
    return problems


def changed_immutable(
    stack_name: str,
    immutable: tuple[str, ...],
    deployed: Mapping[str, str],
    new: Mapping[str, str],
) -> list[str]:
    """Parameters a live stack would change although its template says they are fixed."""
    return [
        f"{name} of {stack_name} is {deployed[name]!r} and cannot change once the stack "
        f"exists (asked: {new[name]!r})"
        for name in immutable
        if name in deployed and name in new and str(deployed[name]) != str(new[name])
    ]


def changed_frozen_conditions(
    stack_name: str,
    template: Mapping[str, Any],
    deployed: Mapping[str, str],
    new: Mapping[str, str],
) -> list[str]:
    """Changes a live stack may not make although each value is fine on a new stack
    (``Metadata.spotops.frozen-conditions``): while a rule's ``while`` condition holds on the
    deployed values, a condition it keeps turns the other way with the new values.

    Each problem names the parameters that change it, their deployed and asked values, and
    the rule's reason.
    """
    before, after = TemplateLogic(template, deployed), TemplateLogic(template, new)
    problems = []
    for rule in frozen_conditions(template):
        if not before.condition(rule.while_):
            continue
        for name in rule.keep:
            if before.condition(name) == after.condition(name):
                continue
            changes = ", ".join(
                f"{parameter} {deployed.get(parameter, '')!r} -> {new.get(parameter, '')!r}"
                for parameter in sorted(before.parameters_of(name))
                if str(deployed.get(parameter, "")) != str(new.get(parameter, ""))
            )
            problems.append(f"{changes} on live stack {stack_name}: {rule.reason}")
    return problems


def changed_frozen_parameters(
    stack_name: str,
    template: Mapping[str, Any],
    deployed: Mapping[str, str],
    new: Mapping[str, str],
) -> list[str]:
    """Parameters a live stack may not change while a condition holds on its deployed values
    (``Metadata.spotops.frozen-parameters``), although any value would do on a new stack.

    Each problem names the parameter, its deployed and asked values, and the rule's reason.
    """
    before = TemplateLogic(template, deployed)
    return [
        f"{name} {deployed.get(name, '')!r} -> {new.get(name, '')!r} on live stack "
        f"{stack_name}: {rule.reason}"
        for rule in frozen_parameters(template)
        if before.condition(rule.while_)
        for name in rule.parameters
        if str(deployed.get(name, "")) != str(new.get(name, ""))
    ]


def refuse(stack_name: str, problems: list[str], *, hint: str) -> None:
    """Raise one :class:`ParameterError` listing every problem, or return when there is none."""
    if problems:
        raise ParameterError(
            f"The parameters of {stack_name} would fail in AWS: "
            + "; ".join(problems)
            + ". "
            + hint
        )
