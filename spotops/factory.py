"""The one factory the commands get their collaborators from (``ctx.obj``).

It is the composition root: the only module outside :mod:`spotops.local` that imports it,
to choose the :class:`~spotops.target.Target` an endpoint on this machine needs (the local
emulator) and inject it into what it builds. Tests replace it with
``mock.Mock(spec=CLIFactory)`` or a subclass with fakes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from spotops.aws import AwsSession, AwsSettings
from spotops.commands import CommandRunner, run_command
from spotops.image.push import Pusher
from spotops.local.target import EmulatorTarget, on_loopback
from spotops.ops.package import OpsStackBuilder
from spotops.ops.simulate import Rehearsal
from spotops.project import find_project_dir
from spotops.reports.cost import PriceTable, load_price_table
from spotops.reports.logs import LogReader
from spotops.reports.status import StatusReader
from spotops.stage.config import STACKS, StackSpec, StageConfig, load_stage_config
from spotops.stage.images import ImageResolver
from spotops.stage.stacks import StackDeployer
from spotops.target import AWS, Target

if TYPE_CHECKING:
    from spotops.ops.chaos import ChaosPlanner, ChaosReport


def target_of(settings: AwsSettings) -> Target:
    """The target an endpoint names: the local emulator on loopback, else AWS."""
    if settings.endpoint_url and on_loopback(settings.endpoint_url):
        return EmulatorTarget(settings.endpoint_url)
    return AWS


def open_session(settings: AwsSettings) -> AwsSession:
    """A session with the target its endpoint needs (not yet checked)."""
    return AwsSession(settings, target_of(settings))


class CLIFactory:
    """Build everything a command needs, from the global options."""

    def __init__(
        self,
        project_dir: Path | None = None,
        profile: str | None = None,
        *,
        runner: CommandRunner = run_command,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.project_dir = project_dir or find_project_dir()
        self.profile = profile
        self.runner = runner
        self.which = which

    def load_config(self, stage: str) -> StageConfig:
        return load_stage_config(self.project_dir, stage)

    def stack_specs(self) -> tuple[StackSpec, ...]:
        return STACKS

    def price_table(self) -> PriceTable:
        return load_price_table()

    def aws(self, region: str | None) -> AwsSession:
        """A checked session: credentials present, region known."""
        session = open_session(AwsSettings.from_env(region=region, profile=self.profile))
        session.check()
        return session

    def deployer(self, session: AwsSession) -> StackDeployer:
        return StackDeployer(
            session.client("cloudformation"),
            poll_seconds=session.target.stack_poll_seconds,
            direct_execute=session.target.executes_change_sets_directly,
        )

    def image_resolver(self, session: AwsSession) -> ImageResolver:
        return ImageResolver(session.client("ecs"), session.client("ecr"))

    def status_reader(self, session: AwsSession) -> StatusReader:
        return StatusReader(self.deployer(session), session.client)

    def log_reader(self, session: AwsSession) -> LogReader:
        return LogReader(session.client("logs"), poll_seconds=session.target.log_poll_seconds)

    def pusher(self, session: AwsSession, notify: Callable[[str], None]) -> Pusher:
        return Pusher(session.client("ecr"), self.runner, notify)

    def chaos_planner(self, session: AwsSession) -> ChaosPlanner:
        """``spotops chaos``: imported here, as it puts ops_lambdas/ on ``sys.path``."""
        from spotops.ops.chaos import ChaosPlanner

        return ChaosPlanner(session.client)

    def render_chaos(self, report: ChaosReport) -> list[str]:
        from spotops.ops.chaos import render

        return render(report)

    def ops_builder(self, session: AwsSession) -> OpsStackBuilder:
        return OpsStackBuilder(
            self.project_dir,
            s3=session.client("s3"),
            lambda_client=session.client("lambda"),
            ssm=session.client("ssm"),
            runner=self.runner,
            region=session.region,
            target=session.target,
        )

    def rehearsal(self, session: AwsSession, app: str, stage: str, *, dry_run: bool) -> Rehearsal:
        return Rehearsal(
            session.client,
            app=app,
            stage=stage,
            region=session.region,
            work_dir=self.project_dir / ".spotops" / "simulate" / stage,
            force_dry_run=dry_run,
            lambda_preludes=session.target.lambda_preludes,
            target=session.target,  # plays AWS's part where the emulator has none
        )
