"""Stage profiles for ``spotops init``: the starting ``config/<stage>.json`` of a test stage
(``dev``), the seed's layout (``seed``) and production (``prod``).

The profiles live in ``spotops/data/profiles.json``; the checkout's ``config/dev.json``,
``seed.json`` and ``prod.json`` are exactly what ``spotops init <name> --profile <name>``
writes (a test keeps them equal).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from spotops.errors import ConfigError, UsageError
from spotops.stage.config import config_path

# Asked for by `spotops init` on a terminal, in this order, with the profile's value offered.
PROMPTED = ("DesiredCount", "AlarmEmail")
# Parameters a profile's autoscaling decides instead (MinTasks..MaxTasks): never asked there.
DECIDED_BY_AUTOSCALING = frozenset({"DesiredCount"})


def prompted(profile: Mapping[str, Any]) -> tuple[str, ...]:
    """What ``spotops init`` asks for with ``profile``: :data:`PROMPTED`, less what its
    autoscaling decides.

    Example
    -------
    >>> prompted({"parameters": {"EnableAutoScaling": True}})
    ('AlarmEmail',)
    """
    autoscaled = profile.get("parameters", {}).get("EnableAutoScaling") in (True, "true")
    return tuple(n for n in PROMPTED if not (autoscaled and n in DECIDED_BY_AUTOSCALING))


def load_profiles() -> dict[str, dict[str, Any]]:
    """``{name: stage file content}`` from the packaged ``data/profiles.json``."""
    try:
        raw = json.loads(resources.files("spotops").joinpath("data/profiles.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the stage profiles: {exc}") from exc
    return {str(name): dict(content) for name, content in raw.items()}


def stage_file(profile: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """A stage file: the profile with ``overrides`` applied (numbers and switches kept typed,
    as in the shipped files)."""
    content = copy.deepcopy(dict(profile))
    parameters = content.setdefault("parameters", {})
    for key, value in overrides.items():
        if value == "" and key not in parameters:
            continue  # an optional parameter left empty: the template's default ("") holds
        parameters[key] = _typed(value, parameters.get(key))
    return content


def _typed(value: str, like: Any) -> Any:
    """``value`` as the profile writes that parameter: a bool, a number or a string."""
    if value in ("true", "false") and (like is None or isinstance(like, bool)):
        return value == "true"
    if re.fullmatch(r"\d+", value) and (like is None or type(like) is int):
        return int(value)
    return value


def refuse_overwrite(project_dir: Path, stage: str, *, force: bool) -> Path:
    """The stage file's path; raises :class:`UsageError` when it exists and not ``force``."""
    path = config_path(project_dir, stage)
    if path.exists() and not force:
        raise UsageError(
            f"{path} exists. Pass --force to overwrite it, or edit it by hand (every key is a "
            f"template parameter; `spotops cost --stage {stage}` shows what it costs)."
        )
    return path


def write_stage_file(
    project_dir: Path, stage: str, content: Mapping[str, Any], *, force: bool
) -> Path:
    """Write ``config/<stage>.json``; an existing one only with ``force``.

    Raises
    ------
    UsageError
        The file exists and ``force`` is false.
    """
    path = refuse_overwrite(project_dir, stage, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path
