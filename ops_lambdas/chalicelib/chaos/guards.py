"""The chaos decisions: pure functions over frozen facts, each returning a typed verdict.

Nothing here calls AWS or reads the clock, and the only randomness comes from a seed the
caller names (:func:`draw`): the flow (:mod:`chalicelib.chaos.flow`) and ``spotops chaos
--dry-run`` gather the facts (:mod:`chalicelib.chaos.facts`), pass the time and the draw in,
and act on the :class:`Decision`. So every guard can be tested alone, and the command line
prints the same verdicts the scheduled function acts on. This module imports only the
standard library.

The guards, in the order they are reported (:data:`GUARDS`):

* ``opt-in``: the service carries ``spotops:chaos=on`` (its optional limits well formed);
* ``window``: now is inside the window: one of its weekdays, between its hours, in its
  time zone;
* ``freeze``: today (in that time zone) is not a freeze date;
* ``min-gap``: the last kill, or Spot interruption, of the service is at least the minimum
  gap ago;
* ``probability``: this run's draw is below the per-run probability derived from the mean
  time between kills;
* ``kill-switch``: the kill switch is off;
* ``lock``: no live lock of redeploy, remediation or another chaos run on the service;
* ``running``: running tasks = desired count (and more than zero);
* ``deployment``: no deployment in progress (one PRIMARY deployment, rollout completed);
* ``targets``: every target of the service's target groups is healthy, as many as desired;
* ``alarms``: no alarm of the stage is in ALARM;
* ``budget``: no burn-rate alert (``<app>-<stage>-slo-...``) is in ALARM and every service
  level objective has at least ``min_budget_percent`` of its error budget left (read from
  CloudWatch: :mod:`chalicelib.slo`); exactly that much left is enough. A budget that
  cannot be read refuses. ``min_budget_percent`` 0 turns this guard off (a stage with no
  traffic to measure, such as the local emulator);
* ``headroom``: running tasks exceed what ``minimumHealthyPercent`` of desired needs (and
  one), so the kill never takes the service below it.

A guard that cannot be evaluated (its fact could not be read) refuses: "do not kill".

The flow reads the facts of each service just before its decision (the kill switch, the
leash and the alarms included: an earlier service's recovery watch may have taken minutes),
and right before a kill checks one more thing, :func:`guard_time_left`: that the invocation
has time to watch the whole recovery.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.patterns import CHAOS_TICK_MINUTES

if TYPE_CHECKING:  # record types only: nothing of the ledger or the reader runs here
    from chalicelib.ledger.records import Lock
    from chalicelib.slo import Budget

T = TypeVar("T")

TAG_OPT_IN = "spotops:chaos"
TAG_MTBK_HOURS = "spotops:chaos-mtbk-hours"
TAG_MIN_GAP_HOURS = "spotops:chaos-min-gap-hours"
SPOT_STOP_CODE = "SpotInterruption"
KIND_CHAOS = "chaos"
KIND_SPOT = "spot"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GUARDS = (
    "opt-in",
    "window",
    "freeze",
    "min-gap",
    "probability",
    "kill-switch",
    "lock",
    "running",
    "deployment",
    "targets",
    "alarms",
    "budget",
    "headroom",
)
_ON = frozenset({"on", "true", "yes", "1", "enabled"})
_OFF = frozenset({"off", "false", "no", "0", "disabled"})
_ECHO_LIMIT = 40  # a typo in a tag is echoed back, a pasted essay is not
MAX_HOURS = 24 * 366  # a mean or gap longer than a year is a typo
TICK_MINUTES = CHAOS_TICK_MINUTES  # the schedule app.py builds (patterns.py)


# ---- readings: a fact, or why it could not be read ----------------------------------------


@dataclass(frozen=True)
class Reading(Generic[T]):
    """A fact as read from AWS: ``value``, or ``error`` saying why it could not be read.

    A guard whose reading failed refuses with "cannot evaluate: <error>".
    """

    value: T | None = None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Reading[T]:
        return cls(None, error)

    @property
    def ok(self) -> bool:
        return self.error is None


# ---- verdicts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One guard's answer: ``passed`` (kill allowed as far as it is concerned) and why."""

    guard: str
    passed: bool
    reason: str

    def line(self) -> str:
        """``PASS window: ...`` / ``FAIL lock: ...``, as logs and the command line show it."""
        return f"{'PASS' if self.passed else 'FAIL'} {self.guard}: {self.reason}"


# The suffixes of the metric alarms a burn-rate alert (a composite alarm) is built from.
BURN_WINDOW_SUFFIXES = ("-long", "-short")


def _unreadable(guard: str, error: str | None) -> Verdict:
    return Verdict(guard, False, f"cannot evaluate ({error}); not killing")


@dataclass(frozen=True)
class Decision:
    """Every guard's verdict for one service; ``kill`` only when all of them passed."""

    verdicts: tuple[Verdict, ...]
    probability: float
    draw: float

    @property
    def kill(self) -> bool:
        return bool(self.verdicts) and all(v.passed for v in self.verdicts)

    @property
    def refusals(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.passed)

    def verdict(self, guard: str) -> Verdict:
        return next(v for v in self.verdicts if v.guard == guard)

    def summary(self) -> str:
        """One line: why not (the refusing guards), or that every guard passed."""
        if self.kill:
            return f"every guard passed ({len(self.verdicts)})"
        return "; ".join(f"{v.guard}: {v.reason}" for v in self.refusals)


# ---- policy: the window, freeze dates, mean and gap (settings) ----------------------------


@dataclass(frozen=True)
class Window:
    """Weekdays (0 = Monday) and hours ``[start_hour, end_hour)`` in ``time_zone``."""

    days: frozenset[int] = frozenset(range(5))
    start_hour: int = 9
    end_hour: int = 17
    time_zone: str = "UTC"

    def describe(self) -> str:
        return (
            f"{format_days(self.days)} {self.start_hour:02d}:00-{self.end_hour:02d}:00 "
            f"{self.time_zone}"
        )


@dataclass(frozen=True)
class FreezePeriod:
    """Dates (inclusive, in the window's time zone) on which nothing is killed."""

    first: date
    last: date

    def describe(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True)
class ChaosPolicy:
    """The stage-wide rules (from the settings); a service's tags may change mean and gap.

    ``tick_minutes`` is how often the schedule runs: the per-run kill probability is derived
    from it and the mean time between kills (:func:`kill_probability`).
    """

    window: Window = field(default_factory=Window)
    freeze: tuple[FreezePeriod, ...] = ()
    mtbk_hours: float = 16.0
    min_gap_hours: float = 4.0
    tick_minutes: int = 60
    min_budget_percent: float = 25.0


def time_zone(name: str) -> tzinfo:
    """The ``tzinfo`` for an IANA name; ``UTC`` needs no time zone database.

    Raises
    ------
    ValueError
        When the name is unknown (or the system has no time zone database).
    """
    if name.strip().upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parse_days(text: str) -> frozenset[int]:
    """``mon-fri``, ``mon,wed,fri`` or ``mon-fri,sun`` -> weekday numbers (0 = Monday).

    Raises
    ------
    ValueError
        An unknown day name or an empty list.

    Example
    -------
    >>> sorted(parse_days("mon-wed,sun"))
    [0, 1, 2, 6]
    """
    days: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        first, sep, last = part.partition("-")
        start = _weekday(first.strip(), part)
        end = _weekday(last.strip(), part) if sep else start
        if end < start:
            raise ValueError(f"{part!r} runs backwards; write it as e.g. fri-sun or sat,sun")
        days.update(range(start, end + 1))
    if not days:
        raise ValueError("no days given (e.g. mon-fri)")
    return frozenset(days)


def _weekday(name: str, part: str) -> int:
    if name not in WEEKDAYS:
        raise ValueError(f"{part!r} is not a day or range of days (mon, tue, ... sun)")
    return WEEKDAYS.index(name)


def format_days(days: Iterable[int]) -> str:
    """The inverse of :func:`parse_days`, with runs folded: ``mon-fri``."""
    runs: list[list[int]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        WEEKDAYS[run[0]] if len(run) == 1 else f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}"
        for run in runs
    )


def parse_hours(text: str) -> tuple[int, int]:
    """``9-17`` -> ``(9, 17)``: from 09:00 up to (not including) 17:00.

    Raises
    ------
    ValueError
        Not ``<start>-<end>`` with ``0 <= start < end <= 24``.
    """
    start_text, sep, end_text = text.strip().partition("-")
    try:
        start, end = int(start_text), int(end_text)
    except ValueError:
        start = end = -1
    if not sep or not (0 <= start < end <= 24):
        raise ValueError(f"{text!r} is not <start>-<end> hours with 0 <= start < end <= 24")
    return start, end


def parse_freeze(text: str) -> tuple[FreezePeriod, ...]:
    """``2026-12-24,2026-12-31..2027-01-01`` -> freeze periods (dates inclusive).

    Raises
    ------
    ValueError
        A date that is not ``YYYY-MM-DD``, or a range that runs backwards.
    """
    periods: list[FreezePeriod] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first_text, _, last_text = part.partition("..")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if last_text else first
        except ValueError:
            raise ValueError(f"{part!r} is not YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD") from None
        if last < first:
            raise ValueError(f"{part!r} ends before it starts")
        periods.append(FreezePeriod(first, last))
    return tuple(periods)


# ---- facts about one service --------------------------------------------------------------


@dataclass(frozen=True)
class OptIn:
    """A service's chaos tags, parsed: whether it opted in, its mean and gap, or what is wrong."""

    enabled: bool
    mtbk_hours: float
    min_gap_hours: float
    problem: str | None = None
    tag_value: str | None = None

    def describe(self) -> str:
        return f"mean {self.mtbk_hours:g} h between kills, minimum gap {self.min_gap_hours:g} h"


def _hours_tag(
    tags: Mapping[str, str], key: str, default: float, *, zero: bool = False
) -> tuple[float, str | None]:
    raw = tags.get(key)
    if raw is None:
        return default, None
    try:
        hours = float(raw)
    except ValueError:
        return default, f"tag {key}={raw[:_ECHO_LIMIT]!r} is not a number of hours"
    too_small = hours < 0 if zero else hours <= 0
    if not math.isfinite(hours) or too_small or hours > MAX_HOURS:
        least = "0 or more" if zero else "more than 0"
        return default, f"tag {key}={raw[:_ECHO_LIMIT]!r} must be {least} and at most a year"
    return hours, None


def parse_opt_in(tags: Mapping[str, str], policy: ChaosPolicy) -> OptIn:
    """Read ``spotops:chaos`` (``on``/``off``) and the optional per-service limits.

    A malformed value (in any of the three tags) is a ``problem``: the service is not
    killed, and the reason says which tag is wrong.

    Example
    -------
    >>> parse_opt_in({"spotops:chaos": "on", "spotops:chaos-mtbk-hours": "8"},
    ...              ChaosPolicy()).mtbk_hours
    8.0
    """
    raw = tags.get(TAG_OPT_IN)
    mtbk, mtbk_problem = _hours_tag(tags, TAG_MTBK_HOURS, policy.mtbk_hours)
    gap, gap_problem = _hours_tag(tags, TAG_MIN_GAP_HOURS, policy.min_gap_hours, zero=True)
    if raw is None:
        return OptIn(False, mtbk, gap)
    value = raw.strip().lower()
    if value in _OFF:
        return OptIn(False, mtbk, gap, tag_value=value)
    if value not in _ON:
        wrong = f"tag {TAG_OPT_IN}={raw[:_ECHO_LIMIT]!r} is neither on nor off"
        return OptIn(False, mtbk, gap, problem=wrong, tag_value=raw)
    limits = mtbk_problem or gap_problem
    return OptIn(limits is None, mtbk, gap, problem=limits, tag_value=value)


@dataclass(frozen=True)
class TaskFacts:
    """One task of the service, from ``DescribeTasks``."""

    arn: str
    last_status: str
    desired_status: str
    capacity_provider: str = ""
    availability_zone: str = ""
    stop_code: str = ""
    stopped_reason: str = ""
    stopped_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.last_status == "RUNNING" and self.desired_status == "RUNNING"

    @property
    def short_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Deployment:
    """One entry of the service's ``deployments``."""

    id: str
    status: str
    rollout_state: str


@dataclass(frozen=True)
class ServiceFacts:
    """The service as ``DescribeServices`` (with tags) and ``DescribeTasks`` show it."""

    cluster: str
    name: str
    arn: str
    status: str
    desired: int
    running_count: int
    pending_count: int
    deployments: tuple[Deployment, ...]
    minimum_healthy_percent: int | None
    target_group_arns: tuple[str, ...]
    tags: Mapping[str, str]
    running_tasks: tuple[TaskFacts, ...] = ()
    stopped_tasks: tuple[TaskFacts, ...] = ()

    @property
    def key(self) -> str:
        """``<cluster>/<service>``: the ledger's name for it."""
        return f"{self.cluster}/{self.name}"


def task_facts(raw: Mapping[str, Any]) -> TaskFacts:
    """Parse one task of ``DescribeTasks``."""
    stopped_at = raw.get("stoppedAt")
    return TaskFacts(
        arn=str(raw.get("taskArn", "")),
        last_status=str(raw.get("lastStatus", "")),
        desired_status=str(raw.get("desiredStatus", "")),
        capacity_provider=str(raw.get("capacityProviderName") or raw.get("launchType") or ""),
        availability_zone=str(raw.get("availabilityZone") or ""),
        stop_code=str(raw.get("stopCode") or ""),
        stopped_reason=str(raw.get("stoppedReason") or ""),
        stopped_at=_aware(stopped_at) if isinstance(stopped_at, datetime) else None,
    )


def service_facts(raw: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]] = ()) -> ServiceFacts:
    """Parse ``DescribeServices`` (``include=["TAGS"]``) and the service's tasks.

    Only tasks of the service count (ECS sets their ``group`` to ``service:<name>``); of
    those, ``running_tasks`` are RUNNING and meant to stay so, ``stopped_tasks`` STOPPED.
    """
    name = str(raw.get("serviceName", ""))
    cluster = str(raw.get("clusterArn", "")).rsplit("/", 1)[-1]
    config = raw.get("deploymentConfiguration") or {}
    minimum = config.get("minimumHealthyPercent")
    parsed = [task_facts(t) for t in tasks if t.get("group") in (None, f"service:{name}")]
    return ServiceFacts(
        cluster=cluster,
        name=name,
        arn=str(raw.get("serviceArn", "")),
        status=str(raw.get("status", "")),
        desired=int(raw.get("desiredCount") or 0),
        running_count=int(raw.get("runningCount") or 0),
        pending_count=int(raw.get("pendingCount") or 0),
        deployments=tuple(
            Deployment(
                id=str(d.get("id", "")),
                status=str(d.get("status", "")),
                rollout_state=str(d.get("rolloutState") or ""),
            )
            for d in raw.get("deployments", [])
        ),
        minimum_healthy_percent=int(minimum) if isinstance(minimum, int) else None,
        target_group_arns=target_groups(raw.get("loadBalancers") or []),
        tags={str(t.get("key", "")): str(t.get("value", "")) for t in raw.get("tags", [])},
        running_tasks=tuple(t for t in parsed if t.running),
        stopped_tasks=tuple(t for t in parsed if t.last_status == "STOPPED"),
    )


def target_groups(load_balancers: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every target group the service's tasks may sit in: each ``targetGroupArn`` and, with
    CANARY or LINEAR deployments, its ``advancedConfiguration.alternateTargetGroupArn`` (the
    two swap roles on every deployment, so after an odd number of them the tasks serve from
    the alternate group). In order, without repeats.

    Example
    -------
    >>> target_groups([{"targetGroupArn": "tg-a",
    ...                 "advancedConfiguration": {"alternateTargetGroupArn": "tg-b"}}])
    ('tg-a', 'tg-b')
    """
    arns: list[Any] = []
    for balancer in load_balancers:
        advanced = balancer.get("advancedConfiguration") or {}
        arns.extend((balancer.get("targetGroupArn"), advanced.get("alternateTargetGroupArn")))
    return tuple(dict.fromkeys(str(arn) for arn in arns if arn))


@dataclass(frozen=True)
class TargetState:
    """One target of a target group: its id (an IP for Fargate) and health state."""

    target_group_arn: str
    target_id: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class KillRecord:
    """The last time a task of the service was taken away: by chaos, or by Spot."""

    at: datetime
    kind: str
    task_arn: str = ""
    run_id: str = ""

    def describe(self) -> str:
        what = "Spot interruption" if self.kind == KIND_SPOT else "chaos kill"
        task = f" of task {self.task_arn.rsplit('/', 1)[-1]}" if self.task_arn else ""
        return f"{what}{task} at {self.at.strftime('%Y-%m-%d %H:%M:%SZ')}"


@dataclass(frozen=True)
class KillSwitch:
    """The kill switch as read: ``engaged`` stops every action that changes production."""

    engaged: bool
    reason: str


@dataclass(frozen=True)
class ChaosFacts:
    """Everything one decision about one service is made from."""

    now: datetime
    service: ServiceFacts
    opt_in: OptIn
    targets: Reading[tuple[TargetState, ...]]
    alarms: Reading[tuple[str, ...]]
    kill_switch: Reading[KillSwitch]
    lock: Reading[Lock]  # value None: free
    last_kill: Reading[KillRecord]  # value None: never
    budget: Reading[tuple[Budget, ...]]  # every objective's, as chalicelib.slo read it
    slo_alarm_prefix: str  # <app>-<stage>-slo-: the burn-rate alerts among ``alarms``


def latest_spot_interruption(tasks: Iterable[TaskFacts]) -> KillRecord | None:
    """The newest Spot interruption among stopped tasks (``stopCode`` SpotInterruption)."""
    found = [t for t in tasks if t.stop_code == SPOT_STOP_CODE and t.stopped_at is not None]
    if not found:
        return None
    newest = max(found, key=lambda t: t.stopped_at or datetime.min.replace(tzinfo=UTC))
    assert newest.stopped_at is not None
    return KillRecord(newest.stopped_at, KIND_SPOT, newest.arn)


def latest_kill(*records: KillRecord | None) -> KillRecord | None:
    """The newest of several kill records (``None`` ignored)."""
    present = [r for r in records if r is not None]
    return max(present, key=lambda r: r.at) if present else None


# ---- the leash ---------------------------------------------------------------------------

LEASH_OFF = frozenset({"off", "false", "0", "no", "unleashed"})


@dataclass(frozen=True)
class Leash:
    """Whether this run only reports what it would kill (``active``), and which control said so."""

    active: bool
    reason: str


def leash_state(
    *,
    dry_run: bool,
    dry_run_reason: str,
    parameter: str,
    value: str | None = None,
    failure: str | None = None,
) -> Leash:
    """Decide the leash from the global dry run and the chaos leash parameter (pure).

    Chaos is leashed unless *both* say otherwise: a dry run (``DRY_RUN`` or the dry-run
    parameter) leashes it, and the leash parameter unleashes it only when it reads ``off``.
    No parameter, a failed read or any other value means leashed: a switch meant to keep
    chaos harmless must not let it loose when it cannot be read.

    Example
    -------
    >>> leash_state(dry_run=False, dry_run_reason="", parameter="/a/b/chaos-leash",
    ...             value="off").active
    False
    """
    if dry_run:
        return Leash(True, f"dry run: {dry_run_reason}")
    if not parameter:
        return Leash(True, "no CHAOS_LEASH_PARAMETER is set, so chaos stays leashed")
    if failure is not None:
        return Leash(True, f"chaos leash {parameter} {failure}; staying leashed")
    text = (value or "").strip().lower()
    if text in LEASH_OFF:
        return Leash(False, f"chaos leash {parameter} is {text!r} and dry run is off")
    return Leash(True, f"chaos leash {parameter} is {text[:_ECHO_LIMIT]!r} (only 'off' unleashes)")


# ---- the probability model ----------------------------------------------------------------


def kill_probability(tick_minutes: float, mtbk_hours: float) -> float:
    """The chance that one run kills, so kills average one per ``mtbk_hours`` of window.

    Kills are modelled as a Poisson process over the hours the window is open: a run that
    covers ``tick_minutes`` of it kills with ``1 - exp(-tick / mean)``. Over ``N`` runs the
    expected kills are ``N * p``, about ``window hours / mean`` (the minimum gap removes a
    little more).

    Example
    -------
    >>> round(kill_probability(60, 16), 4)
    0.0606
    """
    if mtbk_hours <= 0:
        return 1.0
    return 1.0 - math.exp(-(tick_minutes / 60.0) / mtbk_hours)


def draw(seed: str) -> tuple[float, random.Random]:
    """The run's random source, seeded (and so logged and repeatable), and its first draw."""
    rng = random.Random(seed)  # noqa: S311 - chaos dice, not cryptography
    return rng.random(), rng


def pick_victim(tasks: Sequence[TaskFacts], rng: random.Random) -> TaskFacts | None:
    """One of the running tasks, chosen by ``rng`` (tasks sorted first, so a seed repeats)."""
    ordered = sorted(tasks, key=lambda t: t.arn)
    return rng.choice(ordered) if ordered else None


# ---- the guards ---------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def guard_opt_in(opt_in: OptIn) -> Verdict:
    if opt_in.problem:
        return Verdict("opt-in", False, f"{opt_in.problem}; not killing")
    if not opt_in.enabled:
        if opt_in.tag_value is None:
            return Verdict("opt-in", False, f"no {TAG_OPT_IN} tag (not opted in)")
        return Verdict("opt-in", False, f"{TAG_OPT_IN}={opt_in.tag_value} (opted out)")
    return Verdict("opt-in", True, f"{TAG_OPT_IN}=on; {opt_in.describe()}")


def guard_window(now: datetime, window: Window) -> Verdict:
    try:
        local = _aware(now).astimezone(time_zone(window.time_zone))
    except ValueError as exc:
        return _unreadable("window", str(exc))
    when = f"{WEEKDAYS[local.weekday()]} {local:%H:%M} {window.time_zone}"
    inside = local.weekday() in window.days and window.start_hour <= local.hour < window.end_hour
    where = "inside" if inside else "outside"
    return Verdict("window", inside, f"{when} is {where} {window.describe()}")


def guard_freeze(now: datetime, window: Window, freeze: Sequence[FreezePeriod]) -> Verdict:
    try:
        today = _aware(now).astimezone(time_zone(window.time_zone)).date()
    except ValueError as exc:
        return _unreadable("freeze", str(exc))
    for period in freeze:
        if period.first <= today <= period.last:
            return Verdict("freeze", False, f"{today.isoformat()} is frozen ({period.describe()})")
    listed = ", ".join(p.describe() for p in freeze) or "none"
    return Verdict("freeze", True, f"{today.isoformat()} is not a freeze date (listed: {listed})")


def guard_min_gap(now: datetime, last_kill: Reading[KillRecord], min_gap_hours: float) -> Verdict:
    if not last_kill.ok:
        return _unreadable("min-gap", last_kill.error)
    record = last_kill.value
    if record is None:
        return Verdict("min-gap", True, "no kill or Spot interruption on record")
    elapsed = _aware(now) - _aware(record.at)
    gap = timedelta(hours=min_gap_hours)
    hours = elapsed.total_seconds() / 3600
    if elapsed < gap:
        return Verdict(
            "min-gap",
            False,
            f"last {record.describe()}, {hours:.1f} h ago; minimum gap {min_gap_hours:g} h",
        )
    return Verdict(
        "min-gap", True, f"last {record.describe()}, {hours:.1f} h ago (>= {min_gap_hours:g} h)"
    )


def guard_probability(draw_value: float, probability: float, mtbk_hours: float) -> Verdict:
    below = draw_value < probability
    relation = "<" if below else ">="
    return Verdict(
        "probability",
        below,
        f"drew {draw_value:.4f} {relation} p={probability:.4f} "
        f"(mean {mtbk_hours:g} window hours between kills)",
    )


def guard_kill_switch(kill_switch: Reading[KillSwitch]) -> Verdict:
    if not kill_switch.ok or kill_switch.value is None:
        return _unreadable("kill-switch", kill_switch.error or "not read")
    state = kill_switch.value
    return Verdict("kill-switch", not state.engaged, state.reason)


def guard_lock(lock: Reading[Lock], service_key: str) -> Verdict:
    if not lock.ok:
        return _unreadable("lock", lock.error)
    held = lock.value
    if held is None:
        return Verdict("lock", True, f"no live lock on {service_key}")
    # The ledger keeps an epoch (DynamoDB's TTL); on-call reads a time.
    until = (
        datetime.fromtimestamp(held.expires_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        if held.expires_at
        else "?"
    )
    return Verdict(
        "lock",
        False,
        f"{service_key} is locked by {held.action or '?'} ({held.holder or '?'}) until {until}",
    )


def guard_running(service: ServiceFacts) -> Verdict:
    tasks = len(service.running_tasks)
    text = (
        f"desired {service.desired}, running {service.running_count} (ECS), {tasks} task(s) RUNNING"
    )
    steady = service.desired > 0 and service.running_count == service.desired == tasks
    if service.desired <= 0:
        text += "; nothing to kill"
    return Verdict("running", steady, text)


def guard_deployment(service: ServiceFacts) -> Verdict:
    deployments = service.deployments
    if len(deployments) != 1:
        return Verdict(
            "deployment",
            False,
            f"{len(deployments)} deployments ({', '.join(d.status for d in deployments) or '-'})",
        )
    (only,) = deployments
    settled = only.status == "PRIMARY" and only.rollout_state in ("COMPLETED", "")
    return Verdict(
        "deployment",
        settled,
        f"one deployment {only.id}: {only.status} {only.rollout_state or '(no rollout state)'}",
    )


def targets_verdict(
    service: ServiceFacts,
    targets: Reading[tuple[TargetState, ...]],
    *,
    ignore_draining: bool = False,
) -> Verdict:
    """Every target healthy and at least ``desired`` of them (``ignore_draining`` for
    recovery: the killed task's target drains while its replacement comes up)."""
    if not service.target_group_arns:
        return Verdict(
            "targets",
            False,
            "the service has no load balancer, so health and recovery cannot be measured",
        )
    if not targets.ok or targets.value is None:
        return _unreadable("targets", targets.error or "not read")
    states = [t for t in targets.value if not (ignore_draining and t.state == "draining")]
    healthy = [t for t in states if t.state == "healthy"]
    others = [t for t in states if t.state != "healthy"]
    if others:
        listed = ", ".join(f"{t.target_id} {t.state}" for t in others[:5])
        return Verdict("targets", False, f"{len(others)} target(s) not healthy: {listed}")
    if len(healthy) < max(service.desired, 1):
        return Verdict(
            "targets",
            False,
            f"{len(healthy)} healthy target(s), fewer than desired {service.desired}",
        )
    return Verdict("targets", True, f"all {len(healthy)} target(s) healthy")


def guard_alarms(alarms: Reading[tuple[str, ...]]) -> Verdict:
    if not alarms.ok or alarms.value is None:
        return _unreadable("alarms", alarms.error or "not read")
    if alarms.value:
        return Verdict("alarms", False, f"in ALARM: {', '.join(alarms.value[:5])}")
    return Verdict("alarms", True, "no alarm of the stage in ALARM")


def guard_budget(
    budgets: Reading[tuple[Budget, ...]],
    alarms: Reading[tuple[str, ...]],
    slo_alarm_prefix: str,
    min_budget_percent: float,
) -> Verdict:
    """No burn-rate alert in ALARM, and at least ``min_budget_percent`` of every objective's
    budget left (exactly that much passes: the setting is the least chaos may spend from).
    Refuses when the alarms or a budget cannot be read; 0 turns the guard off."""
    if min_budget_percent <= 0:
        return Verdict("budget", True, "the budget gate is off (CHAOS_MIN_BUDGET_PERCENT is 0)")
    if not alarms.ok or alarms.value is None:
        return _unreadable("budget", alarms.error or "alarms not read")
    # The alerts only: a composite alert's -long/-short windows are its inputs, not alerts (a
    # window in ALARM alone is a blip the alert ignores; the alarms guard still sees it).
    burning = [
        name
        for name in alarms.value
        if name.startswith(slo_alarm_prefix) and not name.endswith(BURN_WINDOW_SUFFIXES)
    ]
    if burning:
        return Verdict("budget", False, f"burn-rate alert in ALARM: {', '.join(burning[:5])}")
    if not budgets.ok or not budgets.value:
        return _unreadable("budget", budgets.error or "no objective read")
    need = f"{min_budget_percent:g}%"
    shown: list[str] = []
    for budget in budgets.value:
        objective = budget.objective
        if budget.left is None:
            return _unreadable("budget", f"{objective.name} budget unknown: {budget.error}")
        # Compared as shown (to 0.1%), so the verdict never reads "25.0% left; needs 25%"
        # and refuses.
        left = round(budget.left * 100, 1)
        window = f"{objective.window_days} d error budget"
        if left <= 0:
            return Verdict(
                "budget",
                False,
                f"{objective.name} has exhausted its {window} ({left:.1f}% left, "
                f"{objective.target_percent:g}% target); chaos needs {need}",
            )
        if left < min_budget_percent:
            return Verdict(
                "budget",
                False,
                f"{objective.name} has {left:.1f}% of its {window} left "
                f"({objective.target_percent:g}% target); chaos needs {need}",
            )
        shown.append(f"{objective.name} {left:.1f}%")
    listed = ", ".join(shown)
    return Verdict("budget", True, f"error budget left: {listed} (chaos needs {need})")


def guard_time_left(
    seconds_left: float | None, recovery_timeout_seconds: float, margin_seconds: float
) -> Verdict:
    """Checked right before a kill, not one of the thirteen guards (it is about this invocation,
    not the service): the function has time left to watch the whole recovery and then record
    and report it. A watch cut short by Lambda's time limit would call a recovery in progress
    a failed experiment and free the lock halfway through it.

    Parameters
    ----------
    seconds_left:
        The invocation's time left (``context.get_remaining_time_in_millis() / 1000``);
        ``None`` outside Lambda (no limit).
    recovery_timeout_seconds:
        ``CHAOS_RECOVERY_TIMEOUT_SECONDS``: the longest watch.
    margin_seconds:
        Time kept back after the watch to record and report.

    Example
    -------
    >>> guard_time_left(90, 600, 30).passed
    False
    """
    needed = recovery_timeout_seconds + margin_seconds
    if seconds_left is None:
        return Verdict("time-left", True, "no time limit (not run by Lambda)")
    text = (
        f"{seconds_left:.0f} s of the function's time left; the recovery watch needs "
        f"{recovery_timeout_seconds:g} s and {margin_seconds:g} s more to record and report"
    )
    if seconds_left < needed:
        return Verdict(
            "time-left",
            False,
            f"{text}; not killing, so no watch is cut short (the next run may kill)",
        )
    return Verdict("time-left", True, text)


def needed_tasks(desired: int, minimum_healthy_percent: int) -> int:
    """Tasks ``minimumHealthyPercent`` of ``desired`` keeps (ECS rounds up), and never 0."""
    return max(1, math.ceil(desired * minimum_healthy_percent / 100))


def guard_headroom(service: ServiceFacts) -> Verdict:
    percent = service.minimum_healthy_percent
    if percent is None:
        return _unreadable("headroom", "the service reports no minimumHealthyPercent")
    running = len(service.running_tasks)
    needed = needed_tasks(service.desired, percent)
    passed = running - 1 >= needed
    return Verdict(
        "headroom",
        passed,
        f"{running} running; minimumHealthyPercent {percent} of desired {service.desired} "
        f"needs {needed}; a kill leaves {running - 1}",
    )


def decide(facts: ChaosFacts, policy: ChaosPolicy, draw_value: float) -> Decision:
    """Evaluate every guard (all of them, for the record) and decide.

    Parameters
    ----------
    facts:
        What was read about the service, the time included.
    policy:
        Window, freeze dates and the schedule's interval; mean and gap come from
        ``facts.opt_in`` (the service's tags, or the policy's defaults).
    draw_value:
        This run's random draw in ``[0, 1)`` (see :func:`draw`).

    Returns
    -------
    Decision
        Thirteen verdicts in :data:`GUARDS` order; ``kill`` when all passed.
    """
    opt_in = facts.opt_in
    probability = kill_probability(policy.tick_minutes, opt_in.mtbk_hours)
    verdicts = (
        guard_opt_in(opt_in),
        guard_window(facts.now, policy.window),
        guard_freeze(facts.now, policy.window, policy.freeze),
        guard_min_gap(facts.now, facts.last_kill, opt_in.min_gap_hours),
        guard_probability(draw_value, probability, opt_in.mtbk_hours),
        guard_kill_switch(facts.kill_switch),
        guard_lock(facts.lock, facts.service.key),
        guard_running(facts.service),
        guard_deployment(facts.service),
        targets_verdict(facts.service, facts.targets),
        guard_alarms(facts.alarms),
        guard_budget(facts.budget, facts.alarms, facts.slo_alarm_prefix, policy.min_budget_percent),
        guard_headroom(facts.service),
    )
    return Decision(verdicts, probability, draw_value)


def recovered(service: ServiceFacts, targets: Reading[tuple[TargetState, ...]]) -> Verdict:
    """Back to steady state after a kill: running = desired and every target healthy
    (a draining target, the killed task's, does not count against it)."""
    running = guard_running(service)
    health = targets_verdict(service, targets, ignore_draining=True)
    if running.passed and health.passed:
        return Verdict("recovered", True, f"{running.reason}; {health.reason}")
    failing = running if not running.passed else health
    return Verdict("recovered", False, failing.reason)
