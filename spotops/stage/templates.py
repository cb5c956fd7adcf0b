"""Read what a CloudFormation template declares, and check parameter values against it.

CloudFormation checks values too, but only after a round trip, and the local emulator does
not check ``AllowedValues`` at all; checking here gives the same clear message everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from spotops.errors import ConfigError, ParameterError


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short tags (``!Ref``, ``!Sub``...) as data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class TemplateParameter:
    """One entry of a template's ``Parameters`` section."""

    name: str
    type: str = "String"
    default: str | None = None
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_value: float | None = None
    max_value: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    constraint_description: str | None = None

    def problem(self, value: str) -> str | None:
        """Why CloudFormation would refuse ``value``, or ``None`` when it is acceptable."""
        hint = f" ({self.constraint_description})" if self.constraint_description else ""
        if self.allowed_values and value not in self.allowed_values:
            return f"must be one of {', '.join(self.allowed_values)}, not {value!r}{hint}"
        if self.type == "Number":
            try:
                number = float(value)
            except ValueError:
                return f"must be a number, not {value!r}{hint}"
            if self.min_value is not None and number < self.min_value:
                return f"must be at least {self.min_value:g}, not {value}{hint}"
            if self.max_value is not None and number > self.max_value:
                return f"must be at most {self.max_value:g}, not {value}{hint}"
        if self.type == "String":
            if self.allowed_pattern and not re.fullmatch(self.allowed_pattern, value):
                return f"must match {self.allowed_pattern}, not {value!r}{hint}"
            if self.min_length is not None and len(value) < self.min_length:
                return f"must be at least {self.min_length} characters{hint}"
            if self.max_length is not None and len(value) > self.max_length:
                return f"must be at most {self.max_length} characters{hint}"
        return None


def load_template(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON template file into a dict."""
    if not path.is_file():
        raise ConfigError(f"Template {path} does not exist.")
    try:
        data = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"Template {path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Template {path} is not a CloudFormation template (no mapping).")
    return data


def _optional_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def _optional_int(raw: Any) -> int | None:
    return None if raw is None else int(raw)


def template_parameters(template: Mapping[str, Any]) -> dict[str, TemplateParameter]:
    """The declared parameters of a parsed template, by name."""
    declared: dict[str, TemplateParameter] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        spec = spec or {}
        default = spec.get("Default")
        declared[name] = TemplateParameter(
            name=name,
            type=str(spec.get("Type", "String")),
            default=None if default is None else _stringify(default),
            allowed_values=tuple(_stringify(v) for v in spec.get("AllowedValues", []) or []),
            allowed_pattern=spec.get("AllowedPattern"),
            min_value=_optional_float(spec.get("MinValue")),
            max_value=_optional_float(spec.get("MaxValue")),
            min_length=_optional_int(spec.get("MinLength")),
            max_length=_optional_int(spec.get("MaxLength")),
            constraint_description=spec.get("ConstraintDescription"),
        )
    return declared


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def select_parameters(
    declared: Mapping[str, TemplateParameter], values: Mapping[str, str], stack_name: str
) -> dict[str, str]:
    """The values this template declares, checked against its constraints.

    Raises
    ------
    ParameterError
        Naming every refused or missing parameter and how to fix it.
    """
    chosen = {name: values[name] for name in declared if name in values}
    problems = []
    for name, parameter in declared.items():
        if name in chosen:
            reason = parameter.problem(chosen[name])
            if reason:
                problems.append(f"{name} {reason}")
        elif parameter.default is None:
            problems.append(f"{name} has no default and no value")
    if problems:
        raise ParameterError(
            f"The template of {stack_name} refuses these parameters: "
            + "; ".join(problems)
            + ". Fix them in config/<stage>.json or with --param Key=Value."
        )
    return chosen


def parse_template(text: str, source: str = "template") -> dict[str, Any]:
    """Parse template text (YAML with short tags, or JSON) into a dict."""
    try:
        data = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source} is not a CloudFormation template (no mapping).")
    return data


def immutable_parameters(template: Mapping[str, Any]) -> tuple[str, ...]:
    """Parameters a live stack must keep (``Metadata.spotops.immutable-parameters``)."""
    spotops = (template.get("Metadata") or {}).get("spotops") or {}
    return tuple(str(name) for name in spotops.get("immutable-parameters", []))


@dataclass(frozen=True)
class FrozenCondition:
    """One entry of ``Metadata.spotops.frozen-conditions``: while the condition ``while_``
    holds on a live stack's deployed values, every condition in ``keep`` must keep its
    deployed value (``reason`` says why, and what to do instead)."""

    while_: str
    keep: tuple[str, ...]
    reason: str


def frozen_conditions(template: Mapping[str, Any]) -> tuple[FrozenCondition, ...]:
    """The changes a live stack may not make although each value is fine on a new stack
    (``Metadata.spotops.frozen-conditions``).

    Raises
    ------
    ConfigError
        An entry without ``while``, ``keep`` or ``reason``, or naming an undefined condition.
    """
    spotops = (template.get("Metadata") or {}).get("spotops") or {}
    defined = set(template.get("Conditions") or {})
    found = []
    for entry in spotops.get("frozen-conditions") or []:
        if not isinstance(entry, Mapping) or not {"while", "keep", "reason"} <= set(entry):
            raise ConfigError(
                f"Metadata.spotops.frozen-conditions entry {entry!r} needs while, keep and reason."
            )
        rule = FrozenCondition(
            while_=str(entry["while"]),
            keep=tuple(str(name) for name in entry["keep"]),
            reason=" ".join(str(entry["reason"]).split()),
        )
        unknown = sorted({rule.while_, *rule.keep} - defined)
        if unknown:
            raise ConfigError(
                f"Metadata.spotops.frozen-conditions names undefined conditions: "
                f"{', '.join(unknown)}."
            )
        found.append(rule)
    return tuple(found)


@dataclass(frozen=True)
class FrozenParameters:
    """One entry of ``Metadata.spotops.frozen-parameters``: while the condition ``while_``
    holds on a live stack's deployed values, none of ``parameters`` may change (``reason``
    says why, and what to do instead)."""

    while_: str
    parameters: tuple[str, ...]
    reason: str


def frozen_parameters(template: Mapping[str, Any]) -> tuple[FrozenParameters, ...]:
    """The parameters a live stack must keep while a condition holds, although any value
    would do on a new stack (``Metadata.spotops.frozen-parameters``).

    Raises
    ------
    ConfigError
        An entry without ``while``, ``parameters`` or ``reason``, or naming an undefined
        condition or parameter.
    """
    spotops = (template.get("Metadata") or {}).get("spotops") or {}
    conditions = set(template.get("Conditions") or {})
    declared = set(template.get("Parameters") or {})
    found = []
    for entry in spotops.get("frozen-parameters") or []:
        if not isinstance(entry, Mapping) or not {"while", "parameters", "reason"} <= set(entry):
            raise ConfigError(
                f"Metadata.spotops.frozen-parameters entry {entry!r} needs while, parameters "
                "and reason."
            )
        rule = FrozenParameters(
            while_=str(entry["while"]),
            parameters=tuple(str(name) for name in entry["parameters"]),
            reason=" ".join(str(entry["reason"]).split()),
        )
        if rule.while_ not in conditions:
            raise ConfigError(
                f"Metadata.spotops.frozen-parameters names an undefined condition: {rule.while_}."
            )
        unknown = sorted(set(rule.parameters) - declared)
        if unknown:
            raise ConfigError(
                f"Metadata.spotops.frozen-parameters names undeclared parameters: "
                f"{', '.join(unknown)}."
            )
        found.append(rule)
    return tuple(found)


# What makes CloudFormation replace a resource rather than update it: its create-only
# properties ("Update requires: Replacement" in the resource reference; createOnlyProperties
# in the type's registry schema). Only the types whose replacement a frozen rule is about,
# and those they name in such a property; tests compare it with the registry schemas.
CREATE_ONLY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::ElasticLoadBalancingV2::TargetGroup": (
        "IpAddressType",
        "Name",
        "Port",
        "Protocol",
        "ProtocolVersion",
        "TargetType",
        "VpcId",
    ),
    "AWS::ElasticLoadBalancingV2::ListenerRule": ("ListenerArn",),
    "AWS::ElasticLoadBalancingV2::Listener": ("LoadBalancerArn",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("Name", "Scheme", "Type"),
}

_SUB_NAME = re.compile(r"\$\{(?!!)([^}]+)\}")


@dataclass(frozen=True)
class ReplacementInputs:
    """What can replace or remove some resources of a template: the parameters whose value
    reaches one of their create-only properties, and the conditions that choose a branch
    there or decide whether such a resource exists."""

    parameters: frozenset[str]
    conditions: frozenset[str]


def replacement_inputs(
    template: Mapping[str, Any], resource_types: tuple[str, ...]
) -> ReplacementInputs:
    """The :class:`ReplacementInputs` of every resource of ``resource_types``.

    Follows ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If`` and every other function through
    the create-only properties, and into the resources named there: a replaced resource has a
    new ``Ref`` and ARN, so what replaces a listener also replaces the rules on it.

    Raises
    ------
    ConfigError
        A create-only property names a resource of a type :data:`CREATE_ONLY_PROPERTIES`
        does not know, so what replaces it cannot be told.
    """
    declared = set(template.get("Parameters") or {})
    resources = template.get("Resources") or {}
    parameters: set[str] = set()
    conditions: set[str] = set()
    visited: set[str] = set()

    def name(reference: str) -> None:
        if reference in declared:
            parameters.add(reference)
        elif reference.split(".", 1)[0] in resources:
            visit(reference.split(".", 1)[0])
        # Anything else is a pseudo parameter (AWS::Region...), fixed for a stack.

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, arg in node.items():
            if key == "Ref" and isinstance(arg, str):
                name(arg)
            elif key == "Fn::GetAtt":
                name(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0])
            elif key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for found in _SUB_NAME.findall(text):
                    if found not in variables:
                        name(found)
                walk(list(variables.values()))
            elif key == "Fn::If":
                conditions.add(str(arg[0]))
                walk(arg[1:])
            elif key == "Condition" and isinstance(arg, str):
                conditions.add(arg)
            else:
                walk(arg)

    def visit(logical_id: str) -> None:
        if logical_id in visited:
            return
        visited.add(logical_id)
        resource = resources[logical_id] or {}
        kind = str(resource.get("Type", ""))
        if kind not in CREATE_ONLY_PROPERTIES:
            raise ConfigError(
                f"Cannot tell what replaces {logical_id} ({kind}): add its create-only "
                "properties to spotops.stage.templates.CREATE_ONLY_PROPERTIES."
            )
        if "Condition" in resource:
            conditions.add(str(resource["Condition"]))
        properties = resource.get("Properties") or {}
        for prop in CREATE_ONLY_PROPERTIES[kind]:
            if prop in properties:
                walk(properties[prop])

    for logical_id, resource in resources.items():
        if isinstance(resource, Mapping) and resource.get("Type") in resource_types:
            visit(str(logical_id))
    return ReplacementInputs(frozenset(parameters), frozenset(conditions))


def resource_descriptions(template: Mapping[str, Any]) -> dict[str, str]:
    """``{logical id: Metadata.Description}``: the one-line human description of each
    resource, shown beside it in change sets and stack events."""
    found = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        description = ((resource or {}).get("Metadata") or {}).get("Description")
        if isinstance(description, str):
            found[str(logical_id)] = description
    return found


def effective_values(
    declared: Mapping[str, TemplateParameter], values: Mapping[str, str]
) -> dict[str, str]:
    """Every declared parameter's value as CloudFormation would use it: given, or default."""
    return {name: values.get(name, parameter.default or "") for name, parameter in declared.items()}


_NO_VALUE = object()
"""What ``Ref: AWS::NoValue`` chooses (:meth:`TemplateLogic.choose`): dropped from its parent."""


class TemplateLogic:
    """Evaluate a template's Conditions and Rules for some parameter values.

    Knows ``Ref`` (to parameters and pseudo parameters), ``Fn::Equals``, ``Fn::Not``,
    ``Fn::And``, ``Fn::Or``, ``Fn::Contains``, ``Fn::If`` and ``Condition``: what conditions
    and rules are written with. Anything else raises :class:`ConfigError`, so a template
    change cannot slip past silently.
    """

    PSEUDO: ClassVar[dict[str, str]] = {"AWS::Region": "us-east-1", "AWS::Partition": "aws"}

    def __init__(self, template: Mapping[str, Any], values: Mapping[str, str]) -> None:
        self._template = template
        self._values = effective_values(template_parameters(template), values)
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self._template.get("Conditions") or {}).get(name)
            if spec is None:
                raise ConfigError(f"The template names an undefined condition {name!r}.")
            self._conditions[name] = bool(self.value(spec))
        return self._conditions[name]

    def parameters_of(self, name: str) -> set[str]:
        """The parameters the condition ``name`` depends on, through other conditions too."""
        found: set[str] = set()
        seen: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for key, arg in node.items():
                    if key == "Ref" and arg in self._values:
                        found.add(str(arg))
                    elif key == "Condition" and isinstance(arg, str):
                        visit(arg)
                    else:
                        walk(arg)

        def visit(condition: str) -> None:
            if condition not in seen:
                seen.add(condition)
                walk((self._template.get("Conditions") or {}).get(condition))

        visit(name)
        return found

    def choose(self, node: Any) -> Any:
        """``node`` with every ``Fn::If`` replaced by its branch for these values and every
        ``Ref: AWS::NoValue`` left out; other functions (``Ref``, ``Fn::GetAtt``...) stay as
        they are. For reading a resource's properties as CloudFormation would send them."""
        if isinstance(node, list):
            return [v for v in (self.choose(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if len(node) == 1 and "Fn::If" in node:
            name, if_true, if_false = node["Fn::If"]
            return self.choose(if_true if self.condition(str(name)) else if_false)
        chosen = {key: self.choose(value) for key, value in node.items()}
        return {key: value for key, value in chosen.items() if value is not _NO_VALUE}

    def exists(self, resource: Mapping[str, Any]) -> bool:
        """Whether a resource is created for these values (its ``Condition`` holds)."""
        condition = resource.get("Condition")
        return condition is None or self.condition(str(condition))

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources created for these values."""
        return {
            str(name): resource
            for name, resource in (self._template.get("Resources") or {}).items()
            if isinstance(resource, dict) and self.exists(resource)
        }

    def value(self, node: Any) -> Any:
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, int | float | str):
            return str(node)
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict) or len(node) != 1:
            raise ConfigError(f"Cannot evaluate {node!r} in a condition or rule.")
        ((function, arg),) = node.items()
        if function == "Ref":
            if arg in self._values:
                return self._values[arg]
            if arg in self.PSEUDO:
                return self.PSEUDO[arg]
            raise ConfigError(f"A condition or rule refers to {arg!r}, which is no parameter.")
        if function == "Condition":
            return self.condition(str(arg))
        if function == "Fn::Equals":
            left, right = (self.value(item) for item in arg)
            return left == right
        if function == "Fn::Not":
            return not self.value(arg[0])
        if function == "Fn::And":
            return all(self.value(item) for item in arg)
        if function == "Fn::Or":
            return any(self.value(item) for item in arg)
        if function == "Fn::Contains":
            return self.value(arg[1]) in self.value(arg[0])
        if function == "Fn::If":
            name, if_true, if_false = arg
            return self.value(if_true if self.condition(str(name)) else if_false)
        raise ConfigError(f"Cannot evaluate {function} in a condition or rule.")

    def failed_rules(self) -> list[str]:
        """The ``AssertDescription`` of every ``Rules`` assertion these values break: what
        CloudFormation refuses before it creates anything (the local emulator does not)."""
        failed = []
        for rule in (self._template.get("Rules") or {}).values():
            condition = rule.get("RuleCondition")
            if condition is not None and not self.value(condition):
                continue
            for assertion in rule.get("Assertions", []):
                if not self.value(assertion["Assert"]):
                    failed.append(str(assertion.get("AssertDescription", "a rule failed")))
        return failed
