"""Spot trouble: interruptions (counted, posted up to the threshold, then a shift to
on-demand FARGATE) and task placement failures on ``FARGATE_SPOT`` (a shift too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib import runbooks
from chalicelib.alarms import messages
from chalicelib.alarms.events import (
    EcsServiceActionEvent,
    EcsTaskStateChangeEvent,
)
from chalicelib.alarms.remediate import follow_up, remediate
from chalicelib.alarms.rules import (
    TRIGGER_PLACEMENT_FAILURE,
    TRIGGER_SPOT_INTERRUPTIONS,
    Action,
    Severity,
    StrategyItem,
    interruptions_decision,
    placement_verdict,
    rule_for,
)
from chalicelib.alarms.shared import (
    JOB,
    Clock,
    footer_for,
    gateway_for,
    post_message,
    records_for,
    result,
)
from chalicelib.chaos.facts import ChaosRecords
from chalicelib.chaos.guards import KIND_SPOT, KillRecord
from chalicelib.errors import OpsError
from chalicelib.gateway import AwsCallError
from chalicelib.idempotent import run_once
from chalicelib.observability import count, ignore_event, logger
from chalicelib.results import Status
from chalicelib.runbooks import runbook_url

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit


SPOT_KEY_PREFIX = "spotops-spot"


def spot_interruption(event: EcsTaskStateChangeEvent, kit: Toolkit, clock: Clock) -> dict[str, Any]:
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
    records = records_for(kit, clock)
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
        post_message(
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
                footer=footer_for(kit, f"event {event.get('id')}"),
            ),
        )
    facts = {"task": task, "interruptions": seen, "shifted": shift is not None}
    if not decision.shift:
        return result(Status.NOTICED, f"Spot interruption {seen} within the window", **facts)
    outcome = remediate(
        kit,
        rule=rule,
        subject=f"Spot interruptions of {settings.service_name}",
        at=at,
        holder=f"remediation:{TRIGGER_SPOT_INTERRUPTIONS}:{event.get('id')}",
        clock=clock,
    )
    follow_up(
        kit,
        rule,
        outcome,
        f"{seen} Spot interruptions of {settings.service_name}",
        runbook,
        Severity.WARNING,
        str(event.get("id")),
    )
    return result(outcome.status, outcome.reason, **facts, action=Action.CAPACITY_SHIFT.value)


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


def placement_failure(event: EcsServiceActionEvent, kit: Toolkit, clock: Clock) -> dict[str, Any]:
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
    records = records_for(kit, clock)
    verdict = placement_verdict(event.capacity_provider_arns, _strategy_unless_named(event, kit))
    providers, on_spot = verdict.providers, verdict.on_spot
    runbook = runbook_url(settings.runbook_base_url, runbooks.CAPACITY_SHIFT)
    footer = footer_for(kit, f"event {event.get('id')}")
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
        post_message(kit, Severity.CRITICAL, notice)

    if not on_spot:
        if notify_now:
            notify()
        return result(Status.ALERTED, f"placement failed on {providers}, not on Spot", **facts)
    if shift is not None:
        reason = f"already on on-demand FARGATE since {messages.when(shift.shifted_at)}"
        logger.info("placement failure while shifted", extra={"reason": reason})
        return result(Status.ALREADY_SHIFTED, reason, **facts)
    if notify_now:
        notify()
    rule = rule_for(TRIGGER_PLACEMENT_FAILURE)
    outcome = remediate(
        kit,
        rule=rule,
        subject=f"Spot placement failure of {settings.service_name}",
        at=at,
        holder=f"remediation:{TRIGGER_PLACEMENT_FAILURE}:{event.get('id')}",
        clock=clock,
    )
    if outcome.acted or outcome.failure is not None or notify_now:
        follow_up(
            kit,
            rule,
            outcome,
            f"Spot placement failure of {settings.service_name}",
            runbook,
            Severity.CRITICAL,
            str(event.get("id")),
        )
    return result(outcome.status, outcome.reason, **facts, action=Action.CAPACITY_SHIFT.value)


def _strategy_unless_named(
    event: EcsServiceActionEvent, kit: Toolkit
) -> tuple[StrategyItem, ...] | None:
    """The service's strategy when the event names no capacity provider (``None``: named, or
    the service could not be read)."""
    if event.capacity_provider_arns:
        return None
    try:
        snapshot = gateway_for(kit).snapshot()
    except AwsCallError as exc:
        logger.warning("service unreadable for a placement failure", extra={"error": str(exc)})
        return None
    return snapshot.state.strategy if snapshot is not None else None
