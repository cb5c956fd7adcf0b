"""The ``spotops`` command line: wiring only. Each command gets its collaborators from the
factory in ``ctx.obj``, calls them and hands the results to :mod:`spotops.cli.render`.

Data goes to stdout, messages to stderr. Exit codes: 0 done (or nothing to do, or a
confirmation declined), 1 failure, 2 bad usage or input, 130 interrupted (the stack carries
on; ``spotops status`` follows it).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.markup import escape

from spotops.aws import AwsSession
from spotops.cli import render
from spotops.errors import NotDeployedError, SpotopsError, UsageError, translate_aws_error
from spotops.factory import CLIFactory
from spotops.image.build import choose_engine
from spotops.image.push import git_tag
from spotops.ops import simulate as simulation
from spotops.ops import switches as controls
from spotops.ops.package import (
    deployed_package_inputs,
    offline_artifact_bucket,
    offline_site_outputs,
    ops_function_names,
    write_package,
)
from spotops.proof.doctor import run_doctor
from spotops.proof.rows import ProofReport
from spotops.proof.verify import run_verify
from spotops.reports import cost as cost_model
from spotops.reports.diagnosis import diagnosis_block
from spotops.reports.logs import (
    ALL,
    ALL_OPS,
    SITE_SOURCE,
    LogSource,
    choose_sources,
    parse_since,
)
from spotops.stage.config import (
    DEFAULT_STAGE,
    StageConfig,
    check_stage,
    parse_overrides,
    parse_stage_config,
)
from spotops.stage.deploy import (
    IMAGE_PARAMETER,
    StageDeployment,
    plan_stacks,
    read_record,
    record_deploy,
    stack_tags,
)
from spotops.stage.destroy import StageDestruction
from spotops.stage.profiles import (
    load_profiles,
    prompted,
    refuse_overwrite,
    stage_file,
    write_stage_file,
)
from spotops.stage.runbook_url import PARAMETER as RUNBOOK_PARAMETER
from spotops.stage.runbook_url import read_git_origin, runbook_default
from spotops.stage.stacks import StackInfo

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A :class:`SpotopsError` on its way out, with the error's exit code."""

    def __init__(self, error: SpotopsError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]


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


# ---- shared lookups --------------------------------------------------------------------


def _load(factory: CLIFactory, stage: str, params: Iterable[str] = ()) -> StageConfig:
    overrides = parse_overrides(params)
    return factory.load_config(check_stage(stage)).with_overrides(overrides)


def _stack_name(factory: CLIFactory, config: StageConfig, part: str) -> str:
    spec = next(s for s in factory.stack_specs() if s.part == part)
    return spec.stack_name(config.app, config.stage)


def _site(factory: CLIFactory, session: AwsSession, config: StageConfig) -> StackInfo | None:
    """The site stack: the one lookup every command that needs it shares."""
    return factory.deployer(session).describe(_stack_name(factory, config, "site"))


def _target(session: AwsSession) -> str:
    """Where calls go, as every question names it."""
    return session.target.describe(session.region)


def _estimate(factory: CLIFactory, config: StageConfig) -> cost_model.Estimate:
    """The stage's estimate, its parameters checked against the templates first."""
    plans = plan_stacks(factory.project_dir, factory.stack_specs(), config)
    found = cost_model.inventory({p.spec.part: p.template for p in plans}, config.parameters)
    return cost_model.estimate(found, config.estimate, factory.price_table())


# ---- cost ------------------------------------------------------------------------------


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
    render.console(err=False).print(
        render.cost_table(estimate, f"spotops {stage}: monthly estimate")
    )
    click.echo(f"Total: {estimate.total:.2f} {estimate.currency}/month")
    if region and region != prices.region:
        click.echo(f"Note: prices are for {prices.region}; {region} may differ.", err=True)
    if estimate.free_tier:
        click.echo(
            f"List prices. In an account running nothing else, AWS's always-free allowances "
            f"would take off about {estimate.free_tier:.2f}.",
            err=True,
        )
    assumptions = ", ".join(f"{k}={v:g}" for k, v in sorted(estimate.usage.items()))
    click.echo(
        f"Prices: {prices.region}, taken {prices.taken_on} (spotops/data/prices.json). "
        f"Assumptions: {assumptions}.",
        err=True,
    )


# ---- deploy ----------------------------------------------------------------------------


@cli.command()
@stage_options
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a parameter.")
@click.option(
    "--image",
    default=None,
    help="Image of the stage's repository to run: a release or commit tag (v1.0.0), a digest "
    "(sha256:...) or the full repository URI; checked before any stack changes and pinned by "
    "digest (default: the image the service runs now).",
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
    estimate = _estimate(factory, config)  # checks every parameter before any AWS call
    session = factory.aws(region)
    progress = render.ConsoleProgress(_target(session))
    err = render.console(err=True)
    err.print(f"Deploying stage [bold]{stage}[/bold] to {escape(_target(session))}.")
    err.print(render.cost_table(estimate, f"Estimated monthly cost of {stage} (spotops cost)"))
    defaults = {}
    if RUNBOOK_PARAMETER not in config.parameters:  # the stage's own value (or --param) wins
        runbooks = runbook_default(read_git_origin(factory.runner, factory.project_dir), stage)
        click.echo(runbooks.note, err=True)
        defaults = {RUNBOOK_PARAMETER: runbooks.url} if runbooks.url else {}
    deployment = StageDeployment(
        factory.project_dir,
        factory.stack_specs(),
        stacks=factory.deployer(session),
        images=factory.image_resolver(session),
        ops_builder=lambda: factory.ops_builder(session),
        iam=session.client("iam"),
        s3=session.client("s3"),
        region=session.region,
        target=session.target,
        progress=progress,
        parameter_defaults=defaults,
        diagnose=lambda site: diagnosis_block(session, site.cluster, site.service),
    )
    result = deployment.run(config, image=explicit_image, yes=yes)
    if result.declined:
        done = ", ".join(result.outputs) or "none"
        click.echo(
            f"Nothing changed in {result.declined}: its change set was deleted unexecuted. "
            f"Stacks deployed before it: {done}. Run again with --yes to accept the change.",
            err=True,
        )
        return
    record_deploy(factory.project_dir, config, session.region, result.outputs, result.image)
    render.print_outputs(result.outputs)


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
        bucket = offline_artifact_bucket(config.app, region)
    else:
        session = factory.aws(region)
        region = session.region
        site_outputs, bucket = deployed_package_inputs(
            factory.deployer(session),
            app=config.app,
            site_stack=_stack_name(factory, config, "site"),
            region=region,
        )
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
        bucket=bucket,
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
        session.client("secretsmanager"),
        name,
        url,
        create_missing=session.target.creates_missing_secrets,
    )
    click.echo(
        f"Secret {name} {done}. The ops functions use it within 5 minutes (their cache).",
        err=True,
    )


def _switch_command(switch: str, help_text: str) -> None:
    # One set of words for every switch, any case; click refuses the rest with the list.
    words = click.Choice(controls.ON_WORDS + controls.OFF_WORDS, case_sensitive=False)

    @cli.command(switch, help=f"{help_text} VALUE: {controls.SWITCH_WORDS_HELP}.")
    @stage_options
    @click.argument("value", required=False, type=words, metavar="[on|off]")
    @click.pass_obj
    @guarded
    def command(factory: CLIFactory, stage: str, region: str | None, value: str | None) -> None:
        config = factory.load_config(check_stage(stage))
        session = factory.aws(region)
        ssm = session.client("ssm")
        name = controls.switch_parameter_name(config.app, stage, switch)
        if value is not None:
            stored = controls.set_switch(ssm, name, switch, value)
            shown = controls.shown_value(switch, stored)
            click.echo(f"{name} set to {shown}; the ops functions see it within 30 s.", err=True)
        current = controls.read_switch(ssm, name)
        if current is None:
            raise NotDeployedError(
                f"Parameter {name} does not exist: deploy the ops stack with "
                f"`spotops deploy --stage {stage}`."
            )
        click.echo(controls.shown_value(switch, current))


_switch_command(
    "kill-switch",
    "Show or set the kill switch: `on` stops every automated action that changes "
    "production, `off` lets automation act.",
)
_switch_command(
    "dry-run",
    "Show or set the dry-run switch: `on` makes automation report what it would do "
    "and change nothing, `off` lets it act.",
)
_switch_command(
    "chaos-leash",
    "Show or set the chaos leash: `on` (as deployed) reports the kills chaos would make, "
    "`off` lets it stop tasks. A dry run leashes it too.",
)


# ---- dead letters ----------------------------------------------------------------------


def _dead_letter_queues(
    factory: CLIFactory, stage: str, region: str | None, queue: str | None
) -> tuple[StageConfig, AwsSession, dict[str, str], Any]:
    """The stage, its session, ``{queue: url}`` and the SQS edge, or a clear error."""
    from spotops.ops import dead_letters

    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    ops = factory.deployer(session).describe(_stack_name(factory, config, "ops"))
    if ops is None:
        raise NotDeployedError(
            f"Stage {stage} has no ops stack on {_target(session)}: deploy it with "
            f"`spotops deploy --stage {stage}`."
        )
    urls = dead_letters.queue_urls(ops.outputs, queue, stage)
    return config, session, urls, dead_letters.DeadLetterQueues(session.client("sqs"))


_QUEUE_OPTION = click.option(
    "--queue",
    type=click.Choice(["slack", "events"], case_sensitive=False),
    default=None,
    help="Only this queue (default: both).",
)


@cli.group("dead-letters")
def dead_letters_group() -> None:
    """What the ops toolkit could not deliver or handle: list, replay, purge
    (runbooks/ops-dead-letters.md)."""


@dead_letters_group.command("list")
@stage_options
@_QUEUE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print each message's raw fields as JSON.")
@click.pass_obj
@guarded
def dead_letters_list(
    factory: CLIFactory, stage: str, region: str | None, queue: str | None, as_json: bool
) -> None:
    """Count, age, kind and a one-line summary of each waiting message; nothing is removed."""
    _, _, urls, queues = _dead_letter_queues(factory, stage, region, queue and queue.lower())
    now = datetime.now(UTC)
    for name, url in urls.items():
        letters = queues.read(name, url)
        queues.release(url, letters)
        if as_json:
            for letter in letters:
                click.echo(json.dumps(_letter_json(letter), default=str))
            continue
        click.echo(f"{name}: {len(letters)} waiting")
        for letter in letters:
            click.echo(f"  {letter.age(now):>6}  {letter.kind:<8} {letter.summary}")


def _letter_json(letter: Any) -> dict[str, Any]:
    return {
        "queue": letter.queue,
        "message_id": letter.message_id,
        "kind": letter.kind,
        "function": letter.function,
        "sent_at": letter.sent_at,
        "summary": letter.summary,
        "payload": letter.payload,
    }


@dead_letters_group.command("replay")
@stage_options
@_QUEUE_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@guarded
def dead_letters_replay(
    factory: CLIFactory, stage: str, region: str | None, queue: str | None, yes: bool
) -> None:
    """Re-post Slack messages and re-invoke the functions of events the runbook's rules allow;
    delete each message only once its replay was delivered."""
    from spotops.ops import dead_letters
    from spotops.proof.verify_facts import read_webhook_url

    config, session, urls, queues = _dead_letter_queues(
        factory, stage, region, queue and queue.lower()
    )
    if not yes:
        try:
            go = click.confirm(
                f"Replay what the rules allow from {', '.join(urls)} of stage {stage} on "
                f"{_target(session)}?",
                default=False,
                err=True,
            )
        except click.Abort:
            go = False
        if not go:
            click.echo("Nothing changed: no message was replayed or deleted.", err=True)
            return
    site = _site(factory, session, config)
    site_outputs = site.outputs if site else {}
    webhook: list[str] = []

    def facts(letter: dead_letters.DeadLetter) -> dead_letters.ServiceFacts | None:
        if not site_outputs.get("ServiceName"):
            return None
        detail = letter.payload.get("detail") or {}
        return dead_letters.read_service_facts(
            session.client("ecs"),
            session.client("ecr"),
            session.client("lambda"),
            cluster=site_outputs.get("ClusterName", ""),
            service=site_outputs["ServiceName"],
            repository=str(detail.get("repository-name") or site_outputs.get("RepositoryName", "")),
            function=letter.function,
        )

    def deliver(letter: dead_letters.DeadLetter) -> dead_letters.Delivery:
        if letter.kind == dead_letters.SLACK:
            if not webhook:
                secret = controls.webhook_secret_name(config.app, stage)
                webhook.append(read_webhook_url(session.client("secretsmanager"), secret))
            return dead_letters.post_to_slack(webhook[0], letter.payload)
        return dead_letters.invoke_async(session.client("lambda"), letter.function, letter.payload)

    failed = 0
    for name, url in urls.items():
        letters = queues.read(name, url, hide_seconds=600)
        outcomes = dead_letters.replay(queues, url, letters, facts=facts, deliver=deliver)
        click.echo(f"{name}: {len(outcomes)} read")
        for outcome in outcomes:
            if outcome.delivery is None:
                verdict = f"kept: {outcome.decision.reason}"
            elif outcome.deleted:
                verdict = f"replayed and deleted: {outcome.delivery.detail}"
            else:
                failed += 1
                verdict = f"replay FAILED, kept: {outcome.delivery.detail}"
            click.echo(f"  {outcome.letter.kind:<8} {outcome.letter.summary[:80]}")
            click.echo(f"           {verdict}")
    if failed:
        raise SpotopsError(f"{failed} replay(s) failed; those messages are still in the queue.")


@dead_letters_group.command("purge")
@stage_options
@click.option(
    "--queue",
    type=click.Choice(["slack", "events"], case_sensitive=False),
    required=True,
    help="The queue to empty.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@guarded
def dead_letters_purge(
    factory: CLIFactory, stage: str, region: str | None, queue: str, yes: bool
) -> None:
    """Delete every message of one queue, read or not. Final: keep a copy first with
    `spotops dead-letters list --queue QUEUE --json > copy.json`."""
    _, session, urls, queues = _dead_letter_queues(factory, stage, region, queue.lower())
    (url,) = urls.values()
    waiting = queues.count(url)
    if not yes:
        try:
            go = click.confirm(
                f"Delete all {waiting} message(s) of the {queue.lower()} dead-letter queue of "
                f"stage {stage} on {_target(session)}? This cannot be undone",
                default=False,
                err=True,
            )
        except click.Abort:
            go = False
        if not go:
            click.echo("Nothing changed: no message was deleted.", err=True)
            return
    queues.purge(url)
    click.echo(f"Purged the {queue.lower()} dead-letter queue ({waiting} message(s)).", err=True)


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


@cli.command()
@stage_options
@click.argument("kind", type=click.Choice(sorted(simulation.KINDS)))
@click.argument("arguments", nargs=-1)
@click.option(
    "--dry-run",
    "dry_run",
    is_flag=True,
    help="Change nothing: every action only says what it would do (forced on a real account).",
)
@click.pass_obj
@guarded
def simulate(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    kind: str,
    arguments: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Send one event of KIND (ecr-push TAG, deployment completed|failed, alarm NAME STATE,
    spot-interruption, placement-failure, chaos-tick, image-scan TAG, smoke-test URL) through
    the deployed ops function, run here. On the local emulator, what AWS would do first is
    played by a stand-in that says so: ecr-push puts a missing image, deployment ends the
    service's deployment (emulator only), image-scan starts the scan."""
    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    if not session.target.acts_for_real_in_rehearsals and not dry_run:
        raise UsageError(
            "Against a real account, simulate runs only with --dry-run: it rehearses what the "
            "automation would do and changes nothing."
        )
    rehearsal = factory.rehearsal(session, config.app, stage, dry_run=dry_run)
    try:
        found, ran = simulation.rehearse(rehearsal, kind, arguments)
    finally:
        for note in rehearsal.notes:
            click.echo(note, err=True)
    status, reason = simulation.verdict(ran)
    click.echo(
        f"{rehearsal.function_name(found.function)} ({found.help}): {status} - {reason}",
        err=True,
    )
    click.echo(json.dumps(ran.result, indent=2, default=str))


# ---- rollback and the freeze -----------------------------------------------------------


@cli.command()
@stage_options
@click.option(
    "--to",
    "to",
    default=None,
    metavar="REVISION|DIGEST|TAG",
    help=(
        "Roll back to this revision (family:N, N or a task definition ARN), image digest or tag "
        "(default: the revision that ran before, from the ledger)."
    ),
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", "dry_run", is_flag=True, help="Say what it would do; change nothing.")
@click.pass_obj
@guarded
def rollback(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    to: str | None,
    yes: bool,
    dry_run: bool,
) -> None:
    """Roll the service back (ROLLING: update it; CANARY/LINEAR in progress: stop the
    deployment with ROLLBACK), follow it until ECS says done, and freeze pushes until
    `spotops unfreeze` (runbooks/rollback.md)."""
    from spotops.ops import rollback as rolling

    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    runner = rolling.Rollback(
        session.client,
        app=config.app,
        stage=stage,
        target=session.target,
        progress=lambda line: click.echo(line, err=True),
    )
    prepared = runner.prepare(to)
    said = rolling.describe_prepared(prepared, _target(session))
    if dry_run:
        click.echo(f"Dry run, nothing changed. Would {said[0].lower()}{said[1:]}")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"{said} Not asked: no terminal to ask on. Pass --yes to roll back (or "
                "--dry-run to see what it would do)."
            )
        if not click.confirm(f"{said} Go?", default=False, err=True):
            click.echo("Nothing changed.", err=True)
            return
    started = datetime.now(UTC)
    outcome = runner.run(prepared)
    for note in outcome.notes:
        click.echo(note, err=True)
    for line in rolling.render_outcome(outcome):
        click.echo(line)
    seconds = (datetime.now(UTC) - started).total_seconds()
    click.echo(f"Took {seconds:.1f}s.", err=True)
    if not outcome.succeeded:
        raise SpotopsError(
            f"ECS ended the rollback {outcome.state}: see `spotops status --stage {stage}` and "
            "runbooks/rollback.md."
        )


@cli.command()
@stage_options
@click.option(
    "--reason", default="planned quiet period", show_default=True, help="Why, as people read it."
)
@click.pass_obj
@guarded
def freeze(factory: CLIFactory, stage: str, region: str | None, reason: str) -> None:
    """Freeze push-redeploys (a planned quiet period): a push is recorded, not deployed,
    until `spotops unfreeze`."""
    from spotops.ops.freeze import Freezer, describe_freeze

    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    froze, now = Freezer(session.client, app=config.app, stage=stage).freeze(reason)
    held = describe_freeze(now) if now else ""
    if froze:
        click.echo(f"Pushes frozen {held}. Resume with `spotops unfreeze --stage {stage}`.")
    else:
        click.echo(f"Pushes were frozen already {held}; nothing changed.")


@cli.command()
@stage_options
@click.option(
    "--deploy-latest",
    is_flag=True,
    help="Then deploy the newest push refused while frozen (through the redeploy function).",
)
@click.pass_obj
@guarded
def unfreeze(factory: CLIFactory, stage: str, region: str | None, deploy_latest: bool) -> None:
    """Lift the freeze of push-redeploys; with --deploy-latest deliver the newest frozen push
    to the redeploy function, as EventBridge would have."""
    from spotops.ops.freeze import Freezer, describe_freeze

    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    freezer = Freezer(session.client, app=config.app, stage=stage)
    lifted = freezer.unfreeze()
    if lifted is None:
        click.echo("Pushes were not frozen; nothing to lift.")
    else:
        click.echo(f"Pushes deploy again: lifted the freeze {describe_freeze(lifted)}.")
    if not deploy_latest:
        held = freezer.hold_back_frozen()
        if held is not None:
            click.echo(
                f"Pushes refused while frozen stay undeployed (newest: {held.tag or '-'} "
                f"({held.digest[:19]}…)); the next push deploys, or push one of them again."
            )
        return
    rehearsal = factory.rehearsal(session, config.app, stage, dry_run=False)
    push, result = freezer.deploy_latest(rehearsal)
    if push is None:
        click.echo("No push was refused while frozen: nothing to deploy.")
        return
    click.echo(
        f"Delivered the push of {push.tag or '-'} ({push.digest[:19]}…) to "
        f"{rehearsal.function_name('redeploy_on_push')}: {result.get('status', '?')} - "
        f"{result.get('reason', '')}",
        err=True,
    )
    click.echo(json.dumps(result, indent=2, default=str))


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
    session = factory.aws(region)
    site = _site(factory, session, config)
    if site is None or not site.outputs.get("RepositoryUri"):
        raise NotDeployedError(
            f"Stack {_stack_name(factory, config, 'site')} does not exist in {session.region} "
            f"(or has no RepositoryUri output). Run `spotops deploy --stage {stage}` first: "
            "it creates the repository."
        )
    tag = git_tag(factory.runner, factory.project_dir, allow_dirty=allow_dirty)
    engine = choose_engine(factory.runner, factory.which)
    click.echo(f"Building with {engine.name}: {engine.reason}.", err=True)
    err = render.console(err=True)
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
    session = factory.aws(region)
    destruction = StageDestruction(
        factory.stack_specs(),
        stacks=factory.deployer(session),
        clients=session.client,
        region=session.region,
        target=session.target,
        progress=render.ConsoleDestroyProgress(),
    )
    existing = destruction.find(config)
    where = _target(session)
    if not existing.found:
        click.echo(f"Nothing to destroy: stage {stage} has no stacks on {where}.", err=True)
        return
    # Before the question: a "yes" must never start a destroy that stops halfway.
    destruction.refuse_blockers(existing, empty_repository=empty_repository)
    if not yes:
        try:
            go = click.confirm(
                f"Delete {', '.join(existing.names)} on {where}? The site goes offline and its "
                "resources are deleted",
                default=False,
                err=True,
            )
        except click.Abort:
            go = False
        if not go:
            click.echo("Nothing changed: no stack was deleted.", err=True)
            return
    destruction.run(config, existing, empty_repository=empty_repository)


# ---- status ----------------------------------------------------------------------------


@cli.command()
@stage_options
@click.pass_obj
@guarded
def status(factory: CLIFactory, stage: str, region: str | None) -> None:
    """Stacks, service, tasks (capacity, health, image), CPU and memory, alarms, ops toolkit."""
    config = factory.load_config(check_stage(stage))
    names = [spec.stack_name(config.app, stage) for spec in factory.stack_specs()]
    session = factory.aws(region)
    ops_stack = next(
        (s.stack_name(config.app, stage) for s in factory.stack_specs() if s.part == "ops"), None
    )
    report = factory.status_reader(session).read(
        session.region,
        names,
        _stack_name(factory, config, "site"),
        f"{config.app}-{stage}",
        ops_stack=ops_stack,
        functions=ops_function_names(factory.project_dir),
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
    render.print_status(report)


# ---- doctor and verify -------------------------------------------------------------------


def _prove(report: ProofReport, as_json: bool) -> None:
    """Print the rows and leave with the report's exit code (1 when a row fails)."""
    if as_json:
        click.echo(report.to_json())
    else:
        render.print_proof(report)
    if report.exit_code:
        sys.exit(report.exit_code)


@cli.command()
@stage_options
@click.option(
    "--send-test", is_flag=True, help="Post one test message through the stage's Slack webhook."
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.pass_obj
@guarded
def doctor(
    factory: CLIFactory, stage: str, region: str | None, send_test: bool, as_json: bool
) -> None:
    """Read-only checks of the account and the stage, most useful before the first deploy.

    Exit 0 when nothing blocks a deploy (warnings allowed), 1 when a row fails.
    """
    _prove(run_doctor(factory, stage=stage, region=region, send_test=send_test), as_json)


@cli.command()
@stage_options
@click.option("--no-slack", is_flag=True, help="Do not post the verification message to Slack.")
@click.option(
    "--site-url",
    default=None,
    help="Where the site answers, when not through the stage's load balancer (the demo's site).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.pass_obj
@guarded
def verify(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    no_slack: bool,
    site_url: str | None,
    as_json: bool,
) -> None:
    """After a deploy, prove each flow of the toolkit on the account, changing nothing users see.

    Exit 0 when every flow works, 1 naming the first that does not and its runbook.
    """
    report = run_verify(factory, stage=stage, region=region, slack=not no_slack, site_url=site_url)
    _prove(report, as_json)


# ---- logs ------------------------------------------------------------------------------


@cli.command()
@stage_options
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help=f"What to read: {SITE_SOURCE} (default), an ops function's name, {ALL_OPS} (every "
    f"function) or {ALL}. Repeatable.",
)
@click.option(
    "--since", default="10m", show_default=True, help="How far back: 30s, 10m, 2h, 1d, or a time."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option(
    "--filter",
    "pattern",
    default="",
    help="CloudWatch Logs filter pattern, e.g. ERROR or '{ $.level = \"ERROR\" }'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each event exactly as logged.")
@click.pass_obj
@guarded
def logs(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    sources: tuple[str, ...],
    since: str,
    follow: bool,
    pattern: str,
    as_json: bool,
) -> None:
    """The site's and the ops functions' logs, JSON lines made readable."""
    config = factory.load_config(check_stage(stage))
    start = parse_since(since)
    functions = ops_function_names(factory.project_dir)
    session = factory.aws(region)
    site = _site(factory, session, config)
    chosen = choose_sources(
        sources,
        app=config.app,
        stage=stage,
        functions=functions,
        site_outputs=site.outputs if site else None,
    )
    reader = factory.log_reader(session)
    width = max(len(s.label) for s in chosen)

    def show(line: Any) -> None:
        if as_json:
            click.echo(line.message)
        else:
            render.console(err=False).print(render.log_line(line, width=width))

    def waiting(missing: Sequence[LogSource]) -> None:
        for source in missing:
            click.echo(f"No log group {source.group} yet ({source.label} has not run).", err=True)
        labels = ", ".join(s.label for s in chosen)
        click.echo(f"Waiting for new events from {labels} (Ctrl-C stops).", err=True)

    if follow:
        try:
            for line in reader.follow(chosen, start, pattern, caught_up=waiting):
                show(line)
        except KeyboardInterrupt:
            pass  # the way to stop following: not an error
        return
    lines, missing = reader.read(chosen, start, pattern)
    for source in missing:
        click.echo(f"No log group {source.group} yet ({source.label} has not run).", err=True)
    for line in lines:
        show(line)
    if not lines and len(missing) < len(chosen):
        click.echo(f"No events since {start:%Y-%m-%d %H:%M:%S} UTC.", err=True)


# ---- timeline and incident report ---------------------------------------------------------

TIMELINE_SINCE_HELP = "How far back: 30m, 2h, 3d (a duration) or an ISO-8601 time."


def _timeline_reader(factory: CLIFactory, session: AwsSession, config: StageConfig) -> Any:
    """The stage's sources and their reader (imported here: it puts ops_lambdas/ on the path)."""
    from spotops.reports.timeline import TimelineReader, stage_sources

    deployer = factory.deployer(session)
    stacks: dict[str, tuple[str, dict[str, str] | None]] = {
        part: (f"{config.app}-{config.stage}-{part}", None) for part in ("ops", "site")
    }
    for spec in factory.stack_specs():
        if spec.part in stacks:
            name = spec.stack_name(config.app, config.stage)
            found = deployer.describe(name)
            stacks[spec.part] = (name, found.outputs if found else None)
    sources = stage_sources(config.app, config.stage, ops=stacks["ops"], site=stacks["site"])
    return sources, TimelineReader(session.client)


@cli.command()
@stage_options
@click.option("--since", default="2h", show_default=True, help=TIMELINE_SINCE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the events.")
@click.pass_obj
@guarded
def timeline(
    factory: CLIFactory, stage: str, region: str | None, since: str, as_json: bool
) -> None:
    """Pushes, deployments, freezes, alarms, remediations, chaos, Spot and switches, in time order.

    Each line is `time  source  kind  what`; a source that cannot be read is named on stderr.
    """
    config = factory.load_config(check_stage(stage))
    start = parse_since(since)
    sources, reader = _timeline_reader(factory, factory.aws(region), config)
    render.print_timeline(reader.read(sources, start), as_json=as_json)


@cli.group("incident")
def incident_group() -> None:
    """Write up an incident from the stage's timeline."""


@incident_group.command("report")
@stage_options
@click.option("--since", default=None, help=f"{TIMELINE_SINCE_HELP} Default: 24h.")
@click.option("--alarm", default=None, help="Centre the report on this alarm's latest episode.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write it here."
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.pass_obj
@guarded
def incident_report(
    factory: CLIFactory,
    stage: str,
    region: str | None,
    since: str | None,
    alarm: str | None,
    out: Path | None,
    force: bool,
) -> None:
    """A Markdown postmortem draft: impact window, times to detect/mitigate/recover, timeline."""
    from spotops.reports.incident import ReportInput, report

    if since and alarm:
        raise UsageError("Give --since or --alarm, not both (--alarm looks back 24h).")
    if out is not None and out.exists() and not force:
        raise UsageError(f"{out} exists: pass --force to overwrite it.")
    config = factory.load_config(check_stage(stage))
    start = parse_since(since or "24h")
    session = factory.aws(region)
    sources, reader = _timeline_reader(factory, session, config)
    prefix = sources.alarm_prefix
    try:
        descriptions = reader.alarm_descriptions(prefix)
    except (ClientError, BotoCoreError):
        descriptions = {}  # the report then names no runbook for the alarm; the rest stands
    name = None
    if alarm:
        name = alarm if alarm.startswith(prefix) else prefix + alarm
        if descriptions and name not in descriptions:
            known = ", ".join(sorted(n.removeprefix(prefix) for n in descriptions))
            raise UsageError(f"No alarm {alarm!r} in stage {stage}: use one of {known}.")
    site = _site(factory, session, config)
    base = (site.parameters.get(RUNBOOK_PARAMETER) if site else "") or ""
    rollback = f"{base.rstrip('/')}/rollback.md" if base else "runbooks/rollback.md"
    text = report(
        ReportInput(
            config.app,
            stage,
            reader.read(sources, start),
            descriptions,
            rollback,
            alarm=name,
            since=start,
        )
    )
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out}.", err=True)


# ---- init ------------------------------------------------------------------------------


@cli.command()
@click.argument("stage")
@click.option(
    "--from-profile",
    "profile_name",
    default=None,
    help="Starting point: dev (about $44/month), seed or prod. Asked for on a terminal.",
)
# The old name, kept so scripts keep working: everywhere else --profile is the AWS profile.
@click.option("--profile", "old_profile_name", default=None, hidden=True)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Set a parameter.")
@click.option("--force", is_flag=True, help="Overwrite an existing config/<stage>.json.")
@click.option("--no-input", is_flag=True, help="Ask nothing (the default when not on a terminal).")
@click.pass_obj
@guarded
def init(
    factory: CLIFactory,
    stage: str,
    profile_name: str | None,
    old_profile_name: str | None,
    params: tuple[str, ...],
    force: bool,
    no_input: bool,
) -> None:
    """Write config/STAGE.json from a profile, asking for the main choices on a terminal."""
    check_stage(stage)
    if old_profile_name is not None:
        if profile_name is not None:
            raise UsageError("Pass the stage profile once: --from-profile (not with --profile).")
        click.echo(
            f"init --profile is now --from-profile {old_profile_name} (a stage profile); "
            "--profile before the command is the AWS profile. The old name will go away.",
            err=True,
        )
        profile_name = old_profile_name
    profiles = load_profiles()
    overrides = parse_overrides(params)
    refuse_overwrite(factory.project_dir, stage, force=force)  # before asking anything
    ask = _interactive(no_input)
    if profile_name is None:
        profile_name = (
            click.prompt("Profile", type=click.Choice(sorted(profiles)), default="dev", err=True)
            if ask
            else "dev"
        )
    if profile_name not in profiles:
        raise UsageError(
            f"Unknown stage profile {profile_name!r}; choose one of "
            f"{', '.join(sorted(profiles))}. (An AWS profile goes before the command: "
            f"`spotops --profile NAME init {stage}`.)"
        )
    profile = profiles[profile_name]
    if ask:
        for name in prompted(profile):
            if name not in overrides:
                offered = profile.get("parameters", {}).get(name, "")
                answer = click.prompt(name, default=str(offered), show_default=True, err=True)
                overrides[name] = answer.strip()
    if RUNBOOK_PARAMETER not in overrides:
        # Left out of the file, the link follows the remote at every deploy (a fork's own).
        runbooks = runbook_default(read_git_origin(factory.runner, factory.project_dir), stage)
        click.echo(runbooks.note, err=True)
        if ask:
            answer = click.prompt(
                f"{RUNBOOK_PARAMETER} (Enter keeps the default above)",
                default="",
                show_default=False,
                err=True,
            )
            overrides[RUNBOOK_PARAMETER] = answer.strip()
    content = stage_file(profile, overrides)
    # Refuse what the templates would refuse before writing anything.
    estimate = _estimate(factory, parse_stage_config(content, stage))
    path = write_stage_file(factory.project_dir, stage, content, force=force)
    click.echo(
        f"Wrote {path} from the {profile_name} profile (about {estimate.total:.0f} "
        f"{estimate.currency}/month: `spotops cost --stage {stage}`). Deploy it with "
        f"`spotops deploy --stage {stage}`.",
        err=True,
    )
    click.echo(path)


def _interactive(no_input: bool) -> bool:
    """Whether ``init`` may ask questions: on a terminal, unless ``--no-input``."""
    return not no_input and sys.stdin.isatty()


def main() -> None:
    """Console script entry point."""
    cli(prog_name="spotops")
