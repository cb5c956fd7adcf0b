"""What the alarm function reads and records: the AWS calls, through a gateway that gives
every failure one kind, and its own items in the safety ledger table.

Its own items in the ledger table (``ALARM#<alarm name>``: state and one item per change;
``SPOT#<svc>``: interruptions; ``CAPACITY#<svc>``: the shift to on-demand and the home
strategy; ``NOTICE#<svc>``: notices posted at most once per period) are listed with every
other key in :mod:`chalicelib.ledger.keys`, beside those of
:class:`~chalicelib.ledger.SafetyLedger` (which also holds its lock, cooldowns and hourly
budget).

Every write that makes a message at-most-once is conditional: the first writer posts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.alarms.events import AlarmChange
from chalicelib.alarms.rules import (
    AlarmHistory,
    AlarmNow,
    CapacityShift,
    Notice,
    NoticeDecision,
    ScalableTarget,
    ServiceState,
    StrategyItem,
    strategy_of,
)
from chalicelib.deployments import ServiceDeployment
from chalicelib.gateway import EcsGateway, service_deployments
from chalicelib.ledger import Key, LedgerTable, keys

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient

_DAY = 86400


# ---- AWS: the service, its scalable target, an alarm's description --------------------------


@dataclass(frozen=True)
class ServiceSnapshot:
    """The service now: what the plans read, and its deployments."""

    state: ServiceState
    deployments: list[ServiceDeployment]


class RemediationGateway(EcsGateway):
    """The calls of the alarm function, failures as :class:`AwsCallError` with a kind.

    Parameters
    ----------
    ecs, autoscaling, cloudwatch:
        boto3 clients (ECS, Application Auto Scaling, CloudWatch).
    cluster, service:
        The site's service, the only one the function changes.
    """

    def __init__(
        self,
        ecs: ECSClient,
        *,
        autoscaling: ApplicationAutoScalingClient,
        cloudwatch: CloudWatchClient,
        cluster: str,
        service: str,
    ) -> None:
        super().__init__(ecs, None, cluster=cluster, service=service)
        self._autoscaling = autoscaling
        self._cloudwatch = cloudwatch

    def snapshot(self) -> ServiceSnapshot | None:
        """The service (``None`` when it or its cluster is gone)."""
        raw = self.describe_active_service()
        return _snapshot(raw) if raw is not None else None

    def update(self, fields: Mapping[str, Any]) -> ServiceSnapshot | None:
        """``UpdateService`` of the site's service with ``fields`` (one plan's change); the
        service as ECS answered (its new PRIMARY deployment among its deployments)."""
        response = self._call(
            self._ecs,
            "update_service",
            cluster=self._cluster,
            service=self._service,
            **dict(fields),
        )
        raw = response.get("service") if isinstance(response, Mapping) else None
        return _snapshot(raw) if isinstance(raw, Mapping) else None

    def scalable_target(self) -> ScalableTarget | None:
        """The service's autoscaling range (``None``: autoscaling is off)."""
        response = self._call(
            self._autoscaling,
            "describe_scalable_targets",
            ServiceNamespace="ecs",
            ResourceIds=[f"service/{self._cluster}/{self._service}"],
            ScalableDimension="ecs:service:DesiredCount",
        )
        targets = response.get("ScalableTargets") or []
        if not targets:
            return None
        return ScalableTarget(int(targets[0]["MinCapacity"]), int(targets[0]["MaxCapacity"]))

    def alarm_now(self, name: str) -> AlarmNow | None:
        """The alarm's state now, since when, and whether its actions are enabled (on-call
        mutes an alarm by disabling them); ``None`` when CloudWatch has no such alarm."""
        alarm = self._alarm(name)
        if alarm is None:
            return None
        since = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
        return AlarmNow(
            state=str(alarm.get("StateValue", "")),
            since=since.timestamp() if isinstance(since, datetime) else None,
            actions_enabled=alarm.get("ActionsEnabled") is not False,
        )

    def alarm_description(self, name: str) -> str | None:
        """An alarm's description (EventBridge's composite alarm events carry none)."""
        alarm = self._alarm(name)
        value = alarm.get("AlarmDescription") if alarm else None
        return value if isinstance(value, str) and value else None

    def _alarm(self, name: str) -> dict[str, Any] | None:
        """The metric or composite alarm named ``name``, as DescribeAlarms returns it."""
        response = self._call(
            self._cloudwatch,
            "describe_alarms",
            AlarmNames=[name],
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
        for alarm in response.get("MetricAlarms", []) + response.get("CompositeAlarms", []):
            if alarm.get("AlarmName") == name:
                return dict(alarm)
        return None


def _snapshot(raw: Mapping[str, Any]) -> ServiceSnapshot:
    deployments = service_deployments(raw)
    primary = next((d.deployment_id for d in deployments if d.status == "PRIMARY"), "")
    desired = raw.get("desiredCount")
    return ServiceSnapshot(
        ServiceState(
            name=str(raw.get("serviceName", "")),
            desired_count=desired if isinstance(desired, int) else 0,
            task_definition=str(raw.get("taskDefinition", "")),
            strategy=strategy_of(raw.get("capacityProviderStrategy")),
            launch_type=str(raw.get("launchType") or ""),
            primary_deployment=primary,
        ),
        deployments,
    )


# ---- the ledger items of the alarm function -------------------------------------------------


@dataclass(frozen=True)
class EventRecord:
    """One state change as first recorded (a retry reads the first decision back)."""

    notice: NoticeDecision
    created: bool
    alert_posted: bool = False
    follow_up_posted: bool = False
    outcome: Mapping[str, Any] | None = None


class RemediationRecords:
    """The alarm function's items in the ledger table (see the module docstring), read and
    written through :class:`~chalicelib.ledger.LedgerTable`.

    Raises :class:`LedgerError` from every method when DynamoDB fails for a reason other
    than a lost condition.
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        *,
        history_ttl_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = LedgerTable(dynamodb, table_name)
        self._ttl = history_ttl_days * _DAY
        self._clock = clock

    # -- alarm state and flapping --

    def alarm_history(self, name: str) -> AlarmHistory:
        item = self._table.get(keys.alarm_state(name))
        if not item:
            return AlarmHistory()
        return AlarmHistory(
            state=str(item.get("state", "")),
            since=_float(item.get("since")),
            last_at=float(item.get("last_at", 0) or 0),
            entries=tuple(float(t) for t in item.get("entries", []) or []),
            last_summary_at=_float(item.get("last_summary_at")),
            held=int(item.get("held", 0) or 0),
        )

    def save_history(self, name: str, history: AlarmHistory) -> bool:
        """Store the history after a change, unless a newer change is already stored."""
        return self._table.put(
            keys.alarm_state(name),
            {
                "state": history.state,
                "since": history.since,
                "last_at": history.last_at,
                "entries": [Decimal(str(t)) for t in history.entries] or None,
                "last_summary_at": history.last_summary_at,
                "held": history.held,
                "ttl": int(self._clock()) + self._ttl,
            },
            "attribute_not_exists(pk) OR last_at < :at",
            ExpressionAttributeValues={":at": {"N": str(history.last_at)}},
        )

    def begin_event(self, change: AlarmChange, decision: NoticeDecision) -> EventRecord:
        """Record the change with its notice decision; a retry (or a twin) gets the first one."""
        key = _event(change)
        values = {
            "notice": decision.notice.value,
            "entries": decision.entries_in_window,
            "held": decision.held,
            "lasted": decision.lasted,
            "stale": decision.stale,
            "ttl": int(self._clock()) + _DAY,
        }
        if self._table.put(key, values, "attribute_not_exists(pk)"):
            return EventRecord(decision, created=True)
        item = self._table.get(key) or {}
        stored = NoticeDecision(
            Notice(str(item.get("notice", "post"))),
            int(item.get("entries", 0) or 0),
            int(item.get("held", 0) or 0),
            _float(item.get("lasted")),
            str(item["stale"]) if item.get("stale") else None,
        )
        outcome = item.get("outcome")
        return EventRecord(
            stored,
            created=False,
            alert_posted=bool(item.get("alert_posted")),
            follow_up_posted=bool(item.get("follow_up_posted")),
            outcome=json.loads(outcome) if isinstance(outcome, str) else None,
        )

    def claim(self, change: AlarmChange, flag: str) -> bool:
        """Set ``flag`` (``alert_posted``, ``follow_up_posted``) on the change's record; True
        only for the first caller, who then posts: a crash loses a message, never doubles it."""
        return self._table.update(
            _event(change),
            "SET #f = :t",
            "attribute_exists(pk) AND attribute_not_exists(#f)",
            ExpressionAttributeNames={"#f": flag},
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def set_outcome(self, change: AlarmChange, outcome: Mapping[str, Any]) -> None:
        """What remediation did for the change (a retry reports it instead of acting again)."""
        self._table.update(
            _event(change),
            "SET outcome = :o",
            ExpressionAttributeValues={":o": {"S": json.dumps(dict(outcome))[:4000]}},
        )

    # -- Spot interruptions --

    def add_interruption(self, service_key: str, task_arn: str, at: float) -> None:
        """Count one interruption (the same task twice counts once)."""
        self._table.put(
            keys.spot_interruption(service_key, task_arn.rsplit("/", 1)[-1]),
            {"at": at, "task_arn": task_arn, "ttl": int(at) + _DAY},
            "attribute_not_exists(pk)",
        )

    def interruptions_since(self, service_key: str, since: float) -> int:
        response = self._table.call(
            "query",
            KeyConditionExpression="pk = :pk",
            FilterExpression="#at >= :since",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={
                ":pk": {"S": keys.spot_partition(service_key)},
                ":since": {"N": str(since)},
            },
            ConsistentRead=True,
        )
        return int(response.get("Count", 0))

    # -- the capacity shift --

    def shift(self, service_key: str) -> CapacityShift | None:
        item = self._table.get(keys.capacity_shift(service_key))
        if not item:
            return None
        try:
            original = tuple(StrategyItem.parse(i) for i in json.loads(str(item["original"])))
        except (KeyError, ValueError, TypeError, AttributeError):
            original = ()
        return CapacityShift(
            shifted_at=float(item.get("shifted_at", 0) or 0),
            original=original,
            trigger=str(item.get("trigger", "")),
            last_trouble_at=float(item.get("last_trouble_at", 0) or 0),
        )

    def put_shift(self, service_key: str, shift: CapacityShift) -> bool:
        """Record the shift *before* it is made (a crash must not forget the way back);
        False when one is already recorded. No ``ttl``: the record of a shift in force is
        what brings the service back to Spot, and nothing that protects production may
        depend on a record that expires; it is deleted when the service returns."""
        return self._table.put(
            keys.capacity_shift(service_key),
            {
                "shifted_at": shift.shifted_at,
                "original": json.dumps([i.as_dict() for i in shift.original]),
                "trigger": shift.trigger,
                "last_trouble_at": shift.last_trouble_at,
            },
            "attribute_not_exists(pk)",
        )

    def keep_shift(self, service_key: str) -> None:
        """Take the ``ttl`` off a shift recorded with one (before issue 22 a shift expired
        after 30 days, stranding the service on on-demand)."""
        self._table.update(
            keys.capacity_shift(service_key),
            "REMOVE #t",
            "attribute_exists(#t)",  # recorded without one: nothing to do
            ExpressionAttributeNames={"#t": "ttl"},
        )

    def home(self, service_key: str) -> tuple[StrategyItem, ...] | None:
        """The last Spot strategy seen on the service (what a lost shift returns to)."""
        item = self._table.get(keys.capacity_home(service_key))
        if not item:
            return None
        try:
            return tuple(StrategyItem.parse(i) for i in json.loads(str(item["strategy"])))
        except (KeyError, ValueError, TypeError, AttributeError):
            return None

    def remember_home(self, service_key: str, strategy: tuple[StrategyItem, ...]) -> None:
        """Keep the service's Spot strategy (never expires; replaced when it changes)."""
        self._table.put(
            keys.capacity_home(service_key),
            {
                "strategy": json.dumps([i.as_dict() for i in strategy]),
                "at": int(self._clock()),
            },
        )

    def touch_shift(self, service_key: str, at: float) -> None:
        """Spot trouble again while shifted: the quiet period starts over."""
        # Not shifted any more, or a later trouble already recorded: nothing to do.
        self._table.update(
            keys.capacity_shift(service_key),
            "SET last_trouble_at = :at",
            "attribute_exists(pk) AND last_trouble_at < :at",
            ExpressionAttributeValues={":at": {"N": str(at)}},
        )

    def delete_shift(self, service_key: str, shifted_at: float) -> None:
        """Forget the shift (back on Spot), unless a newer shift replaced it."""
        self._table.delete(
            keys.capacity_shift(service_key),
            "shifted_at = :at",
            ExpressionAttributeValues={":at": {"N": str(shifted_at)}},
        )

    # -- notices posted at most once per period --

    def notice_once(self, service_key: str, notice: str, seconds: int) -> bool:
        """True for the first caller in ``seconds`` (who then posts)."""
        now = int(self._clock())
        return self._table.put(
            keys.notice(service_key, notice),
            {"until": now + max(1, seconds), "ttl": now + max(1, seconds) + _DAY},
            "attribute_not_exists(pk) OR #u < :now",
            ExpressionAttributeNames={"#u": "until"},
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )


def _event(change: AlarmChange) -> Key:
    return keys.alarm_event(change.name, change.state, int(change.at))


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
