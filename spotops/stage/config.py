"""Stage configuration: which stacks exist, and the parameters each stage deploys with.

``config/<stage>.json`` holds ``parameters`` (template parameters, one flat namespace: each
stack receives the keys its template declares) and ``estimate`` (usage assumptions for the
cost estimate, e.g. availability zones or log volume). ``--param Key=Value`` overrides a
parameter for one run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spotops.errors import ConfigError, UsageError

APP_NAME = "spotops"
DEFAULT_STAGE = "dev"
# What the templates accept for StageName (2-12 characters): every resource name holds it,
# and the longest names must fit AWS's limits (tests/unit/infra/test_aws_refusals.py).
_STAGE_RE = re.compile(r"^[a-z][a-z0-9-]{1,11}$")
_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class StackSpec:
    """One stack of the app: its part name (``network``) and its template file.

    ``needs`` names the parts whose stack names this stack receives as parameters
    (``network`` -> ``NetworkStackName``). ``fed_by`` names the parts whose *outputs* it
    receives, for every parameter it declares under an output's name (the ops stack takes
    the site's ``ClusterName``). ``packaged`` marks a stack whose template is built at deploy
    time (the Chalice package merged with ``template``) rather than read as it is.
    """

    part: str
    template: str
    needs: tuple[str, ...] = ()
    fed_by: tuple[str, ...] = ()
    packaged: bool = False

    def stack_name(self, app: str, stage: str) -> str:
        """``<app>-<stage>-<part>``, the name every room agrees on."""
        return f"{app}-{stage}-{self.part}"

    def template_path(self, project_dir: Path) -> Path:
        return project_dir / "infra" / "cloudformation" / self.template


# Deploy order; destroy walks this list backwards. The ops stack is the Chalice package of
# ops_lambdas/ merged with ops.yaml, built from the site stack's outputs.
STACKS: tuple[StackSpec, ...] = (
    StackSpec("network", "network.yaml"),
    StackSpec("site", "site.yaml", needs=("network",)),
    StackSpec("ops", "ops.yaml", fed_by=("site",), packaged=True),
)


def reference_parameter(part: str) -> str:
    """Parameter carrying another stack's name: ``network`` -> ``NetworkStackName``."""
    return f"{part.capitalize()}StackName"


def check_stage(stage: str) -> str:
    if not _STAGE_RE.match(stage):
        raise UsageError(
            f"Invalid stage {stage!r}: use 2 to 12 lower-case letters, digits and '-', starting "
            "with a letter (the stage is part of every resource name, and AWS limits names)."
        )
    return stage


def _as_parameter_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class StageConfig:
    """A stage's template parameters and cost assumptions."""

    stage: str
    parameters: dict[str, str] = field(default_factory=dict)
    estimate: dict[str, float] = field(default_factory=dict)
    description: str = ""
    source: Path | None = None

    @property
    def app(self) -> str:
        return self.parameters.get("AppName", APP_NAME)

    def with_overrides(self, overrides: Mapping[str, str]) -> StageConfig:
        """A copy with ``overrides`` applied on top (``--param`` values win)."""
        return StageConfig(
            stage=self.stage,
            parameters={**self.parameters, **overrides},
            estimate=dict(self.estimate),
            description=self.description,
            source=self.source,
        )


def config_path(project_dir: Path, stage: str) -> Path:
    return project_dir / "config" / f"{stage}.json"


def load_stage_config(project_dir: Path, stage: str) -> StageConfig:
    """Read ``config/<stage>.json``; ``AppName`` and ``StageName`` are filled in.

    Raises
    ------
    ConfigError
        When the file is missing, is not JSON, or sets ``StageName`` to another stage.
    """
    check_stage(stage)
    path = config_path(project_dir, stage)
    if not path.is_file():
        known = sorted(p.stem for p in (project_dir / "config").glob("*.json"))
        raise ConfigError(
            f"No configuration for stage {stage!r}: {path} does not exist. "
            f"Known stages: {', '.join(known) or 'none'}. Copy config/dev.json to start one."
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return parse_stage_config(raw, stage, path)


def parse_stage_config(raw: Any, stage: str, path: Path | None = None) -> StageConfig:
    """A stage file's content (parsed JSON) as a :class:`StageConfig`.

    Raises
    ------
    ConfigError
        Not an object with a ``parameters`` object, ``StageName`` set to another stage, or an
        ``estimate`` that is not numbers.
    """
    where = str(path) if path else f"config/{stage}.json"
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters", {}), dict):
        raise ConfigError(f"{where}: expected an object with a 'parameters' object.")
    parameters = {str(k): _as_parameter_value(v) for k, v in raw.get("parameters", {}).items()}
    if parameters.get("StageName", stage) != stage:
        raise ConfigError(
            f"{where} sets StageName={parameters['StageName']!r} but the stage is {stage!r}; "
            "remove StageName from the file (it comes from --stage)."
        )
    parameters.setdefault("AppName", APP_NAME)
    parameters["StageName"] = stage
    estimate_raw = raw.get("estimate", {})
    if not isinstance(estimate_raw, dict):
        raise ConfigError(f"{where}: 'estimate' must be an object of numbers.")
    try:
        estimate = {str(k): float(v) for k, v in estimate_raw.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: every 'estimate' value must be a number ({exc}).") from exc
    return StageConfig(
        stage=stage,
        parameters=parameters,
        estimate=estimate,
        description=str(raw.get("description", "")),
        source=path,
    )


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Parse ``--param Key=Value`` items.

    Example
    -------
    >>> parse_overrides(["DesiredCount=3", "DomainName="])
    {'DesiredCount': '3', 'DomainName': ''}
    """
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            raise UsageError(f"Bad --param {item!r}: write it as Key=Value (e.g. DesiredCount=3).")
        if key == "StageName":
            raise UsageError("StageName comes from --stage; do not pass it with --param.")
        overrides[key] = value
    return overrides
