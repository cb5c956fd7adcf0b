"""Scheduled chaos: guarded task kills that prove the site recovers, with time to recover.

This module runs the run and decides for each service; the kill, the recovery watch and
their verdict are :mod:`chalicelib.chaos.kill`, the records and posts
:mod:`chalicelib.chaos.report`.

One run (:func:`handle_tick`, every :data:`TICK_MINUTES`) looks at every service of the
cluster. A service takes part only with the tag ``spotops:chaos=on``. For each one:

1. **Facts** (:class:`~chalicelib.chaos.facts.ChaosReader`): the service with its tasks,
   target health (of the alternate target group too, for CANARY/LINEAR), the ledger lock,
   the last kill or Spot interruption, and then the kill switch, the leash, the stage's
   alarms in ALARM and the error budgets (:mod:`chalicelib.slo`), read again for every
   service, just before its decision: an earlier
   service's recovery watch may have taken up to ``CHAOS_RECOVERY_TIMEOUT_SECONDS``. A Spot
   interruption seen among the stopped tasks is recorded in the ledger as a kill, for the
   minimum-gap rule.
2. **Decision** (:func:`~chalicelib.chaos.guards.decide`): thirteen guards, each a pure
   function; the run's random source is seeded with ``<event id>/<service>`` and the seed is
   logged, so a retried delivery of the same event decides the same way. Every verdict is
   logged. When every guard passes and chaos is not leashed, one more check
   (``time-left``): the invocation must have time to watch the whole recovery and report
   it, else nothing is stopped.
3. **Leashed** (the default: the chaos leash parameter is created ``on``; a dry run leashes
   it too): a decision to kill is posted as what *would* have been stopped. Nothing stops.
4. **Kill**: take the ledger lock (shared with redeploy and remediation), check the chosen
   task still runs, record the kill (before stopping, so a retry cannot kill twice), then
   ``StopTask`` with a reason naming the run; post with ``runbooks/chaos-kill.md``.
5. **Recovery**, watched in the same invocation: every ``CHAOS_POLL_SECONDS`` until running
   = desired and every target is healthy again, at most ``CHAOS_RECOVERY_TIMEOUT_SECONDS``.
   The time is published (``ChaosTimeToRecover``, seconds) and posted; no recovery in time
   is posted as a failed experiment (``ChaosExperimentsFailed``). Then the lock is released.

Why poll inside the invocation rather than check again from a second schedule: a Fargate
task is replaced in one to three minutes (start, a 60 s health check grace, two 10 s
checks), well inside Lambda's 15 minutes; polling every 10 s measures that to 10 s, while a
second schedule (at best every minute, and firing all day for a few kills a week) would
measure to a minute and need a second rule. And the one invocation holds the service lock
for the whole experiment, so no redeploy or remediation starts halfway through it.

Bad input and faults never raise: a malformed tag, a service without a load balancer, a
task that already stopped, ``StopTask`` denied, a failed read: logged with the reason, no
kill, the lock released. A guard that cannot be evaluated refuses.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.chaos.facts import ChaosReader, ChaosReadError, ChaosRecords
from chalicelib.chaos.guards import (
    TICK_MINUTES,
    Decision,
    KillRecord,
    KillSwitch,
    Leash,
    Reading,
    ServiceFacts,
    TaskFacts,
    decide,
    draw,
    guard_time_left,
    latest_spot_interruption,
    leash_state,
    parse_opt_in,
    pick_victim,
)
from chalicelib.chaos.kill import LAMBDA_MARGIN_SECONDS, Clock, Killer, KillOrder, Sleep
from chalicelib.chaos.report import JOB, RunReport, result, utc, where
from chalicelib.errors import OpsError
from chalicelib.observability import count, logger
from chalicelib.results import JobResult, Status
from chalicelib.slo import BudgetReader

if TYPE_CHECKING:
    from datetime import datetime

    from chalicelib.events import ScheduledEvent
    from chalicelib.slo import Budget
    from chalicelib.toolkit import Toolkit

# ---- entry point --------------------------------------------------------------------------


def handle_tick(
    event: ScheduledEvent, kit: Toolkit, *, clock: Clock = time.time, sleep: Sleep = time.sleep
) -> dict[str, Any]:
    """One scheduled chaos run over every service of the cluster; never raises for faults.

    Parameters
    ----------
    event:
        The wrapped ``Scheduled Event``; its id names the run and seeds its dice.
    kit:
        Settings and clients.
    clock, sleep:
        Epoch seconds and a wait; tests pass fakes (nothing in the tests really waits).

    Returns
    -------
    dict
        ``job``, ``run_id``, ``status`` (``killed``, ``leashed``, ``no-kill``, ``failed``),
        ``reason`` (how many services ended how) and one result per service (``status``,
        ``reason``, and the verdicts when decided).

    Example
    -------
    >>> handle_tick(ScheduledEvent(raw), kit)["status"]  # doctest: +SKIP
    'no-kill'
    """
    run_id = str(event.get("id") or uuid.uuid4())
    logger.append_keys(chaos_run=run_id)
    count("ChaosRuns", JOB)  # a heartbeat: the schedule fires even when nothing is killed
    ends_at = _lambda_end(kit, clock())
    reader = _reader(kit)
    try:
        services = reader.services()
    except ChaosReadError as exc:
        logger.error("chaos run cannot list services", extra={"reason": str(exc)})
        count("ActionsFailed", JOB)
        return result(Status.FAILED, str(exc), run_id=run_id).as_dict()
    report = RunReport(kit=kit, records=reader.records, run_id=run_id, clock=clock)
    run = _Run(
        kit=kit,
        reader=reader,
        report=report,
        killer=Killer(
            kit=kit, reader=reader, report=report, clock=clock, sleep=sleep, ends_at=ends_at
        ),
        clock=clock,
        ends_at=ends_at,
        leash=_leash(kit),  # for the run's summary; read again for every service
    )
    results = [run.service(raw) for raw in services]
    return result(
        _overall({r.status for r in results}),
        _tally(results),
        run_id=run_id,
        leashed=run.leash.active,
        services=[r.as_dict() for r in results],
    ).as_dict()


def _overall(statuses: set[Status]) -> Status:
    """The run's status: ``killed`` when a task was stopped, else the first of ``failed``,
    ``leashed``, else ``no-kill``."""
    if statuses & {Status.RECOVERED, Status.NOT_RECOVERED}:
        return Status.KILLED
    return next((s for s in (Status.FAILED, Status.LEASHED) if s in statuses), Status.NO_KILL)


def _tally(results: list[JobResult]) -> str:
    tally = Counter(r.status.value for r in results)
    return ", ".join(f"{n} {status}" for status, n in sorted(tally.items())) or "no service"


def _lambda_end(kit: Toolkit, now: float) -> float | None:
    """When Lambda ends this invocation, on ``now``'s clock (``None`` outside Lambda)."""
    context = kit.lambda_context
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return now + max(0.0, remaining() / 1000)


def _reader(kit: Toolkit) -> ChaosReader:
    settings = kit.settings
    return ChaosReader(
        ecs=kit.ecs,
        elbv2=kit.elbv2,
        cloudwatch=kit.cloudwatch,
        ledger=kit.ledger,
        records=ChaosRecords(kit.dynamodb, settings.ledger_table_name, settings.history_ttl_days),
        cluster=settings.cluster_name,
        alarm_prefix=settings.alarm_prefix,
        budget_reader=BudgetReader(kit.cloudwatch, settings.slo.load_balancer),
        objectives=settings.slo.objectives,
    )


def _leash(kit: Toolkit) -> Leash:
    """The leash, read now: a dry run leashes; the leash parameter must read ``off``."""
    dry_run = kit.controls.dry_run()
    parameter = kit.settings.chaos.leash_parameter
    if dry_run.active or not parameter:
        return leash_state(
            dry_run=dry_run.active, dry_run_reason=dry_run.reason, parameter=parameter
        )
    try:
        value = kit.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) or type(exc).__name__
        failure = "does not exist" if code == "ParameterNotFound" else f"is unreadable ({code})"
        return leash_state(dry_run=False, dry_run_reason="", parameter=parameter, failure=failure)
    return leash_state(dry_run=False, dry_run_reason="", parameter=parameter, value=str(value))


# ---- one run --------------------------------------------------------------------------------


class _Run:
    """The state one run shares across its services, and the decision for each. The controls
    and alarms are not among it: they are read again for every service, just before its
    decision."""

    def __init__(
        self,
        *,
        kit: Toolkit,
        reader: ChaosReader,
        report: RunReport,
        killer: Killer,
        clock: Clock,
        ends_at: float | None,
        leash: Leash,
    ) -> None:
        self.kit = kit
        self.reader = reader
        self.report = report
        self.killer = killer
        self.run_id = report.run_id
        self.clock = clock
        self.ends_at = ends_at
        self.leash = leash  # the last one read
        self.chaos = kit.settings.chaos
        self.policy = self.chaos.policy(TICK_MINUTES)

    def service(self, raw: dict[str, Any]) -> JobResult:
        name = str(raw.get("serviceName", "?"))
        key = f"{self.reader.cluster}/{name}"
        tags = {str(t.get("key", "")): str(t.get("value", "")) for t in raw.get("tags", [])}
        opt_in = parse_opt_in(tags, self.policy)
        if opt_in.problem:
            logger.warning(
                "chaos tag malformed", extra={"ecs_service": key, "reason": opt_in.problem}
            )
            count("EventsIgnored", JOB)
            return result(Status.IGNORED, opt_in.problem, service=key)
        if not opt_in.enabled:
            logger.debug("service not opted in to chaos", extra={"ecs_service": key})
            return result(Status.NOT_OPTED_IN, "not opted in", service=key)
        try:
            return self._decide_and_act(raw, key)
        except (OpsError, ClientError, BotoCoreError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            logger.error(
                "chaos run failed for a service", extra={"ecs_service": key, "reason": reason}
            )
            count("ActionsFailed", JOB)
            return result(Status.FAILED, reason, service=key)

    def _decide_and_act(self, raw: dict[str, Any], key: str) -> JobResult:
        service = self.reader.service_facts(raw)
        last_kill, stored = self.reader.last_kill(service)
        self._remember_spot_interruption(service, stored)
        # Read for this service, now: the run's earlier kills were watched for minutes, and
        # on-call may have pulled the kill switch or the leash, or an alarm fired, meanwhile.
        switch = self.kit.controls.kill_switch()
        self.leash = _leash(self.kit)
        now = utc(self.clock())
        facts = self.reader.facts(
            service,
            now=now,
            policy=self.policy,
            kill_switch=Reading(KillSwitch(switch.engaged, switch.reason)),
            alarms=self.reader.alarms(),
            budget=self._budget(now),
            last_kill=last_kill,
        )
        seed = f"{self.run_id}/{key}"
        draw_value, rng = draw(seed)
        decision = decide(facts, self.policy, draw_value)
        victim = pick_victim(service.running_tasks, rng) if decision.kill else None
        verdicts = [v.line() for v in decision.verdicts]
        time_left = None
        if decision.kill and not self.leash.active:  # leashed, nothing is stopped or watched
            time_left = guard_time_left(
                self._time_left(), self.chaos.recovery_timeout_seconds, LAMBDA_MARGIN_SECONDS
            )
            verdicts.append(time_left.line())
        logger.info(
            "chaos decision",
            extra={
                "ecs_service": key,
                "kill": decision.kill,
                "seed": seed,
                "victim": victim.arn if victim else None,
                "verdicts": verdicts,
            },
        )
        if not decision.kill or victim is None:
            return result(
                Status.NO_KILL, decision.summary(), service=key, seed=seed, verdicts=verdicts
            )
        if time_left is not None and not time_left.passed:
            reason = f"{time_left.guard}: {time_left.reason}"
            logger.warning("chaos kill refused", extra={"ecs_service": key, "reason": reason})
            count("ActionsSuppressed", JOB)
            return result(Status.NO_KILL, reason, service=key, seed=seed, verdicts=verdicts)
        if self.leash.active:
            return self._leashed(service, decision, victim, seed, verdicts)
        return self.killer.kill(
            KillOrder(
                service=service,
                decision=decision,
                victim=victim,
                seed=seed,
                verdicts=verdicts,
                stored=stored,
                gap_hours=facts.opt_in.min_gap_hours,
            )
        )

    def _budget(self, now: datetime) -> Reading[tuple[Budget, ...]]:
        """The error budgets, unless the budget guard is off (then nothing is read)."""
        if self.policy.min_budget_percent <= 0:
            return Reading(())
        return self.reader.budget(now)

    def _time_left(self) -> float | None:
        return None if self.ends_at is None else self.ends_at - self.clock()

    def _remember_spot_interruption(self, service: ServiceFacts, stored: KillRecord | None) -> None:
        """A Spot interruption ECS still shows, newer than the record: record it as a kill."""
        observed = latest_spot_interruption(service.stopped_tasks)
        if observed is None or (stored is not None and stored.at >= observed.at):
            return
        try:
            if self.reader.records.record_kill(service.key, observed):
                self.kit.ledger.record_history(
                    service.key, JOB, "spot-interruption", observed.describe()
                )
                logger.info(
                    "spot interruption recorded as a kill",
                    extra={"ecs_service": service.key, "interruption": observed.describe()},
                )
        except OpsError as exc:  # the min-gap guard still sees it among the stopped tasks
            logger.warning("spot interruption not recorded", extra={"reason": str(exc)})

    def _leashed(
        self,
        service: ServiceFacts,
        decision: Decision,
        victim: TaskFacts,
        seed: str,
        verdicts: list[str],
    ) -> JobResult:
        key = service.key
        reason = f"leashed ({self.leash.reason}): would have stopped task {victim.short_id}"
        count("ActionsSuppressed", JOB)
        logger.info("chaos leashed", extra={"ecs_service": key, "reason": reason})
        self.report.history(key, Status.LEASHED, f"{self.run_id} would stop {victim.arn}")
        self.report.run_record(service, Status.LEASHED, task_arn=victim.arn, reason=reason)
        self.report.post(
            f":dog2: [leashed] Chaos would stop a task of {service.name}",
            f"Every guard passed, so this run would have stopped task `{victim.short_id}` "
            f"({where(victim)}) of `{key}`. *Leashed*: {self.leash.reason}. Nothing was "
            "stopped. To let chaos act: `spotops chaos-leash off --stage "
            f"{self.kit.settings.stage}`.\n" + "\n".join(verdicts),
            facts=self.report.facts(decision, seed, leashed=self.leash.active),
        )
        return result(
            Status.LEASHED, reason, service=key, seed=seed, task=victim.arn, verdicts=verdicts
        )
