"""Remediation within limits: decide (:func:`~chalicelib.alarms.rules.decide`), take the
service lock, count the budget, start the cooldown, make the one ``UpdateService``,
record it, and post the follow-up: what was done, or exactly why not. Called by the
alarm path, Spot interruptions, placement failures and the capacity check."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib import runbooks
from chalicelib.alarms import messages
from chalicelib.alarms.facts import (
    RemediationGateway,
    ServiceSnapshot,
)
from chalicelib.alarms.rules import (
    Action,
    CapacityShift,
    DeploymentFacts,
    NotApplicable,
    Outcome,
    Plan,
    PlanAnswer,
    Refusal,
    RemediationFacts,
    Rule,
    Severity,
    Switch,
    cooldown_key,
    decide,
    duration,
    may_share_lock,
    plan_capacity_return,
    plan_capacity_shift,
    plan_force_new_deployment,
    plan_rollback,
    plan_scale_out,
    plan_took,
)
from chalicelib.alarms.shared import (
    JOB,
    Clock,
    footer_for,
    gateway_for,
    post_message,
    records_for,
)
from chalicelib.deployments import (
    OPEN_STATUSES,
    DeploymentStatus,
    deployment_in_progress,
    is_bootstrap_image,
)
from chalicelib.errors import OpsError
from chalicelib.failures import FailureKind
from chalicelib.gateway import AwsCallError
from chalicelib.observability import count, logger
from chalicelib.runbooks import runbook_url

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit


# A remediation holds the service lock only around its one UpdateService; a crashed run's
# lock is gone after this (never LOCK_TTL_SECONDS' hour, which would hold redeploys back).
LOCK_TTL_SECONDS = 300
_EARLY = (
    Refusal.FOREIGN,
    Refusal.STALE,
    Refusal.SUPPRESSED,
    Refusal.NO_POLICY,
    Refusal.KILL_SWITCH,
)


def remediate(
    kit: Toolkit,
    *,
    rule: Rule | None,
    subject: str,
    at: float,
    holder: str,
    clock: Clock,
    foreign: str | None = None,
    stale: str | None = None,
    suppressed: str | None = None,
    unreadable: str | None = None,
    shift: CapacityShift | None = None,
    alarm: str | None = None,
) -> Outcome:
    """Decide, and act when every limit allows; never raises for AWS or ledger failures.

    ``alarm``: the alarm that calls for the action, read again (``DescribeAlarms``) before
    deciding: the change may be hours late, so only an alarm still in ALARM now is acted on.
    """
    settings = kit.settings
    svc = settings.service_key
    switch = kit.controls.kill_switch()
    dry_run = kit.controls.dry_run()
    base = RemediationFacts(
        rule=rule,
        kill_switch=Switch(switch.engaged, switch.reason),
        dry_run=Switch(dry_run.active, dry_run.reason),
        foreign=foreign,
        stale=stale,
        suppressed=suppressed,
        unreadable=unreadable,
        budget_max=settings.remediation.max_per_hour,
        service=svc,
    )
    early = decide(base)
    if early.refusal in _EARLY or unreadable or rule is None:
        return _refused(Outcome.of(early), subject)
    gateway = gateway_for(kit)
    try:
        alarm_now = gateway.alarm_now(alarm) if alarm is not None else None
        if alarm is not None and alarm_now is None:
            raise _MissingFactError(f"alarm {alarm} (not found in CloudWatch)")
        snapshot = gateway.snapshot()
        if snapshot is None:
            raise _MissingFactError(f"service {svc} (not found or not active)")
        plan = _plan(rule, snapshot, kit, gateway, at=at, shift=shift)
        busy = _busy(snapshot, kit)
        cooldown = kit.ledger.cooldown_remaining(svc, cooldown_key(rule))
        used = kit.ledger.budget_used(_budget_key(svc))
    except _MissingFactError as exc:
        return _refused(Outcome.of(decide(_with(base, unreadable=str(exc)))), subject)
    except AwsCallError as exc:
        why = f"{exc.operation} ({exc.code})"
        if exc.kind is FailureKind.DENIED:
            why += f": access denied, see runbooks/{runbooks.ACCESS_DENIED}"
        return _refused(Outcome.of(decide(_with(base, unreadable=why))), subject)
    except OpsError as exc:
        return _refused(Outcome.of(decide(_with(base, unreadable=f"the ledger ({exc})"))), subject)
    decision = decide(
        _with(
            base,
            alarm_now=alarm_now,
            plan=plan,
            deployment=busy,
            cooldown_remaining=cooldown,
            budget_used=used,
        )
    )
    if not decision.act or decision.plan is None:
        return _refused(Outcome.of(decision), subject)
    try:
        return _act(
            kit,
            gateway,
            rule,
            decision.plan,
            snapshot,
            holder=holder,
            subject=subject,
            at=at,
            clock=clock,
            during=busy,
        )
    except OpsError as exc:  # the ledger failed around the action
        logger.error("remediation stopped by a ledger failure", extra={"error": str(exc)})
        count("ActionsFailed", JOB)
        return Outcome(False, decision.reason, None, decision.plan.summary, f"the ledger ({exc})")


class _MissingFactError(OpsError):
    """A fact the decision needs is missing (not an AWS error: the thing is not there)."""


def _with(base: RemediationFacts, **changes: Any) -> RemediationFacts:
    return replace(base, **changes)


def _refused(outcome: Outcome, subject: str) -> Outcome:
    count("ActionsSuppressed", JOB)
    logger.info(
        "not remediating",
        extra={"subject": subject, "refusal": outcome.status, "reason": outcome.reason},
    )
    return outcome


def _budget_key(service_key: str) -> str:
    return f"remediation:{service_key}"


def _busy(snapshot: ServiceSnapshot, kit: Toolkit) -> str | None:
    """Why a deployment is in progress (ECS's view, then the redeploy job's), else None."""
    if deployment_in_progress(snapshot.deployments):
        rolling = [d.deployment_id for d in snapshot.deployments if d.status == "PRIMARY"]
        return f"ECS is rolling out {', '.join(rolling) or 'a deployment'}"
    record = kit.ledger.read_deployment(kit.settings.service_key)
    if record is not None and record.status in OPEN_STATUSES:
        return f"the toolkit's deployment of {record.label} is {record.status.value}"
    return None


def _plan(
    rule: Rule,
    snapshot: ServiceSnapshot,
    kit: Toolkit,
    gateway: RemediationGateway,
    *,
    at: float,
    shift: CapacityShift | None,
) -> PlanAnswer:
    settings = kit.settings
    service = snapshot.state
    if rule.action is Action.FORCE_NEW_DEPLOYMENT:
        return plan_force_new_deployment(service)
    if rule.action is Action.SCALE_OUT:
        return plan_scale_out(
            service, gateway.scalable_target(), settings.remediation.scale_out_percent
        )
    if rule.action is Action.ROLLBACK:
        record = kit.ledger.read_deployment(settings.service_key)
        facts = (
            DeploymentFacts(
                record.deployment_id,
                record.label,
                record.status.value,
                record.task_definition,
                record.previous_task_definition,
                record.updated_at,
            )
            if record is not None
            else None
        )
        placeholder = False
        if facts is not None and facts.previous_task_definition:
            previous = gateway.task_definition(facts.previous_task_definition)
            placeholder = is_bootstrap_image(previous.image_of(settings.container_name) or "")
        return plan_rollback(
            service,
            facts,
            alarm_at=at,
            window_seconds=settings.remediation.rollback_window_seconds,
            previous_is_placeholder=placeholder,
        )
    if rule.action is Action.CAPACITY_SHIFT:
        return plan_capacity_shift(service)
    if rule.action is Action.CAPACITY_RETURN:
        return plan_capacity_return(service, shift.original if shift is not None else ())
    return NotApplicable(f"{rule.action.value} is not an action")


def _act(
    kit: Toolkit,
    gateway: RemediationGateway,
    rule: Rule,
    plan: Plan,
    snapshot: ServiceSnapshot,
    *,
    holder: str,
    subject: str,
    at: float,
    clock: Clock,
    during: str | None = None,
) -> Outcome:
    """Take the lock, count the budget once, start the cooldown, make the change, record it;
    the lock is released on every path.

    ``during``: a deployment is in progress (why). A rule that acts during one (the Spot
    placement failure's shift) finds the service lock held by the redeploy job for that
    deployment: it shares it (:func:`may_share_lock`) instead of taking it, and leaves it
    held for the deployment its change started, to which the redeploy job's record is
    handed over, so that deployment's outcome event settles the record and frees the lock.
    """
    settings = kit.settings
    svc = settings.service_key
    ledger = kit.ledger
    ttl = min(LOCK_TTL_SECONDS, settings.lock_ttl_seconds)
    details = {"trigger": rule.trigger, "remediation": rule.action.value}
    lock = ledger.acquire_lock(svc, holder=holder, action=JOB, ttl_seconds=ttl, details=details)
    rolling = snapshot.state.primary_deployment
    shared = ""  # the deployment whose lock is shared
    if not lock.acquired and during and may_share_lock(rule, lock.lock, rolling=rolling):
        lock = ledger.share_lock(
            svc, guest=holder, deployment_id=rolling, ttl_seconds=ttl, details=details
        )
        shared = rolling if lock.acquired else ""
    if not lock.acquired:
        held = lock.lock  # None: freed between our write and our read
        action, owner = (held.action, held.holder) if held is not None else ("", "")
        reason = (
            f"{svc} is locked by {action or '?'} ({owner or '?'}): "
            "two automations never act on one service at once"
        )
        return _refused(Outcome.refused(Refusal.LOCKED, reason, plan.summary), subject)
    successor = ""
    try:
        held = lock.lock
        mine = (held.guest if shared else held) if held is not None else None
        if not (mine is not None and mine.budget_taken):
            if not ledger.consume_budget(_budget_key(svc), settings.remediation.max_per_hour):
                reason = (
                    f"the budget of {settings.remediation.max_per_hour} automated actions per "
                    f"hour on {svc} is spent: escalating to a human. Nothing more is done "
                    "automatically this hour; follow the runbook"
                )
                return _refused(Outcome.refused(Refusal.BUDGET, reason, plan.summary), subject)
            if shared:
                ledger.update_share(svc, holder, {"budget_taken": True})
            else:
                ledger.update_lock(svc, holder, {"budget_taken": True})
        ledger.start_cooldown(svc, cooldown_key(rule), rule.cooldown_seconds)
        records = records_for(kit, clock)
        if plan.action is Action.CAPACITY_SHIFT:
            # The way back is recorded before the shift: a crash must not strand the service.
            records.remember_home(svc, plan.original_strategy)
            records.put_shift(svc, CapacityShift(at, plan.original_strategy, rule.trigger, at))
        try:
            answer = gateway.update(plan.update)
        except AwsCallError as exc:
            took = exc.kind is FailureKind.UNKNOWN and _took(gateway, plan, snapshot)
            if not took:
                if plan.action is Action.CAPACITY_SHIFT:
                    records.delete_shift(svc, at)
                return _failed(exc, plan, subject)
            logger.warning("UpdateService answer lost; ECS took it", extra={"plan": plan.summary})
            answer = None
        summary = plan.summary
        if shared:
            successor = _successor(gateway, answer, shared)
            if successor:
                ledger.hand_over_deployment(
                    svc,
                    shared,
                    successor,
                    f"superseded by {successor}, started by remediation of {subject} "
                    "(same task definition, on on-demand FARGATE)",
                )
                summary = f"{summary}; deployment {shared} goes on as {successor}"
        if plan.action is Action.ROLLBACK and plan.undoes_deployment:
            ledger.set_deployment_status(
                svc,
                plan.undoes_deployment,
                DeploymentStatus.ROLLED_BACK.value,
                f"rolled back by remediation of {subject}",
            )
        if plan.action is Action.ROLLBACK:
            # Or the next push (or a late delivery of the bad one) deploys again what this
            # rollback just undid.
            froze = ledger.freeze(
                svc,
                at=clock(),
                reason=(
                    f"remediation of {subject} rolled back deployment "
                    f"{plan.undoes_deployment or '(unrecorded)'}"
                ),
                by="remediation",
                deployment_id=plan.undoes_deployment,
            )
            if froze:
                summary = (
                    f"{summary}; pushes are now frozen (a push is recorded, not deployed): "
                    "`spotops unfreeze` resumes"
                )
        if plan.action is Action.CAPACITY_RETURN:
            shift = records.shift(svc)
            if shift is not None:
                records.delete_shift(svc, shift.shifted_at)
        ledger.record_history(svc, JOB, rule.action.value, f"{subject}: {summary}")
        count("ActionsTaken", JOB)
        logger.info("remediated", extra={"subject": subject, "plan": summary})
        return Outcome(True, summary, None, summary)
    finally:
        try:
            if shared:
                ledger.end_share(svc, guest=holder, deployment_id=successor or None)
            else:
                ledger.release_lock(svc, holder=holder)
        except OpsError as exc:
            logger.error("lock not released; it expires on its own", extra={"error": str(exc)})


def _successor(gateway: RemediationGateway, answer: ServiceSnapshot | None, before: str) -> str:
    """The deployment the change started in place of ``before`` ("" when none is seen)."""
    if answer is None:
        try:
            answer = gateway.snapshot()
        except AwsCallError:
            return ""
    found = answer.state.primary_deployment if answer is not None else ""
    return found if found and found != before else ""


def _took(gateway: RemediationGateway, plan: Plan, before: ServiceSnapshot) -> bool:
    try:
        after = gateway.snapshot()
    except AwsCallError:
        return False
    return plan_took(plan, before.state, after.state if after is not None else None)


def _failed(exc: AwsCallError, plan: Plan, subject: str) -> Outcome:
    count("ActionsFailed", JOB)
    why = {
        FailureKind.TRANSIENT: "AWS throttled or failed",
        FailureKind.DENIED: f"access denied (see runbooks/{runbooks.ACCESS_DENIED})",
        FailureKind.UNKNOWN: "no answer, and ECS did not take it",
        FailureKind.MISSING: "the service is gone",
        FailureKind.REFUSED: "ECS refused it",
    }[exc.kind]
    failure = f"{why}: {exc.operation} {exc.code}"
    logger.error("remediation failed", extra={"subject": subject, "failure": failure})
    return Outcome(True, plan.summary, None, plan.summary, failure)


def _limits(kit: Toolkit, rule: Rule | None) -> str:
    remediation = kit.settings.remediation
    cooldown = (
        f"once per {duration(rule.cooldown_seconds)} per trigger, "
        if rule is not None and rule.cooldown_seconds
        else ""
    )
    during = (
        "during a deployment too (a Spot shortage stalls it)"
        if rule is not None and rule.during_deployment
        else "none during a deployment"
    )
    return (
        f"{cooldown}{remediation.max_per_hour} actions per hour on the service, {during}, "
        "kill switch and dry run honoured"
    )


def follow_up(
    kit: Toolkit,
    rule: Rule | None,
    outcome: Outcome,
    subject: str,
    alarm_runbook: str,
    severity: Severity,
    event_id: str,
) -> None:
    settings = kit.settings
    runbook = (
        runbook_url(settings.runbook_base_url, rule.runbook)
        if rule is not None and rule.runbook is not None
        else alarm_runbook
    )
    post_message(
        kit,
        severity,
        messages.follow_up(
            messages.FollowUp(
                subject=subject,
                rule=rule,
                outcome=outcome,
                service=settings.service_key,
                limits=_limits(kit, rule),
                runbook=runbook,
                footer=footer_for(kit, f"remediation {event_id}"),
            )
        ),
    )
