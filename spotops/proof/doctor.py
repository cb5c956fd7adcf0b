"""``spotops doctor``: read the account and the stage, one row per check, change nothing.

Most useful before the first deploy: what would stop it (credentials, config, Fargate quotas,
a stuck stack) FAILs; what would not stop it but deserves a look WARNs. Once the ops stack
exists, the toolkit's own inputs are read too (its Powertools layer, the Slack webhook, the
runbook links, the dead-letter queues and the switches). The only write is ``send_test``'s
one Slack message.

:mod:`~spotops.proof.doctor_facts` reads; :mod:`~spotops.proof.doctor_rows` decides; this
module only puts the two together in the order the rows are shown.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from spotops.errors import CredentialsError, RegionError, SpotopsError, UsageError
from spotops.ops import switches as controls
from spotops.ops.package import pinned_powertools, powertools_layer_parameter
from spotops.proof import doctor_facts as facts
from spotops.proof import doctor_rows as decide
from spotops.proof.rows import ProofReport, Row, State
from spotops.reports.cost import ON_DEMAND_QUOTA, SPOT_QUOTA, VcpuPeak, inventory
from spotops.stage.config import StageConfig, check_stage
from spotops.stage.deploy import plan_stacks
from spotops.stage.stacks import StackDeployer, StackInfo
from spotops.stage.templates import load_template

if TYPE_CHECKING:
    from spotops.aws import AwsSession
    from spotops.factory import CLIFactory

COMMAND = "doctor"
# The rows that read the ops stack's resources, skipped before its first deploy.
OPS_ROWS = (
    "slack webhook",
    "runbook url",
    "slack dead letters",
    "events dead letters",
    "kill-switch",
    "dry-run",
    "chaos-leash",
    "pushes",
)
# An ops stack in these states has no resources to read.
_NO_RESOURCES = frozenset({"REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "DELETE_COMPLETE"})


def run_doctor(
    factory: CLIFactory,
    *,
    stage: str,
    region: str | None,
    send_test: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ProofReport:
    """Check the account and the stage; exit code 0 when nothing blocks a deploy.

    Raises
    ------
    UsageError
        An invalid stage name, or a stage without ``config/<stage>.json`` (exit 2).
    """
    config = factory.load_config(check_stage(stage))
    rows: list[Row] = []
    try:
        session = factory.aws(region)
    except (CredentialsError, RegionError) as exc:
        rows.append(
            Row(
                "credentials",
                State.FAIL,
                str(exc),
                advice="Set credentials and a region, then run doctor again.",
            )
        )
        rows.append(_config_row(factory, config)[0])
        return ProofReport(COMMAND, stage, "no region" if region is None else region, rows)
    return _Doctor(factory, session, config, send_test=send_test, now=now).report()


def _config_row(factory: CLIFactory, config: StageConfig) -> tuple[Row, VcpuPeak | None, bool]:
    """The config row, this stage's peak vCPU, and whether the config fits the templates."""
    started = time.monotonic()
    try:
        plans = plan_stacks(factory.project_dir, factory.stack_specs(), config)
        templates = {plan.spec.part: plan.template for plan in plans}
        peak = inventory(templates, config.parameters).peak
        problem = ""
    except UsageError as exc:
        peak, problem = None, str(exc)
    row = decide.config_row(config.stage, problem)
    return replace(row, seconds=time.monotonic() - started), peak, not problem


def _on_loopback(url: str) -> bool:
    return controls.is_loopback_host(urlparse(url).hostname or "")


class _Doctor:
    """One run: the session, the stage and the rows so far."""

    def __init__(
        self,
        factory: CLIFactory,
        session: AwsSession,
        config: StageConfig,
        *,
        send_test: bool,
        now: Callable[[], datetime],
    ) -> None:
        self.factory = factory
        self.session = session
        self.config = config
        self.stage = config.stage
        self.region = session.region
        self.proves = session.target.proves_account
        self.send_test = send_test
        self.now = now
        self.names = {s.part: s.stack_name(config.app, config.stage) for s in factory.stack_specs()}
        self.rows: list[Row] = []
        self.partition = "aws"

    def report(self) -> ProofReport:
        self._timed(self._credentials)
        config_row, peak, config_ok = _config_row(self.factory, self.config)
        self.rows.append(config_row)
        self._timed(lambda: self._quotas(peak, config_ok))
        self._timed(self._service_linked_role)
        deployer = StackDeployer(self.session.client("cloudformation"))
        site = deployer.describe(self.names["site"])
        self._timed(lambda: self._fargate_spot(site))
        for part, name in self.names.items():
            self._timed(functools.partial(self._stack, part, name))
        ops = deployer.describe(self.names["ops"])
        ops_ready = ops is not None and ops.status not in _NO_RESOURCES
        self._timed(lambda: self._layer(ops if ops_ready else None))
        self._timed(self._scanning)
        if ops is not None and ops_ready:
            self._timed(lambda: self._webhook(ops))
            self._timed(lambda: self._runbook_url(ops))
            self._timed(lambda: self._dead_letters(ops))
            self._timed(lambda: self._switches(ops))
            self._timed(lambda: self._pushes(ops, site))
        else:
            self.rows += decide.not_deployed_rows(OPS_ROWS, self.names["ops"])
        target = self.session.target.describe(self.region)
        return ProofReport(COMMAND, self.stage, target, tuple(self.rows))

    def _timed(self, check: Callable[[], Sequence[Row] | Row]) -> None:
        """Run one check; its rows share the time it took."""
        started = time.monotonic()
        found = check()
        made = [found] if isinstance(found, Row) else list(found)
        seconds = (time.monotonic() - started) / max(len(made), 1)
        self.rows += [replace(row, seconds=seconds) for row in made]

    def _client(self, service: str) -> Any:
        return self.session.client(service)

    # ---- the checks, in the order they are shown ----------------------------------------

    def _credentials(self) -> Row:
        identity, error = facts.caller_identity(self._client("sts"))
        if identity is not None and identity["Arn"].count(":") >= 2:
            self.partition = identity["Arn"].split(":")[1] or "aws"
        return decide.credentials_row(
            identity, error, region=self.region, proves_account=self.proves
        )

    def _quotas(self, peak: VcpuPeak | None, config_ok: bool) -> list[Row]:
        names = ("fargate on-demand vcpu quota", "fargate spot vcpu quota")
        if not config_ok:
            return [
                Row(name, State.SKIP, "the config does not fit the templates") for name in names
            ]
        site_spec = next(s for s in self.factory.stack_specs() if s.part == "site")
        site_template = load_template(site_spec.template_path(self.factory.project_dir))
        others = facts.other_stages(
            self._client("cloudformation"),
            app=self.config.app,
            stage=self.stage,
            site_template=site_template,
        )
        rows = []
        for spot in (False, True):
            quota, error = None, ""
            if self.proves:
                code = SPOT_QUOTA[1] if spot else ON_DEMAND_QUOTA[1]
                quota, error = facts.fargate_quota(self._client("service-quotas"), code)
            rows.append(
                decide.quota_row(
                    spot=spot,
                    stage=self.stage,
                    region=self.region,
                    own=peak,
                    others=others,
                    quota=quota,
                    error=error,
                    proves_account=self.proves,
                )
            )
        return rows

    def _service_linked_role(self) -> Row:
        return decide.service_linked_role_row(facts.ecs_role_present(self._client("iam")))

    def _fargate_spot(self, site: StackInfo | None) -> Row:
        cluster = site.outputs.get("ClusterName", "") if site else ""
        providers = offered = None
        if self.proves:
            if cluster:
                providers = facts.cluster_providers(self._client("ecs"), cluster)
            if providers is None:
                offered = facts.fargate_spot_status(self._client("ecs"))
        return decide.fargate_spot_row(
            cluster=cluster,
            cluster_providers=providers,
            offered=offered,
            region=self.region,
            proves_account=self.proves,
        )

    def _stack(self, part: str, name: str) -> Row:
        found = facts.stack_facts(self._client("cloudformation"), name)
        return decide.stack_row(
            part, name, found, stage=self.stage, region=self.region, now=self.now()
        )

    def _layer(self, ops: StackInfo | None) -> Row:
        if not self.proves:
            return decide.layer_row(
                arn="", description="", error="", pinned="", chosen_by="", proves_account=False
            )
        try:
            pinned = pinned_powertools(self.factory.project_dir)
        except SpotopsError as exc:
            return Row(
                "powertools layer",
                State.FAIL,
                str(exc),
                advice="Pin aws-lambda-powertools==X.Y.Z in ops_lambdas/requirements-runtime.txt.",
            )
        arn, chosen_by = self._layer_arn(ops, pinned)
        description, error = facts.layer_description(self._client("lambda"), arn)
        return decide.layer_row(
            arn=arn,
            description=description,
            error=error,
            pinned=pinned,
            chosen_by=chosen_by,
            proves_account=True,
        )

    def _layer_arn(self, ops: StackInfo | None, pinned: str) -> tuple[str, str]:
        """The layer the deployed functions load, or the one a deploy would choose."""
        if ops is not None:
            chosen = ops.parameters.get("PowertoolsLayerArn", "")
            if chosen:
                return chosen, "the ops stack's PowertoolsLayerArn"
            version = ops.parameters.get("PowertoolsLayerVersion", "")
            return (
                facts.public_layer_arn(self.partition, self.region, version),
                f"the ops stack's PowertoolsLayerVersion {version}",
            )
        configured = self.config.parameters.get("PowertoolsLayerArn", "")
        if configured:
            return configured, f"config/{self.stage}.json's PowertoolsLayerArn"
        parameter = powertools_layer_parameter(pinned)
        published = facts.published_layer_arn(self._client("ssm"), parameter)
        if published:
            return published, f"what deploy reads from {parameter}"
        version = self.config.parameters.get("PowertoolsLayerVersion") or self._default_version()
        return (
            facts.public_layer_arn(self.partition, self.region, version),
            f"PowertoolsLayerVersion {version}, deploy's fallback ({parameter} is missing)",
        )

    def _default_version(self) -> str:
        ops_spec = next(s for s in self.factory.stack_specs() if s.part == "ops")
        template = load_template(ops_spec.template_path(self.factory.project_dir))
        return str(template["Parameters"]["PowertoolsLayerVersion"]["Default"])

    def _scanning(self) -> Row:
        return decide.scanning_row(*facts.registry_scan_type(self._client("ecr")))

    def _webhook(self, ops: StackInfo) -> Row:
        secret = ops.outputs.get("SlackWebhookSecretName") or controls.webhook_secret_name(
            self.config.app, self.stage
        )
        url, error = facts.webhook_url(self._client("secretsmanager"), secret)
        status, send_error, sent = None, "", False
        if self.send_test and url and (self.proves or _on_loopback(url)):
            text = (
                f":stethoscope: spotops doctor: a test message from {self.config.app}-"
                f"{self.stage} ({self.session.target.describe(self.region)}). Nothing to do."
            )
            status, send_error = facts.send_test_message(url, text)
            sent = True
        return decide.webhook_row(
            secret=secret,
            url_set=None if url is None else bool(url),
            error=error,
            sent_status=status,
            send_error=send_error,
            send_test=self.send_test,
            sent=sent,
            stage=self.stage,
            proves_account=self.proves,
        )

    def _runbook_url(self, ops: StackInfo) -> Row:
        base = ops.parameters.get("RunbookBaseUrl", "")
        url = f"{base.rstrip('/')}/{decide.PROBE_RUNBOOK}"
        fetched = self.proves or _on_loopback(url)
        status, error = facts.http_status(url) if fetched else (None, "")
        return decide.runbook_url_row(
            url=url, status=status, error=error, fetched=fetched, proves_account=self.proves
        )

    def _dead_letters(self, ops: StackInfo) -> list[Row]:
        rows = []
        for which, output in (
            ("slack", "SlackDeadLetterQueueUrl"),
            ("events", "EventsDeadLetterQueueUrl"),
        ):
            queue = ops.outputs.get(output, "")
            depth, error = (
                facts.queue_depth(self._client("sqs"), queue) if queue else (None, f"no {output}")
            )
            rows.append(decide.dead_letter_row(which, queue.rsplit("/", 1)[-1], depth, error))
        return rows

    def _pushes(self, ops: StackInfo, site: StackInfo | None) -> Row:
        """Whether pushes deploy or are frozen (after a rollback, or planned)."""
        app, stage = self.config.app, self.stage
        outputs = site.outputs if site else {}
        table = ops.outputs.get("LedgerTableName") or f"{app}-{stage}-ledger"
        key = f"{outputs.get('ClusterName', f'{app}-{stage}')}/" + outputs.get(
            "ServiceName", f"{app}-{stage}-site"
        )
        freeze, error = facts.freeze_state(self._client("dynamodb"), table, key)
        if error:
            return decide.pushes_row(frozen=None, error=error)
        if freeze is None or not freeze.frozen:
            return decide.pushes_row(frozen=False)
        since = f"{datetime.fromtimestamp(freeze.since, UTC):%Y-%m-%d %H:%M} UTC"
        return decide.pushes_row(frozen=True, since=since, reason=freeze.reason, by=freeze.by)

    def _switches(self, ops: StackInfo) -> list[Row]:
        outputs = {
            "kill-switch": "KillSwitchParameterName",
            "dry-run": "DryRunParameterName",
            "chaos-leash": "ChaosLeashParameterName",
        }
        rows = []
        for switch, output in outputs.items():
            name = ops.outputs.get(output) or controls.switch_parameter_name(
                self.config.app, self.stage, switch
            )
            value = controls.read_switch(self._client("ssm"), name)
            rows.append(decide.switch_row(switch, name, value, self.stage))
        return rows
