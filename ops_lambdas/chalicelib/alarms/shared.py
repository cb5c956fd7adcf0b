"""What every path of the alarm function shares: its name in results and metrics, its
gateway to ECS and CloudWatch, its ledger records, its once-only notices and its posts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.alarms.events import AlarmChange
from chalicelib.alarms.facts import (
    RemediationGateway,
    RemediationRecords,
)
from chalicelib.alarms.rules import Severity
from chalicelib.errors import OpsError
from chalicelib.observability import logger
from chalicelib.results import JobResult, Status

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit

JOB = "remediation"
Clock = Callable[[], float]


def result(status: Status, reason: str, **facts: Any) -> dict[str, Any]:
    """The alarm function's JSON answer (:class:`~chalicelib.results.JobResult`)."""
    return JobResult(JOB, status, reason, facts).as_dict()


def gateway_for(kit: Toolkit) -> RemediationGateway:
    settings = kit.settings
    return RemediationGateway(
        kit.ecs,
        autoscaling=kit.autoscaling,
        cloudwatch=kit.cloudwatch,
        cluster=settings.cluster_name,
        service=settings.service_name,
    )


def records_for(kit: Toolkit, clock: Clock) -> RemediationRecords:
    settings = kit.settings
    return RemediationRecords(
        kit.dynamodb,
        settings.ledger_table_name,
        history_ttl_days=settings.history_ttl_days,
        clock=clock,
    )


def claim_message(records: RemediationRecords, change: AlarmChange, flag: str) -> bool:
    """Claim a message in the ledger before posting it; when the ledger fails, post."""
    try:
        return records.claim(change, flag)
    except OpsError as exc:
        logger.error("message not claimed; posting anyway", extra={"error": str(exc)})
        return True


def once_per(records: RemediationRecords, kit: Toolkit, notice: str, seconds: int) -> bool:
    try:
        return records.notice_once(kit.settings.service_key, notice, seconds)
    except OpsError:
        return True  # when in doubt, tell on-call


def footer_for(kit: Toolkit, trigger: str) -> str:
    settings = kit.settings
    return f"{settings.app_name}-{settings.stage} · alarm_action · {trigger}"


def post_message(kit: Toolkit, severity: Severity, message: Any) -> None:
    kit.notifier_for(severity.value).post(message, job=JOB)
