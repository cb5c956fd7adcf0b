"""Scheduled chaos: guarded task kills that prove the site recovers, with time to recover.

One run (:func:`handle_tick`, every :data:`TICK_MINUTES`) looks at every service of the
cluster. A service takes part only with the tag ``spotops:chaos=on``. For each one:

1. **Facts** (:class:`~chalicelib.chaos.facts.ChaosReader`): the service with its tasks,
   target health (of the alternate target group too, for CANARY/LINEAR), the ledger lock,
   the last kill or Spot interruption, and then the kill switch, the leash and the stage's
   alarms in ALARM, read again for every service, just before its decision: an earlier
   service's recovery watch may have taken up to ``CHAOS_RECOVERY_TIMEOUT_SECONDS``. A Spot
   interruption seen among the stopped tasks is recorded in the ledger as a kill, for the
   minimum-gap rule.
2. **Decision** (:func:`~chalicelib.chaos.guards.decide`): twelve guards, each a pure
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.chaos.facts import ChaosReader, ChaosReadError, ChaosRecords
from chalicelib.chaos.guards import (
    KIND_CHAOS,
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
    recovered,
    task_facts,
)
from chalicelib.errors import OpsError
from chalicelib.observability import count, logger, metrics
from chalicelib.runbooks import CHAOS_KILL, runbook_url
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from chalicelib.events import ScheduledEvent
    from chalicelib.toolkit import Toolkit

JOB = "chaos"
# A crashed run's lock expires this long after the recovery watch would have ended.
LOCK_MARGIN_SECONDS = 300
# Time kept back from Lambda's limit to record and report after the recovery watch: a kill
# needs CHAOS_RECOVERY_TIMEOUT_SECONDS plus this much of the invocation left.
LAMBDA_MARGIN_SECONDS = 30

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def _result(status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "reason": reason, **extra}


def _seconds_metric(name: str, value: float) -> None:
    if metrics.dimension_set.get("job") != JOB:
        metrics.add_dimension(name="job", value=JOB)
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


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
        ``job``, ``run_id``, ``status`` (``killed``, ``leashed``, ``no-kill``, ``failed``)
        and one result per service (``status``, ``reason``, and the verdicts when decided).

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
        return {"job": JOB, "run_id": run_id, "status": "failed", "reason": str(exc)}
    run = _Run(
        kit=kit,
        reader=reader,
        run_id=run_id,
        clock=clock,
        sleep=sleep,
        ends_at=ends_at,
        leash=_leash(kit),  # for the run's summary; read again for every service
    )
    results = [run.service(raw) for raw in services]
    statuses = {r["status"] for r in results}
    if statuses & {"recovered", "not-recovered"}:
        overall = "killed"
    else:
        overall = next((s for s in ("failed", "leashed") if s in statuses), "no-kill")
    return {
        "job": JOB,
        "run_id": run_id,
        "status": overall,
        "leashed": run.leash.active,
        "services": results,
    }


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
    """The state one run shares across its services. The controls and alarms are not among
    it: they are read again for every service, just before its decision."""

    def __init__(
        self,
        *,
        kit: Toolkit,
        reader: ChaosReader,
        run_id: str,
        clock: Clock,
        sleep: Sleep,
        ends_at: float | None,
        leash: Leash,
    ) -> None:
        self.kit = kit
        self.reader = reader
        self.run_id = run_id
        self.clock = clock
        self.sleep = sleep
        self.ends_at = ends_at
        self.leash = leash  # the last one read
        self.chaos = kit.settings.chaos
        self.policy = self.chaos.policy(TICK_MINUTES)

    # -- one service --

    def service(self, raw: dict[str, Any]) -> dict[str, Any]:
        name = str(raw.get("serviceName", "?"))
        key = f"{self.reader.cluster}/{name}"
        tags = {str(t.get("key", "")): str(t.get("value", "")) for t in raw.get("tags", [])}
        opt_in = parse_opt_in(tags, self.policy)
        if opt_in.problem:
            logger.warning(
                "chaos tag malformed", extra={"ecs_service": key, "reason": opt_in.problem}
            )
            count("EventsIgnored", JOB)
            return _result("ignored", opt_in.problem, service=key)
        if not opt_in.enabled:
            logger.debug("service not opted in to chaos", extra={"ecs_service": key})
            return _result("not-opted-in", "not opted in", service=key)
        try:
            return self._decide_and_act(raw, key)
        except (OpsError, ClientError, BotoCoreError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            logger.error(
                "chaos run failed for a service", extra={"ecs_service": key, "reason": reason}
            )
            count("ActionsFailed", JOB)
            return _result("failed", reason, service=key)

    def _decide_and_act(self, raw: dict[str, Any], key: str) -> dict[str, Any]:
        service = self.reader.service_facts(raw)
        last_kill, stored = self.reader.last_kill(service)
        self._remember_spot_interruption(service, stored)
        # Read for this service, now: the run's earlier kills were watched for minutes, and
        # on-call may have pulled the kill switch or the leash, or an alarm fired, meanwhile.
        switch = self.kit.controls.kill_switch()
        self.leash = _leash(self.kit)
        facts = self.reader.facts(
            service,
            now=_utc(self.clock()),
            policy=self.policy,
            kill_switch=Reading(KillSwitch(switch.engaged, switch.reason)),
            alarms=self.reader.alarms(),
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
            return _result("no-kill", decision.summary(), service=key, seed=seed, verdicts=verdicts)
        if time_left is not None and not time_left.passed:
            reason = f"{time_left.guard}: {time_left.reason}"
            logger.warning("chaos kill refused", extra={"ecs_service": key, "reason": reason})
            count("ActionsSuppressed", JOB)
            return _result("no-kill", reason, service=key, seed=seed, verdicts=verdicts)
        if self.leash.active:
            return self._leashed(service, decision, victim, seed, verdicts)
        return self._kill(
            service, decision, victim, seed, verdicts, stored, facts.opt_in.min_gap_hours
        )

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

    # -- leashed --

    def _leashed(
        self,
        service: ServiceFacts,
        decision: Decision,
        victim: TaskFacts,
        seed: str,
        verdicts: list[str],
    ) -> dict[str, Any]:
        key = service.key
        reason = f"leashed ({self.leash.reason}): would have stopped task {victim.short_id}"
        count("ActionsSuppressed", JOB)
        logger.info("chaos leashed", extra={"ecs_service": key, "reason": reason})
        self._history(key, "leashed", f"{self.run_id} would stop {victim.arn}")
        self._put_run(service, {"status": "leashed", "task_arn": victim.arn, "reason": reason})
        self._post(
            f":dog2: [leashed] Chaos would stop a task of {service.name}",
            f"Every guard passed, so this run would have stopped task `{victim.short_id}` "
            f"({_where(victim)}) of `{key}`. *Leashed*: {self.leash.reason}. Nothing was "
            "stopped. To let chaos act: `spotops chaos-leash off --stage "
            f"{self.kit.settings.stage}`.\n" + "\n".join(verdicts),
            facts=self._facts(decision, seed),
        )
        return _result(
            "leashed", reason, service=key, seed=seed, task=victim.arn, verdicts=verdicts
        )

    # -- the kill and the recovery watch --

    def _kill(
        self,
        service: ServiceFacts,
        decision: Decision,
        victim: TaskFacts,
        seed: str,
        verdicts: list[str],
        stored: KillRecord | None,
        gap_hours: float,
    ) -> dict[str, Any]:
        key = service.key
        ledger = self.kit.ledger
        holder = f"{JOB}:{self.run_id}"
        lock = ledger.acquire_lock(
            key,
            holder=holder,
            action=JOB,
            ttl_seconds=self.chaos.recovery_timeout_seconds + LOCK_MARGIN_SECONDS,
            details={"run_id": self.run_id, "task_arn": victim.arn},
        )
        if not lock.acquired:
            reason = (
                f"{key} was locked by {lock.holder.get('action', '?')} "
                f"({lock.holder.get('holder', '?')}) before the kill"
            )
            logger.info("chaos lost the lock", extra={"ecs_service": key, "reason": reason})
            return _result("locked", reason, service=key, seed=seed, verdicts=verdicts)
        try:
            return self._kill_locked(service, decision, victim, seed, verdicts, stored, gap_hours)
        finally:
            ledger.release_lock(key, holder=holder)

    def _kill_locked(
        self,
        service: ServiceFacts,
        decision: Decision,
        victim: TaskFacts,
        seed: str,
        verdicts: list[str],
        stored: KillRecord | None,
        gap_hours: float,
    ) -> dict[str, Any]:
        key = service.key
        current = self.reader.task(victim.arn)
        now_task = task_facts(current) if current else None
        if now_task is None or not now_task.running:
            state = f"{now_task.last_status}/{now_task.desired_status}" if now_task else "gone"
            reason = f"task {victim.short_id} is no longer running ({state}); nothing stopped"
            logger.warning(
                "chaos victim already stopped", extra={"ecs_service": key, "reason": reason}
            )
            count("ActionsSuppressed", JOB)
            return _result("skipped", reason, service=key, seed=seed, task=victim.arn)
        killed_at = self.clock()
        record = KillRecord(_utc(killed_at), KIND_CHAOS, victim.arn, self.run_id)
        # Recorded before the stop: a retry of this run, or a twin that decided at the same
        # time, then meets the minimum gap (the write fails if a kill is on record inside it).
        gap = timedelta(hours=gap_hours)
        if not self.reader.records.record_kill(key, record, unless_since=record.at - gap):
            reason = "a newer kill or Spot interruption was recorded meanwhile; nothing stopped"
            logger.warning("chaos kill not recorded", extra={"ecs_service": key, "reason": reason})
            return _result("skipped", reason, service=key, seed=seed, task=victim.arn)
        stop_reason = (
            f"spotops chaos run {self.run_id} ({self.kit.settings.app_name}-"
            f"{self.kit.settings.stage}): scheduled kill, see runbooks/chaos-kill.md"
        )[:255]
        refused = self._stop(service, victim, stop_reason, stored)
        if refused is not None:
            reason = refused
            logger.error("chaos kill failed", extra={"ecs_service": key, "reason": reason})
            count("ActionsFailed", JOB)
            self._history(key, "failed", reason)
            self._put_run(service, {"status": "failed", "task_arn": victim.arn, "reason": reason})
            self._post(
                f":x: Chaos kill failed: {service.name}", reason, facts=self._facts(decision, seed)
            )
            return _result("failed", reason, service=key, seed=seed, task=victim.arn)
        count("ActionsTaken", JOB)
        timeout = self.chaos.recovery_timeout_seconds
        logger.info("chaos stopped a task", extra={"ecs_service": key, "task": victim.arn})
        self._history(key, "killed", f"{self.run_id} stopped {victim.arn}")
        self._put_run(
            service,
            {"status": "recovering", "task_arn": victim.arn, "killed_at": int(killed_at)},
        )
        self._post(
            f":boom: Chaos: stopped task {victim.short_id} of {service.name}",
            f"Every guard passed; stopped task `{victim.short_id}` ({_where(victim)}) of `{key}` "
            f"with reason `{stop_reason}`. Watching recovery for up to {timeout} s.",
            facts=self._facts(decision, seed),
        )
        return self._watch(service, decision, victim, seed, verdicts, killed_at)

    def _stop(
        self, service: ServiceFacts, victim: TaskFacts, stop_reason: str, stored: KillRecord | None
    ) -> str | None:
        """``StopTask``; ``None`` when the task is stopping, else why not. ECS refusing forgets
        the recorded kill. No answer at all (a timeout): ask ECS what happened first; when it
        cannot tell either, the kill stays recorded, so the minimum gap errs on the safe side."""
        key = service.key
        try:
            self.reader.ecs.stop_task(cluster=service.cluster, task=victim.arn, reason=stop_reason)
        except ClientError as exc:
            self.reader.records.forget_kill(key, self.run_id, stored)
            return f"ECS refused to stop task {victim.short_id}: {error_code(exc) or 'ClientError'}"
        except BotoCoreError as exc:
            try:
                now = self.reader.task(victim.arn)
            except ChaosReadError:
                now = None
            seen = task_facts(now) if now else None
            what = f"StopTask of {victim.short_id} got no answer ({type(exc).__name__})"
            if seen is not None and seen.stopped_reason == stop_reason:
                logger.warning(f"{what}, but ECS stopped it", extra={"ecs_service": key})
                return None
            if seen is not None and seen.desired_status == "RUNNING":
                self.reader.records.forget_kill(key, self.run_id, stored)
                return f"{what} and the task still runs"
            return f"{what}; whether it stopped is unknown, so the kill stays recorded"
        return None

    def _watch(
        self,
        service: ServiceFacts,
        decision: Decision,
        victim: TaskFacts,
        seed: str,
        verdicts: list[str],
        killed_at: float,
    ) -> dict[str, Any]:
        key = service.key
        timeout = self.chaos.recovery_timeout_seconds
        limit = killed_at + timeout
        # Never reached when time-left passed; kept so a slow kill cannot outlive Lambda.
        deadline = None if self.ends_at is None else self.ends_at - LAMBDA_MARGIN_SECONDS
        cut_short = deadline is not None and deadline < limit
        if deadline is not None:
            limit = min(limit, deadline)
        last = "not checked yet"
        while self.clock() < limit:
            self.sleep(max(0.0, min(self.chaos.poll_seconds, limit - self.clock())))
            try:
                raw = self.reader.service(service.name)
                if raw is None:
                    last = "the service is gone"
                    continue
                now_service = self.reader.service_facts(raw, stopped=False)
                verdict = recovered(now_service, self.reader.targets(now_service))
            except ChaosReadError as exc:
                last = str(exc)
                logger.warning("recovery check failed", extra={"ecs_service": key, "reason": last})
                continue
            if verdict.passed:
                return self._recovered(
                    service, decision, victim, seed, verdicts, killed_at, verdict.reason
                )
            last = verdict.reason
        watched = self.clock() - killed_at
        why = (
            f"stopped watching after {watched:.0f} s, before the {timeout} s threshold: the "
            "function's time limit"
            if cut_short
            else f"not recovered within {timeout} s"
        )
        reason = f"{key} {why}; last check: {last}"
        logger.error("chaos experiment failed", extra={"ecs_service": key, "reason": reason})
        count("ChaosExperimentsFailed", JOB)
        self._history(key, "not-recovered", reason)
        self._put_run(
            service,
            {
                "status": "not-recovered",
                "task_arn": victim.arn,
                "killed_at": int(killed_at),
                "reason": reason,
            },
        )
        self._post(
            f":x: Chaos experiment failed: {service.name} did not recover",
            f"After stopping task `{victim.short_id}`, {reason}. The site may be short of "
            "capacity: follow the runbook.",
            facts=self._facts(decision, seed),
        )
        return _result(
            "not-recovered", reason, service=key, seed=seed, task=victim.arn, verdicts=verdicts
        )

    def _recovered(
        self,
        service: ServiceFacts,
        decision: Decision,
        victim: TaskFacts,
        seed: str,
        verdicts: list[str],
        killed_at: float,
        detail: str,
    ) -> dict[str, Any]:
        key = service.key
        seconds = round(self.clock() - killed_at, 1)
        _seconds_metric("ChaosTimeToRecover", seconds)
        reason = f"{key} recovered in {seconds:g} s ({detail})"
        logger.info("chaos recovery measured", extra={"ecs_service": key, "seconds": seconds})
        self._history(key, "recovered", f"{self.run_id} {seconds:g} s")
        self._put_run(
            service,
            {
                "status": "recovered",
                "task_arn": victim.arn,
                "killed_at": int(killed_at),
                "recovery_seconds": seconds,
            },
        )
        self._post(
            f":white_check_mark: Chaos: {service.name} recovered in {seconds:g} s",
            f"After task `{victim.short_id}` was stopped, running = desired and every target "
            f"is healthy again: {detail}. Checked every {self.chaos.poll_seconds} s; "
            f"threshold {self.chaos.recovery_timeout_seconds} s.",
            facts=self._facts(decision, seed),
        )
        return _result(
            "recovered",
            reason,
            service=key,
            seed=seed,
            task=victim.arn,
            recovery_seconds=seconds,
            verdicts=verdicts,
        )

    # -- records and reports (a failed write is logged; the experiment goes on) --

    def _history(self, key: str, outcome: str, detail: str) -> None:
        try:
            self.kit.ledger.record_history(key, JOB, outcome, detail)
        except OpsError as exc:
            logger.error("chaos history not written", extra={"reason": str(exc)})

    def _put_run(self, service: ServiceFacts, fields: dict[str, Any]) -> None:
        try:
            self.reader.records.put_run(service.key, self.run_id, _utc(self.clock()), fields)
        except OpsError as exc:
            logger.error("chaos run record not written", extra={"reason": str(exc)})

    def _facts(self, decision: Decision, seed: str) -> list[tuple[str, str]]:
        return [
            ("Run", self.run_id),
            ("Seed", seed),
            ("Draw", f"{decision.draw:.4f} < p={decision.probability:.4f}"),
            ("Mode", "leashed" if self.leash.active else "unleashed"),
        ]

    def _post(self, title: str, body: str, *, facts: list[tuple[str, str]]) -> None:
        settings = self.kit.settings
        message = build_message(
            title,
            body,
            facts=facts,
            runbook=runbook_url(settings.runbook_base_url, CHAOS_KILL),
            footer=f"{settings.app_name}-{settings.stage} · {JOB} · run {self.run_id}",
        )
        self.kit.notifier.post(message, job=JOB)


def _where(task: TaskFacts) -> str:
    parts = [p for p in (task.capacity_provider, task.availability_zone) if p]
    return ", ".join(parts) or "capacity unknown"
