"""Deploying a stage: which parameters each stack receives, checked before anything runs
(:func:`plan_stacks`), and the deploy itself, stack after stack by change set
(:class:`StageDeployment`).

Nothing here prints: progress goes to a :class:`DeployProgress` the command layer supplies,
as :class:`~spotops.image.push.Pusher` reports through its ``notify`` callback.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from spotops.errors import (
    ConfigError,
    DeployError,
    ParameterError,
    UsageError,
)
from spotops.stage import limits
from spotops.stage.account import MANUAL_COMMAND, ensure_ecs_service_linked_role
from spotops.stage.artifacts import (
    BOOTSTRAP_TEMPLATE,
    BUCKET_OUTPUT,
    ArtifactStore,
    bootstrap_stack_name,
    deployed_version,
    template_version,
)
from spotops.stage.checks import (
    changed_frozen_conditions,
    changed_frozen_parameters,
    changed_immutable,
    refuse,
    stage_problems,
)
from spotops.stage.config import StackSpec, StageConfig, reference_parameter
from spotops.stage.images import ImageChoice, ImageResolver, SiteLocation
from spotops.stage.stacks import ChangeSetReview, StackDeployer, StackEvent, StackInfo
from spotops.stage.templates import (
    TemplateLogic,
    TemplateParameter,
    effective_values,
    immutable_parameters,
    load_template,
    parse_template,
    resource_descriptions,
    select_parameters,
    template_parameters,
)
from spotops.target import AWS, Target

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
    # Set for a template CloudFormation reads from S3: every one over the inline limit.
    template_url: str = ""
    # The parsed template (for the ops stack: the merge template until it is packaged).
    template: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

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
        template = load_template(path)
        plans.append(
            StackPlan(
                spec=spec,
                name=spec.stack_name(config.app, config.stage),
                template_body=path.read_text() if path.is_file() else "",
                declared=template_parameters(template),
                template=template,
            )
        )
    declared_anywhere = {name for plan in plans for name in plan.declared}
    unknown = sorted(set(config.parameters) - declared_anywhere)
    if unknown:
        guesses = [
            f"{name} -> {close[0]}"
            for name in unknown
            if (close := difflib.get_close_matches(name, declared_anywhere, n=1))
        ]
        nearest = f" Did you mean: {', '.join(guesses)}?" if guesses else ""
        raise UsageError(
            f"No template declares {', '.join(unknown)}.{nearest} Known parameters: "
            f"{', '.join(sorted(declared_anywhere))}."
        )
    for plan in plans:
        chosen = stack_parameters(plan, plans, config.parameters, image_uri="", fed_outputs=None)
        check_inputs(plan, chosen)
    return plans


def check_inputs(plan: StackPlan, chosen: Mapping[str, str]) -> None:
    """What AWS would refuse mid-creation: Fargate sizes, the autoscaling range, the
    template's Rules (which the local emulator ignores).

    Raises
    ------
    ParameterError
        Listing every problem with the values that would do.
    """
    values = effective_values(plan.declared, chosen)
    problems = stage_problems(values)
    if plan.template:
        problems += TemplateLogic(plan.template, values).failed_rules()
    refuse(plan.name, problems, hint="Fix them in config/<stage>.json or with --param Key=Value.")


def check_immutable(plan: StackPlan, existing: StackInfo | None, chosen: Mapping[str, str]) -> None:
    """Refuse a change to a parameter the template declares fixed once the stack exists, and
    a change its ``frozen-conditions`` forbid on a live stack (CANARY back to ROLLING)."""
    if existing is None or existing.status in {"REVIEW_IN_PROGRESS", "DELETE_COMPLETE"}:
        return
    # A stack deployed before the template declared a parameter runs as its default did
    # (the templates add such parameters with the old behaviour as default: ZoneCount 3).
    deployed = {**effective_values(plan.declared, {}), **existing.parameters}
    new = effective_values(plan.declared, chosen)
    problems = changed_immutable(plan.name, immutable_parameters(plan.template), deployed, new)
    refuse(
        plan.name,
        problems,
        hint="Such a change replaces what the stage runs on: keep the deployed value in "
        "config/<stage>.json (or --param), or destroy the stage (`spotops destroy`) and "
        "deploy it again.",
    )
    forbidden = changed_frozen_conditions(plan.name, plan.template, deployed, new)
    forbidden += changed_frozen_parameters(plan.name, plan.template, deployed, new)
    if forbidden:
        raise ParameterError(
            "Refused before any change set: "
            + "; ".join(forbidden)
            + " Nothing was changed; keep the deployed value in config/<stage>.json (or --param)."
        )


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


# ---- the deploy ------------------------------------------------------------------------

ECS_SERVICE = "AWS::ECS::Service"


class DeployProgress(Protocol):
    """What a deploy reports while it runs; the command layer renders it."""

    def note(self, message: str) -> None:
        """A line of information (plain text)."""

    def image(self, choice: ImageChoice) -> None:
        """The image the site stack will run, and why."""

    def working(self, label: str) -> AbstractContextManager[Any]:
        """A spinner while something slow runs."""

    def up_to_date(self, stack_name: str) -> None:
        """The stack has nothing to change."""

    def review(self, review: ChangeSetReview, descriptions: Mapping[str, str], hidden: int) -> None:
        """The change set about to run; ``hidden`` rows the emulator listed wrongly."""

    def confirm(self, review: ChangeSetReview) -> bool:
        """Ask before a change set that replaces or deletes; ``False`` stops the deploy."""

    def follow(
        self, label: str, events: Iterator[StackEvent], descriptions: Mapping[str, str]
    ) -> None:
        """Show stack events as they come, until the iterator ends."""

    def done(self, stack_name: str) -> None:
        """The stack settled successfully."""


@dataclass
class DeployResult:
    """What a deploy did: every stack's outputs, the image, or where it was stopped."""

    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    image: str = ""
    declined: str = ""
    executed: list[str] = field(default_factory=list)


class StageDeployment:
    """Deploy every stack of a stage in order, each by change set.

    Parameters
    ----------
    project_dir, specs:
        The checkout and the stacks (:data:`spotops.stage.config.STACKS`).
    stacks:
        The CloudFormation side (:class:`~spotops.stage.stacks.StackDeployer`).
    images:
        Finds the image the site runs (never rolls it back).
    ops_builder:
        Builds the packaged ops stack (called only when that stack is reached).
    iam:
        For the ECS service-linked role, made before the site stack's first creation.
    s3:
        For the artifact bucket (:mod:`spotops.stage.artifacts`), where templates over the inline
        limit and the ops package go.
    target:
        Where the stacks go (:mod:`spotops.target`): whether its change sets list resources
        whose conditions are false (left out of the review there), and its check before a
        stack is created.
    progress:
        Where progress goes.
    """

    def __init__(
        self,
        project_dir: Path,
        specs: Sequence[StackSpec],
        *,
        stacks: StackDeployer,
        images: ImageResolver,
        ops_builder: Callable[[], Any],
        iam: Any,
        s3: Any,
        region: str,
        target: Target = AWS,
        progress: DeployProgress,
        parameter_defaults: Mapping[str, str] | None = None,
        diagnose: Callable[[SiteLocation], str] | None = None,
    ) -> None:
        self._project_dir = project_dir
        self._specs = specs
        self._stacks = stacks
        self._images = images
        self._ops_builder = ops_builder
        self._iam = iam
        self._s3 = s3
        self._region = region
        self._target = target
        self._progress = progress
        # Defaults found at deploy time (RunbookBaseUrl from the git remote): below the stage's
        # own values, above the templates' defaults.
        self._parameter_defaults = dict(parameter_defaults or {})
        self._diagnose = diagnose

    def run(self, config: StageConfig, *, image: str | None, yes: bool) -> DeployResult:
        """Deploy ``config``'s stacks; ``image`` is ``--image`` (``None``: the running one).

        Raises
        ------
        UsageError / ParameterError
            Bad input, found before any change set.
        SpotopsError
            A stack failed; the message names the first failing resource.
        """
        plans = plan_stacks(self._project_dir, self._specs, config)
        names = {p.spec.part: p.name for p in plans}
        # A wrong --image must stop the deploy before the first stack (the artifact bucket's
        # included) changes, not halfway, after the network stack.
        named = self._named_image(plans, image) if image else None
        result = DeployResult()
        store = self._artifact_store(config, yes=yes)
        if store is None:
            result.declined = bootstrap_stack_name(config.app)
            return result
        for plan in plans:
            existing = self._stacks.describe(plan.name)
            image_uri = ""
            if plan.takes_image:
                site = SiteLocation.from_outputs(existing.outputs) if existing else None
                choice = named or self._images.resolve(None, site)
                image_uri = result.image = choice.uri
                self._progress.image(choice)
            if existing is None:
                self._target.check_new_stack(self._stacks.client, plan.name)
            if plan.spec.part == "site" and existing is None:
                self._service_linked_role()
            fed = {
                k: v for part in plan.spec.fed_by for k, v in result.outputs[names[part]].items()
            }
            values = {**self._parameter_defaults, **config.parameters}
            if plan.spec.packaged:
                plan, extra = self._package(plan, config, fed, store.bucket)
                # A value the stage sets itself (--param PowertoolsLayerArn=...) wins.
                values.update({k: v for k, v in extra.items() if k not in config.parameters})
            parameters = stack_parameters(
                plan,
                plans,
                values,
                image_uri=image_uri,
                fed_outputs=fed if plan.spec.fed_by else None,
            )
            check_immutable(plan, existing, parameters)
            plan = self._locate(plan, parameters, store, config)
            try:
                deployed = self._deploy_stack(plan, parameters, stack_tags(config), yes=yes)
            except DeployError:
                if plan.takes_image:
                    self._explain_service_failure(plan.name)
                raise
            if not deployed:
                result.declined = plan.name
                return result
            info = self._stacks.describe(plan.name)
            result.outputs[plan.name] = info.outputs if info else {}
        return result

    def _explain_service_failure(self, stack_name: str) -> None:
        """When the stack failed because the ECS service did not stabilise (the circuit
        breaker or a deployment alarm rolled it back, or it timed out), say why its tasks
        failed: CloudFormation's own reason names none."""
        failure = self._stacks.first_failure(stack_name)
        if self._diagnose is None or failure is None or failure.resource_type != ECS_SERVICE:
            return
        info = self._stacks.describe(stack_name)
        self._progress.note(self._diagnose(SiteLocation.from_outputs(info.outputs if info else {})))

    def _named_image(self, plans: Sequence[StackPlan], image: str) -> ImageChoice:
        """``--image`` checked against the repository of the stack that takes it, and pinned.

        Raises
        ------
        UsageError
            No such image there, or no repository yet (:meth:`ImageResolver.check_explicit`).
        """
        takes = next((plan for plan in plans if plan.takes_image), None)
        if takes is None:
            raise UsageError(f"--image {image}: no stack of this stage runs an image.")
        existing = self._stacks.describe(takes.name)
        site = SiteLocation.from_outputs(existing.outputs) if existing else None
        return self._images.resolve(image, site)

    def _artifact_store(self, config: StageConfig, *, yes: bool) -> ArtifactStore | None:
        """The app's artifact bucket in this account and region, made or brought up to date
        first (``None``: the user declined its change set)."""
        path = self._project_dir / BOOTSTRAP_TEMPLATE
        template = load_template(path)
        spec = StackSpec("bootstrap", BOOTSTRAP_TEMPLATE.name)
        plan = StackPlan(
            spec=spec,
            name=bootstrap_stack_name(config.app),
            template_body=path.read_text(),
            declared=template_parameters(template),
            template=template,
        )
        existing = self._stacks.describe(plan.name)
        current = existing is not None and existing.status in {
            "CREATE_COMPLETE",
            "UPDATE_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE",
        }
        outdated = existing is None or deployed_version(existing.outputs) < template_version(
            template
        )
        if not current or outdated:
            if existing is None:
                self._progress.note(
                    f"Creating {plan.name}: the artifact bucket of {config.app} in this account "
                    "and region, for templates over CloudFormation's inline limit and the ops "
                    "package (once per region; kept when a stage is destroyed)."
                )
            parameters = select_parameters(plan.declared, {"AppName": config.app}, plan.name)
            limits.refuse(
                limits.template_source_breaches(
                    plan.template_body, by_url=False, subject=plan.name
                ),
                before=f"the change set of {plan.name}",
            )
            if not self._deploy_stack(plan, parameters, {"spotops:app": config.app}, yes=yes):
                return None
            existing = self._stacks.describe(plan.name)
        bucket = existing.outputs.get(BUCKET_OUTPUT) if existing else None
        if not bucket:
            raise DeployError(
                f"Stack {plan.name} has no {BUCKET_OUTPUT} output. Delete it in the "
                "CloudFormation console (its bucket only holds build artifacts) and deploy again."
            )
        return ArtifactStore(self._s3, bucket, self._region)

    def _locate(
        self,
        plan: StackPlan,
        parameters: Mapping[str, str],
        store: ArtifactStore,
        config: StageConfig,
    ) -> StackPlan:
        """Check the template against AWS's limits; send it from S3 when it is over the
        inline limit. Raises :class:`~spotops.errors.LimitError` before anything changes."""
        size = limits.utf8_size(plan.template_body)
        by_url = size > limits.TEMPLATE_BODY.maximum
        limits.refuse(
            [
                *limits.template_source_breaches(
                    plan.template_body, by_url=by_url, subject=plan.name
                ),
                *limits.template_breaches(plan.template, parameters, subject=plan.name),
            ],
            before=f"the change set of {plan.name}",
        )
        if not by_url:
            return replace(plan, template_url="")
        url = store.put_template(config.app, config.stage, plan.spec.part, plan.template_body)
        self._progress.note(
            f"{plan.name}: template of {size:,} bytes (inline limit "
            f"{limits.TEMPLATE_BODY.maximum:,}) sent from {url}"
        )
        return replace(plan, template_url=url)

    def _service_linked_role(self) -> None:
        outcome = ensure_ecs_service_linked_role(self._iam)
        if outcome == "created":
            self._progress.note("Created the ECS service-linked role (once per account).")
        elif outcome == "denied":
            self._progress.note(
                "Could not check the ECS service-linked role (no IAM permission). If the "
                f"site stack fails on it, an administrator runs once: {MANUAL_COMMAND}"
            )

    def _package(
        self, plan: StackPlan, config: StageConfig, fed: Mapping[str, str], bucket: str
    ) -> tuple[StackPlan, dict[str, str]]:
        with self._progress.working(f"Packaging {plan.name} (chalice package, SAM translation)"):
            built = self._ops_builder().build(
                app=config.app,
                stage=config.stage,
                site_outputs=fed,
                tags=stack_tags(config),
                bucket=bucket,
            )
        size = built.package.zip_path.stat().st_size
        self._progress.note(f"Package: {built.code_location} ({size / 1024:.0f} KiB)")
        self._progress.note(built.layer_note)
        packaged = replace(
            plan,
            template_body=built.template_body,
            template=parse_template(built.template_body, f"the package of {plan.name}"),
        )
        return packaged, dict(built.parameters)

    def _deploy_stack(
        self, plan: StackPlan, parameters: Mapping[str, str], tags: Mapping[str, str], *, yes: bool
    ) -> bool:
        """Prepare, review, execute and follow one stack; ``False`` when refused."""
        with self._progress.working(f"Preparing the change set of {plan.name}"):
            review = self._stacks.prepare(
                plan.name, plan.template_body, parameters, tags, template_url=plan.template_url
            )
        if review.up_to_date:
            self._progress.up_to_date(plan.name)
            return True
        hidden = self._hide_false_conditions(plan, review, parameters)
        descriptions = resource_descriptions(plan.template)
        self._progress.review(review, descriptions, hidden)
        if review.needs_confirmation and not yes and not self._progress.confirm(review):
            self._stacks.discard(review)
            return False
        self._progress.follow(
            f"Deploying {plan.name}",
            self._stacks.execute(
                review, plan.template_body, parameters, tags, template_url=plan.template_url
            ),
            descriptions,
        )
        self._progress.done(plan.name)
        return True

    def _hide_false_conditions(
        self, plan: StackPlan, review: ChangeSetReview, parameters: Mapping[str, str]
    ) -> int:
        """Where the target lists them, drop change rows for resources whose conditions are
        false (moto does; AWS does not). Returns how many were dropped."""
        if not self._target.lists_false_conditions or not plan.template:
            return 0
        declared = set(plan.template.get("Resources") or {})
        try:
            created = set(TemplateLogic(plan.template, parameters).resources())
        except ConfigError:  # a condition this small evaluator does not know: show all
            return 0
        kept = [c for c in review.changes if c.logical_id not in declared - created]
        hidden = len(review.changes) - len(kept)
        review.changes = kept
        return hidden
