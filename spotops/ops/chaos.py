"""``spotops chaos --dry-run``: one chaos decision by hand, every guard and its verdict.

The facts are read with this command's own boto3 clients; the decision is made by the very
guards the scheduled ``chaos_tick`` function acts on (``ops_lambdas/chalicelib``, through
:mod:`spotops.lambda_code`). The settings (window, freeze
dates, mean, gap) are the deployed function's own environment, so the answer is the one the
function would give. Nothing is stopped and nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)
from spotops.errors import NotDeployedError, SpotopsError, UsageError, is_error

# isort: split
from chalicelib.aws import error_code
from chalicelib.chaos.facts import ChaosReader, ChaosReadError, ChaosRecords
from chalicelib.chaos.guards import (
    TICK_MINUTES,
    Decision,
    KillSwitch,
    Leash,
    Reading,
    TaskFacts,
    decide,
    draw,
    leash_state,
    pick_victim,
)
from chalicelib.chaos.settings import ChaosSettings, load_chaos_settings
from chalicelib.controls import KILL_SWITCH_OFF, dry_run_state
from chalicelib.errors import SettingsError
from chalicelib.ledger import SafetyLedger
from chalicelib.slo import Budget, BudgetReader, SloSettings, load_slo_settings

if TYPE_CHECKING:
    from spotops.aws import ClientFactory


@dataclass(frozen=True)
class ServiceDecision:
    """One service's decision, and the task a kill would have stopped."""

    service: str
    seed: str
    decision: Decision
    victim: TaskFacts | None
    problem: str = ""


@dataclass(frozen=True)
class ChaosReport:
    """What ``spotops chaos --dry-run`` prints."""

    function: str
    at: datetime
    leash: Leash
    settings: ChaosSettings
    decisions: list[ServiceDecision]
    slo: SloSettings = field(default_factory=SloSettings)


class ChaosPlanner:
    """Decide, as the chaos function would now, for every service of a stage's cluster.

    Parameters
    ----------
    client:
        Makes a boto3 client by service name (the session's).
    """

    def __init__(self, client: ClientFactory) -> None:
        self._client = client

    def _environment(self, function: str) -> dict[str, str]:
        try:
            config = self._client("lambda").get_function_configuration(FunctionName=function)
        except ClientError as exc:
            if is_error(exc, "ResourceNotFoundException"):
                raise NotDeployedError(
                    f"Function {function} does not exist: deploy the ops stack with "
                    "`spotops deploy`, which ships it."
                ) from exc
            raise
        variables = (config.get("Environment") or {}).get("Variables") or {}
        return {str(k): str(v) for k, v in variables.items()}

    def decide(
        self,
        app: str,
        stage: str,
        *,
        at: datetime | None = None,
        seed: str | None = None,
        services: Sequence[str] = (),
    ) -> ChaosReport:
        """Read the facts and decide for each service (or only ``services``).

        Raises
        ------
        NotDeployedError
            The chaos function (the ops stack) is not deployed.
        SpotopsError
            Its settings are invalid, or the services cannot be listed.
        """
        function = f"{app}-{stage}-chaos_tick"
        env = self._environment(function)
        try:
            settings = load_chaos_settings(env)
            slo = load_slo_settings(env)
        except SettingsError as exc:
            raise SpotopsError(f"The deployed {function} has invalid settings: {exc}") from exc
        table = env.get("LEDGER_TABLE_NAME") or f"{app}-{stage}-ledger"
        dynamodb = self._client("dynamodb")
        reader = ChaosReader(
            ecs=self._client("ecs"),
            elbv2=self._client("elbv2"),
            cloudwatch=self._client("cloudwatch"),
            ledger=SafetyLedger(dynamodb, table),
            records=ChaosRecords(dynamodb, table),
            cluster=env.get("CLUSTER_NAME") or f"{app}-{stage}",
            alarm_prefix=f"{app}-{stage}-",
            budget_reader=BudgetReader(self._client("cloudwatch"), slo.load_balancer),
            objectives=slo.objectives,
        )
        try:
            raw_services = reader.services()
        except ChaosReadError as exc:
            raise SpotopsError(f"Cannot decide: {exc}.") from exc
        if services:
            wanted = set(services)
            raw_services = [s for s in raw_services if s.get("serviceName") in wanted]
            if not raw_services:
                raise UsageError(
                    f"No service named {', '.join(sorted(wanted))} in cluster {reader.cluster}."
                )
        now = (at or datetime.now(UTC)).astimezone(UTC)
        policy = settings.policy(TICK_MINUTES)
        kill_switch = self._kill_switch(env.get("KILL_SWITCH_PARAMETER", ""))
        alarms = reader.alarms()
        # Read once for the whole report, as the function reads it for each service: so
        # every service's budget verdict is the same, as at one moment.
        budget: Reading[tuple[Budget, ...]] = (
            reader.budget(now) if policy.min_budget_percent > 0 else Reading(())
        )
        run = seed or f"cli-{uuid.uuid4().hex[:12]}"
        decisions: list[ServiceDecision] = []
        for raw in raw_services:
            key = f"{reader.cluster}/{raw.get('serviceName', '?')}"
            service_seed = f"{run}/{key}"
            try:
                service = reader.service_facts(raw)
            except ChaosReadError as exc:
                decisions.append(
                    ServiceDecision(key, service_seed, Decision((), 0.0, 0.0), None, str(exc))
                )
                continue
            facts = reader.facts(
                service,
                now=now,
                policy=policy,
                kill_switch=kill_switch,
                alarms=alarms,
                budget=budget,
            )
            value, rng = draw(service_seed)
            decision = decide(facts, policy, value)
            victim = pick_victim(service.running_tasks, rng) if decision.kill else None
            decisions.append(ServiceDecision(key, service_seed, decision, victim))
        return ChaosReport(function, now, self._leash(env, settings), settings, decisions, slo)

    def _read(self, name: str) -> tuple[str | None, str | None]:
        """``(value, None)`` or ``(None, why it could not be read)``."""
        try:
            return str(self._client("ssm").get_parameter(Name=name)["Parameter"]["Value"]), None
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            missing = code == "ParameterNotFound"
            return None, "does not exist" if missing else f"is unreadable ({code})"

    def _kill_switch(self, name: str) -> Reading[KillSwitch]:
        if not name:
            return Reading.failed("the function has no KILL_SWITCH_PARAMETER")
        value, failure = self._read(name)
        if value is None:
            return Reading(KillSwitch(True, f"kill switch {name} {failure}; failing closed"))
        text = value.strip().lower()
        if text in KILL_SWITCH_OFF:
            return Reading(KillSwitch(False, f"kill switch {name} is off"))
        return Reading(KillSwitch(True, f"kill switch {name} is {text!r} (automation stopped)"))

    def _leash(self, env: Mapping[str, str], settings: ChaosSettings) -> Leash:
        env_dry_run = env.get("DRY_RUN", "false").strip().lower() in ("1", "true", "yes", "on")
        dry_parameter = env.get("DRY_RUN_PARAMETER", "").strip()
        if env_dry_run or not dry_parameter:
            dry = dry_run_state(env_dry_run=env_dry_run, parameter=dry_parameter)
        else:
            value, failure = self._read(dry_parameter)
            dry = dry_run_state(
                env_dry_run=False, parameter=dry_parameter, value=value, failure=failure
            )
        parameter = settings.leash_parameter
        if dry.active or not parameter:
            return leash_state(dry_run=dry.active, dry_run_reason=dry.reason, parameter=parameter)
        value, failure = self._read(parameter)
        return leash_state(
            dry_run=False, dry_run_reason="", parameter=parameter, value=value, failure=failure
        )


def _budget_rule(report: ChaosReport) -> str:
    need = report.settings.min_budget_percent
    if need <= 0:
        return "Error budget: not a guard (CHAOS_MIN_BUDGET_PERCENT is 0)"
    objectives = "; ".join(o.describe() for o in report.slo.objectives)
    return f"Error budget: at least {need:g}% left of each objective ({objectives})"


def render(report: ChaosReport) -> list[str]:
    """The report as the lines ``spotops chaos --dry-run`` prints (stdout)."""
    settings = report.settings
    lines = [
        f"Chaos decision of {report.function} at {report.at:%Y-%m-%d %H:%M:%SZ} "
        "(dry run: nothing is stopped)",
        f"Window: {settings.window.describe()}; freeze dates: "
        f"{', '.join(p.describe() for p in settings.freeze) or 'none'}",
        f"Leash: {'leashed' if report.leash.active else 'unleashed'} ({report.leash.reason})",
        _budget_rule(report),
    ]
    if not report.decisions:
        lines.append("No service in the cluster.")
    for item in report.decisions:
        lines.append("")
        lines.append(f"{item.service}  (seed {item.seed})")
        if item.problem:
            lines.append(f"  cannot decide: {item.problem}")
            continue
        width = max(len(v.guard) for v in item.decision.verdicts)
        for verdict in item.decision.verdicts:
            mark = "PASS" if verdict.passed else "FAIL"
            lines.append(f"  {mark}  {verdict.guard:<{width}}  {verdict.reason}")
        if item.decision.kill and item.victim is not None:
            where = ", ".join(
                p for p in (item.victim.capacity_provider, item.victim.availability_zone) if p
            )
            mode = (
                "the function is leashed, so it would only report it"
                if report.leash.active
                else "the function would stop it now"
            )
            lines.append(
                f"  => kill: task {item.victim.short_id} ({where or 'capacity unknown'}); {mode}"
            )
        else:
            refused = len(item.decision.refusals)
            lines.append(f"  => no kill: {refused} guard(s) refused")
    return lines
