"""Read what a CloudFormation template declares, and check parameter values against it.

CloudFormation checks values too, but only after a round trip, and the local emulator does
not check ``AllowedValues`` at all; checking here gives the same clear message everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spotops.errors import ConfigError, ParameterError


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short tags (``!Ref``, ``!Sub``...) as data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
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
