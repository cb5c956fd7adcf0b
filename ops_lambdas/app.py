"""spotops ops toolkit: the routing table from event sources to ``chalicelib`` jobs.

Each handler wraps its raw event once, fetches the container's toolkit (settings validated
and clients made on first use) and calls one job. Logic lives in ``chalicelib/``.

Every function's container imports this module, so it imports only what all of them need
(Chalice, Powertools logging and metrics, the event patterns). A handler imports its job
(and with it boto3 and slack_sdk) on its first event: a chaos container never loads the
alarm rules, and the import that every cold start pays stays under ``import boto3`` plus
one client (``make bench``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from chalice import Chalice, ConvertToMiddleware, Rate
from chalice.app import BaseLambdaEvent, CloudWatchEvent

from chalicelib import patterns
from chalicelib.observability import logger, make_tracer, metrics

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit

app = Chalice(app_name="spotops")

# Powertools once, as middleware, for every function: JSON logs with the EventBridge event id
# as correlation id, EMF metrics flushed per invocation, X-Ray only when tracing is on.
app.register_middleware(
    ConvertToMiddleware(
        logger.inject_lambda_context(
            correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True
        )
    )
)
app.register_middleware(
    ConvertToMiddleware(functools.partial(metrics.log_metrics, raise_on_empty_metrics=False))
)
tracer = make_tracer()
if tracer is not None:
    app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler))

# Module-level names without annotations: Chalice's policy analyser parses this file and
# fails on annotated assignments (KeyError: 'dict').
ECR_PUSH_PATTERN = patterns.ecr_push(os.environ)
ECS_DEPLOYMENT_PATTERN = patterns.ecs_deployment(os.environ)
ALARM_TOPIC = patterns.alarm_topic(os.environ)
ECR_SCAN_PATTERN = patterns.ecr_scan(os.environ)


def _toolkit(event: BaseLambdaEvent) -> Toolkit:
    from chalicelib.toolkit import get_toolkit

    return get_toolkit().with_context(event.context)


def _run(
    event: BaseLambdaEvent, job: str, work: Callable[[Toolkit], dict[str, Any]]
) -> dict[str, Any]:
    """``work`` on the container's toolkit; on a verification event (``spotopsVerification``),
    on one that forces dry run and changes nothing (:mod:`chalicelib.verification`)."""
    from chalicelib.verification import run_job

    return run_job(job, event.to_dict(), lambda: _toolkit(event), work)


class AnyEvent(BaseLambdaEvent):
    """The raw event, whatever its shape. Chalice's ``SNSEvent`` reads ``Records[0]`` before
    the handler runs (an empty list raises ``IndexError``) and ``alarm_action`` also gets
    EventBridge events (ops.yaml adds its rules): the handler checks the shape itself."""

    def _extract_attributes(self, event_dict: dict[str, Any]) -> None:
        return None


@app.on_cw_event(ECR_PUSH_PATTERN, name="redeploy_on_push")
def redeploy_on_push(event: CloudWatchEvent) -> dict[str, Any]:
    """ECR push -> new task definition revision pinned to the digest -> UpdateService."""
    from chalicelib.events import EcrImageActionEvent
    from chalicelib.redeploy import flow as redeploy

    wrapped = EcrImageActionEvent(event.to_dict())
    return _run(event, redeploy.JOB, lambda kit: redeploy.handle_push(wrapped, kit))


@app.on_cw_event(ECS_DEPLOYMENT_PATTERN, name="deployment_outcome")
def deployment_outcome(event: CloudWatchEvent) -> dict[str, Any]:
    """ECS deployment completed / failed / rolling back -> Slack, and release the lock."""
    from chalicelib.events import EcsDeploymentStateChangeEvent
    from chalicelib.redeploy import outcome

    wrapped = EcsDeploymentStateChangeEvent(event.to_dict())
    return _run(event, outcome.JOB, lambda kit: outcome.handle_deployment_state(wrapped, kit))


@app.schedule(Rate(15, unit=Rate.MINUTES), name="reconcile_images")
def reconcile_images(event: CloudWatchEvent) -> dict[str, Any]:
    """Every 15 minutes: deploy the newest matching image if its push event was lost."""
    from chalicelib.events import ScheduledEvent
    from chalicelib.redeploy import flow as redeploy

    wrapped = ScheduledEvent(event.to_dict())
    return _run(event, redeploy.JOB, lambda kit: redeploy.reconcile(wrapped, kit))


@app.schedule(Rate(patterns.CHAOS_TICK_MINUTES, unit=Rate.MINUTES), name="chaos_tick")
def chaos_tick(event: CloudWatchEvent) -> dict[str, Any]:
    """Hourly: for each opted-in service, stop one task if every guard allows; time recovery."""
    from chalicelib.chaos import flow as chaos
    from chalicelib.events import ScheduledEvent

    wrapped = ScheduledEvent(event.to_dict())
    return _run(event, chaos.JOB, lambda kit: chaos.handle_tick(wrapped, kit))


@app.on_cw_event(ECR_SCAN_PATTERN, name="image_scan_alert")
def image_scan_alert(event: CloudWatchEvent) -> dict[str, Any]:
    """ECR scan found HIGH/CRITICAL in an image the service runs -> Slack, with its runbook.
    Also gets completed deployments (a new image may run after its scan finished) and, with
    ECR enhanced scanning, Amazon Inspector's ``Inspector2 Scan`` / ``Inspector2 Finding`` of
    the repository's images (ops.yaml adds both rules); ``image_scan`` routes by source and
    detail-type."""
    from chalicelib.scan import flow as image_scan

    return _run(event, image_scan.JOB, lambda kit: image_scan.handle_event(event.to_dict(), kit))


@app.lambda_function(name="deployment_hook")
def deployment_hook(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """ECS lifecycle hook (CANARY/LINEAR): smoke tests on the test listener, and /version
    compared with the target revision's image (DescribeServiceRevisions) -> SUCCEEDED or
    FAILED (rolls back before users see the new revision). Needs no settings."""
    from chalicelib.hook import flow as hook
    from chalicelib.verification import hook_plan, run_hook

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return run_hook(
        event,
        job=hook.JOB,
        decide=lambda: hook.handle_hook(
            event,
            remaining_seconds=(lambda: remaining() / 1000) if remaining else None,
            revisions=hook.default_revisions(),
        ),
        plan=lambda: hook_plan(*hook.parse_target(event), hook.target_revision_arn(event)),
    )


@app.on_sns_message(topic=ALARM_TOPIC, name="alarm_action")
def alarm_action(event: AnyEvent) -> dict[str, Any]:
    """Alarm (SNS or EventBridge), Spot interruption, placement failure, capacity check ->
    Slack alert with its runbook, remediation within the ledger's limits, follow-up."""
    from chalicelib.alarms import flow as remediation

    return _run(event, remediation.JOB, lambda kit: remediation.handle_event(event.to_dict(), kit))


# Registered as an SNS handler (Chalice writes the topic subscription), called with any event.
alarm_action.event_class = AnyEvent
