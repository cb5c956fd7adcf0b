"""``spotops timeline``: one time-ordered view of what happened to a stage, each line naming
where it was read.

Sources (:data:`SOURCES`): the ops toolkit's ledger (pushes and what the redeploy job did
with them, the latest deployment, the freeze, the service history of every job, the alarm
function's notices and remediation outcomes, chaos runs, Spot interruptions, capacity
shifts), ECS's service events, CloudWatch's alarm history (state changes of the stage's
alarms) and the history of the switches' SSM parameters. The ledger items are parsed by the
functions' own record types (:mod:`spotops.lambda_code`), so the timeline reads them as the
jobs wrote them.

The readers do the I/O; :func:`merge` (ordering, the window, duplicates) is pure. A source
that cannot be read is reported as a :class:`Gap`, never a crash: an incident is exactly
when some of the account may be out of reach.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)
from spotops.ops.switches import SWITCHES, shown_value, switch_parameter_name

# isort: split
from chalicelib.alarms.rules import Outcome
from chalicelib.aws import error_code
from chalicelib.errors import LedgerError
from chalicelib.ledger import DeploymentRecord, Freeze, HistoryEntry, ImageRecord, LedgerTable
from chalicelib.ledger.table import from_item

if TYPE_CHECKING:
    from spotops.aws import ClientFactory

LEDGER, ECS, CLOUDWATCH, SSM = "ledger", "ecs", "cloudwatch", "ssm"
SOURCES = (LEDGER, ECS, CLOUDWATCH, SSM)

# Ledger items that are the memory of a decision rather than something that happened
# (locks, cooldowns, budgets, the hold-back mark, once-only claims, the alarm's summary
# state, the last kill): each repeats an event the timeline already shows, or none.
_SKIPPED_PREFIXES = (
    "LOCK#",
    "COOLDOWN#",
    "BUDGET#",
    "HOLD#",
    "FOREIGN#",
    "SCAN#",
    "NOTICE#",
)


@dataclass(frozen=True)
class Event:
    """One thing that happened, as one source recorded it.

    ``facts`` are the machine-readable parts (the alarm's name and state, a push's digest
    and outcome...): the incident report reads them, ``--json`` prints them beside ``at``,
    ``source``, ``kind`` and ``text``.
    """

    at: datetime
    source: str
    kind: str
    text: str
    facts: tuple[tuple[str, str], ...] = ()

    def fact(self, name: str) -> str:
        return dict(self.facts).get(name, "")

    def as_json(self) -> dict[str, Any]:
        return {
            "at": stamp(self.at),
            "source": self.source,
            "kind": self.kind,
            "text": self.text,
            **dict(self.facts),
        }


@dataclass(frozen=True)
class Gap:
    """A source that could not be read, and why."""

    source: str
    reason: str

    @property
    def line(self) -> str:
        return f"{self.source}: not read: {self.reason}"


@dataclass(frozen=True)
class Timeline:
    events: tuple[Event, ...]
    gaps: tuple[Gap, ...] = ()


def stamp(moment: datetime) -> str:
    """``2026-12-07T13:02:05Z``: every time the timeline and the report print."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _facts(**values: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in values.items() if v not in (None, ""))


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(float(value), tz=UTC)


def merge(
    events: Iterable[Event],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Event, ...]:
    """The events in ``[since, until]``, ordered by time, then source, then text (so the
    same data prints the same lines in the same order), each once: a twin delivery that
    recorded the same thing twice shows once."""
    kept = {
        e for e in events if (since is None or e.at >= since) and (until is None or e.at <= until)
    }
    return tuple(sorted(kept, key=lambda e: (e.at, e.source, e.text, e.kind, e.facts)))


# ---- the ledger ------------------------------------------------------------------------------


def ledger_events(items: Iterable[Mapping[str, Any]]) -> list[Event]:
    """Events of plain ledger items (``pk``, ``sk`` and attributes), each parsed by its
    record type; an item of no known kind, or one too damaged to date, gives none."""
    events: list[Event] = []
    for item in items:
        pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
        if pk.startswith(_SKIPPED_PREFIXES):
            continue
        try:
            events.extend(_ledger_item(pk, sk, item))
        except (ValueError, TypeError, OverflowError):
            continue  # an item no writer of today's code makes: nothing to date it by
    return events


def _ledger_item(pk: str, sk: str, item: Mapping[str, Any]) -> list[Event]:
    kind, _, rest = pk.partition("#")
    if kind == "HISTORY":
        return [_history(HistoryEntry.from_item(item))]
    if kind == "IMAGE":
        image = ImageRecord.from_item(item)
        return [_image(image)] if image is not None and image.at else []
    if kind == "DEPLOYMENT":
        record = DeploymentRecord.from_item(item)
        return [_deployment(record)] if record is not None and record.updated_at else []
    if kind == "FREEZE":
        freeze = Freeze.from_item(item)
        return _freeze(freeze) if freeze is not None else []
    if kind == "ALARM" and sk.startswith("EVENT#"):
        return [_alarm_notice(rest, sk, item)]
    if kind == "SPOT":
        task = str(item.get("task_arn", sk)).rsplit("/", 1)[-1]
        return [
            Event(
                _epoch(item["at"]),
                LEDGER,
                "spot-interruption",
                f"Spot interruption of task {task}",
                _facts(task=task),
            )
        ]
    if kind == "CAPACITY" and sk == "SHIFT":
        trigger = str(item.get("trigger", ""))
        return [
            Event(
                _epoch(item["shifted_at"]),
                LEDGER,
                "capacity-shift",
                f"capacity shifted off Spot (trigger: {trigger or '-'})",
                _facts(trigger=trigger),
            )
        ]
    if kind == "CHAOS" and sk.startswith("RUN#"):
        return _chaos_run(sk, item)
    return []


def _history(entry: HistoryEntry) -> Event:
    at = (
        _epoch(entry.moment)
        if entry.moment is not None
        else datetime.fromisoformat(entry.at.replace("Z", "+00:00"))
    )
    text = f"{entry.outcome}: {entry.detail}" if entry.detail else entry.outcome
    return Event(at, LEDGER, entry.action, text, _facts(action=entry.action, outcome=entry.outcome))


def _image(image: ImageRecord) -> Event:
    pushed = f" (pushed {stamp(_epoch(image.event_at))})" if image.event_at else ""
    detail = f": {image.detail}" if image.detail else ""
    return Event(
        _epoch(image.at),
        LEDGER,
        "push",
        f"{image.tag or 'untagged'} ({image.digest[:19]}) {image.outcome}{pushed}{detail}",
        _facts(digest=image.digest, tag=image.tag, outcome=image.outcome),
    )


def _deployment(record: DeploymentRecord) -> Event:
    reason = f": {record.reason}" if record.reason and record.reason != "-" else ""
    return Event(
        _epoch(record.updated_at),
        LEDGER,
        "deployment",
        f"{record.status.value} {record.label} {record.deployment_id}{reason}",
        _facts(
            deployment_id=record.deployment_id,
            status=record.status.value,
            digest=record.digest,
            tag=record.tag,
        ),
    )


def _freeze(freeze: Freeze) -> list[Event]:
    events = []
    if freeze.since:
        deployment = f" (deployment {freeze.deployment_id})" if freeze.deployment_id else ""
        events.append(
            Event(
                _epoch(freeze.since),
                LEDGER,
                "freeze",
                f"pushes frozen by {freeze.by or '-'}{deployment}: {freeze.reason or '-'}",
                _facts(by=freeze.by, deployment_id=freeze.deployment_id),
            )
        )
    if freeze.unfrozen_at:
        events.append(
            Event(
                _epoch(freeze.unfrozen_at),
                LEDGER,
                "unfreeze",
                f"pushes unfrozen by {freeze.unfrozen_by or '-'}",
                _facts(by=freeze.unfrozen_by),
            )
        )
    return events


def _alarm_notice(name: str, sk: str, item: Mapping[str, Any]) -> Event:
    """``ALARM#<name>`` / ``EVENT#<state>#<epoch>``: the alarm function's record of one
    change (its own time), the notice it decided and what remediation did."""
    _, state, at = sk.split("#", 2)
    notice = str(item.get("notice", ""))
    text = f"{name} {state}: notice {notice or '-'}"
    facts: dict[str, Any] = {"alarm": name, "state": state, "notice": notice}
    raw = item.get("outcome")
    if isinstance(raw, str):
        try:
            outcome = Outcome.from_dict(json.loads(raw))
        except (ValueError, AttributeError):
            outcome = None
        if outcome is not None:
            text += f"; remediation {outcome.status.value}: {outcome.summary or outcome.reason}"
            facts["remediation"] = outcome.status.value
    if item.get("alert_posted"):
        facts["alert_posted"] = "true"
    return Event(_epoch(int(at)), LEDGER, "alarm", text, _facts(**facts))


def _chaos_run(sk: str, item: Mapping[str, Any]) -> list[Event]:
    started = datetime.fromisoformat(sk.split("#")[1].replace("Z", "+00:00"))
    run = str(item.get("run_id", ""))
    status = str(item.get("status", ""))
    task = str(item.get("task_arn", "")).rsplit("/", 1)[-1]
    reason = str(item.get("reason", ""))
    killed = item.get("killed_at")
    at = _epoch(killed) if isinstance(killed, int | float) else started
    what = f"run {run} {status}" + (f" task {task}" if task and task != "-" else "")
    events = [
        Event(
            at,
            LEDGER,
            "chaos",
            what + (f": {reason}" if reason else ""),
            _facts(run=run, status=status),
        )
    ]
    recovery = item.get("recovery_seconds")
    if isinstance(recovery, int | float) and isinstance(killed, int | float):
        events.append(
            Event(
                _epoch(float(killed) + float(recovery)),
                LEDGER,
                "chaos-recovered",
                f"run {run} recovered in {float(recovery):.0f}s",
                _facts(run=run),
            )
        )
    return events


# ---- AWS ---------------------------------------------------------------------------------


def ecs_events(service: Mapping[str, Any]) -> list[Event]:
    """``describe_services`` ``events[]`` of one service (ECS keeps the last 100)."""
    return [
        Event(e["createdAt"].astimezone(UTC), ECS, "service-event", str(e.get("message", "")))
        for e in service.get("events", []) or []
        if isinstance(e.get("createdAt"), datetime)
    ]


def alarm_history_events(items: Iterable[Mapping[str, Any]], prefix: str) -> list[Event]:
    """``describe_alarm_history`` ``StateUpdate`` items of the alarms named ``prefix...``:
    the state each went to (``HistoryData``'s ``newState``) and CloudWatch's reason."""
    events = []
    for item in items:
        name = str(item.get("AlarmName", ""))
        if item.get("HistoryItemType") != "StateUpdate" or not name.startswith(prefix):
            continue
        try:
            data = json.loads(str(item.get("HistoryData") or "{}"))
            old = str(data["oldState"]["stateValue"])
            new = str(data["newState"]["stateValue"])
            reason = str(data["newState"].get("stateReason", ""))
        except (ValueError, KeyError, TypeError):
            continue  # not the documented shape: the summary alone cannot say the state
        text = f"{name} {old} -> {new}" + (f": {reason}" if reason else "")
        events.append(
            Event(
                item["Timestamp"].astimezone(UTC),
                CLOUDWATCH,
                "alarm",
                text,
                _facts(alarm=name, state=new),
            )
        )
    return events


def switch_events(switch: str, versions: Iterable[Mapping[str, Any]]) -> list[Event]:
    """``get_parameter_history`` of one switch: each version is the switch set to a value."""
    events = []
    for version in versions:
        value = shown_value(switch, str(version.get("Value", "")))
        who = str(version.get("LastModifiedUser", "") or "")
        by = f" by {who}" if who and who != "N/A" else ""
        events.append(
            Event(
                version["LastModifiedDate"].astimezone(UTC),
                SSM,
                "switch",
                f"{switch} set to {value} (version {version.get('Version', '?')}{by})",
                _facts(switch=switch, value=value),
            )
        )
    return events


def _why(exc: Exception) -> str:
    """One line: the gap is one line of output, and an emulator's 500 brings a page of HTML."""
    code = error_code(exc) or type(exc).__name__
    # botocore puts the response body after the operation's name: keep the sentence only.
    text = " ".join(str(exc).split(": <", 1)[0].split())
    return f"{code}: {text[:200]}"


@dataclass
class StageSources:
    """Where a stage's events are: the ledger table, the service, the alarms' name prefix,
    the switches' parameters. Empty when not deployed (the source says so)."""

    app: str
    stage: str
    ledger_table: str = ""
    cluster: str = ""
    service: str = ""
    missing: dict[str, str] = field(default_factory=dict)  # source -> why it is absent

    @property
    def alarm_prefix(self) -> str:
        return f"{self.app}-{self.stage}-"


def stage_sources(
    app: str,
    stage: str,
    *,
    ops: tuple[str, Mapping[str, str] | None],
    site: tuple[str, Mapping[str, str] | None],
) -> StageSources:
    """Where the stage's events are, from its stacks' outputs (``(stack name, outputs or
    None when the stack does not exist)``); a source whose stack is missing is absent."""
    where = StageSources(app, stage)
    ops_name, ops_outputs = ops
    site_name, site_outputs = site
    if ops_outputs is None or not ops_outputs.get("LedgerTableName"):
        where.missing[LEDGER] = f"no ledger table (stack {ops_name} not deployed)"
    else:
        where.ledger_table = ops_outputs["LedgerTableName"]
    if site_outputs is None or not site_outputs.get("ServiceName"):
        where.missing[ECS] = f"no service (stack {site_name} not deployed)"
    else:
        where.cluster = site_outputs.get("ClusterName", "")
        where.service = site_outputs["ServiceName"]
    return where


class TimelineReader:
    """Read every source of a stage; each source's failure becomes one :class:`Gap`."""

    def __init__(self, client: ClientFactory) -> None:
        self._client = client

    def read(self, where: StageSources, since: datetime) -> Timeline:
        events: list[Event] = []
        gaps: list[Gap] = []
        readers: Sequence[tuple[str, Callable[[], list[Event]]]] = (
            (LEDGER, lambda: self.ledger(where.ledger_table)),
            (ECS, lambda: self.ecs(where.cluster, where.service)),
            (CLOUDWATCH, lambda: self.alarms(where.alarm_prefix, since)),
            (SSM, lambda: self.switches(where.app, where.stage)),
        )
        for source, read in readers:
            if source in where.missing:
                gaps.append(Gap(source, where.missing[source]))
                continue
            try:
                events.extend(read())
            except (ClientError, BotoCoreError, LedgerError, NotImplementedError) as exc:
                gaps.append(Gap(source, _why(exc)))
        return Timeline(merge(events, since=since), tuple(gaps))

    def ledger(self, table: str) -> list[Event]:
        ledger = LedgerTable(self._client("dynamodb"), table)
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = ledger.call("scan", **({"ExclusiveStartKey": start} if start else {}))
            items.extend(from_item(i) for i in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return ledger_events(items)

    def ecs(self, cluster: str, service: str) -> list[Event]:
        found = self._client("ecs").describe_services(cluster=cluster, services=[service])
        return [e for s in found.get("services", []) for e in ecs_events(s)]

    def alarms(self, prefix: str, since: datetime) -> list[Event]:
        paginator = self._client("cloudwatch").get_paginator("describe_alarm_history")
        items: list[Mapping[str, Any]] = []
        for page in paginator.paginate(HistoryItemType="StateUpdate", StartDate=since):
            items.extend(page.get("AlarmHistoryItems", []))
        return alarm_history_events(items, prefix)

    def switches(self, app: str, stage: str) -> list[Event]:
        ssm = self._client("ssm")
        events = []
        for switch in SWITCHES:
            name = switch_parameter_name(app, stage, switch)
            try:
                pages = ssm.get_paginator("get_parameter_history").paginate(Name=name)
                versions = [v for page in pages for v in page.get("Parameters", [])]
            except ClientError as exc:
                if error_code(exc) == "ParameterNotFound":
                    continue  # not created: nothing was ever flipped
                raise
            events.extend(switch_events(switch, versions))
        return events

    def alarm_descriptions(self, prefix: str) -> dict[str, str]:
        """Each of the stage's alarms and its description (where its runbook link is)."""
        paginator = self._client("cloudwatch").get_paginator("describe_alarms")
        return {
            str(a["AlarmName"]): str(a.get("AlarmDescription", ""))
            for page in paginator.paginate(AlarmNamePrefix=prefix)
            for a in page.get("MetricAlarms", [])
        }


def render_lines(timeline: Timeline) -> list[str]:
    """``time  source  kind  what``, columns aligned."""
    if not timeline.events:
        return []
    source_width = max(len(e.source) for e in timeline.events)
    kind_width = max(len(e.kind) for e in timeline.events)
    return [
        f"{stamp(e.at)}  {e.source:<{source_width}}  {e.kind:<{kind_width}}  {e.text}"
        for e in timeline.events
    ]
