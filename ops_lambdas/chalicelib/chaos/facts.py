"""What the chaos guards decide from, read from AWS; and the chaos records in the ledger.

Shared by the scheduled function (:mod:`chalicelib.chaos.flow`) and ``spotops chaos --dry-run``,
which builds it with its own boto3 clients: so it imports no Powertools and no Slack, only
botocore and the pure :mod:`chalicelib.chaos.guards`.

Every read that a guard needs comes back as a :class:`~chalicelib.chaos.guards.Reading`: a
failed read (access denied, a target group that is gone, throttling) is a reason, and the
guard that needed it refuses. Reads without which there is nothing to decide about (the
service list, its tasks) raise :class:`ChaosReadError`.

Chaos records live in the safety ledger table under their own key (``CHAOS#<svc>``: the last
kill and one item per experiment; see :mod:`chalicelib.ledger.keys`), read and written
through :class:`~chalicelib.ledger.LedgerTable`: a ledger failure raises
:class:`~chalicelib.errors.LedgerError`, like every other ledger failure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.chaos.guards import (
    KIND_CHAOS,
    ChaosFacts,
    ChaosPolicy,
    KillRecord,
    KillSwitch,
    Reading,
    ServiceFacts,
    TargetState,
    latest_kill,
    latest_spot_interruption,
    parse_opt_in,
    service_facts,
)
from chalicelib.errors import LedgerError, OpsError
from chalicelib.ledger import LedgerTable, Lock, keys

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

    from chalicelib.ledger import SafetyLedger
    from chalicelib.slo import Budget, BudgetReader, Objective

_DESCRIBE_SERVICES_BATCH = 10  # DescribeServices takes at most 10 services
_DESCRIBE_TASKS_BATCH = 100  # DescribeTasks takes at most 100 tasks
_YEAR = 366 * 86400


class ChaosReadError(OpsError):
    """A read without which no decision can be made (the services, a service's tasks)."""


def _code(exc: Exception) -> str:
    return error_code(exc) or type(exc).__name__


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# ---- the chaos records in the ledger table ------------------------------------------------


class ChaosRecords:
    """The chaos items of the safety ledger table (``CHAOS#<svc>``).

    Parameters
    ----------
    dynamodb:
        A boto3 DynamoDB client.
    table_name:
        The ledger table (``LEDGER_TABLE_NAME``).
    history_ttl_days:
        How long records are kept.

    Raises
    ------
    LedgerError
        From every method when DynamoDB fails for a reason other than a lost condition.
    """

    def __init__(
        self, dynamodb: DynamoDBClient, table_name: str, history_ttl_days: int = 30
    ) -> None:
        self._table = LedgerTable(dynamodb, table_name)
        self._ttl = history_ttl_days * 86400

    def last_kill(self, service_key: str) -> KillRecord | None:
        """The newest kill or Spot interruption on record, or ``None``."""
        item = self._table.get(keys.chaos_last_kill(service_key))
        if not item:
            return None
        return KillRecord(
            at=datetime.fromtimestamp(int(item["at"]), tz=UTC),
            kind=str(item.get("kind", KIND_CHAOS)),
            task_arn=str(item.get("task_arn", "")),
            run_id=str(item.get("run_id", "")),
        )

    def record_kill(
        self, service_key: str, record: KillRecord, *, unless_since: datetime | None = None
    ) -> bool:
        """Remember ``record`` unless the one on record is newer, or (``unless_since``) no
        older than that: a twin run that decided at the same time then loses. True when
        written."""
        at = _epoch(record.at)
        limit = _epoch(unless_since) if unless_since is not None else at
        return self._table.put(
            keys.chaos_last_kill(service_key),
            self._kill_fields(record),
            "attribute_not_exists(pk) OR #at < :limit",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={":limit": {"N": str(limit)}},
        )

    def forget_kill(self, service_key: str, run_id: str, previous: KillRecord | None) -> None:
        """Undo :meth:`record_kill` of ``run_id`` when its task was not stopped after all:
        put ``previous`` back (or delete), only if the record is still that run's."""
        key = keys.chaos_last_kill(service_key)
        still_this_run = {
            "ExpressionAttributeValues": {":run": {"S": run_id}},
        }
        if previous is None:
            self._table.delete(key, "run_id = :run", **still_this_run)
        else:
            self._table.put(key, self._kill_fields(previous), "run_id = :run", **still_this_run)

    def _kill_fields(self, record: KillRecord) -> dict[str, Any]:
        at = _epoch(record.at)
        return {
            "at": at,
            "kind": record.kind,
            "task_arn": record.task_arn or "-",
            "run_id": record.run_id or "-",
            # Kept as long as the longest minimum gap a tag may set (a year), at least.
            "ttl": at + max(self._ttl, _YEAR),
        }

    def put_run(
        self, service_key: str, run_id: str, started: datetime, fields: Mapping[str, Any]
    ) -> None:
        """Write (or overwrite) the record of one experiment: numbers as numbers, every
        other value as text (at most 1000 characters)."""
        stamp = started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        values: dict[str, Any] = {"run_id": run_id, "ttl": _epoch(started) + self._ttl}
        for name, value in fields.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                values[name] = str(value)[:1000]
            else:
                values[name] = value
        self._table.put(keys.chaos_run(service_key, stamp, run_id), values)


# ---- reading the facts --------------------------------------------------------------------


class ChaosReader:
    """Reads the facts the guards need, for the services of one cluster.

    Parameters
    ----------
    ecs, elbv2, cloudwatch:
        boto3 clients.
    ledger:
        The safety ledger (its :meth:`~chalicelib.ledger.SafetyLedger.get_lock`).
    records:
        The chaos records (:class:`ChaosRecords`).
    cluster:
        The cluster whose services may opt in.
    alarm_prefix:
        ``<app>-<stage>-``: the alarms whose state the ``alarms`` guard reads.
    budget_reader, objectives:
        Reads the objectives' error budgets (:class:`~chalicelib.slo.BudgetReader`) for
        the ``budget`` guard; ``objectives`` empty: none is read (the guard refuses unless
        it is off).
    """

    def __init__(
        self,
        *,
        ecs: ECSClient,
        elbv2: ElasticLoadBalancingv2Client,
        cloudwatch: CloudWatchClient,
        ledger: SafetyLedger,
        records: ChaosRecords,
        cluster: str,
        alarm_prefix: str,
        budget_reader: BudgetReader | None = None,
        objectives: Sequence[Objective] = (),
    ) -> None:
        self.ecs = ecs
        self._elbv2 = elbv2
        self._cloudwatch = cloudwatch
        self._ledger = ledger
        self.records = records
        self.cluster = cluster
        self._alarm_prefix = alarm_prefix
        self._budget_reader = budget_reader
        self._objectives = tuple(objectives)

    # -- services and tasks --

    def services(self) -> list[dict[str, Any]]:
        """Every ACTIVE service of the cluster, described with its tags.

        Raises
        ------
        ChaosReadError
            ECS refused or failed.
        """
        try:
            arns: list[str] = []
            for page in self.ecs.get_paginator("list_services").paginate(cluster=self.cluster):
                arns.extend(page.get("serviceArns", []))
            return [
                s
                for batch in _batches(arns, _DESCRIBE_SERVICES_BATCH)
                for s in self._describe(batch)
            ]
        except (ClientError, BotoCoreError) as exc:
            raise ChaosReadError(
                f"cannot list the services of {self.cluster} ({_code(exc)})"
            ) from exc

    def service(self, name: str) -> dict[str, Any] | None:
        """One service (``None`` when it is gone).

        Raises
        ------
        ChaosReadError
            ECS refused or failed.
        """
        try:
            found = self._describe([name])
        except (ClientError, BotoCoreError) as exc:
            raise ChaosReadError(f"cannot describe service {name} ({_code(exc)})") from exc
        return found[0] if found else None

    def _describe(self, names: Sequence[str]) -> list[dict[str, Any]]:
        if not names:
            return []
        response = self.ecs.describe_services(
            cluster=self.cluster, services=list(names), include=["TAGS"]
        )
        return [dict(s) for s in response.get("services", []) if s.get("status") == "ACTIVE"]

    def tasks(self, service_name: str, *, stopped: bool = True) -> list[dict[str, Any]]:
        """The service's tasks meant to run and, with ``stopped``, those recently stopped
        (ECS shows a stopped task for at least an hour: how Spot interruptions are seen).

        Raises
        ------
        ChaosReadError
            ECS refused or failed.
        """
        statuses: tuple[Literal["RUNNING", "STOPPED"], ...] = (
            ("RUNNING", "STOPPED") if stopped else ("RUNNING",)
        )
        try:
            arns: list[str] = []
            for status in statuses:
                pages = self.ecs.get_paginator("list_tasks").paginate(
                    cluster=self.cluster, serviceName=service_name, desiredStatus=status
                )
                for page in pages:
                    arns.extend(page.get("taskArns", []))
            return list(self._describe_tasks(arns))
        except (ClientError, BotoCoreError) as exc:
            raise ChaosReadError(
                f"cannot list the tasks of {self.cluster}/{service_name} ({_code(exc)})"
            ) from exc

    def _describe_tasks(self, arns: Sequence[str]) -> Iterator[dict[str, Any]]:
        for batch in _batches(list(dict.fromkeys(arns)), _DESCRIBE_TASKS_BATCH):
            response = self.ecs.describe_tasks(cluster=self.cluster, tasks=list(batch))
            yield from (dict(t) for t in response.get("tasks", []))

    def task(self, arn: str) -> dict[str, Any] | None:
        """One task as ECS sees it now (``None`` when ECS no longer knows it).

        Raises
        ------
        ChaosReadError
            ECS refused or failed.
        """
        try:
            found = list(self._describe_tasks([arn]))
        except (ClientError, BotoCoreError) as exc:
            raise ChaosReadError(f"cannot describe task {arn} ({_code(exc)})") from exc
        return found[0] if found else None

    def service_facts(self, raw: Mapping[str, Any], *, stopped: bool = True) -> ServiceFacts:
        """The service with its tasks (see :meth:`tasks`)."""
        return service_facts(raw, self.tasks(str(raw.get("serviceName", "")), stopped=stopped))

    # -- the guards' other facts --

    def targets(self, service: ServiceFacts) -> Reading[tuple[TargetState, ...]]:
        """Health of every target in the service's target groups (the alternate one of a
        CANARY/LINEAR service included: see :func:`~chalicelib.chaos.guards.target_groups`)."""
        states: list[TargetState] = []
        for arn in service.target_group_arns:
            try:
                response = self._elbv2.describe_target_health(TargetGroupArn=arn)
            except (ClientError, BotoCoreError) as exc:
                name = arn.split(":", 5)[-1]
                return Reading.failed(f"target health of {name} unreadable ({_code(exc)})")
            for description in response.get("TargetHealthDescriptions", []):
                health = description.get("TargetHealth", {})
                states.append(
                    TargetState(
                        target_group_arn=arn,
                        target_id=str(description.get("Target", {}).get("Id", "?")),
                        state=str(health.get("State", "unknown")),
                        reason=str(health.get("Reason", "")),
                    )
                )
        return Reading(tuple(states))

    def alarms(self) -> Reading[tuple[str, ...]]:
        """Names of the stage's alarms (metric and composite) in ALARM."""
        names: list[str] = []
        try:
            pages = self._cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=self._alarm_prefix,
                StateValue="ALARM",
                AlarmTypes=["MetricAlarm", "CompositeAlarm"],
            )
            for page in pages:
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    # The filter is asked of CloudWatch and checked again here: moto (5.2.5)
                    # ignores StateValue when AlarmNamePrefix is given, and a guard must not
                    # refuse on an alarm that is OK.
                    if alarm.get("StateValue") == "ALARM":
                        names.append(str(alarm.get("AlarmName", "?")))
        except (ClientError, BotoCoreError) as exc:
            return Reading.failed(f"alarm states unreadable ({_code(exc)})")
        return Reading(tuple(sorted(names)))

    def budget(self, now: datetime) -> Reading[tuple[Budget, ...]]:
        """Every objective's error budget at ``now`` (an objective the reader could not read
        comes back unknown, with why: the guard refuses on it)."""
        if self._budget_reader is None or not self._objectives:
            return Reading.failed("no service level objective to read")
        return Reading(self._budget_reader.read(self._objectives, now))

    @property
    def slo_alarm_prefix(self) -> str:
        """``<app>-<stage>-slo-``: every burn-rate alert of the stage is named so."""
        return f"{self._alarm_prefix}slo-"

    def lock(self, service_key: str) -> Reading[Lock]:
        """The service's live lock (``value`` None: free): what
        :func:`~chalicelib.chaos.guards.guard_lock` reads."""
        try:
            return Reading(self._ledger.read_lock(service_key))
        except OpsError as exc:
            return Reading.failed(f"ledger lock unreadable ({exc})")

    def last_kill(self, service: ServiceFacts) -> tuple[Reading[KillRecord], KillRecord | None]:
        """The newest kill or Spot interruption (on record, or seen among stopped tasks), and
        the record as stored (what a new kill would replace)."""
        observed = latest_spot_interruption(service.stopped_tasks)
        try:
            stored = self.records.last_kill(service.key)
        except LedgerError as exc:
            return Reading.failed(str(exc)), None
        return Reading(latest_kill(stored, observed)), stored

    def facts(
        self,
        service: ServiceFacts,
        *,
        now: datetime,
        policy: ChaosPolicy,
        kill_switch: Reading[KillSwitch],
        alarms: Reading[tuple[str, ...]],
        budget: Reading[tuple[Budget, ...]],
        last_kill: Reading[KillRecord] | None = None,
    ) -> ChaosFacts:
        """Everything the guards decide from (the kill switch, ``alarms`` and ``budget`` are
        read by the caller: the chaos function reads them again for every service, just
        before its decision; ``last_kill`` is read here unless given)."""
        if last_kill is None:
            last_kill, _ = self.last_kill(service)
        return ChaosFacts(
            now=now,
            service=service,
            opt_in=parse_opt_in(service.tags, policy),
            targets=self.targets(service),
            alarms=alarms,
            kill_switch=kill_switch,
            lock=self.lock(service.key),
            last_kill=last_kill,
            budget=budget,
            slo_alarm_prefix=self.slo_alarm_prefix,
        )


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
