"""Stage configuration: which stacks exist, and the parameters each stage deploys with.

``config/<stage>.json`` holds ``parameters`` (template parameters, one flat namespace: each
stack receives the keys its template declares) and ``estimate`` (usage assumptions for the
cost estimate, e.g. availability zones or log volume). ``--param Key=Value`` overrides a
parameter for one run. The file's shape is checked against ``spotops/data/config.schema.json``
wherever it is read, so a misspelled key is refused instead of silently deploying the
templates' defaults.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

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
        When the file is missing, is not UTF-8 JSON, breaks the schema, or sets
        ``StageName`` to another stage.
    """
    check_stage(stage)
    path = config_path(project_dir, stage)
    where = _shown(path, project_dir)
    if not path.is_file():
        known = sorted(p.stem for p in (project_dir / "config").glob("*.json"))
        raise ConfigError(
            f"No configuration for stage {stage!r}: {where} does not exist. "
            f"Known stages: {', '.join(known) or 'none'}. Create it with `spotops init {stage}` "
            "(from a profile: dev, seed or prod)."
        )
    try:
        # utf-8-sig: a byte-order mark some editors write is not an error.
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}): save it as UTF-8."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {where}: {exc.strerror or exc}.") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not valid JSON: {exc}.") from exc
    return parse_stage_config(raw, stage, path, shown=where)


def _shown(path: Path, project_dir: Path) -> str:
    """``config/dev.json`` rather than an absolute path, when the file is in the checkout."""
    try:
        return str(path.relative_to(project_dir))
    except ValueError:
        return str(path)


@cache
def _schema_validator() -> Any:
    schema = json.loads(resources.files("spotops").joinpath("data/config.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def schema_problems(raw: Any, where: str) -> list[str]:
    """Every way ``raw`` (a stage file's parsed JSON) breaks ``config.schema.json``, one
    sentence each; an unknown key names the nearest valid one.

    Example
    -------
    >>> schema_problems({"params": {}}, "config/dev.json")
    ["unknown key 'params' in config/dev.json: did you mean 'parameters'?"]
    """
    validator = _schema_validator()
    errors = sorted(validator.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    return [problem for error in errors for problem in _describe(error, where)]


_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "a number",
    float: "a number",
    type(None): "null",
}
# The schema's type names as a stage file's author knows them.
_SCHEMA_TYPES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "boolean": "true or false",
    "integer": "a whole number",
}


def _describe(error: Any, where: str) -> list[str]:
    location = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        valid = sorted(error.schema.get("properties", {}))
        inside = f" under '{location}'" if location else ""
        unexpected = sorted(set(error.instance) - set(valid))
        return [
            f"unknown key {key!r}{inside} in {where}: "
            + (
                f"did you mean {close[0]!r}?"
                if (close := difflib.get_close_matches(key, valid, n=1))
                else f"the valid keys are {', '.join(valid)}."
            )
            for key in unexpected
        ]
    if error.validator == "type":
        expected = error.validator_value
        wanted = [expected] if isinstance(expected, str) else list(expected)
        found = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
        choices = [_SCHEMA_TYPES.get(w, w) for w in wanted]
        either = " or ".join(
            [", ".join(choices[:-1]), choices[-1]] if len(choices) > 2 else choices
        )
        subject = f"'{location}' in {where}" if location else where
        return [f"{subject} must be {either}, not {found} ({json.dumps(error.instance)[:40]})"]
    if error.validator == "pattern" and location == "parameters":
        return [
            f"{error.instance!r} under 'parameters' in {where} is not a parameter name "
            "(letters and digits, starting with a letter)"
        ]
    subject = f"'{location}' in {where}" if location else where
    return [f"{subject}: {error.message}"]


def parse_stage_config(
    raw: Any, stage: str, path: Path | None = None, *, shown: str | None = None
) -> StageConfig:
    """A stage file's content (parsed JSON) as a :class:`StageConfig`.

    Raises
    ------
    ConfigError
        The content breaks ``config.schema.json`` (an unknown key, a wrong type), or sets
        ``StageName`` to another stage.
    """
    where = shown or (str(path) if path else f"config/{stage}.json")
    problems = schema_problems(raw, where)
    if problems:
        listed = "; ".join(problems)
        raise ConfigError(
            listed + ("" if listed.endswith(("?", ".")) else ".") + " Nothing was changed."
        )
    parameters = {str(k): _as_parameter_value(v) for k, v in raw.get("parameters", {}).items()}
    if parameters.get("StageName", stage) != stage:
        raise ConfigError(
            f"{where} sets StageName={parameters['StageName']!r} but the stage is {stage!r}; "
            "remove StageName from the file (it comes from --stage)."
        )
    parameters.setdefault("AppName", APP_NAME)
    parameters["StageName"] = stage
    estimate = {str(k): float(v) for k, v in raw.get("estimate", {}).items()}
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
