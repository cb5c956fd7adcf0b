"""Alarm-function test builders: events from the fixtures in ``tests/events/`` (shaped as
AWS documents them) renamed for the stage under test, and the service the remediations
change (desired count, a Spot capacity provider strategy, an autoscaling range).

Plain helpers (no fixtures), shared by the functional, integration and emulator tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.support.events import load_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
RUNBOOKS = "https://runbooks.example.com/spotops"
SPOT_STRATEGY = [
    {"capacityProvider": "FARGATE", "base": 0, "weight": 0},
    {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1},
]


def stamp(epoch: float) -> str:
    """CloudWatch's timestamp form, ``2026-11-28T10:04:40.989+0000``."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sns_alarm(
    name: str,
    state: str = "ALARM",
    *,
    at: float,
    old: str | None = None,
    description: str | None = "use the default",
    reason: str | None = None,
    message_id: str | None = None,
    topic: str | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    fixture: str = "snsAlarmStateChange",
) -> dict[str, Any]:
    """The SNS-wrapped alarm fixture for ``name`` going to ``state`` at ``at``."""
    event = load_event(fixture)
    record = event["Records"][0]
    message = json.loads(record["Sns"]["Message"])
    suffix = name.split("-", 2)[-1]
    message["AlarmName"] = name
    message["NewStateValue"] = state
    message["OldStateValue"] = old or ("OK" if state == "ALARM" else "ALARM")
    message["StateChangeTime"] = stamp(at)
    message["AWSAccountId"] = account
    message["AlarmArn"] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
    if description == "use the default":
        message["AlarmDescription"] = f"The {suffix} alarm. Runbook: {RUNBOOKS}/{suffix}.md"
    else:
        message["AlarmDescription"] = description
    if reason is not None:
        message["NewStateReason"] = reason
    sns = record["Sns"]
    sns["Message"] = json.dumps(message)
    sns["Subject"] = f'{state}: "{name}" in US East (N. Virginia)'
    sns["MessageId"] = message_id or f"msg-{name}-{state}-{int(at)}"
    sns["Timestamp"] = iso(at)
    # The stage's own topic (<app>-<stage>-alarms), unless the test names another.
    stage = "-".join(name.split("-")[:2])
    sns["TopicArn"] = topic or f"arn:aws:sns:{REGION}:{ACCOUNT}:{stage}-alarms"
    return event


def eventbridge_alarm(
    name: str,
    state: str = "ALARM",
    *,
    at: float,
    old: str | None = None,
    since: float | None = None,
    description: str | None = "use the default",
    event_id: str | None = None,
    fixture: str = "eventBridgeAlarmStateChange",
) -> dict[str, Any]:
    """The EventBridge alarm fixture for ``name``; ``since``: when the old state began."""
    event = load_event(fixture)
    detail = event["detail"]
    suffix = name.split("-", 2)[-1]
    event["id"] = event_id or f"eb-{name}-{state}-{int(at)}"
    event["time"] = iso(at)
    event["resources"] = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"]
    detail["alarmName"] = name
    detail["state"]["value"] = state
    detail["state"]["timestamp"] = stamp(at)
    detail["previousState"]["value"] = old or ("OK" if state == "ALARM" else "ALARM")
    if since is not None:
        detail["previousState"]["timestamp"] = stamp(since)
    configuration = detail.setdefault("configuration", {})
    if description == "use the default":
        if "alarmRule" not in configuration:
            configuration["description"] = f"The {suffix} alarm. Runbook: {RUNBOOKS}/{suffix}.md"
    elif description is None:
        configuration.pop("description", None)
    else:
        configuration["description"] = description
    return event


def spot_interruption(
    cluster: str, service: str, task_id: str, *, at: float, event_id: str | None = None
) -> dict[str, Any]:
    """The Spot interruption fixture for one task of ``cluster``/``service``."""
    event = load_event("ecsTaskStateChangeSpotInterruption")
    task = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{task_id}"
    event["id"] = event_id or f"spot-{task_id}"
    event["time"] = iso(at)
    event["resources"] = [task]
    detail = event["detail"]
    detail["clusterArn"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"
    detail["group"] = f"service:{service}"
    detail["taskArn"] = task
    detail["stoppingAt"] = detail["updatedAt"] = stamp(at)
    for container in detail["containers"]:
        container["taskArn"] = task
    return event


def placement_failure(
    cluster: str,
    service: str,
    *,
    at: float,
    event_id: str = "placement-1",
    provider: str = "FARGATE_SPOT",
) -> dict[str, Any]:
    """The ``SERVICE_TASK_PLACEMENT_FAILURE`` fixture for ``cluster``/``service``."""
    event = load_event("ecsServiceActionPlacementFailure")
    event["id"] = event_id
    event["time"] = iso(at)
    event["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}"]
    detail = event["detail"]
    detail["clusterArn"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"
    detail["capacityProviderArns"] = [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:capacity-provider/{provider}"
    ]
    detail["createdAt"] = stamp(at)
    return event


def scheduled(event_id: str = "capacity-check-1") -> dict[str, Any]:
    event = load_event("scheduledEvent")
    event["id"] = event_id
    return event


def prepare_service(
    ecs: Any,
    autoscaling: Any | None,
    *,
    cluster: str,
    service: str,
    desired: int = 2,
    max_tasks: int | None = 4,
    strategy: list[dict[str, Any]] | None = None,
) -> None:
    """The service as the site stack makes it: ``desired`` tasks on a Spot strategy and, with
    ``max_tasks``, an autoscaling range (moto's CloudFormation drops both)."""
    ecs.update_service(
        cluster=cluster,
        service=service,
        desiredCount=desired,
        capacityProviderStrategy=strategy or SPOT_STRATEGY,
    )
    if autoscaling is not None and max_tasks is not None:
        autoscaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{service}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=min(desired, max_tasks),
            MaxCapacity=max_tasks,
        )


def put_alarm(
    cloudwatch: Any,
    name: str,
    state: str = "ALARM",
    *,
    actions_enabled: bool = True,
    reason: str = "test",
    since: float | None = None,
) -> None:
    """Make CloudWatch hold ``name`` in ``state`` (and its actions enabled or not), as the
    site stack's alarm would be when its state change is delivered (moto's CloudFormation
    drops ``AWS::CloudWatch::Alarm``, so the tests create it). ``since``: when that state
    began (moto in-process only; moto stamps the wall clock otherwise)."""
    found = cloudwatch.describe_alarms(AlarmNames=[name])
    if not found["MetricAlarms"] + found["CompositeAlarms"]:  # an existing one is kept as is
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
    if actions_enabled:
        cloudwatch.enable_alarm_actions(AlarmNames=[name])
    else:
        cloudwatch.disable_alarm_actions(AlarmNames=[name])
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    if since is not None:
        from moto.cloudwatch.models import cloudwatch_backends

        alarm = cloudwatch_backends[ACCOUNT][REGION].alarms[name]
        moment = datetime.fromtimestamp(since, tz=UTC).replace(tzinfo=None)  # moto's naive UTC
        alarm.state_updated_timestamp = moment


def alarm_in(event: Any) -> tuple[str, str] | None:
    """``(alarm name, new state)`` of an SNS or EventBridge alarm event, or ``None`` (not an
    alarm event, or a message that cannot be read)."""
    if not isinstance(event, dict):
        return None
    if event.get("source") == "aws.cloudwatch":
        detail = event.get("detail") or {}
        return str(detail.get("alarmName")), str((detail.get("state") or {}).get("value"))
    for record in event.get("Records") or []:
        try:
            message = json.loads(record["Sns"]["Message"])
            return str(message["AlarmName"]), str(message["NewStateValue"])
        except (KeyError, TypeError, ValueError):
            return None
    return None
