"""The ``spotops`` command line: thin click commands over the factory in ``ctx.obj``.

Data goes to stdout, messages to stderr. Exit codes: 0 done, 1 failure, 2 bad usage or
input, 130 interrupted (the stack carries on; ``spotops status`` follows it).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from spotops import controls
from spotops import cost as cost_model
from spotops.buckets import empty_bucket
from spotops.config import DEFAULT_STAGE, StageConfig, check_stage, parse_overrides
from spotops.deploy import (
    IMAGE_PARAMETER,
    ordered_outputs,
    plan_stacks,
    read_record,
    record_deploy,
    stack_parameters,
    stack_tags,
)
from spotops.errors import NotDeployedError, SpotopsError, UsageError, translate_aws_error
from spotops.factory import CLIFactory
from spotops.images import SiteLocation, image_count
from spotops.images import empty_repository as empty_repository_images
from spotops.ops_package import offline_site_outputs, write_package
from spotops.push import choose_engine, git_tag
from spotops.stacks import ChangeSetReview, StackDeployer, StackEvent
from spotops.status import StatusReport

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A :class:`SpotopsError` on its way out, with the error's exit code."""

    def __init__(self, error: SpotopsError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]


def _console(*, err: bool) -> Console:
    stream = sys.stderr if err else sys.stdout
    width = None if stream.isatty() else 120
    return Console(file=stream, width=width, highlight=False, soft_wrap=True)


def stage_options(func: F) -> F:
    """``--stage`` and ``--region``, the same on every command."""
    func = click.option(
        "--region",
        default=None,
        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / the profile's).",
    )(func)
    func = click.option(
        "--stage",
        default=DEFAULT_STAGE,
        show_default=True,
        help="Stage to work on; its parameters live in config/<stage>.json.",
    )(func)
    return func


def guarded(func: F) -> F:
    """Turn errors into clear messages and exit codes; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpotopsError as exc:
            raise CommandError(exc) from exc
        except (ClientError, BotoCoreError) as exc:  # a call no module translated
            raise CommandError(translate_aws_error(exc, region=kwargs.get("region"))) from exc
        except KeyboardInterrupt:
            stage = kwargs.get("stage", DEFAULT_STAGE)
            click.echo(
                "\nInterrupted. Nothing was cancelled: CloudFormation carries on with what it "
                f"started. Follow it with `spotops status --stage {stage}`.",
                err=True,
            )
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Checkout holding infra/ and config/ (default: found from the current directory).",
)
@click.option("--profile", default=None, help="AWS profile (default: AWS_PROFILE).")
@click.version_option(package_name="spotops")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, profile: str | None) -> None:
    """Deploy and run the spotops site on AWS (or the local emulator)."""
    if not isinstance(ctx.obj, CLIFactory):
        ctx.obj = CLIFactory(project_dir=project_dir, profile=profile)


# ---- cost ------------------------------------------------------------------------------


def _cost_table(estimate: cost_model.Estimate, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Item")
    table.add_column("Quantity")
    table.add_column(f"{estimate.currency}/month", justify="right")
    for item in estimate.items:
        table.add_row(item.name, escape(item.detail), f"{item.monthly:,.2f}")
    table.add_section()
    table.add_row("Total", "", f"{estimate.total:,.2f}")
    return table


def _estimate(factory: CLIFactory, config: StageConfig) -> cost_model.Estimate:
    return cost_model.estimate(config.parameters, config.estimate, factory.price_table())


def _load(factory: CLIFactory, stage: str, params: Iterable[str]) -> StageConfig:
    overrides = parse_overrides(params)
    return factory.load_config(check_stage(stage)).with_overrides(overrides)


@cli.command()
@stage_options
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a parameter.")
@click.pass_obj
@guarded
def cost(factory: CLIFactory, stage: str, region: str | None, params: tuple[str, ...]) -> None:
    """Monthly cost estimate of a stage, line by line."""
    config = _load(factory, stage, params)
    estimate = _estimate(factory, config)
    prices = factory.price_table()
    _console(err=False).print(_cost_table(estimate, f"spotops {stage}: monthly estimate"))
    click.echo(f"Total: {estimate.total:.2f} {estimate.currency}/month")
    if region and region != prices.region:
        click.echo(f"Note: prices are for {prices.region}; {region} may differ.", err=True)
    assumptions = ", ".join(f"{k}={v:g}" for k, v in sorted(estimate.usage.items()))
    click.echo(
        f"Prices: {prices.region}, taken {prices.taken_on} (spotops/data/prices.json). "
        f"Assumptions: {assumptions}.",
        err=True,
    )


# ---- deploy ----------------------------------------------------------------------------


_STATUS_STYLE = (
    ("FAILED", "red"),
    ("ROLLBACK", "red"),
    ("COMPLETE", "green"),
    ("PROGRESS", "yellow"),
)


def _event_line(event: StackEvent) -> str:
    style = next((s for marker, s in _STATUS_STYLE if marker in event.status), "white")
    reason = f" [dim]{escape(event.reason)}[/dim]" if event.reason else ""
    return (
        f"{event.timestamp:%H:%M:%S} {escape(event.logical_id)} [dim]{escape(event.resource_type)}"
        f"[/dim] [{style}]{event.status}[/{style}]{reason}"
    )


def _stream(console: Console, label: str, events: Iterator[StackEvent]) -> None:
    with console.status(label) as spinner:
        for event in events:
            console.print(_event_line(event))
            spinner.update(f"{label} ({escape(event.logical_id)} {event.status})")


def _change_table(review: ChangeSetReview) -> Table:
    table = Table(
        title=f"{review.stack_name}: {review.change_set_type} change set", title_justify="left"
    )
    for column in ("Action", "Logical ID", "Type", "Replacement"):
        table.add_column(column)
    for change in review.changes:
        style = "red" if change.destructive else None
        table.add_row(
            change.action,
            change.logical_id,
            change.resource_type,
            change.replacement or "-",
            style=style,
        )
    if not review.changes:
        table.add_row("-", "(parameters or outputs only)", "", "")
    return table


def _confirm_or_discard(deployer: StackDeployer, review: ChangeSetReview) -> None:
    """Ask before a change set that replaces or deletes; on no, delete it and stop."""
    try:
        go = click.confirm(
            f"{review.stack_name}: this change set replaces or deletes resources (red rows). "
            "Execute it?",
            default=False,
            err=True,
        )
    except click.Abort:
        go = False
    if not go:
        deployer.discard(review)
        raise SpotopsError(
            f"Stopped before executing the change set of {review.stack_name}; it was deleted "
            "and the stack is unchanged. Run again with --yes to accept."
        )


@cli.command()
@stage_options
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a parameter.")
@click.option(
    "--image", default=None, help="Image to run (default: the image the service runs now)."
)
@click.option(
    "--yes", is_flag=True, help="Execute change sets that replace or delete without asking."
)
@click.pass_obj
@guarded
def deploy(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    params: tuple[str, ...],
    image: str | None,
    yes: bool,
) -> None:
    """Deploy every stack by change set; print the outputs, the site URL last."""
    err = _console(err=True)
    overrides = parse_overrides(params)
    explicit_image = image or overrides.pop(IMAGE_PARAMETER, None)
    config = factory.load_config(check_stage(stage))
    if IMAGE_PARAMETER in config.parameters:
        click.echo(
            f"Ignoring {IMAGE_PARAMETER} in {config.source}: the image comes from the running "
            "service (or --image), so a deploy never rolls the site back.",
            err=True,
        )
        del config.parameters[IMAGE_PARAMETER]
    config = config.with_overrides(overrides)
    plans = plan_stacks(factory.project_dir, factory.stack_specs(), config)
    session = factory.aws(region)
    deployer = factory.deployer(session)
    target = "the local emulator" if session.is_emulator else f"region {session.region}"
    err.print(f"Deploying stage [bold]{stage}[/bold] to {target}.")
    err.print(
        _cost_table(_estimate(factory, config), f"Estimated monthly cost of {stage} (spotops cost)")
    )
    tags = stack_tags(config)
    outputs: dict[str, dict[str, str]] = {}
    image_used = ""
    names = {p.spec.part: p.name for p in plans}
    for plan in plans:
        image_uri = ""
        if plan.takes_image:
            existing = deployer.describe(plan.name)
            site = SiteLocation.from_outputs(existing.outputs) if existing else None
            choice = factory.image_resolver(session).resolve(explicit_image, site)
            image_uri, image_used = choice.uri, choice.uri
            err.print(f"Image: {escape(choice.uri or '(none)')} [dim]({choice.source})[/dim]")
        fed = {k: v for part in plan.spec.fed_by for k, v in outputs.get(names[part], {}).items()}
        values = dict(config.parameters)
        if plan.spec.packaged:
            with err.status(f"Packaging {plan.name} (chalice package, then SAM translation)"):
                built = factory.ops_builder(session).build(
                    app=config.app, stage=stage, site_outputs=fed, tags=tags
                )
            size = built.package.zip_path.stat().st_size
            err.print(f"Package: {built.code_location} [dim]({size / 1024:.0f} KiB)[/dim]")
            plan = replace(plan, template_body=built.template_body, template_url=built.template_url)
            values.update(built.parameters)
        parameters = stack_parameters(
            plan, plans, values, image_uri=image_uri, fed_outputs=fed if plan.spec.fed_by else None
        )
        with err.status(f"Preparing the change set of {plan.name}"):
            review = deployer.prepare(
                plan.name, plan.template_body, parameters, tags, template_url=plan.template_url
            )
        if review.up_to_date:
            err.print(f"[green]{plan.name}: up to date[/green]")
        else:
            err.print(_change_table(review))
            if review.needs_confirmation and not yes:
                _confirm_or_discard(deployer, review)
            _stream(
                err,
                f"Deploying {plan.name}",
                deployer.execute(
                    review, plan.template_body, parameters, tags, template_url=plan.template_url
                ),
            )
            err.print(f"[green]{plan.name}: done[/green]")
        info = deployer.describe(plan.name)
        outputs[plan.name] = info.outputs if info else {}
    record_deploy(factory.project_dir, config, session.region, outputs, image_used)
    _print_outputs(outputs)


def _print_outputs(outputs: dict[str, dict[str, str]]) -> None:
    rows = ordered_outputs(outputs)
    width = max((len(key) for _, key, _ in rows), default=0)
    current = None
    for stack, key, value in rows:
        if key != "SiteUrl" and stack != current:
            click.echo(f"# {stack}")
            current = stack
        click.echo(f"{key:<{width}}  {value}")


@cli.command()
@stage_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the package (default: .spotops/package/<stage>).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Use the names the site template would give instead of the deployed site's outputs.",
)
@click.pass_obj
@guarded
def package(
    factory: CLIFactory, stage: str, region: str | None, out_dir: Path | None, offline: bool
) -> None:
    """Build the ops stack's package: the zip, the SAM template and its CloudFormation form."""
    config = factory.load_config(check_stage(stage))
    if offline:
        site_outputs = offline_site_outputs(config.app, stage)
        region = region or "us-east-1"
    else:
        session = factory.aws(region)
        region = session.region
        site_spec = next(s for s in factory.stack_specs() if s.part == "site")
        site = factory.deployer(session).describe(site_spec.stack_name(config.app, stage))
        site_outputs = site.outputs if site else {}
    out_dir = out_dir or factory.project_dir / ".spotops" / "package" / stage
    written = write_package(
        factory.project_dir,
        app=config.app,
        stage=stage,
        region=region,
        site_outputs=site_outputs,
        tags=stack_tags(config),
        out_dir=out_dir,
        runner=factory.runner,
    )
    for path in written:
        click.echo(path)


# ---- run-time controls -----------------------------------------------------------------


@cli.group("slack-webhook")
def slack_webhook() -> None:
    """The Slack incoming-webhook URL the ops toolkit posts to (a secret)."""


@slack_webhook.command("set")
@stage_options
@click.pass_obj
@guarded
def slack_webhook_set(factory: CLIFactory, stage: str, region: str | None) -> None:
    """Store the webhook URL, read from standard input (so it stays out of shell history)."""
    config = factory.load_config(check_stage(stage))
    if sys.stdin.isatty():
        url = click.prompt("Slack webhook URL", hide_input=True, err=True)
    else:
        url = sys.stdin.readline()
    session = factory.aws(region)
    name = controls.webhook_secret_name(config.app, stage)
    done = controls.set_webhook(
        session.client("secretsmanager"), name, url, create_missing=session.is_emulator
    )
    click.echo(
        f"Secret {name} {done}. The ops functions use it within 5 minutes (their cache).",
        err=True,
    )


def _switch_command(switch: str, help_text: str) -> None:
    values = controls.SWITCH_VALUES[switch]

    @cli.command(switch, help=help_text)
    @stage_options
    @click.argument("value", required=False, type=click.Choice(values))
    @click.pass_obj
    @guarded
    def command(factory: CLIFactory, stage: str, region: str | None, value: str | None) -> None:
        config = factory.load_config(check_stage(stage))
        session = factory.aws(region)
        ssm = session.client("ssm")
        name = controls.switch_parameter_name(config.app, stage, switch)
        if value is not None:
            controls.set_switch(ssm, name, switch, value)
            click.echo(f"{name} set to {value}; the ops functions see it within 30 s.", err=True)
        current = controls.read_switch(ssm, name)
        if current is None:
            raise NotDeployedError(
                f"Parameter {name} does not exist: deploy the ops stack with "
                f"`spotops deploy --stage {stage}`."
            )
        click.echo(current)


_switch_command(
    "kill-switch",
    "Show or set the kill switch: `on` stops every automated action that changes "
    "production, `off` lets automation act.",
)
_switch_command(
    "dry-run",
    "Show or set the dry-run switch: `true` makes automation report what it would do "
    "and change nothing.",
)
_switch_command(
    "chaos-leash",
    "Show or set the chaos leash: `on` (as deployed) reports the kills chaos would make, "
    "`off` lets it stop tasks. A dry run leashes it too.",
)


# ---- chaos -----------------------------------------------------------------------------


@cli.command()
@stage_options
@click.option(
    "--dry-run",
    "dry_run",
    is_flag=True,
    help="Required: decide and print, never stop a task (the scheduled function kills).",
)
@click.option("--service", "services", multiple=True, help="Only this service (repeatable).")
@click.option(
    "--at",
    "at",
    default=None,
    metavar="ISO-8601",
    help="Decide as if at this time (default: now), e.g. 2026-12-01T10:00:00Z.",
)
@click.option("--seed", default=None, help="Seed of the dice (default: a new one, printed).")
@click.pass_obj
@guarded
def chaos(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    dry_run: bool,
    services: tuple[str, ...],
    at: str | None,
    seed: str | None,
) -> None:
    """Run one chaos decision by hand and print every guard and its verdict."""
    if not dry_run:
        raise UsageError(
            "spotops chaos only decides and prints: pass --dry-run. Tasks are stopped only by "
            f"the scheduled chaos_tick function, once `spotops chaos-leash off --stage {stage}`."
        )
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--at {at!r} is not an ISO-8601 time.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    report = factory.chaos_planner(session).decide(
        config.app, stage, at=when, seed=seed, services=services
    )
    for line in factory.render_chaos(report):
        click.echo(line)


# ---- push ------------------------------------------------------------------------------


@cli.command()
@stage_options
@click.option(
    "--allow-dirty", is_flag=True, help="Push even with uncommitted changes (tag <commit>-dirty)."
)
@click.pass_obj
@guarded
def push(factory: CLIFactory, stage: str, region: str | None, allow_dirty: bool) -> None:
    """Build the site image, tag it with the git commit, push it; print its digest."""
    config = factory.load_config(check_stage(stage))
    site_spec = next(s for s in factory.stack_specs() if s.part == "site")
    site_name = site_spec.stack_name(config.app, stage)
    session = factory.aws(region)
    site = factory.deployer(session).describe(site_name)
    if site is None or not site.outputs.get("RepositoryUri"):
        raise NotDeployedError(
            f"Stack {site_name} does not exist in {session.region} (or has no RepositoryUri "
            f"output). Run `spotops deploy --stage {stage}` first: it creates the repository."
        )
    tag = git_tag(factory.runner, factory.project_dir, allow_dirty=allow_dirty)
    engine = choose_engine(factory.runner, factory.which)
    click.echo(f"Building with {engine.name}: {engine.reason}.", err=True)
    err = _console(err=True)
    with err.status("Pushing") as spinner:

        def notify(message: str) -> None:
            err.print(escape(message))
            spinner.update(escape(message))

        result = factory.pusher(session, notify).push(
            repository_name=site.outputs["RepositoryName"],
            repository_uri=site.outputs["RepositoryUri"],
            tag=tag,
            engine=engine,
            context=factory.project_dir / "site",
        )
    click.echo(
        f"Pushed {result.image} as {result.pinned}. ECR's push event starts the redeploy; "
        f"follow it with `spotops status --stage {stage}`.",
        err=True,
    )
    click.echo(result.digest)


# ---- destroy ---------------------------------------------------------------------------


@cli.command()
@stage_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--empty-repository", is_flag=True, help="Delete every image in the ECR repository first."
)
@click.pass_obj
@guarded
def destroy(
    factory: CLIFactory, stage: str, region: str | None, yes: bool, empty_repository: bool
) -> None:
    """Delete the stage's stacks in reverse order."""
    config = factory.load_config(check_stage(stage))
    specs = list(reversed(factory.stack_specs()))
    session = factory.aws(region)
    deployer = factory.deployer(session)
    found = [(spec, deployer.describe(spec.stack_name(config.app, stage))) for spec in specs]
    existing = [(spec, info) for spec, info in found if info is not None]
    if not existing:
        click.echo(
            f"Nothing to destroy: stage {stage} has no stacks in {session.region}.", err=True
        )
        return
    names = [info.name for _, info in existing]
    if not yes:
        click.confirm(
            f"Delete {', '.join(names)} in {session.region}? The site goes offline and its "
            "resources are deleted",
            default=False,
            abort=True,
            err=True,
        )
    site = next((info for spec, info in existing if spec.part == "site"), None)
    repository = site.outputs.get("RepositoryName") if site else None
    ecr = session.client("ecr")
    if repository and empty_repository:
        deleted = empty_repository_images(ecr, repository)
        click.echo(f"Deleted {deleted} image(s) from {repository}.", err=True)
    elif repository and image_count(ecr, repository):
        click.echo(
            f"Warning: {repository} still holds images; deleting the stack fails if the "
            "repository is not empty. Use --empty-repository to delete them first.",
            err=True,
        )
    artifacts = site.outputs.get("ArtifactBucketName") if site else None
    err = _console(err=True)
    for name in names:
        if site is not None and name == site.name and artifacts:
            # Build artifacts only (rebuilt by every deploy); a bucket must be empty to go.
            count = empty_bucket(session.client("s3"), artifacts)
            click.echo(f"Deleted {count} ops package version(s) from {artifacts}.", err=True)
        _stream(err, f"Deleting {name}", deployer.delete(name))
        err.print(f"[green]{name}: deleted[/green]")
        click.echo(name)


# ---- status ----------------------------------------------------------------------------


@cli.command()
@stage_options
@click.pass_obj
@guarded
def status(factory: CLIFactory, stage: str, region: str | None) -> None:
    """The stacks, the service and its deployments, the image, alarms in ALARM."""
    config = factory.load_config(check_stage(stage))
    specs = factory.stack_specs()
    names = [spec.stack_name(config.app, stage) for spec in specs]
    site_name = next(s.stack_name(config.app, stage) for s in specs if s.part == "site")
    session = factory.aws(region)
    report = factory.status_reader(session).read(
        session.region, names, site_name, f"{config.app}-{stage}"
    )
    if not report.deployed:
        record = read_record(factory.project_dir, stage)
        hint = ""
        if record and record.get("region") != session.region:
            hint = f" It was last deployed to {record.get('region')}: pass --region."
        raise NotDeployedError(
            f"Stage {stage} has no stacks in {session.region}.{hint} Deploy it with "
            f"`spotops deploy --stage {stage}`."
        )
    _print_status(report)


def _print_status(report: StatusReport) -> None:
    click.echo(f"Stacks ({report.region})")
    for name, info in report.stacks:
        click.echo(f"  {name:<28} {info.status if info else 'NOT DEPLOYED'}")
        if info and info.reason and "FAILED" in info.status + info.reason:
            click.echo(f"    {info.reason}")
    service = report.service
    if service:
        click.echo(f"Service {service.name} (cluster {service.cluster}): {service.status}")
        click.echo(
            f"  desired {service.desired}  running {service.running}  pending {service.pending}"
        )
        if service.strategy:
            click.echo(f"  strategy: {'; '.join(service.strategy)}")
        for provider, counts in service.tasks_by_provider.items():
            states = "  ".join(f"{state.lower()} {n}" for state, n in sorted(counts.items()))
            click.echo(f"  tasks on {provider}: {states}")
        for d in service.deployments:
            state = d.rollout_state or "-"
            click.echo(
                f"  deployment {d.status} {state}: desired {d.desired} running {d.running} "
                f"pending {d.pending}  {d.task_definition.rsplit('/', 1)[-1]}"
            )
            if d.reason:
                click.echo(f"    {d.reason}")
        click.echo(f"  image: {service.image or '-'}")
        if service.digests:
            click.echo(f"  running digests: {', '.join(service.digests)}")
    if report.alarms:
        click.echo("Alarms in ALARM")
        for name, reason in report.alarms:
            click.echo(f"  {name}: {reason}")
    else:
        click.echo("Alarms in ALARM: none")
    if report.site_url:
        click.echo(f"SiteUrl  {report.site_url}")


def main() -> None:
    """Console script entry point."""
    cli(prog_name="spotops")
