"""Deployment outcome: ``ECS Deployment State Change`` events about *our* deployments.

Only a deployment the redeploy job recorded changes anything (see
:func:`~chalicelib.redeploy.decisions.outcome_decision`): its record moves IN_PROGRESS ->
ROLLING_BACK -> FAILED / ROLLED_BACK, or to COMPLETED when the service really runs its
digest; the service lock is released only for that deployment id. Events about other
deployments (a rollback's own deployment, one started by hand or by remediation) and stale
ones (delivered late or twice) change nothing in our records; the failure of a deployment we
did not start is still reported to on-call, once per deployment id
(:func:`~chalicelib.redeploy.decisions.report_foreign_failure`). The ledger is written before Slack
is posted, so a retry after a ledger error never posts twice.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.deployments import DeploymentRecord
from chalicelib.errors import LedgerError
from chalicelib.gateway import AwsCallError, DiagnosisReads, EcsGateway
from chalicelib.idempotent import run_once
from chalicelib.observability import count, ignore_event, logger
from chalicelib.redeploy.decisions import (
    OutcomeDecision,
    OutcomeKind,
    ecs_rolled_back,
    outcome_decision,
    report_foreign_failure,
)
from chalicelib.results import JobResult, Status
from chalicelib.runbooks import DEPLOY_FAILED, REDEPLOY, ROLLBACK_COMMAND, runbook_url
from chalicelib.slack import SECTION_TEXT_LIMIT, build_message

if TYPE_CHECKING:
    from chalicelib.events import EcsDeploymentStateChangeEvent
    from chalicelib.toolkit import Toolkit

JOB = "deploy-outcome"
_STATUS = {
    OutcomeKind.SUCCEEDED: Status.SUCCEEDED,
    OutcomeKind.FAILED: Status.FAILED,
    OutcomeKind.ROLLING_BACK: Status.ROLLING_BACK,
    OutcomeKind.ROLLED_BACK: Status.ROLLED_BACK,
}


def handle_deployment_state(event: EcsDeploymentStateChangeEvent, kit: Toolkit) -> dict[str, Any]:
    """Act on one deployment state change; never raises for bad input.

    Returns
    -------
    dict
        ``status`` is ``succeeded``, ``failed``, ``rolling-back``, ``rolled-back``,
        ``ignored`` (not ours, stale, or only progress) or ``duplicate``, with ``reason``.

    Example
    -------
    >>> handle_deployment_state(EcsDeploymentStateChangeEvent(raw), kit)["status"]  # doctest: +SKIP
    'failed'
    """
    settings = kit.settings
    problem = event.problem(settings.cluster_name, settings.service_name)
    if problem:
        return ignore_event(JOB, problem)
    return run_once(
        kit,
        job=JOB,
        key_prefix="spotops-deploy-outcome",
        key={
            "event_id": str(event.get("id")),
            "deployment_id": event.deployment_id,
            "name": event.event_name,
        },
        work=lambda: _apply(event, kit),
    )


def _apply(event: EcsDeploymentStateChangeEvent, kit: Toolkit) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key
    deployment_id = event.deployment_id
    logger.append_keys(deployment_id=deployment_id)
    record = kit.ledger.read_deployment(svc)
    running = None
    if event.event_name == "SERVICE_DEPLOYMENT_COMPLETED" and record is not None:
        running = _running_image(kit)
    decision = outcome_decision(
        event_name=event.event_name,
        deployment_id=deployment_id,
        is_rollback=event.is_rollback,
        record=record,
        running_image=running,
    )
    facts = {"deployment_id": deployment_id}
    # Before anything is recorded or posted: a ledger error here is retried by Lambda.
    frozen = _freeze_if_rolled_back(kit, event, decision)
    if report_foreign_failure(
        decision,
        event_name=event.event_name,
        deployment_id=deployment_id,
        superseded_id=(record.superseded_id or None) if record is not None else None,
    ):
        return _foreign_failure(kit, event, frozen)
    if decision.kind not in _STATUS or record is None:
        reason = {
            OutcomeKind.FOREIGN: f"deployment {deployment_id} was not started by the redeploy job",
            OutcomeKind.STALE: f"deployment {deployment_id} is already past {event.event_name}",
            OutcomeKind.PROGRESS: "deployment in progress",
            OutcomeKind.UNKNOWN: f"unknown eventName {event.event_name}",
        }.get(decision.kind, decision.kind.value)
        logger.info("deployment event changes nothing", extra={"reason": reason})
        if decision.kind is OutcomeKind.UNKNOWN:
            count("EventsIgnored", JOB)
        if frozen:  # a rollback of a deployment not ours (or seen late): nothing else says so
            _post_freeze(kit, event, frozen)
        return JobResult(JOB, Status.IGNORED, reason, {**facts, "froze": bool(frozen)}).as_dict()

    released = _record(kit, record, decision, event.reason)
    _post(kit, event, record, decision, running, frozen)
    count("ActionsTaken" if decision.kind is OutcomeKind.SUCCEEDED else "ActionsFailed", JOB)
    return JobResult(
        JOB,
        _STATUS[decision.kind],
        event.reason,
        {**facts, "lock_released": released, "froze": bool(frozen)},
    ).as_dict()


def _event_time(event: EcsDeploymentStateChangeEvent) -> float:
    """The event's own ``time`` (when ECS rolled back), whenever it is delivered; now when
    unreadable, the side that freezes."""
    value = event.get("time")
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return time.time()
    return moment.timestamp() if moment.tzinfo is not None else time.time()


def _freeze_if_rolled_back(
    kit: Toolkit, event: EcsDeploymentStateChangeEvent, decision: OutcomeDecision
) -> str:
    """Freeze pushes when ECS rolled a deployment back, ours or not; the line the post adds
    when this event froze them ("" when it did not: not a rollback, frozen already, or
    lifted after the rollback happened, which the ledger checks by the event's own time).

    Neither the dry run nor the kill switch stops it: they hold back what the toolkit would
    do to production, while this rollback is one ECS really did, and the freeze changes
    nothing in AWS; it only keeps the next push from deploying again what ECS undid."""
    if not ecs_rolled_back(decision, event_name=event.event_name, is_rollback=event.is_rollback):
        return ""
    svc = kit.settings.service_key
    deployment_id = event.deployment_id
    froze = kit.ledger.freeze(
        svc,
        at=_event_time(event),
        reason=f"ECS rolled back deployment {deployment_id} ({event.reason or event.event_name})",
        by="ecs",
        deployment_id=deployment_id,
    )
    if not froze:
        return ""
    kit.ledger.record_history(svc, JOB, "frozen", f"{deployment_id} {event.reason}")
    logger.info("pushes frozen after an ECS rollback", extra={"deployment_id": deployment_id})
    return frozen_notice(svc, kit.settings.runbook_base_url)


def frozen_notice(svc: str, runbook_base_url: str) -> str:
    """The line a report of a rollback by ECS ends on once it froze pushes."""
    return (
        f":snowflake: Pushes to `{svc}` are now frozen: a push is recorded, not deployed. "
        "`spotops unfreeze` resumes; `spotops unfreeze --deploy-latest` also deploys the "
        f"newest push ({runbook_url(runbook_base_url, ROLLBACK_COMMAND)})."
    )


def _post_freeze(kit: Toolkit, event: EcsDeploymentStateChangeEvent, line: str) -> None:
    settings = kit.settings
    message = build_message(
        f":snowflake: Pushes frozen: ECS rolled back deployment {event.deployment_id}",
        line,
        facts=[
            ("Event", event.event_name),
            ("Deployment", event.deployment_id),
            ("ECS says", event.reason or "-"),
        ],
        runbook=runbook_url(settings.runbook_base_url, ROLLBACK_COMMAND),
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · event {event.get('id')}",
    )
    kit.notifier.post(message, job=JOB)


def _foreign_failure(
    kit: Toolkit, event: EcsDeploymentStateChangeEvent, frozen: str = ""
) -> dict[str, Any]:
    """Tell on-call that a deployment we did not start failed; our records stay as they are."""
    settings = kit.settings
    svc = settings.service_key
    deployment_id = event.deployment_id
    facts = {"deployment_id": deployment_id, "froze": bool(frozen)}
    try:
        first = kit.ledger.claim_foreign_failure(svc, deployment_id)
    except LedgerError as exc:
        logger.error("foreign failure not recorded", extra={"error": str(exc)})
        raise  # nothing posted yet: Lambda's retry claims and posts once
    if not first:
        reason = f"the failure of deployment {deployment_id} was reported already"
        logger.info("deployment event changes nothing", extra={"reason": reason})
        return JobResult(JOB, Status.DUPLICATE, reason, facts).as_dict()
    message = build_message(
        f":x: A deployment the redeploy job did not start failed: {deployment_id}",
        f"ECS deployment `{deployment_id}` of `{svc}` failed. The redeploy job did not start "
        "it: a stack update (`spotops deploy`), the console, the CLI, another tool, or a "
        "remediation of the alarm function (its follow-up in this channel names the action). "
        "Our deployment records are unchanged; ECS keeps or restores the previous revision "
        "where the circuit breaker or the deployment alarms roll back."
        + (f"\n{frozen}" if frozen else ""),
        facts=[
            ("Event", event.event_name),
            ("Deployment", deployment_id),
            ("ECS says", event.reason or "-"),
        ],
        runbook=runbook_url(settings.runbook_base_url, DEPLOY_FAILED),
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · event {event.get('id')}",
    )
    kit.notifier.post(message, job=JOB)
    kit.ledger.record_history(svc, JOB, "foreign-failed", f"{deployment_id} {event.reason}")
    reason = f"deployment {deployment_id}, not started by the redeploy job, failed: {event.reason}"
    return JobResult(JOB, Status.ALERTED, reason, facts).as_dict()


def _running_image(kit: Toolkit) -> str | None:
    gateway = EcsGateway(
        kit.ecs, kit.ecr, cluster=kit.settings.cluster_name, service=kit.settings.service_name
    )
    try:
        return gateway.running_image(gateway.service(), kit.settings.container_name)
    except AwsCallError as exc:
        # Unreadable: the completion is believed (ECS said it completed our deployment).
        logger.warning("cannot read the running image", extra={"error": str(exc)})
        return None


def _record(kit: Toolkit, record: DeploymentRecord, decision: OutcomeDecision, reason: str) -> bool:
    """Write the ledger before anything is posted; True when the lock was released."""
    svc = kit.settings.service_key
    released = False
    try:
        # The status change goes last: it is what makes a redelivery of this event stale,
        # so every write before it is repeated on Lambda's retry, and nothing after it
        # but the post can fail.
        kit.ledger.record_history(
            svc, JOB, decision.kind.value, f"{record.deployment_id} {record.label} {reason}"
        )
        if decision.release_lock:
            released = kit.ledger.release_lock(svc, deployment_id=record.deployment_id)
        if decision.record_status is not None:
            kit.ledger.set_deployment_status(
                svc, record.deployment_id, decision.record_status.value, reason
            )
    except LedgerError as exc:
        logger.error("deployment outcome not recorded", extra={"error": str(exc)})
        raise  # nothing posted yet: Lambda's retry records and posts once
    return released


def _post(
    kit: Toolkit,
    event: EcsDeploymentStateChangeEvent,
    record: DeploymentRecord,
    decision: OutcomeDecision,
    running: str | None,
    frozen: str = "",
) -> None:
    settings = kit.settings
    svc = settings.service_key
    label = record.label
    failed = runbook_url(settings.runbook_base_url, DEPLOY_FAILED)
    title, body, runbook = {
        OutcomeKind.SUCCEEDED: (
            f":white_check_mark: Deployed {label}",
            f"`{svc}` now runs {label}.",
            runbook_url(settings.runbook_base_url, REDEPLOY),
        ),
        OutcomeKind.ROLLING_BACK: (
            f":rewind: Deployment failed, rolling back: {label}",
            f"`{svc}` is rolling back. {label} is *not* being deployed.",
            failed,
        ),
        OutcomeKind.FAILED: (
            f":x: Deployment failed: {label}",
            f"The deployment of {label} to `{svc}` failed; ECS keeps or restores the "
            "previous image.",
            failed,
        ),
        OutcomeKind.ROLLED_BACK: (
            f":rewind: Rolled back: {label} was NOT deployed",
            f"`{svc}` finished deployment `{record.deployment_id}` but runs "
            f"`{(running or 'unknown').rsplit('/', 1)[-1]}`, not {label}. ECS rolled the new "
            "image back.",
            failed,
        ),
    }[decision.kind]
    body += f"\n{frozen}" if frozen else ""  # the freeze this event's rollback began
    message = build_message(
        title,
        body,
        facts=[
            ("Event", event.event_name),
            ("Deployment", event.deployment_id),
            ("Reason", event.reason or "-"),
        ],
        runbook=runbook,
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · event {event.get('id')}",
        details=_diagnosis(kit, record) if decision.kind in _DIAGNOSED else None,
    )
    kit.notifier.post(message, job=JOB)


# A rolling-back event comes before the failure it announces; the final one says why.
_DIAGNOSED = frozenset({OutcomeKind.FAILED, OutcomeKind.ROLLED_BACK})


def _diagnosis(kit: Toolkit, record: DeploymentRecord) -> str:
    """Why the deployment failed, within one Slack section (plain text: it is AWS's and the
    site's words). Never raises: the outcome is posted whatever the diagnosis could read."""
    settings = kit.settings
    try:
        clients = kit.aws
        if clients is None:
            return "Why it failed: not read (this toolkit has no AWS clients)."
        reads = DiagnosisReads(
            kit.ecs,
            clients.elbv2,
            clients.client("logs"),
            cluster=settings.cluster_name,
            service=settings.service_name,
        )
        found = reads.diagnose(record.task_definition)
    except Exception as exc:  # the report matters more than its diagnosis
        logger.warning("cannot diagnose the deployment", extra={"error": repr(exc)})
        return f"Why it failed: could not be read ({type(exc).__name__})."
    heading = "Why it failed:\n"
    return heading + found.text(SECTION_TEXT_LIMIT - len(heading))
