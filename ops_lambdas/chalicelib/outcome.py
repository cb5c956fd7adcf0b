"""Deployment outcome: ``ECS Deployment State Change`` events reported to Slack.

* ``SERVICE_DEPLOYMENT_COMPLETED`` is reported as success only when the completed deployment
  is the one the redeploy job started **and** the service really runs that digest. A
  completion after a failure or rollback (the rollback deployment finishing) is reported as
  "rolled back: <tag> was NOT deployed", never as success.
* ``SERVICE_DEPLOYMENT_FAILED`` is reported with the circuit breaker's or alarm's ``reason``
  and the ``deploy-failed.md`` runbook.
* ``SERVICE_DEPLOYMENT_IN_PROGRESS`` whose reason says "rolling back" starts a rollback:
  reported as a failure; other in-progress events are only logged.

Completion and failure release the redeploy lock on the service (a lock held by chaos or
remediation is left alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from chalicelib.errors import DeferredError
from chalicelib.observability import count, logger
from chalicelib.redeploy import running_digest, short
from chalicelib.runbooks import DEPLOY_FAILED, REDEPLOY, runbook_url
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from chalicelib.events import EcsDeploymentStateChangeEvent
    from chalicelib.toolkit import Toolkit

JOB = "deploy-outcome"
COMPLETED = "SERVICE_DEPLOYMENT_COMPLETED"
FAILED = "SERVICE_DEPLOYMENT_FAILED"
IN_PROGRESS = "SERVICE_DEPLOYMENT_IN_PROGRESS"


def _result(status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"job": JOB, "status": status, "reason": reason, **extra}


def handle_deployment_state(event: EcsDeploymentStateChangeEvent, kit: Toolkit) -> dict[str, Any]:
    """Report one deployment state change; never raises for bad input.

    Returns
    -------
    dict
        ``status`` is ``succeeded``, ``failed``, ``rolling-back``, ``rolled-back``,
        ``completed-external`` or ``ignored``, with ``reason``.

    Example
    -------
    >>> handle_deployment_state(EcsDeploymentStateChangeEvent(raw), kit)["status"]  # doctest: +SKIP
    'failed'
    """
    settings = kit.settings
    problem = event.problem(settings.cluster_name, settings.service_name)
    if problem:
        logger.warning("event ignored", extra={"reason": problem})
        count("EventsIgnored", JOB)
        return _result("ignored", problem)

    # EventBridge delivers at least once: report each state change once.
    config = IdempotencyConfig(expires_after_seconds=settings.idempotency_ttl_seconds)
    if kit.lambda_context is not None:
        config.register_lambda_context(kit.lambda_context)

    def report_once(key: dict[str, str]) -> dict[str, Any]:
        return _report_state(event, kit)

    guarded = idempotent_function(
        report_once,
        data_keyword_argument="key",
        persistence_store=kit.idempotency,
        config=config,
        key_prefix="spotops-deploy-outcome",
    )
    key = {
        "event_id": str(event.get("id")),
        "deployment_id": event.deployment_id,
        "name": event.event_name,
    }
    try:
        result: dict[str, Any] = guarded(key=key)
    except IdempotencyAlreadyInProgressError:
        return _result("duplicate", "the same event is being handled by another invocation")
    return result


def _report_state(event: EcsDeploymentStateChangeEvent, kit: Toolkit) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key
    deployment_id = event.deployment_id
    latest = kit.ledger.get_deployment(svc)
    ours = latest if latest and latest.get("deployment_id") == deployment_id else None
    label = _label(latest)
    logger.append_keys(deployment_id=deployment_id)
    failed_runbook = runbook_url(settings.runbook_base_url, DEPLOY_FAILED)
    name = event.event_name

    if name == IN_PROGRESS:
        if not event.is_rollback:
            logger.info("deployment in progress", extra={"reason": event.reason})
            return _result("ignored", "deployment in progress")
        if latest and latest.get("status") in ("IN_PROGRESS", "FAILED"):
            kit.ledger.set_deployment_status(
                svc, latest["deployment_id"], "ROLLING_BACK", event.reason
            )
        count("ActionsFailed", JOB)
        _post(
            kit,
            f":rewind: Deployment failed, rolling back: {label}",
            f"`{svc}` is rolling back. {label} is *not* being deployed.",
            event,
            runbook=failed_runbook,
        )
        kit.ledger.record_history(svc, JOB, "rolling-back", f"{deployment_id} {event.reason}")
        return _result("rolling-back", event.reason, deployment_id=deployment_id)

    if name == FAILED:
        if latest and latest.get("status") in ("IN_PROGRESS", "ROLLING_BACK"):
            kit.ledger.set_deployment_status(svc, latest["deployment_id"], "FAILED", event.reason)
        released = kit.ledger.release_lock(svc, action="redeploy")
        count("ActionsFailed", JOB)
        subject = label if ours else f"deployment {deployment_id}"
        _post(
            kit,
            f":x: Deployment failed: {subject}",
            f"The deployment of {subject} to `{svc}` failed.",
            event,
            runbook=failed_runbook,
        )
        kit.ledger.record_history(svc, JOB, "failed", f"{deployment_id} {event.reason}")
        return _result("failed", event.reason, deployment_id=deployment_id, lock_released=released)

    if name == COMPLETED:
        return _completed(event, kit, latest, ours)

    logger.warning("unknown deployment event", extra={"event_name": name})
    count("EventsIgnored", JOB)
    return _result("ignored", f"unknown eventName {name}")


def _completed(
    event: EcsDeploymentStateChangeEvent,
    kit: Toolkit,
    latest: dict[str, str] | None,
    ours: dict[str, str] | None,
) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key
    deployment_id = event.deployment_id
    try:
        running: str | None = running_digest(kit)
        running_known = True
    except DeferredError as exc:
        logger.warning("cannot read the running image", extra={"reason": exc.reason})
        running, running_known = None, False

    released = kit.ledger.release_lock(svc, action="redeploy")
    label = _label(latest)
    failed_states = ("FAILED", "ROLLING_BACK")
    if (
        ours
        and ours.get("status") == "IN_PROGRESS"
        and (not running_known or running == ours.get("digest"))
    ):
        kit.ledger.set_deployment_status(svc, deployment_id, "COMPLETED", event.reason)
        count("ActionsTaken", JOB)
        _post(
            kit,
            f":white_check_mark: Deployed {label}",
            f"`{svc}` now runs {label}.",
            event,
            runbook=runbook_url(settings.runbook_base_url, REDEPLOY),
        )
        kit.ledger.record_history(svc, JOB, "completed", f"{deployment_id} {label}")
        return _result("succeeded", event.reason, deployment_id=deployment_id)

    if latest and (
        latest.get("status") in failed_states
        or (latest.get("status") == "IN_PROGRESS" and running != latest.get("digest"))
    ):
        kit.ledger.set_deployment_status(
            svc, latest["deployment_id"], "ROLLED_BACK", latest.get("reason", event.reason)
        )
        count("ActionsFailed", JOB)
        _post(
            kit,
            f":rewind: Rolled back: {label} was NOT deployed",
            f"`{svc}` finished deployment `{deployment_id}` but runs `{short(running)}`, "
            f"not {label}. The new image failed and ECS rolled back.",
            event,
            runbook=runbook_url(settings.runbook_base_url, DEPLOY_FAILED),
        )
        kit.ledger.record_history(svc, JOB, "rolled-back", f"{deployment_id} {label}")
        return _result("rolled-back", event.reason, deployment_id=deployment_id)

    _post(
        kit,
        f":information_source: Deployment {deployment_id} completed",
        f"`{svc}` completed a deployment the redeploy job did not start; it runs "
        f"`{short(running)}`.",
        event,
        runbook=runbook_url(settings.runbook_base_url, REDEPLOY),
    )
    return _result(
        "completed-external", event.reason, deployment_id=deployment_id, lock_released=released
    )


def _label(record: dict[str, str] | None) -> str:
    if not record:
        return "the new image"
    return f"{record.get('tag') or 'untagged'} ({short(record.get('digest'))})"


def _post(
    kit: Toolkit, title: str, body: str, event: EcsDeploymentStateChangeEvent, *, runbook: str
) -> None:
    settings = kit.settings
    facts = [
        ("Event", event.event_name),
        ("Deployment", event.deployment_id),
        ("Reason", event.reason or "-"),
    ]
    message = build_message(
        title,
        body,
        facts=facts,
        runbook=runbook,
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · event {event.get('id')}",
    )
    kit.notifier.post(message, job=JOB)
