"""Events of the exact shapes AWS sends the ops functions, built for a rehearsal.

A rehearsal (``spotops simulate``, against AWS or the local emulator, and ``spotops demo``)
sends the deployed functions events nothing emitted (and the emulator emits none of these:
ECR, ECS and CloudWatch publish nothing to its EventBridge), so they are built here, field
for field as the AWS documentation shows them (sources are named on each builder).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _envelope(
    detail_type: str, source: str, account: str, region: str, resources: list[str]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
    }


def ecr_push(
    *, account: str, region: str, repository: str, digest: str, tag: str
) -> dict[str, Any]:
    """``ECR Image Action`` for a successful push (Amazon ECR User Guide, "Amazon ECR events
    and EventBridge", event for a completed image push)."""
    event = _envelope("ECR Image Action", "aws.ecr", account, region, [])
    event["detail"] = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest,
        "action-type": "PUSH",
        "image-tag": tag,
    }
    return event


def image_scan(
    *,
    account: str,
    region: str,
    repository: str,
    digest: str,
    tags: list[str],
    counts: dict[str, int],
) -> dict[str, Any]:
    """``ECR Image Scan`` for a finished basic scan (Amazon ECR User Guide, "Amazon ECR events
    and EventBridge", event for a completed image scan); ``counts`` holds only the severities
    found."""
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
    event = _envelope("ECR Image Scan", "aws.ecr", account, region, [arn])
    event["detail"] = {
        "scan-status": "COMPLETE",
        "repository-name": repository,
        "finding-severity-counts": dict(counts),
        "image-digest": digest,
        "image-tags": list(tags),
    }
    return event


def lifecycle_hook(
    *,
    account: str,
    region: str,
    cluster: str,
    service: str,
    hook_details: dict[str, str],
) -> dict[str, Any]:
    """What ECS sends a deployment lifecycle hook at ``POST_TEST_TRAFFIC_SHIFT`` (Amazon ECS
    Developer Guide, "Lambda hooks for Amazon ECS service deployments"); ``hook_details`` as
    the site template configures them (``baseUrl``, ``testHeader``, ``testHeaderValue``)."""
    deployment = uuid.uuid4().hex[:21]
    return {
        "executionId": str(uuid.uuid4()),
        "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "resourceArn": (
            f"arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/{deployment}"
        ),
        "executionDetails": {
            "serviceArn": f"arn:aws:ecs:{region}:{account}:service/{cluster}/{service}",
            "targetServiceRevisionArn": (
                f"arn:aws:ecs:{region}:{account}:service-revision/{cluster}/{service}/"
                f"{uuid.uuid4().int % 10**19}"
            ),
            "testTrafficWeights": {},
            "productionTrafficWeights": {},
        },
        "hookDetails": dict(hook_details),
    }


def scheduled(*, account: str, region: str, rule_name: str) -> dict[str, Any]:
    """``Scheduled Event`` from an EventBridge schedule rule (EventBridge User Guide)."""
    rule = f"arn:aws:events:{region}:{account}:rule/{rule_name}"
    event = _envelope("Scheduled Event", "aws.events", account, region, [rule])
    event["detail"] = {}
    return event


def deployment_state(
    *, account: str, region: str, service_arn: str, deployment_id: str, name: str, reason: str
) -> dict[str, Any]:
    """``ECS Deployment State Change`` (Amazon ECS Developer Guide, "Amazon ECS service
    deployment events"); ``name`` is ``SERVICE_DEPLOYMENT_COMPLETED``, ``_FAILED`` or
    ``_IN_PROGRESS``."""
    event = _envelope("ECS Deployment State Change", "aws.ecs", account, region, [service_arn])
    event["detail"] = {
        "eventType": "ERROR" if name.endswith("FAILED") else "INFO",
        "eventName": name,
        "deploymentId": deployment_id,
        "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "reason": reason,
    }
    return event


# The four below start from AWS's documented examples (spotops/data/events/), with the
# identifying fields replaced: their many other fields are kept exactly as AWS sends them.


def _example(name: str) -> dict[str, Any]:
    text = (Path(__file__).resolve().parents[1] / "data" / "events" / f"{name}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _stamp(moment: datetime) -> str:
    """CloudWatch's timestamp form, ``2026-11-28T10:04:40.989+0000``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def alarm_sns(
    *,
    account: str,
    region: str,
    topic_arn: str,
    name: str,
    state: str,
    description: str,
    reason: str,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudWatch alarm state change delivered by SNS to Lambda (CloudWatch User Guide,
    "Alarm actions": the JSON message; Lambda Developer Guide, "Using Lambda with Amazon
    SNS": the ``Records`` wrapper). ``trigger`` is the alarm's (:func:`sns_trigger`); without
    it, the documented example's."""
    now = datetime.now(UTC)
    event, message = _alarm_message(
        "snsAlarmStateChange", account, region, name, state, description, reason, now
    )
    if trigger is not None:
        message["Trigger"] = trigger
    return _sent_by_sns(event, message, f'{state}: "{name}" in {region}', topic_arn, now)


def composite_alarm_sns(
    *,
    account: str,
    region: str,
    topic_arn: str,
    name: str,
    state: str,
    description: str,
    reason: str,
    rule: str,
    actions: dict[str, list[str]],
    triggering: list[str],
) -> dict[str, Any]:
    """A CloudWatch composite alarm state change delivered by SNS to Lambda (CloudWatch User
    Guide, "Combining alarms" and "Alarm actions"): no ``Trigger``, but the ``AlarmRule`` and
    the ``TriggeringChildren`` whose change set the new state. ``actions`` holds the alarm's
    ``AlarmActions``, ``OKActions`` and ``InsufficientDataActions``; ``triggering`` the
    children's names, each taken to have just entered ``state``."""
    now = datetime.now(UTC)
    stamp = _stamp(now)
    event, message = _alarm_message(
        "snsCompositeAlarmStateChange", account, region, name, state, description, reason, now
    )
    message.update(
        {
            "OKActions": list(actions.get("OKActions", [])),
            "AlarmActions": list(actions.get("AlarmActions", [])),
            "InsufficientDataActions": list(actions.get("InsufficientDataActions", [])),
            "AlarmRule": rule,
            "TriggeringChildren": [
                {
                    "Arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{child}",
                    "State": {"Value": state, "Timestamp": stamp},
                }
                for child in triggering
            ],
        }
    )
    return _sent_by_sns(event, message, f'{state}: "{name}" in {region}', topic_arn, now)


def _alarm_message(
    example: str,
    account: str,
    region: str,
    name: str,
    state: str,
    description: str,
    reason: str,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SNS example ``example`` and its alarm message with what every alarm's state change
    says of itself (name, account, states, reason, time, ARN)."""
    event = _example(example)
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message.update(
        {
            "AlarmName": name,
            "AlarmDescription": description,
            "AWSAccountId": account,
            "NewStateValue": state,
            "OldStateValue": "OK" if state == "ALARM" else "ALARM",
            "NewStateReason": reason,
            "StateChangeTime": _stamp(now),
            "AlarmArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
        }
    )
    return event, message


def _sent_by_sns(
    event: dict[str, Any], message: dict[str, Any], subject: str, topic_arn: str, now: datetime
) -> dict[str, Any]:
    """``event`` (an SNS-to-Lambda example) carrying ``message`` as SNS delivers it now."""
    record = event["Records"][0]
    record["Sns"].update(
        {
            "Message": json.dumps(message),
            "Subject": subject,
            "MessageId": str(uuid.uuid4()),
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "TopicArn": topic_arn,
        }
    )
    record["EventSubscriptionArn"] = f"{topic_arn}:{uuid.uuid4()}"
    return event


def _sns_dimensions(dimensions: Any) -> list[dict[str, str]]:
    # SNS spells them in lower case, CloudWatch's API capitalised.
    return [{"value": str(d["Value"]), "name": str(d["Name"])} for d in dimensions or []]


def sns_trigger(alarm: dict[str, Any]) -> dict[str, Any]:
    """The ``Trigger`` of the SNS message CloudWatch sends for ``alarm`` (one entry of
    ``DescribeAlarms``' ``MetricAlarms``), in the shape of CloudWatch User Guide, "Alarm
    actions": a metric with its statistic, or metric math (``Metrics``)."""
    trigger: dict[str, Any] = {}
    if alarm.get("MetricName"):
        extended = alarm.get("ExtendedStatistic")
        trigger.update(
            {
                "MetricName": alarm["MetricName"],
                "Namespace": alarm.get("Namespace"),
                "StatisticType": "ExtendedStatistic" if extended else "Statistic",
                **(
                    {"ExtendedStatistic": extended}
                    if extended
                    else {"Statistic": str(alarm.get("Statistic", "")).upper()}
                ),
                "Unit": alarm.get("Unit"),
                "Dimensions": _sns_dimensions(alarm.get("Dimensions")),
                "Period": alarm.get("Period"),
            }
        )
    else:
        metrics = []
        for metric in alarm.get("Metrics") or []:
            entry: dict[str, Any] = {"Id": metric["Id"], "ReturnData": metric.get("ReturnData")}
            if metric.get("Expression"):
                entry.update({"Expression": metric["Expression"], "Label": metric.get("Label")})
            stat = metric.get("MetricStat")
            if stat:
                inner = stat.get("Metric", {})
                entry["MetricStat"] = {
                    "Metric": {
                        "Dimensions": _sns_dimensions(inner.get("Dimensions")),
                        "MetricName": inner.get("MetricName"),
                        "Namespace": inner.get("Namespace"),
                    },
                    "Period": stat.get("Period"),
                    "Stat": stat.get("Stat"),
                }
            metrics.append(entry)
        trigger["Metrics"] = metrics
    trigger.update(
        {
            "EvaluationPeriods": alarm.get("EvaluationPeriods"),
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm"),
            "ComparisonOperator": alarm.get("ComparisonOperator"),
            "TreatMissingData": alarm.get("TreatMissingData", ""),
            "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
        }
    )
    if alarm.get("ThresholdMetricId"):
        trigger["ThresholdMetricId"] = alarm["ThresholdMetricId"]
    else:
        trigger["Threshold"] = alarm.get("Threshold")
    return trigger


def spot_interruption(
    *, account: str, region: str, cluster: str, service: str, task_id: str
) -> dict[str, Any]:
    """``ECS Task State Change`` of a Fargate Spot task stopped with stop code
    ``SpotInterruption`` (Amazon ECS Developer Guide, "Task state change events")."""
    event = _example("ecsTaskStateChangeSpotInterruption")
    task = f"arn:aws:ecs:{region}:{account}:task/{cluster}/{task_id}"
    now = _stamp(datetime.now(UTC))
    event.update(
        {"id": str(uuid.uuid4()), "account": account, "region": region, "resources": [task]}
    )
    detail = event["detail"]
    detail.update(
        {
            "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/{cluster}",
            "group": f"service:{service}",
            "taskArn": task,
            "stoppingAt": now,
            "updatedAt": now,
        }
    )
    for container in detail.get("containers", []):
        container["taskArn"] = task
    return event


def placement_failure(*, account: str, region: str, cluster: str, service: str) -> dict[str, Any]:
    """``ECS Service Action`` ``SERVICE_TASK_PLACEMENT_FAILURE`` for Fargate Spot (Amazon ECS
    Developer Guide, "Service action events")."""
    event = _example("ecsServiceActionPlacementFailure")
    event.update(
        {
            "id": str(uuid.uuid4()),
            "account": account,
            "region": region,
            "resources": [f"arn:aws:ecs:{region}:{account}:service/{cluster}/{service}"],
        }
    )
    event["detail"].update(
        {
            "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/{cluster}",
            "capacityProviderArns": [
                f"arn:aws:ecs:{region}:{account}:capacity-provider/FARGATE_SPOT"
            ],
            "createdAt": _stamp(datetime.now(UTC)),
        }
    )
    return event
