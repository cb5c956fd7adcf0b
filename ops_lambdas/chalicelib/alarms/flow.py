"""Alarm to action: the flow of the ``alarm_action`` function (the rules are in
:mod:`chalicelib.alarms.rules`, the reads and records in
:mod:`chalicelib.alarms.facts`, the messages in :mod:`chalicelib.alarms.messages`).

For an alarm state change (SNS from the site's alarm topic, or EventBridge; the same change
delivered both ways, or twice, is handled once: idempotency on alarm + state + time):

1. **Record, then alert.** The change and how it is posted (as usual, a flapping summary, or
   held while the alarm flaps) go to the ledger first; the alert is claimed in the ledger,
   then posted, so a retry never posts it twice. When the ledger cannot be read the alert
   still goes out, and nothing is remediated.
2. **Remediate, within limits** (ALARM only): the policy line of the alarm, then every
   reason not to act (:func:`~chalicelib.alarms.rules.decide`), then the service lock
   shared with redeploy and chaos (holder ``remediation:<trigger>:<event id>``, released on
   every path), the hourly budget (counted once per lock) and the cooldown, then one
   ``UpdateService``. After a lost answer ECS is asked whether it took the change.
3. **Record, then follow up**: what was done, or exactly why not.

Spot interruptions (``ECS Task State Change``, ``stopCode`` ``SpotInterruption``) are
counted (metric ``SpotInterruptions``, ledger, and chaos's last-kill record), posted up to
the threshold, and at the threshold within the window shift the service to on-demand
FARGATE; so does a ``SERVICE_TASK_PLACEMENT_FAILURE`` on ``FARGATE_SPOT``. The capacity check
(every 15 minutes) puts the Spot strategy back after a quiet period.

Bad input never raises (logged with the reason, counted as ``EventsIgnored``), and a failed
remediation call is reported, not retried: the next state change or on-call decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyPersistenceLayerError,
)

from chalicelib import runbooks
from chalicelib.alarms import messages
from chalicelib.alarms.events import (
    AlarmChange,
    AlarmStateChangeEvent,
    EcsServiceActionEvent,
    EcsTaskStateChangeEvent,
    Kind,
    alarm_of,
    classify,
    runbook_of,
    sns_messages,
)
from chalicelib.alarms.facts import (
    RemediationGateway,
    RemediationRecords,
    ServiceSnapshot,
)
from chalicelib.alarms.rules import (
    ALARM,
    TRIGGER_PLACEMENT_FAILURE,
    TRIGGER_SPOT_INTERRUPTIONS,
    TRIGGER_SPOT_QUIET,
    Action,
    CapacityShift,
    DeploymentFacts,
    NotApplicable,
    Notice,
    NoticeDecision,
    Outcome,
    Plan,
    PlanAnswer,
    Refusal,
    RemediationFacts,
    Rule,
    Severity,
    StrategyItem,
    Switch,
    cooldown_key,
    decide,
    duration,
    follow_up_posted,
    interruptions_decision,
    may_share_lock,
    next_history,
    notice_decision,
    placement_verdict,
    plan_capacity_return,
    plan_capacity_shift,
    plan_force_new_deployment,
    plan_rollback,
    plan_scale_out,
    plan_took,
    return_decision,
    rule_for,
    rule_for_alarm,
    unrecorded_check,
)
from chalicelib.chaos.facts import ChaosRecords
from chalicelib.chaos.guards import KIND_SPOT, KillRecord
from chalicelib.deployments import (
    OPEN_STATUSES,
    DeploymentRecord,
    DeploymentStatus,
    deployment_in_progress,
    is_bootstrap_image,
)
from chalicelib.errors import OpsError
from chalicelib.failures import FailureKind
from chalicelib.gateway import AwsCallError
from chalicelib.idempotent import run_once
from chalicelib.observability import count, ignore_event, logger
from chalicelib.runbooks import runbook_url

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit

JOB = "remediation"
ALARM_KEY_PREFIX = "spotops-alarm"
SPOT_KEY_PREFIX = "spotops-spot"
# A remediation holds the service lock only around its one UpdateService; a crashed run's
# lock is gone after this (never LOCK_TTL_SECONDS' hour, which would hold redeploys back).
LOCK_TTL_SECONDS = 300
Clock = Callable[[], float]
_EARLY = (
    Refusal.FOREIGN,
    Refusal.STALE,
    Refusal.SUPPRESSED,
    Refusal.NO_POLICY,
    Refusal.KILL_SWITCH,
)


def _result(status: str, reason: str, **facts: Any) -> dict[str, Any]:
    return {"job": JOB, "status": status, "reason": reason, **facts}


# ---- entry point --------------------------------------------------------------------------


def handle_event(raw: Any, kit: Toolkit, *, clock: Clock = time.time) -> dict[str, Any]:
    """Handle whatever the alarm function was invoked with; never raises for bad input.

    Returns
    -------
    dict
        ``job``, ``status`` (``alerted``, ``held``, ``acted``, a refusal, ``failed``,
        ``ignored``, ``duplicate``...), ``reason`` and what was decided.

    Example
    -------
    >>> handle_event({"Records": []}, kit)["status"]  # doctest: +SKIP
    'ignored'
    """
    kind, why = classify(raw)
    if kind is Kind.SNS:
        return _sns(raw, kit, clock)
    if kind is Kind.ALARM_STATE_CHANGE:
        event = AlarmStateChangeEvent(raw)
        problem = event.problem()
        if problem:
            return ignore_event(JOB, problem, event_id=raw.get("id"))
        return handle_alarm(event.change(), kit, clock=clock)
    if kind is Kind.TASK_STATE_CHANGE:
        return _spot_interruption(EcsTaskStateChangeEvent(raw), kit, clock)
    if kind is Kind.SERVICE_ACTION:
        return _placement_failure(EcsServiceActionEvent(raw), kit, clock)
    if kind is Kind.SCHEDULE:
        return capacity_check(kit, clock=clock)
    return ignore_event(JOB, why)


def _sns(raw: Mapping[str, Any], kit: Toolkit, clock: Clock) -> dict[str, Any]:
    found, problems = sns_messages(raw)
    for problem in problems:
        ignore_event(JOB, problem)
    results = []
    for message in found:
        alarm = alarm_of(message)
        if alarm.change is None:
            results.append(ignore_event(JOB, alarm.problem, message_id=message.message_id))
            continue
        if alarm.problem:
            logger.warning(
                "alarm message unreadable; alerting from its subject",
                extra={"reason": alarm.problem, "message_id": message.message_id},
            )
            count("EventsIgnored", JOB)
        topic = kit.settings.remediation.alarm_topic_arn
        other_topic = (
            f"it came from topic {message.topic_arn}, not {topic}"
            if topic and message.topic_arn and message.topic_arn != topic
            else None
        )
        results.append(handle_alarm(alarm.change, kit, clock=clock, other_topic=other_topic))
    if not results:
        return _result("ignored", "; ".join(problems) or "no SNS message to handle")
    if len(results) == 1:
        return {**results[0], "records": 1}
    return _result("handled", f"{len(results)} SNS messages", results=results)


# ---- alarms -------------------------------------------------------------------------------


def _foreign(change: AlarmChange, kit: Toolkit, other_topic: str | None) -> str | None:
    """Why the toolkit must not act on this alarm (it is still alerted), or ``None``."""
    settings = kit.settings
    if change.degraded:
        return f"its message could not be read ({change.degraded})"
    if other_topic:
        return other_topic
    if not change.name.startswith(settings.alarm_prefix):
        return f"{change.name} is not an alarm of {settings.alarm_prefix.rstrip('-')}"
    account, region = _home(kit)
    if account and change.account and change.account != account:
        return f"the alarm is in account {change.account}, not this stage's {account}"
    if region and change.region and change.region != region:
        return f"the alarm is in region {change.region}, not this stage's {region}"
    return None


def _home(kit: Toolkit) -> tuple[str, str]:
    """This function's account and region (from its ARN in the Lambda context)."""
    arn = str(getattr(kit.lambda_context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    return (parts[4], parts[3]) if len(parts) > 5 else ("", "")


def handle_alarm(
    change: AlarmChange, kit: Toolkit, *, clock: Clock = time.time, other_topic: str | None = None
) -> dict[str, Any]:
    """One alarm state change: alert first, then remediate within limits, then follow up."""
    logger.append_keys(alarm=change.name, alarm_state=change.state)
    foreign = _foreign(change, kit, other_topic)
    if foreign:
        logger.warning("alarm not ours to remediate", extra={"reason": foreign})
    key = {"alarm": change.name, "state": change.state, "at": str(int(change.at))}

    def work() -> dict[str, Any]:
        return _alarm(change, kit, clock, foreign)

    try:
        return run_once(kit, job=JOB, key_prefix=ALARM_KEY_PREFIX, key=key, work=work)
    except IdempotencyPersistenceLayerError as exc:
        # The idempotency table failed: an alert twice beats no alert.
        logger.error("idempotency unavailable; handling anyway", extra={"error": str(exc)})
        return work()


def _alarm(change: AlarmChange, kit: Toolkit, clock: Clock, foreign: str | None) -> dict[str, Any]:
    settings = kit.settings
    flap = settings.remediation.flap
    records = _records(kit, clock)
    rule = None if foreign else rule_for_alarm(change.name, settings.alarm_prefix)
    severity = rule.severity if rule is not None else Severity.WARNING
    facts = {"alarm": change.name, "state": change.state, "severity": severity.value}

    # 1. record the change and decide how it is posted (ledger first)
    event = None
    ledger_error = None
    try:
        history = records.alarm_history(change.name)
        decision = notice_decision(history, state=change.state, at=change.at, policy=flap)
        event = records.begin_event(change, decision)
        decision = event.notice
        if decision.stale is None:  # a late change leaves the alarm's state as it is
            records.save_history(
                change.name,
                next_history(
                    history, state=change.state, at=change.at, decision=decision, policy=flap
                ),
            )
    except OpsError as exc:
        ledger_error = f"the safety ledger ({exc})"
        logger.error("alarm history unreadable; alerting anyway", extra={"error": str(exc)})
        lasted = (
            change.at - change.previous_since
            if change.old_state == ALARM and change.previous_since is not None
            else None
        )
        decision = NoticeDecision(Notice.POST, 1, 0, lasted)
    if decision.lasted is None and change.old_state == ALARM and change.previous_since:
        decision = NoticeDecision(
            decision.notice,
            decision.entries_in_window,
            decision.held,
            max(0.0, change.at - change.previous_since),
        )

    # 2. the alert, first
    context = replace(_alert_context(change, kit, severity, foreign), late=decision.stale)
    if decision.notice is Notice.HOLD:
        count("AlertsHeld", JOB)
        logger.info("alert held: the alarm flaps", extra={"entries": decision.entries_in_window})
    elif event is None or _claim(records, change, "alert_posted"):
        if decision.notice is Notice.SUMMARY:
            message = messages.flapping_summary(change, decision, context, flap)
        else:
            message = messages.alert(change, decision, context)
        _post(kit, severity, message)
    facts["notice"] = decision.notice.value
    if change.state != ALARM:
        status = "held" if decision.notice is Notice.HOLD else "alerted"
        return _result(status, f"{change.name} is {change.state}", **facts)

    # 3. remediate (a retry reports what the first attempt did)
    if event is not None and event.outcome is not None:
        outcome = Outcome.from_dict(event.outcome)
    else:
        outcome = _remediate(
            kit,
            rule=rule,
            subject=change.name,
            at=change.at,
            holder=f"remediation:{change.name}:{change.event_id}",
            clock=clock,
            foreign=foreign,
            stale=decision.stale,
            suppressed=change.suppressed,
            unreadable=ledger_error,
            alarm=change.name,
        )
        if event is not None:
            try:
                records.set_outcome(change, outcome.as_dict())
            except OpsError as exc:
                logger.error("remediation outcome not recorded", extra={"error": str(exc)})

    # 4. the follow-up
    post = follow_up_posted(decision.notice, outcome)
    if outcome.escalate:  # "escalating to a human" reaches on-call once an hour, flapping or not
        post = _once(records, kit, "escalation", 3600) or post
    if post and (event is None or _claim(records, change, "follow_up_posted")):
        _follow_up(kit, rule, outcome, change.name, context.runbook, severity, change.event_id)
    return _result(outcome.status, outcome.reason, **facts, action=_action(rule))


def _alert_context(
    change: AlarmChange, kit: Toolkit, severity: Severity, foreign: str | None
) -> messages.AlertContext:
    settings = kit.settings
    description = change.description
    if description is None and change.composite and not change.degraded and not foreign:
        description = _description(kit, change.name)
    found = runbook_of(description)
    if found is None:
        logger.warning(
            "alarm names no runbook; linking the index",
            extra={"hint": "add 'Runbook: <url>' to the alarm's description"},
        )
    return messages.AlertContext(
        severity=severity,
        runbook=found or runbook_url(settings.runbook_base_url, runbooks.INDEX),
        runbook_found=found is not None,
        footer=_footer(kit, f"{change.source} {change.event_id}"),
        foreign=foreign,
    )


def _description(kit: Toolkit, name: str) -> str | None:
    """A composite alarm's description (its EventBridge event carries none); ``None`` when
    it cannot be read (the alert then links the runbook index, with a warning)."""
    try:
        return _gateway(kit).alarm_description(name)
    except AwsCallError as exc:
        logger.warning("alarm description unreadable", extra={"error": str(exc)})
        return None


def _action(rule: Rule | None) -> str:
    return rule.action.value if rule is not None else Action.NOTIFY.value


# ---- remediation: decide, lock, act, record ----------------------------------------------


def _remediate(
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
    gateway = _gateway(kit)
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
    record = DeploymentRecord.from_item(kit.ledger.get_deployment(kit.settings.service_key))
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
        record = DeploymentRecord.from_item(kit.ledger.get_deployment(settings.service_key))
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
    if not lock.acquired and during and may_share_lock(rule, lock.holder, rolling=rolling):
        lock = ledger.share_lock(
            svc, guest=holder, deployment_id=rolling, ttl_seconds=ttl, details=details
        )
        shared = rolling if lock.acquired else ""
    if not lock.acquired:
        reason = (
            f"{svc} is locked by {lock.holder.get('action', '?')} "
            f"({lock.holder.get('holder', '?')}): two automations never act on one service at once"
        )
        return _refused(Outcome.refused(Refusal.LOCKED, reason, plan.summary), subject)
    successor = ""
    try:
        mine = (lock.holder.get("guest") or {}) if shared else lock.holder
        if not mine.get("budget_taken"):
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
        records = _records(kit, clock)
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


# ---- Spot ---------------------------------------------------------------------------------


def _spot_interruption(
    event: EcsTaskStateChangeEvent, kit: Toolkit, clock: Clock
) -> dict[str, Any]:
    settings = kit.settings
    problem = event.problem(settings.cluster_name, settings.service_name)
    if problem:
        return ignore_event(JOB, problem, event_id=event.get("id"))
    key = {"task": event.task_arn, "kind": "spot-interruption"}
    return run_once(
        kit,
        job=JOB,
        key_prefix=SPOT_KEY_PREFIX,
        key=key,
        work=lambda: _interrupted(event, kit, clock),
    )


def _interrupted(event: EcsTaskStateChangeEvent, kit: Toolkit, clock: Clock) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key
    spot = settings.remediation.spot
    at = event.at or clock()
    task = event.task_arn.rsplit("/", 1)[-1]
    records = _records(kit, clock)
    count("SpotInterruptions", JOB)
    _remember_for_chaos(kit, event, at)
    try:
        records.add_interruption(svc, event.task_arn, at)
        seen = records.interruptions_since(svc, at - spot.window_seconds)
        shift = records.shift(svc)
        if shift is not None:
            records.touch_shift(svc, at)
        notify_now = records.notice_once(svc, f"spot:{task}", spot.window_seconds)
    except OpsError as exc:
        logger.error("spot interruption not recorded", extra={"error": str(exc)})
        seen, shift, notify_now = 1, None, True
    decision = interruptions_decision(seen, shifted=shift is not None, policy=spot)
    logger.info(
        "spot interruption",
        extra={"task": task, "in_window": seen, "shift": decision.shift, "shifted": bool(shift)},
    )
    rule = rule_for(TRIGGER_SPOT_INTERRUPTIONS)
    runbook = runbook_url(settings.runbook_base_url, runbooks.SPOT_INTERRUPTION)
    if decision.notify and notify_now:
        _post(
            kit,
            Severity.WARNING,
            messages.spot_notice(
                service=settings.service_name,
                task=task,
                where=", ".join(p for p in (event.capacity_provider, event.availability_zone) if p)
                or "capacity unknown",
                count=seen,
                threshold=spot.threshold,
                window_seconds=spot.window_seconds,
                runbook=runbook,
                footer=_footer(kit, f"event {event.get('id')}"),
            ),
        )
    facts = {"task": task, "interruptions": seen, "shifted": shift is not None}
    if not decision.shift:
        return _result("noticed", f"Spot interruption {seen} within the window", **facts)
    outcome = _remediate(
        kit,
        rule=rule,
        subject=f"Spot interruptions of {settings.service_name}",
        at=at,
        holder=f"remediation:{TRIGGER_SPOT_INTERRUPTIONS}:{event.get('id')}",
        clock=clock,
    )
    _follow_up(
        kit,
        rule,
        outcome,
        f"{seen} Spot interruptions of {settings.service_name}",
        runbook,
        Severity.WARNING,
        str(event.get("id")),
    )
    return _result(outcome.status, outcome.reason, **facts, action=Action.CAPACITY_SHIFT.value)


def _remember_for_chaos(kit: Toolkit, event: EcsTaskStateChangeEvent, at: float) -> None:
    """Chaos waits its minimum gap after a Spot interruption: record it where chaos looks."""
    settings = kit.settings
    try:
        ChaosRecords(
            kit.dynamodb, settings.ledger_table_name, settings.history_ttl_days
        ).record_kill(
            settings.service_key,
            KillRecord(
                at=datetime.fromtimestamp(at, tz=UTC),
                kind=KIND_SPOT,
                task_arn=event.task_arn,
                run_id=str(event.get("id") or ""),
            ),
        )
    except OpsError as exc:  # chaos still sees it among the stopped tasks for an hour
        logger.warning("interruption not recorded for chaos", extra={"error": str(exc)})


def _placement_failure(event: EcsServiceActionEvent, kit: Toolkit, clock: Clock) -> dict[str, Any]:
    settings = kit.settings
    problem = event.problem(settings.cluster_name, settings.service_name)
    if problem:
        return ignore_event(JOB, problem, event_id=event.get("id"))
    return run_once(
        kit,
        job=JOB,
        key_prefix=SPOT_KEY_PREFIX,
        key={"event": str(event.get("id")), "kind": "placement-failure"},
        work=lambda: _cannot_place(event, kit, clock),
    )


def _cannot_place(event: EcsServiceActionEvent, kit: Toolkit, clock: Clock) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key
    at = event.at or clock()
    records = _records(kit, clock)
    verdict = placement_verdict(event.capacity_provider_arns, _strategy_unless_named(event, kit))
    providers, on_spot = verdict.providers, verdict.on_spot
    runbook = runbook_url(settings.runbook_base_url, runbooks.CAPACITY_SHIFT)
    footer = _footer(kit, f"event {event.get('id')}")
    try:
        shift = records.shift(svc)
        if shift is not None:
            records.touch_shift(svc, at)
        notify_now = records.notice_once(svc, "placement-failure", 900)
    except OpsError as exc:
        logger.error("placement failure not recorded", extra={"error": str(exc)})
        shift, notify_now = None, True
    facts = {"providers": providers, "on_spot": on_spot}

    def notify() -> None:
        notice = messages.placement_notice(
            service=settings.service_name,
            providers=providers,
            reason=event.reason,
            on_spot=on_spot,
            runbook=runbook,
            footer=footer,
        )
        _post(kit, Severity.CRITICAL, notice)

    if not on_spot:
        if notify_now:
            notify()
        return _result("alerted", f"placement failed on {providers}, not on Spot", **facts)
    if shift is not None:
        reason = f"already on on-demand FARGATE since {messages.when(shift.shifted_at)}"
        logger.info("placement failure while shifted", extra={"reason": reason})
        return _result("already-shifted", reason, **facts)
    if notify_now:
        notify()
    rule = rule_for(TRIGGER_PLACEMENT_FAILURE)
    outcome = _remediate(
        kit,
        rule=rule,
        subject=f"Spot placement failure of {settings.service_name}",
        at=at,
        holder=f"remediation:{TRIGGER_PLACEMENT_FAILURE}:{event.get('id')}",
        clock=clock,
    )
    if outcome.acted or outcome.failure is not None or notify_now:
        _follow_up(
            kit,
            rule,
            outcome,
            f"Spot placement failure of {settings.service_name}",
            runbook,
            Severity.CRITICAL,
            str(event.get("id")),
        )
    return _result(outcome.status, outcome.reason, **facts, action=Action.CAPACITY_SHIFT.value)


def _strategy_unless_named(
    event: EcsServiceActionEvent, kit: Toolkit
) -> tuple[StrategyItem, ...] | None:
    """The service's strategy when the event names no capacity provider (``None``: named, or
    the service could not be read)."""
    if event.capacity_provider_arns:
        return None
    try:
        snapshot = _gateway(kit).snapshot()
    except AwsCallError as exc:
        logger.warning("service unreadable for a placement failure", extra={"error": str(exc)})
        return None
    return snapshot.state.strategy if snapshot is not None else None


def capacity_check(kit: Toolkit, *, clock: Clock = time.time) -> dict[str, Any]:
    """Every 15 minutes: back to the Spot strategy once no Spot trouble was seen for
    ``CAPACITY_RETURN_AFTER_SECONDS``."""
    settings = kit.settings
    svc = settings.service_key
    count("CapacityChecks", JOB)  # a heartbeat of the schedule
    records = _records(kit, clock)
    try:
        shift = records.shift(svc)
    except OpsError as exc:
        logger.error("capacity check cannot read the ledger", extra={"error": str(exc)})
        return _result("failed", f"the ledger ({exc})")
    if shift is None:
        return _unrecorded(kit, records, clock)
    try:
        records.keep_shift(svc)  # a shift recorded with a ttl (before issue 22) keeps now
    except OpsError as exc:
        logger.error("shift record not kept", extra={"error": str(exc)})
    decision = return_decision(shift, now=clock(), policy=settings.remediation.spot)
    if not decision.go:
        return _result("waiting", decision.reason)
    rule = rule_for(TRIGGER_SPOT_QUIET)
    subject = f"Spot capacity for {settings.service_name}"
    outcome = _remediate(
        kit,
        rule=rule,
        subject=subject,
        at=clock(),
        holder=f"remediation:{TRIGGER_SPOT_QUIET}:{int(shift.shifted_at)}",
        clock=clock,
        shift=shift,
    )
    if outcome.refusal is Refusal.NOT_APPLICABLE and "already runs its original" in outcome.reason:
        records.delete_shift(svc, shift.shifted_at)  # someone put it back by hand
        return _result("returned-by-hand", outcome.reason)
    hold = max(900, settings.remediation.spot.return_after_seconds)
    if outcome.acted or outcome.failure is not None or _once(records, kit, "return-refused", hold):
        _follow_up(
            kit,
            rule,
            outcome,
            subject,
            runbook_url(settings.runbook_base_url, runbooks.CAPACITY_SHIFT),
            Severity.INFO,
            f"capacity check {int(clock())}",
        )
    return _result(outcome.status, outcome.reason, action=Action.CAPACITY_RETURN.value)


def _unrecorded(kit: Toolkit, records: RemediationRecords, clock: Clock) -> dict[str, Any]:
    """No shift on record: remember the service's Spot strategy, or find a shift whose
    record was lost (record it, so the return follows within its limits, and say so once a
    day), or report once a week that no Spot strategy is known to return to."""
    settings = kit.settings
    svc = settings.service_key
    try:
        snapshot = _gateway(kit).snapshot()
        home = records.home(svc)
    except (AwsCallError, OpsError) as exc:
        logger.warning("capacity check cannot read the service", extra={"error": str(exc)})
        return _result("not-shifted", "the service is not shifted to on-demand (as recorded)")
    if snapshot is None:
        return _result("not-shifted", "the service is not found or not active")
    check = unrecorded_check(snapshot.state.strategy, home, now=clock())
    try:
        if check.remember is not None:
            records.remember_home(svc, check.remember)
        if check.adopt is not None:
            records.put_shift(svc, check.adopt)
            records.remember_home(svc, check.adopt.original)
    except OpsError as exc:
        logger.error("capacity records not written", extra={"error": str(exc)})
        return _result("failed", f"the ledger ({exc})")
    if check.report is not None:
        logger.warning("on-demand with no shift on record", extra={"reason": check.reason})
        period = 86400 if check.adopt is not None else 7 * 86400
        if _once(records, kit, f"unrecorded-shift:{check.report}", period):
            _post(
                kit,
                Severity.WARNING,
                messages.unrecorded_shift_notice(
                    service=settings.service_name,
                    reason=check.reason,
                    adopted=check.adopt is not None,
                    runbook=runbook_url(settings.runbook_base_url, runbooks.CAPACITY_SHIFT),
                    footer=_footer(kit, f"capacity check {int(clock())}"),
                ),
            )
    return _result(check.status, check.reason)


# ---- shared pieces ------------------------------------------------------------------------


def _gateway(kit: Toolkit) -> RemediationGateway:
    settings = kit.settings
    return RemediationGateway(
        kit.ecs,
        autoscaling=kit.autoscaling,
        cloudwatch=kit.cloudwatch,
        cluster=settings.cluster_name,
        service=settings.service_name,
    )


def _records(kit: Toolkit, clock: Clock) -> RemediationRecords:
    settings = kit.settings
    return RemediationRecords(
        kit.dynamodb,
        settings.ledger_table_name,
        history_ttl_days=settings.history_ttl_days,
        clock=clock,
    )


def _claim(records: RemediationRecords, change: AlarmChange, flag: str) -> bool:
    """Claim a message in the ledger before posting it; when the ledger fails, post."""
    try:
        return records.claim(change, flag)
    except OpsError as exc:
        logger.error("message not claimed; posting anyway", extra={"error": str(exc)})
        return True


def _once(records: RemediationRecords, kit: Toolkit, notice: str, seconds: int) -> bool:
    try:
        return records.notice_once(kit.settings.service_key, notice, seconds)
    except OpsError:
        return True  # when in doubt, tell on-call


def _footer(kit: Toolkit, trigger: str) -> str:
    settings = kit.settings
    return f"{settings.app_name}-{settings.stage} · alarm_action · {trigger}"


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


def _follow_up(
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
    _post(
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
                footer=_footer(kit, f"remediation {event_id}"),
            )
        ),
    )


def _post(kit: Toolkit, severity: Severity, message: Any) -> None:
    kit.notifier_for(severity.value).post(message, job=JOB)
