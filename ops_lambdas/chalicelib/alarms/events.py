"""The events the alarm function gets, wrapped once, and the one alarm change they describe.

One function takes five shapes (``classify`` tells them apart):

* an **SNS notification** from the site's alarm topic: ``Records[].Sns.Message`` is the
  alarm as JSON (``AlarmName``, ``NewStateValue``, ``Trigger``...), ``Subject`` is
  ``ALARM: "<name>" in <region name>``;
* EventBridge ``CloudWatch Alarm State Change`` (metric and composite alarms; a composite
  alarm's suppressed actions show as ``state.actionsSuppressedBy``);
* EventBridge ``ECS Task State Change`` with ``stopCode`` ``SpotInterruption``;
* EventBridge ``ECS Service Action`` (``SERVICE_TASK_PLACEMENT_FAILURE``);
* the ``Scheduled Event`` of the capacity check.

Both alarm forms become one :class:`AlarmChange`, the only thing the rest of the code
reads. Every check returns why an event cannot be used rather than raising: the handler
logs the reason and, where there is an alert to give, still gives it.

See https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
and https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwe_events.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.common import DictWrapper

from chalicelib.alarms.rules import STATES

ALARM_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):cloudwatch:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"alarm:(?P<name>.+)$"
)
SUBJECT_RE = re.compile(r'^(?P<state>ALARM|OK|INSUFFICIENT_DATA): "(?P<name>.+)" in (?P<where>.+)$')
RUNBOOK_RE = re.compile(r"Runbook:\s*<?(?P<url>https?://[^\s<>|\"']+)>?")
_COMPARISONS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside the band",
    "GreaterThanUpperThreshold": "above the band",
    "LessThanLowerThreshold": "below the band",
}


class Kind(StrEnum):
    """What an incoming event is."""

    SNS = "sns"
    ALARM_STATE_CHANGE = "alarm-state-change"
    TASK_STATE_CHANGE = "task-state-change"
    SERVICE_ACTION = "service-action"
    SCHEDULE = "schedule"
    UNKNOWN = "unknown"


def classify(raw: Any) -> tuple[Kind, str]:
    """The kind of ``raw`` and, for :attr:`Kind.UNKNOWN`, why it is not one we handle.

    Example
    -------
    >>> classify({"Records": []})
    (<Kind.SNS: 'sns'>, '')
    >>> classify("hello")[0].value
    'unknown'
    """
    if not isinstance(raw, dict):
        return Kind.UNKNOWN, f"the event is a {type(raw).__name__}, not an object"
    if "Records" in raw:
        return Kind.SNS, ""
    source, detail_type = raw.get("source"), raw.get("detail-type")
    if source == "aws.cloudwatch" and detail_type == "CloudWatch Alarm State Change":
        return Kind.ALARM_STATE_CHANGE, ""
    if source == "aws.ecs" and detail_type == "ECS Task State Change":
        return Kind.TASK_STATE_CHANGE, ""
    if source == "aws.ecs" and detail_type == "ECS Service Action":
        return Kind.SERVICE_ACTION, ""
    if source == "aws.events" and detail_type == "Scheduled Event":
        return Kind.SCHEDULE, ""
    return Kind.UNKNOWN, (
        f"not an alarm or an event this function handles (source {source!r}, "
        f"detail-type {detail_type!r})"
    )


def parse_time(value: Any) -> float | None:
    """Epoch seconds of CloudWatch's ``2019-10-02T17:04:40.989+0000`` (and ISO 8601 forms)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def runbook_of(description: str | None) -> str | None:
    """The URL after ``Runbook:`` in an alarm description (http(s) only), or ``None``.

    Example
    -------
    >>> runbook_of("CPU high. Runbook: https://example.com/runbooks/cpu-high.md")
    'https://example.com/runbooks/cpu-high.md'
    >>> runbook_of("no link here") is None
    True
    """
    if not description:
        return None
    found = RUNBOOK_RE.search(description)
    return found.group("url").rstrip(".,;)") if found else None


# ---- the alarm change, whatever form it came in --------------------------------------------


@dataclass(frozen=True)
class AlarmChange:
    """One alarm state change, as both forms describe it (the fields the toolkit uses)."""

    name: str
    state: str
    old_state: str
    reason: str
    at: float  # when the new state began (epoch seconds)
    source: str  # "sns" or "eventbridge"
    event_id: str
    description: str | None = None
    alarm_arn: str = ""
    account: str = ""
    region: str = ""
    region_name: str = ""  # SNS's "US East (N. Virginia)"
    metric: str = ""
    threshold: str = ""
    composite: bool = False
    alarm_rule: str = ""
    suppressed_by: str = ""
    suppressed_reason: str = ""
    previous_since: float | None = None  # when the old state began (EventBridge only)
    degraded: str = ""  # the message could not be read whole: why

    @property
    def runbook(self) -> str | None:
        return runbook_of(self.description)

    @property
    def suppressed(self) -> str | None:
        """Why a composite alarm's actions are suppressed (``None``: they are not)."""
        if not self.suppressed_by:
            return None
        return f"{self.suppressed_by}: {self.suppressed_reason or 'actions suppressed'}"


class AlarmNotification(DictWrapper):
    """The JSON an alarm publishes to SNS (``Records[].Sns.Message``).

    See https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
    """

    @property
    def alarm_name(self) -> str:
        """The alarm's name."""
        return str(self["AlarmName"])

    @property
    def description(self) -> str | None:
        """``AlarmDescription`` (``null`` when the alarm has none)."""
        value = self.get("AlarmDescription")
        return value if isinstance(value, str) else None

    @property
    def new_state(self) -> str:
        """``ALARM``, ``OK`` or ``INSUFFICIENT_DATA``."""
        return str(self["NewStateValue"])

    @property
    def trigger(self) -> Mapping[str, Any]:
        """The metric (or metric math) and threshold; absent for composite alarms."""
        value = self.get("Trigger")
        return value if isinstance(value, dict) else {}

    def problem(self) -> str | None:
        """Why this is not an alarm notification (``None``: it is)."""
        for key in ("AlarmName", "NewStateValue", "StateChangeTime"):
            if not isinstance(self.get(key), str) or not self.get(key):
                return f"the SNS message is not an alarm notification ({key} missing)"
        if self.new_state not in STATES:
            return f"NewStateValue {self.new_state[:40]!r} is not an alarm state"
        if parse_time(self.get("StateChangeTime")) is None:
            return "StateChangeTime is not a timestamp"
        return None

    def change(self, *, event_id: str) -> AlarmChange:
        arn = str(self.get("AlarmArn") or "")
        parsed = ALARM_ARN_RE.match(arn)
        trigger = self.trigger
        return AlarmChange(
            name=self.alarm_name,
            state=self.new_state,
            old_state=str(self.get("OldStateValue") or ""),
            reason=str(self.get("NewStateReason") or ""),
            at=parse_time(self.get("StateChangeTime")) or 0.0,
            source="sns",
            event_id=event_id,
            description=self.description,
            alarm_arn=arn,
            account=str(self.get("AWSAccountId") or (parsed.group("account") if parsed else "")),
            region=parsed.group("region") if parsed else "",
            region_name=str(self.get("Region") or ""),
            metric=_sns_metric(trigger),
            threshold=_sns_threshold(trigger),
            composite=bool(self.get("AlarmRule")),
            alarm_rule=str(self.get("AlarmRule") or ""),
        )


def _dimensions(dimensions: Any) -> str:
    if isinstance(dimensions, dict):
        pairs = [(str(k), str(v)) for k, v in dimensions.items()]
    elif isinstance(dimensions, list):
        pairs = [
            (str(d.get("name", d.get("Name", "?"))), str(d.get("value", d.get("Value", "?"))))
            for d in dimensions
            if isinstance(d, dict)
        ]
    else:
        pairs = []
    return ", ".join(f"{k}={v}" for k, v in pairs)


def _metric_line(namespace: Any, name: Any, dimensions: Any, stat: Any, period: Any) -> str:
    dims = _dimensions(dimensions)
    line = f"{namespace or '?'} {name or '?'}"
    if dims:
        line += f" ({dims})"
    if stat:
        line += f", {stat}"
    if period:
        line += f" over {period} s"
    return line


def _sns_metric(trigger: Mapping[str, Any]) -> str:
    if trigger.get("MetricName"):
        return _metric_line(
            trigger.get("Namespace"),
            trigger.get("MetricName"),
            trigger.get("Dimensions"),
            trigger.get("ExtendedStatistic") or trigger.get("Statistic"),
            trigger.get("Period"),
        )
    return _math_metrics(trigger.get("Metrics"), capital=True)


def _math_metrics(metrics: Any, *, capital: bool) -> str:
    """Metric math (``Metrics``): the returned expression(s), then the metrics they use."""
    if not isinstance(metrics, list):
        return ""
    k = (lambda s: s[0].upper() + s[1:]) if capital else (lambda s: s)
    lines = []
    for metric in metrics:
        if not isinstance(metric, dict):
            continue
        ident = metric.get(k("id"))
        if metric.get(k("expression")):
            lines.append(f"{ident} = {metric[k('expression')]}")
            continue
        stat = metric.get(k("metricStat"))
        if not isinstance(stat, dict):
            continue
        found = stat.get(k("metric"))
        inner: dict[str, Any] = found if isinstance(found, dict) else {}
        name = inner.get("MetricName") if capital else inner.get("name")
        lines.append(
            f"{ident} = "
            + _metric_line(
                inner.get(k("namespace")),
                name,
                inner.get(k("dimensions")),
                stat.get(k("stat")),
                stat.get(k("period")),
            )
        )
    return "; ".join(lines)


def _sns_threshold(trigger: Mapping[str, Any]) -> str:
    operator = trigger.get("ComparisonOperator")
    if not operator:
        return ""
    symbol = _COMPARISONS.get(str(operator), str(operator))
    periods = trigger.get("EvaluationPeriods")
    if "band" in symbol:
        text = f"{symbol} {trigger.get('ThresholdMetricId') or ''}".strip()
    else:
        text = f"{symbol} {trigger.get('Threshold')}"
    if periods:
        text += f" for {periods} period(s)"
    return text


# ---- EventBridge --------------------------------------------------------------------------


class AlarmStateChangeEvent(EventBridgeEvent):
    """``CloudWatch Alarm State Change`` (source ``aws.cloudwatch``), metric or composite."""

    @property
    def alarm_name(self) -> str:
        """The alarm's name."""
        return str(self["detail"]["alarmName"])

    @property
    def state(self) -> Mapping[str, Any]:
        """``value``, ``reason``, ``reasonData``, ``timestamp``, and for a composite alarm
        with a suppressor ``actionsSuppressedBy`` / ``actionsSuppressedReason``."""
        return dict(self["detail"]["state"])

    @property
    def previous_state(self) -> Mapping[str, Any]:
        """The state the alarm left (its ``timestamp`` is when that state began)."""
        value = self["detail"].get("previousState")
        return value if isinstance(value, dict) else {}

    @property
    def configuration(self) -> Mapping[str, Any]:
        """``description`` and ``metrics`` (metric alarms) or ``alarmRule`` (composite)."""
        value = self["detail"].get("configuration")
        return value if isinstance(value, dict) else {}

    def problem(self) -> str | None:
        """Why this cannot be read as an alarm state change (``None``: it can)."""
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        if not isinstance(detail.get("alarmName"), str) or not detail.get("alarmName"):
            return "detail.alarmName is missing"
        state = detail.get("state")
        if not isinstance(state, dict) or state.get("value") not in STATES:
            return "detail.state.value is not an alarm state"
        if parse_time(state.get("timestamp")) is None and parse_time(self.get("time")) is None:
            return "detail.state.timestamp is not a timestamp"
        return None

    def change(self) -> AlarmChange:
        state, previous, configuration = self.state, self.previous_state, self.configuration
        resources = self.get("resources")
        arn = str(resources[0]) if isinstance(resources, list) and resources else ""
        composite = "alarmRule" in configuration
        at = parse_time(state.get("timestamp")) or parse_time(self.get("time")) or 0.0
        return AlarmChange(
            name=self.alarm_name,
            state=str(state["value"]),
            old_state=str(previous.get("value") or ""),
            reason=str(state.get("reason") or ""),
            at=at,
            source="eventbridge",
            event_id=str(self.get("id") or ""),
            description=_str_or_none(configuration.get("description")),
            alarm_arn=arn,
            account=str(self.get("account") or ""),
            region=str(self.get("region") or ""),
            metric=_math_metrics(configuration.get("metrics"), capital=False),
            threshold=_reason_threshold(state.get("reasonData")),
            composite=composite,
            alarm_rule=str(configuration.get("alarmRule") or ""),
            suppressed_by=str(state.get("actionsSuppressedBy") or ""),
            suppressed_reason=str(state.get("actionsSuppressedReason") or ""),
            previous_since=parse_time(previous.get("timestamp")),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason_threshold(reason_data: Any) -> str:
    """The threshold from ``reasonData`` (EventBridge carries no alarm configuration)."""
    if not isinstance(reason_data, str):
        return ""
    try:
        data = json.loads(reason_data)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if "threshold" in data:
        return f"threshold {data['threshold']}"
    lower, upper = data.get("recentLowerThresholds"), data.get("recentUpperThresholds")
    if isinstance(lower, list) and isinstance(upper, list) and lower and upper:
        return f"expected band [{lower[-1]:.4g}, {upper[-1]:.4g}]"
    return ""


def arn_name(arn: str) -> tuple[str, str]:
    """``(cluster, name)`` of ``arn:...:service/<cluster>/<name>`` (or ``task/...``);
    ``("", name)`` for the old ARN form without the cluster."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) >= 3:
        return parts[1], parts[-1]
    return "", parts[-1]


class EcsTaskStateChangeEvent(EventBridgeEvent):
    """``ECS Task State Change`` (source ``aws.ecs``); a Fargate Spot interruption has
    ``stopCode`` ``SpotInterruption`` (the two-minute warning, then the stop)."""

    @property
    def cluster_arn(self) -> str:
        """ARN of the task's cluster."""
        return str(self["detail"]["clusterArn"])

    @property
    def task_arn(self) -> str:
        """ARN of the task."""
        return str(self["detail"]["taskArn"])

    @property
    def group(self) -> str:
        """``service:<name>`` for a service's task."""
        return str(self["detail"].get("group") or "")

    @property
    def stop_code(self) -> str:
        """``SpotInterruption``, ``TaskFailedToStart``, ``EssentialContainerExited``..."""
        return str(self["detail"].get("stopCode") or "")

    @property
    def stopped_reason(self) -> str:
        """``Your Spot Task was interrupted.``"""
        return str(self["detail"].get("stoppedReason") or "")

    @property
    def capacity_provider(self) -> str:
        """``FARGATE_SPOT`` or ``FARGATE``."""
        return str(self["detail"].get("capacityProviderName") or "")

    @property
    def availability_zone(self) -> str:
        return str(self["detail"].get("availabilityZone") or "")

    @property
    def at(self) -> float | None:
        """When ECS began stopping the task (else the event's time)."""
        detail = self["detail"]
        for key in ("stoppingAt", "executionStoppedAt", "stoppedAt", "updatedAt"):
            found = parse_time(detail.get(key))
            if found is not None:
                return found
        return parse_time(self.get("time"))

    def problem(self, cluster_name: str, service_name: str) -> str | None:
        """Why this is not a Spot interruption of our service (``None``: it is)."""
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        for key in ("clusterArn", "taskArn"):
            if not isinstance(detail.get(key), str) or not detail.get(key):
                return f"detail.{key} is missing"
        if self.stop_code != "SpotInterruption":
            return f"stopCode is {self.stop_code or 'absent'}, not SpotInterruption"
        cluster = self.cluster_arn.rsplit("/", 1)[-1]
        if cluster != cluster_name:
            return f"cluster {cluster} is not {cluster_name}"
        if self.group != f"service:{service_name}":
            return f"task group {self.group or 'absent'} is not service:{service_name}"
        if self.at is None:
            return "the event has no usable time"
        return None


class EcsServiceActionEvent(EventBridgeEvent):
    """``ECS Service Action`` (source ``aws.ecs``)."""

    @property
    def event_name(self) -> str:
        """``SERVICE_TASK_PLACEMENT_FAILURE``, ``SERVICE_STEADY_STATE``..."""
        return str(self["detail"]["eventName"])

    @property
    def service_arn(self) -> str:
        return str(self["resources"][0])

    @property
    def capacity_provider_arns(self) -> list[str]:
        """Capacity providers ECS could not place on (``.../capacity-provider/FARGATE_SPOT``)."""
        value = self["detail"].get("capacityProviderArns")
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def reason(self) -> str:
        """``RESOURCE:FARGATE`` (no Fargate capacity), ``RESOURCE:CPU``..."""
        return str(self["detail"].get("reason") or "")

    @property
    def at(self) -> float | None:
        return parse_time(self["detail"].get("createdAt")) or parse_time(self.get("time"))

    @property
    def on_spot(self) -> bool:
        """The placement failed on ``FARGATE_SPOT``."""
        return any(arn.rsplit("/", 1)[-1] == "FARGATE_SPOT" for arn in self.capacity_provider_arns)

    def problem(self, cluster_name: str, service_name: str) -> str | None:
        """Why this is not a placement failure of our service (``None``: it is)."""
        detail = self.get("detail")
        if not isinstance(detail, dict):
            return "detail is missing or not an object"
        if detail.get("eventName") != "SERVICE_TASK_PLACEMENT_FAILURE":
            name = str(detail.get("eventName"))[:60]
            return f"eventName {name} is not SERVICE_TASK_PLACEMENT_FAILURE"
        resources = self.get("resources")
        if not isinstance(resources, list) or not resources or not isinstance(resources[0], str):
            return "resources does not hold the service ARN"
        cluster, service = arn_name(self.service_arn)
        if service != service_name or (cluster and cluster != cluster_name):
            return f"service {cluster}/{service} is not {cluster_name}/{service_name}"
        if self.at is None:
            return "the event has no usable time"
        return None


# ---- SNS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnsMessage:
    """One ``Records[].Sns`` of an SNS invocation (SNS sends one record per invocation)."""

    message_id: str
    topic_arn: str
    subject: str
    body: str
    timestamp: float | None


def sns_messages(raw: Mapping[str, Any]) -> tuple[list[SnsMessage], list[str]]:
    """The SNS messages of an invocation, and why each unusable record was skipped.

    Example
    -------
    >>> sns_messages({"Records": []})
    ([], ['Records is empty: nothing to handle'])
    """
    records = raw.get("Records")
    if not isinstance(records, list):
        return [], ["Records is not a list"]
    if not records:
        return [], ["Records is empty: nothing to handle"]
    messages, problems = [], []
    for index, record in enumerate(records):
        sns = record.get("Sns") if isinstance(record, dict) else None
        if not isinstance(sns, dict):
            problems.append(f"Records[{index}] has no Sns object")
            continue
        body = sns.get("Message")
        if not isinstance(body, str):
            problems.append(f"Records[{index}].Sns.Message is not a string")
            continue
        messages.append(
            SnsMessage(
                message_id=str(sns.get("MessageId") or f"record-{index}"),
                topic_arn=str(sns.get("TopicArn") or ""),
                subject=str(sns.get("Subject") or ""),
                body=body,
                timestamp=parse_time(sns.get("Timestamp")),
            )
        )
    return messages, problems


@dataclass(frozen=True)
class SnsAlarm:
    """What one SNS message is: an alarm change (maybe degraded), or why it is not one."""

    change: AlarmChange | None
    problem: str = ""


def alarm_of(message: SnsMessage) -> SnsAlarm:
    """Read the alarm in ``message``. A message that is not JSON (or cut short) still
    gives a *degraded* change when its ``Subject`` names an alarm (``ALARM: "<name>" in
    ...``): the alert goes out, marked unreadable, and nothing is remediated.

    Example
    -------
    >>> message = SnsMessage("m-1", "arn:aws:sns:us-east-1:123456789012:t",
    ...                      'ALARM: "spotops-dev-cpu-high" in US East (N. Virginia)', "{", 0.0)
    >>> alarm_of(message).change.degraded
    'the SNS message is not valid JSON (cut short?)'
    """
    try:
        data = json.loads(message.body)
    except ValueError:
        return _degraded(message, "the SNS message is not valid JSON (cut short?)")
    if not isinstance(data, dict):
        return _degraded(message, "the SNS message is JSON but not an object")
    notification = AlarmNotification(data)
    problem = notification.problem()
    if problem is not None:
        return _degraded(message, problem)
    return SnsAlarm(notification.change(event_id=message.message_id))


def _degraded(message: SnsMessage, why: str) -> SnsAlarm:
    found = SUBJECT_RE.match(message.subject)
    if found is None:
        return SnsAlarm(None, f"{why}, and its subject names no alarm")
    return SnsAlarm(
        AlarmChange(
            name=found.group("name"),
            state=found.group("state"),
            old_state="",
            reason=f"The alarm's message could not be read ({why}); this is all its subject says.",
            at=message.timestamp or 0.0,
            source="sns",
            event_id=message.message_id,
            region_name=found.group("where"),
            degraded=why,
        ),
        why,
    )
