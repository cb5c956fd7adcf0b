"""The capacity check (every 15 minutes): back to the Spot strategy after a quiet
period, and a shift with no record found, adopted or reported."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from chalicelib import runbooks
from chalicelib.alarms import messages
from chalicelib.alarms.facts import RemediationRecords
from chalicelib.alarms.remediate import follow_up, remediate
from chalicelib.alarms.rules import (
    TRIGGER_SPOT_QUIET,
    Action,
    Refusal,
    Severity,
    return_decision,
    rule_for,
    unrecorded_check,
)
from chalicelib.alarms.shared import (
    JOB,
    Clock,
    footer_for,
    gateway_for,
    once_per,
    post_message,
    records_for,
    result,
)
from chalicelib.errors import OpsError
from chalicelib.gateway import AwsCallError
from chalicelib.observability import count, logger
from chalicelib.results import Status
from chalicelib.runbooks import runbook_url

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit


def capacity_check(kit: Toolkit, *, clock: Clock = time.time) -> dict[str, Any]:
    """Every 15 minutes: back to the Spot strategy once no Spot trouble was seen for
    ``CAPACITY_RETURN_AFTER_SECONDS``."""
    settings = kit.settings
    svc = settings.service_key
    count("CapacityChecks", JOB)  # a heartbeat of the schedule
    records = records_for(kit, clock)
    try:
        shift = records.shift(svc)
    except OpsError as exc:
        logger.error("capacity check cannot read the ledger", extra={"error": str(exc)})
        return result(Status.FAILED, f"the ledger ({exc})")
    if shift is None:
        return _unrecorded(kit, records, clock)
    try:
        records.keep_shift(svc)  # a shift recorded with a ttl (before issue 22) keeps now
    except OpsError as exc:
        logger.error("shift record not kept", extra={"error": str(exc)})
    decision = return_decision(shift, now=clock(), policy=settings.remediation.spot)
    if not decision.go:
        return result(Status.WAITING, decision.reason)
    rule = rule_for(TRIGGER_SPOT_QUIET)
    subject = f"Spot capacity for {settings.service_name}"
    outcome = remediate(
        kit,
        rule=rule,
        subject=subject,
        at=clock(),
        holder=f"remediation:{TRIGGER_SPOT_QUIET}:{int(shift.shifted_at)}",
        clock=clock,
        shift=shift,
    )
    if outcome.refusal is Refusal.ALREADY_RETURNED:
        records.delete_shift(svc, shift.shifted_at)  # someone put it back by hand
        return result(Status.RETURNED_BY_HAND, outcome.reason)
    hold = max(900, settings.remediation.spot.return_after_seconds)
    if (
        outcome.acted
        or outcome.failure is not None
        or once_per(records, kit, "return-refused", hold)
    ):
        follow_up(
            kit,
            rule,
            outcome,
            subject,
            runbook_url(settings.runbook_base_url, runbooks.CAPACITY_SHIFT),
            Severity.INFO,
            f"capacity check {int(clock())}",
        )
    return result(outcome.status, outcome.reason, action=Action.CAPACITY_RETURN.value)


def _unrecorded(kit: Toolkit, records: RemediationRecords, clock: Clock) -> dict[str, Any]:
    """No shift on record: remember the service's Spot strategy, or find a shift whose
    record was lost (record it, so the return follows within its limits, and say so once a
    day), or report once a week that no Spot strategy is known to return to."""
    settings = kit.settings
    svc = settings.service_key
    try:
        snapshot = gateway_for(kit).snapshot()
        home = records.home(svc)
    except (AwsCallError, OpsError) as exc:
        logger.warning("capacity check cannot read the service", extra={"error": str(exc)})
        return result(Status.NOT_SHIFTED, "the service is not shifted to on-demand (as recorded)")
    if snapshot is None:
        return result(Status.NOT_SHIFTED, "the service is not found or not active")
    check = unrecorded_check(snapshot.state.strategy, home, now=clock())
    try:
        if check.remember is not None:
            records.remember_home(svc, check.remember)
        if check.adopt is not None:
            records.put_shift(svc, check.adopt)
            records.remember_home(svc, check.adopt.original)
    except OpsError as exc:
        logger.error("capacity records not written", extra={"error": str(exc)})
        return result(Status.FAILED, f"the ledger ({exc})")
    if check.report is not None:
        logger.warning("on-demand with no shift on record", extra={"reason": check.reason})
        period = 86400 if check.adopt is not None else 7 * 86400
        if once_per(records, kit, f"unrecorded-shift:{check.report}", period):
            post_message(
                kit,
                Severity.WARNING,
                messages.unrecorded_shift_notice(
                    service=settings.service_name,
                    reason=check.reason,
                    adopted=check.adopt is not None,
                    runbook=runbook_url(settings.runbook_base_url, runbooks.CAPACITY_SHIFT),
                    footer=footer_for(kit, f"capacity check {int(clock())}"),
                ),
            )
    return result(check.status, check.reason)
