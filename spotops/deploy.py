"""Deploy planning: which parameters each stack receives, checked before anything runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spotops.config import StackSpec, StageConfig, reference_parameter
from spotops.errors import UsageError
from spotops.templates import (
    TemplateParameter,
    load_template,
    select_parameters,
    template_parameters,
)

IMAGE_PARAMETER = "ImageUri"
# Stands for an upstream stack's output while planning, before that stack is deployed.
PENDING_OUTPUT = "<output of an earlier stack>"


@dataclass(frozen=True)
class StackPlan:
    """One stack to deploy: its name, template text and declared parameters."""

    spec: StackSpec
    name: str
    template_body: str
    declared: dict[str, TemplateParameter]
    # Set for a template CloudFormation reads from S3 (the ops stack's).
    template_url: str = ""

    @property
    def takes_image(self) -> bool:
        return IMAGE_PARAMETER in self.declared


def plan_stacks(
    project_dir: Path, specs: Sequence[StackSpec], config: StageConfig
) -> list[StackPlan]:
    """Read every template and check the stage's parameters against all of them.

    Raises
    ------
    UsageError
        A parameter no template declares (a typo), naming the ones that exist.
    ParameterError
        A value a template refuses.
    """
    plans = []
    for spec in specs:
        path = spec.template_path(project_dir)
        plans.append(
            StackPlan(
                spec=spec,
                name=spec.stack_name(config.app, config.stage),
                template_body=path.read_text() if path.is_file() else "",
                declared=template_parameters(load_template(path)),
            )
        )
    declared_anywhere = {name for plan in plans for name in plan.declared}
    unknown = sorted(set(config.parameters) - declared_anywhere)
    if unknown:
        raise UsageError(
            f"No template declares {', '.join(unknown)}. Known parameters: "
            f"{', '.join(sorted(declared_anywhere))}."
        )
    for plan in plans:
        stack_parameters(plan, plans, config.parameters, image_uri="", fed_outputs=None)
    return plans


def stack_parameters(
    plan: StackPlan,
    plans: Sequence[StackPlan],
    values: Mapping[str, str],
    *,
    image_uri: str,
    fed_outputs: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The checked parameters of one stack: the stage's values, other stacks' names and
    outputs, the image.

    ``fed_outputs`` are the outputs of the stacks in ``plan.spec.fed_by``; they win over the
    stage's values, because they describe what exists. ``None`` means planning: those stacks
    may not exist yet, so a parameter they will feed is taken as given.
    """
    merged = dict(values)
    names = {p.spec.part: p.name for p in plans}
    for part in plan.spec.needs:
        merged[reference_parameter(part)] = names[part]
    if plan.takes_image:
        merged[IMAGE_PARAMETER] = image_uri
    if plan.spec.fed_by:
        for name, parameter in plan.declared.items():
            if fed_outputs is None:
                if name not in merged and parameter.default is None:
                    merged[name] = PENDING_OUTPUT
            elif name in fed_outputs:
                merged[name] = fed_outputs[name]
    return select_parameters(plan.declared, merged, plan.name)


def stack_tags(config: StageConfig) -> dict[str, str]:
    """Tags on every stack (CloudFormation propagates them to the resources)."""
    return {"spotops:app": config.app, "spotops:stage": config.stage}


def ordered_outputs(
    outputs_by_stack: Mapping[str, Mapping[str, str]],
) -> list[tuple[str, str, str]]:
    """``(stack, key, value)`` rows with ``SiteUrl`` moved to the very end."""
    rows = [
        (stack, key, value)
        for stack, outputs in outputs_by_stack.items()
        for key, value in sorted(outputs.items())
        if key != "SiteUrl"
    ]
    rows += [
        (stack, key, value)
        for stack, outputs in outputs_by_stack.items()
        for key, value in outputs.items()
        if key == "SiteUrl"
    ]
    return rows


def record_deploy(
    project_dir: Path,
    config: StageConfig,
    region: str,
    outputs: Mapping[str, Mapping[str, str]],
    image: str,
) -> Path:
    """Write ``.spotops/deployed-<stage>.json``: what was deployed, where and when."""
    path = project_dir / ".spotops" / f"deployed-{config.stage}.json"
    path.parent.mkdir(exist_ok=True)
    record = {
        "stage": config.stage,
        "region": region,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "image": image,
        "stacks": {name: dict(values) for name, values in outputs.items()},
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_record(project_dir: Path, stage: str) -> dict[str, object] | None:
    path = project_dir / ".spotops" / f"deployed-{stage}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
