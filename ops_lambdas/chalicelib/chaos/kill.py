"""The kill of a chaos experiment, once every guard passed and the leash is off: take the
service lock, check the chosen task still runs, record the kill (before stopping, so a retry
cannot kill twice), ``StopTask``, then watch the recovery in the same invocation, record and
post the verdict, and release the lock.

Why the watch runs inside the invocation is in :mod:`chalicelib.chaos.flow`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.chaos.facts import ChaosReader, ChaosReadError
from chalicelib.chaos.guards import KIND_CHAOS, KillRecord, recovered, task_facts
from chalicelib.chaos.report import JOB, RunReport, result, seconds_metric, utc, where
from chalicelib.observability import count, logger
from chalicelib.results import JobResult, Status

if TYPE_CHECKING:
    from chalicelib.chaos.guards import Decision, ServiceFacts, TaskFacts
    from chalicelib.toolkit import Toolkit

# A crashed run's lock expires this long after the recovery watch would have ended.
LOCK_MARGIN_SECONDS = 300
# Time kept back from Lambda's limit to record and report after the recovery watch: a kill
# needs CHAOS_RECOVERY_TIMEOUT_SECONDS plus this much of the invocation left.
LAMBDA_MARGIN_SECONDS = 30

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class KillOrder:
    """One service's decision to kill ``victim``, as the flow hands it over.

    ``stored``: the last kill on record before this run (put back if ECS refuses the stop);
    ``gap_hours``: the service's minimum gap between kills (the kill record's condition).
    """

    service: ServiceFacts
    decision: Decision
    victim: TaskFacts
    seed: str
    verdicts: list[str]
    stored: KillRecord | None
    gap_hours: float


class Killer:
    """Stops one task per order and measures the recovery (one run's kills share it)."""

    def __init__(
        self,
        *,
        kit: Toolkit,
        reader: ChaosReader,
        report: RunReport,
        clock: Clock,
        sleep: Sleep,
        ends_at: float | None,
    ) -> None:
        self.kit = kit
        self.reader = reader
        self.report = report
        self.run_id = report.run_id
        self.clock = clock
        self.sleep = sleep
        self.ends_at = ends_at
        self.chaos = kit.settings.chaos

    def kill(self, order: KillOrder) -> JobResult:
        """The whole experiment under the service lock; the lock is released on every path."""
        key = order.service.key
        ledger = self.kit.ledger
        holder = f"{JOB}:{self.run_id}"
        lock = ledger.acquire_lock(
            key,
            holder=holder,
            action=JOB,
            ttl_seconds=self.chaos.recovery_timeout_seconds + LOCK_MARGIN_SECONDS,
            details={"run_id": self.run_id, "task_arn": order.victim.arn},
        )
        if not lock.acquired:
            held = lock.lock  # None: freed between our write and our read
            action, owner = (held.action, held.holder) if held is not None else ("", "")
            reason = f"{key} was locked by {action or '?'} ({owner or '?'}) before the kill"
            logger.info("chaos lost the lock", extra={"ecs_service": key, "reason": reason})
            return result(
                Status.LOCKED, reason, service=key, seed=order.seed, verdicts=order.verdicts
            )
        try:
            return self._kill_locked(order)
        finally:
            ledger.release_lock(key, holder=holder)

    def _post(self, order: KillOrder, title: str, body: str) -> None:
        facts = self.report.facts(order.decision, order.seed, leashed=False)
        self.report.post(title, body, facts=facts)

    def _kill_locked(self, order: KillOrder) -> JobResult:
        service, victim, seed = order.service, order.victim, order.seed
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
            return result(Status.SKIPPED, reason, service=key, seed=seed, task=victim.arn)
        killed_at = self.clock()
        record = KillRecord(utc(killed_at), KIND_CHAOS, victim.arn, self.run_id)
        # Recorded before the stop: a retry of this run, or a twin that decided at the same
        # time, then meets the minimum gap (the write fails if a kill is on record inside it).
        gap = timedelta(hours=order.gap_hours)
        if not self.reader.records.record_kill(key, record, unless_since=record.at - gap):
            reason = "a newer kill or Spot interruption was recorded meanwhile; nothing stopped"
            logger.warning("chaos kill not recorded", extra={"ecs_service": key, "reason": reason})
            return result(Status.SKIPPED, reason, service=key, seed=seed, task=victim.arn)
        stop_reason = (
            f"spotops chaos run {self.run_id} ({self.kit.settings.app_name}-"
            f"{self.kit.settings.stage}): scheduled kill, see runbooks/chaos-kill.md"
        )[:255]
        refused = self._stop(service, victim, stop_reason, order.stored)
        if refused is not None:
            reason = refused
            logger.error("chaos kill failed", extra={"ecs_service": key, "reason": reason})
            count("ActionsFailed", JOB)
            self.report.history(key, Status.FAILED, reason)
            self.report.run_record(service, Status.FAILED, task_arn=victim.arn, reason=reason)
            self._post(order, f":x: Chaos kill failed: {service.name}", reason)
            return result(Status.FAILED, reason, service=key, seed=seed, task=victim.arn)
        count("ActionsTaken", JOB)
        timeout = self.chaos.recovery_timeout_seconds
        logger.info("chaos stopped a task", extra={"ecs_service": key, "task": victim.arn})
        self.report.history(key, Status.KILLED, f"{self.run_id} stopped {victim.arn}")
        self.report.run_record(
            service, Status.RECOVERING, task_arn=victim.arn, killed_at=int(killed_at)
        )
        self._post(
            order,
            f":boom: Chaos: stopped task {victim.short_id} of {service.name}",
            f"Every guard passed; stopped task `{victim.short_id}` ({where(victim)}) of `{key}` "
            f"with reason `{stop_reason}`. Watching recovery for up to {timeout} s.",
        )
        return self._watch(order, killed_at)

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

    def _watch(self, order: KillOrder, killed_at: float) -> JobResult:
        """Every ``CHAOS_POLL_SECONDS`` until running = desired and every target is healthy,
        at most ``CHAOS_RECOVERY_TIMEOUT_SECONDS`` (less when Lambda's time runs out first)."""
        service = order.service
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
                return self._recovered(order, killed_at, verdict.reason)
            last = verdict.reason
        watched = self.clock() - killed_at
        why = (
            f"stopped watching after {watched:.0f} s, before the {timeout} s threshold: the "
            "function's time limit"
            if cut_short
            else f"not recovered within {timeout} s"
        )
        return self._not_recovered(order, killed_at, f"{key} {why}; last check: {last}")

    def _not_recovered(self, order: KillOrder, killed_at: float, reason: str) -> JobResult:
        service, victim = order.service, order.victim
        key = service.key
        logger.error("chaos experiment failed", extra={"ecs_service": key, "reason": reason})
        count("ChaosExperimentsFailed", JOB)
        self.report.history(key, Status.NOT_RECOVERED, reason)
        self.report.run_record(
            service,
            Status.NOT_RECOVERED,
            task_arn=victim.arn,
            killed_at=int(killed_at),
            reason=reason,
        )
        self._post(
            order,
            f":x: Chaos experiment failed: {service.name} did not recover",
            f"After stopping task `{victim.short_id}`, {reason}. The site may be short of "
            "capacity: follow the runbook.",
        )
        return result(
            Status.NOT_RECOVERED,
            reason,
            service=key,
            seed=order.seed,
            task=victim.arn,
            verdicts=order.verdicts,
        )

    def _recovered(self, order: KillOrder, killed_at: float, detail: str) -> JobResult:
        service, victim = order.service, order.victim
        key = service.key
        seconds = round(self.clock() - killed_at, 1)
        seconds_metric("ChaosTimeToRecover", seconds)
        reason = f"{key} recovered in {seconds:g} s ({detail})"
        logger.info("chaos recovery measured", extra={"ecs_service": key, "seconds": seconds})
        self.report.history(key, Status.RECOVERED, f"{self.run_id} {seconds:g} s")
        self.report.run_record(
            service,
            Status.RECOVERED,
            task_arn=victim.arn,
            killed_at=int(killed_at),
            recovery_seconds=seconds,
        )
        self._post(
            order,
            f":white_check_mark: Chaos: {service.name} recovered in {seconds:g} s",
            f"After task `{victim.short_id}` was stopped, running = desired and every target "
            f"is healthy again: {detail}. Checked every {self.chaos.poll_seconds} s; "
            f"threshold {self.chaos.recovery_timeout_seconds} s.",
        )
        return result(
            Status.RECOVERED,
            reason,
            service=key,
            seed=order.seed,
            task=victim.arn,
            recovery_seconds=seconds,
            verdicts=order.verdicts,
        )
