"""One alarm state change: record it, alert first (as usual, as a flapping summary, or
held while the alarm flaps), then remediate within limits, then follow up."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError

from chalicelib import runbooks
from chalicelib.alarms import messages
from chalicelib.alarms.events import (
    AlarmChange,
    runbook_of,
)
from chalicelib.alarms.remediate import follow_up, remediate
from chalicelib.alarms.rules import (
    ALARM,
    Action,
    Notice,
    NoticeDecision,
    Outcome,
    Rule,
    Severity,
    follow_up_posted,
    next_history,
    notice_decision,
    rule_for_alarm,
)
from chalicelib.alarms.shared import (
    JOB,
    Clock,
    claim_message,
    footer_for,
    gateway_for,
    once_per,
    post_message,
    records_for,
    result,
)
from chalicelib.errors import OpsError
from chalicelib.gateway import AwsCallError
from chalicelib.idempotent import run_once
from chalicelib.observability import count, logger
from chalicelib.results import Status
from chalicelib.runbooks import runbook_url
from chalicelib.slo import BudgetReader, budget_line

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit


ALARM_KEY_PREFIX = "spotops-alarm"


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
    records = records_for(kit, clock)
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
    context = replace(
        _alert_context(change, kit, severity, foreign),
        late=decision.stale,
        budget=_budget(kit, clock()),
    )
    if decision.notice is Notice.HOLD:
        count("AlertsHeld", JOB)
        logger.info("alert held: the alarm flaps", extra={"entries": decision.entries_in_window})
    elif event is None or claim_message(records, change, "alert_posted"):
        if decision.notice is Notice.SUMMARY:
            message = messages.flapping_summary(change, decision, context, flap)
        else:
            message = messages.alert(change, decision, context)
        post_message(kit, severity, message)
    facts["notice"] = decision.notice.value
    if change.state != ALARM:
        status = Status.HELD if decision.notice is Notice.HOLD else Status.ALERTED
        return result(status, f"{change.name} is {change.state}", **facts)

    # 3. remediate (a retry reports what the first attempt did)
    if event is not None and event.outcome is not None:
        outcome = Outcome.from_dict(event.outcome)
    else:
        outcome = remediate(
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
        post = once_per(records, kit, "escalation", 3600) or post
    if post and (event is None or claim_message(records, change, "follow_up_posted")):
        follow_up(kit, rule, outcome, change.name, context.runbook, severity, change.event_id)
    return result(outcome.status, outcome.reason, **facts, action=_action(rule))


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
        footer=footer_for(kit, f"{change.source} {change.event_id}"),
        foreign=foreign,
    )


def _budget(kit: Toolkit, now: float) -> str:
    """The error budget left per objective, read now, as the alert's line; a failure reads
    "budget unknown" and never holds up the alert."""
    slo = kit.settings.slo
    try:
        reader = BudgetReader(kit.cloudwatch, slo.load_balancer)
        return budget_line(reader.read(slo.objectives, datetime.fromtimestamp(now, UTC)))
    except Exception as exc:  # the alert goes out whatever the budget read does
        logger.warning("error budget unreadable; alerting without it", extra={"error": repr(exc)})
        return "Error budget left: budget unknown (not read)"


def _description(kit: Toolkit, name: str) -> str | None:
    """A composite alarm's description (its EventBridge event carries none); ``None`` when
    it cannot be read (the alert then links the runbook index, with a warning)."""
    try:
        return gateway_for(kit).alarm_description(name)
    except AwsCallError as exc:
        logger.warning("alarm description unreadable", extra={"error": str(exc)})
        return None


def _action(rule: Rule | None) -> str:
    return rule.action.value if rule is not None else Action.NOTIFY.value
