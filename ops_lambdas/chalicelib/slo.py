"""Service level objectives: how much error budget is left, how fast it burns, read from
CloudWatch.

The arithmetic is the SRE workbook's ("Alerting on SLOs"). An objective says what share of
requests must be good over a window (99.9% over 30 days); the error budget is the rest
(0.1%). Over any stretch of time:

* ``bad fraction`` = bad requests / all requests (0 when there were none: no traffic spends
  no budget, and nothing is divided by zero);
* ``burn rate`` = bad fraction / budget: 1 spends the budget exactly over the window, 14.4
  spends 2% of a 30-day budget in one hour;
* ``budget left`` = 1 - the window's burn rate: the share of the window's budget not yet
  spent; negative once overspent (shown as "exhausted").

The pure part (:class:`Objective`, :class:`Counts`, :func:`burn_rate`, :func:`budget_left`,
:func:`budget_spent`, :class:`Budget`) imports only the standard library. The reader
(:class:`BudgetReader`) asks CloudWatch ``GetMetricData`` for the load balancer's counts;
what it cannot read is "unknown" (:attr:`Budget.error`), never "healthy". The chaos guard,
the alarm alert and ``spotops status`` all read the budget through it.

The signals, both the load balancer's own figures (dimension ``LoadBalancer`` only, so both
target groups of a CANARY or LINEAR service count, whichever serves):

* availability: all requests are ``RequestCount``; bad ones ``HTTPCode_ELB_5XX_Count`` +
  ``HTTPCode_Target_5XX_Count``;
* latency: all requests are those a target answered (``TargetResponseTime``'s
  ``SampleCount``); good ones the share within the threshold, ``PR(:<threshold>)`` (the
  percentile rank: the percentage of data points at or under it), weighted by each period's
  sample count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.errors import SettingsError
from chalicelib.settings import env_float, env_int

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

AVAILABILITY = "availability"
LATENCY = "latency"
BURN_WINDOWS_HOURS = (1, 6)  # the page-level windows of the workbook's multiwindow alerts
NAMESPACE = "AWS/ApplicationELB"


# ---- the arithmetic (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """One objective: ``target_percent`` of requests good over ``window_days``.

    ``threshold_seconds`` is the latency objective's bound (a request is good when answered
    within it); ``None`` for availability.

    Raises
    ------
    ValueError
        A target not strictly between 0 and 100 (100% leaves no budget to divide by), a
        window under a day, or a threshold not above 0.
    """

    name: str
    target_percent: float
    window_days: int = 30
    threshold_seconds: float | None = None

    def __post_init__(self) -> None:
        if not (0 < self.target_percent < 100):
            raise ValueError(
                f"the {self.name} target must be above 0 and below 100 percent, "
                f"got {self.target_percent:g}"
            )
        if self.window_days < 1:
            raise ValueError(f"the {self.name} window must be 1 day or more")
        if self.threshold_seconds is not None and not self.threshold_seconds > 0:
            raise ValueError(f"the {self.name} threshold must be above 0 seconds")

    @property
    def budget(self) -> float:
        """The error budget: the share of requests allowed to be bad (``1 - target``)."""
        return 1 - self.target_percent / 100

    def describe(self) -> str:
        """``availability 99.9% over 30 d`` / ``latency 99.9% within 0.3 s over 30 d``."""
        within = (
            f" within {self.threshold_seconds:g} s" if self.threshold_seconds is not None else ""
        )
        return f"{self.name} {self.target_percent:g}%{within} over {self.window_days} d"


@dataclass(frozen=True)
class Counts:
    """Requests over some stretch of time: all of them, and how many were bad."""

    total: float
    bad: float

    @property
    def bad_fraction(self) -> float:
        """Bad / total, within [0, 1]; 0 without requests (no traffic spends no budget)."""
        if self.total <= 0:
            return 0.0
        return min(1.0, max(0.0, self.bad / self.total))


def burn_rate(objective: Objective, counts: Counts) -> float:
    """How fast ``counts`` spend the budget: 1 spends it exactly over the objective's window.

    Example
    -------
    >>> round(burn_rate(Objective("availability", 99.9), Counts(10_000, 144)), 6)
    14.4
    """
    return counts.bad_fraction / objective.budget


def budget_left(objective: Objective, window_counts: Counts) -> float:
    """The share of the window's budget not spent by ``window_counts`` (the counts over the
    objective's whole window); below 0 once overspent.

    Example
    -------
    >>> round(budget_left(Objective("availability", 99.9), Counts(1_000_000, 380)), 6)
    0.62
    """
    return 1 - burn_rate(objective, window_counts)


def budget_spent(rate: float, hours: float, window_days: float) -> float:
    """The share of a ``window_days`` budget that burning at ``rate`` for ``hours`` spends.

    Example
    -------
    >>> round(budget_spent(14.4, 1, 30), 6)  # the workbook's fast page
    0.02
    """
    return rate * hours / (window_days * 24)


def percent(share: float, digits: int = 0) -> str:
    """``0.62`` -> ``62%``."""
    return f"{share * 100:.{digits}f}%"


@dataclass(frozen=True)
class Budget:
    """One objective's budget as read: the share ``left`` over its window and the burn rates
    over the last hour and six hours; ``error`` says why it is unknown (then ``left`` is None).
    A burn rate is None when only that window could not be read."""

    objective: Objective
    left: float | None = None
    burn_1h: float | None = None
    burn_6h: float | None = None
    error: str | None = None

    @classmethod
    def unknown(cls, objective: Objective, error: str) -> Budget:
        return cls(objective, error=error)

    def left_text(self, digits: int = 0) -> str:
        """``62%``, ``exhausted (-40%)`` or ``unknown``."""
        if self.left is None:
            return "unknown"
        if self.left <= 0:
            return f"exhausted ({percent(self.left, digits)})"
        return percent(self.left, digits)


def burn_text(rate: float | None) -> str:
    """``14.4x``, or ``unknown``."""
    return "unknown" if rate is None else f"{rate:.2f}x"


def budget_line(budgets: Sequence[Budget]) -> str:
    """The alert's line: ``Error budget left (30 d): availability 62%, latency 88%`` (one
    part per window when the windows differ); ``Error budget left: budget unknown (why)``
    when none is known.
    """
    if not budgets or all(b.left is None for b in budgets):
        why = next((b.error for b in budgets if b.error), "no objective")
        return f"Error budget left: budget unknown ({why})"
    windows = sorted({b.objective.window_days for b in budgets})
    parts = []
    for days in windows:
        listed = ", ".join(
            f"{b.objective.name} {b.left_text()}"
            for b in budgets
            if b.objective.window_days == days
        )
        parts.append(f"Error budget left ({days} d): {listed}")
    return "; ".join(parts)


# ---- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloSettings:
    """The objectives (``SLO_*``) and the load balancer whose counts measure them.

    Attributes
    ----------
    objectives:
        From ``SLO_AVAILABILITY_TARGET`` (99.9), ``SLO_LATENCY_TARGET`` (99.9),
        ``SLO_LATENCY_THRESHOLD_SECONDS`` (0.3) and ``SLO_WINDOW_DAYS`` (30): the site
        template's parameters of the same name, so the alarms and the budget agree.
    load_balancer:
        ``SLO_LOAD_BALANCER``: the metrics' ``LoadBalancer`` dimension, ``app/<name>/<id>``
        (the site stack's output ``LoadBalancerFullName``). Empty: every budget is unknown.
    """

    objectives: tuple[Objective, ...] = (
        Objective(AVAILABILITY, 99.9),
        Objective(LATENCY, 99.9, threshold_seconds=0.3),
    )
    load_balancer: str = ""


def load_slo_settings(env: Mapping[str, str]) -> SloSettings:
    """Read and validate the ``SLO_*`` settings; an absent one takes its default.

    Raises
    ------
    SettingsError
        A variable present but bad; the message names it.

    Example
    -------
    >>> load_slo_settings({"SLO_WINDOW_DAYS": "7"}).objectives[0].describe()
    'availability 99.9% over 7 d'
    """
    days = env_int(env, "SLO_WINDOW_DAYS", 30, minimum=1)
    threshold = env_float(env, "SLO_LATENCY_THRESHOLD_SECONDS", 0.3)
    objectives = []
    for name, variable, bound in (
        (AVAILABILITY, "SLO_AVAILABILITY_TARGET", None),
        (LATENCY, "SLO_LATENCY_TARGET", threshold),
    ):
        target = env_float(env, variable, 99.9)
        try:
            objectives.append(Objective(name, target, days, bound))
        except ValueError as exc:
            wrong = "SLO_LATENCY_THRESHOLD_SECONDS" if "threshold" in str(exc) else variable
            raise SettingsError(f"{wrong} is invalid: {exc}") from None
    return SloSettings(tuple(objectives), env.get("SLO_LOAD_BALANCER", "").strip())


# ---- reading the counts from CloudWatch -------------------------------------------------------


class _Unknown(Exception):
    """One window could not be read: the message says why."""


@dataclass(frozen=True)
class _Series:
    """One query's values by timestamp."""

    values: Mapping[datetime, float]

    @property
    def total(self) -> float:
        return math.fsum(self.values.values())


class BudgetReader:
    """Reads each objective's budget and burn rates from the load balancer's metrics.

    Parameters
    ----------
    cloudwatch:
        A boto3 CloudWatch client (``GetMetricData``).
    load_balancer:
        The ``LoadBalancer`` dimension, ``app/<name>/<id>``.
    """

    def __init__(self, cloudwatch: CloudWatchClient | Any, load_balancer: str) -> None:
        self._cloudwatch = cloudwatch
        self._load_balancer = load_balancer

    def read(self, objectives: Sequence[Objective], now: datetime) -> tuple[Budget, ...]:
        """Every objective's budget at ``now``; never raises for AWS faults (a budget that
        cannot be read is :meth:`Budget.unknown`, with why).

        One ``GetMetricData`` call per window (the objectives' windows, then 1 h and 6 h),
        each a single period over the whole window.
        """
        if not self._load_balancer:
            return tuple(
                Budget.unknown(o, "no load balancer to measure (SLO_LOAD_BALANCER is empty)")
                for o in objectives
            )
        end = now.replace(second=0, microsecond=0)
        thresholds = sorted({o.threshold_seconds for o in objectives if o.threshold_seconds})
        reads: dict[int, dict[str, _Series] | str] = {}
        for hours in sorted({o.window_days * 24 for o in objectives} | set(BURN_WINDOWS_HOURS)):
            try:
                reads[hours] = self._window(end, hours, thresholds)
            except _Unknown as exc:
                reads[hours] = str(exc)
        return tuple(self._budget(o, reads) for o in objectives)

    def _budget(
        self, objective: Objective, reads: Mapping[int, dict[str, _Series] | str]
    ) -> Budget:
        window = reads[objective.window_days * 24]
        try:
            if isinstance(window, str):
                raise _Unknown(window)
            counts = _counts(objective, window, hours=objective.window_days * 24, whole=True)
        except _Unknown as exc:
            return Budget.unknown(objective, str(exc))
        rates: list[float | None] = []
        for hours in BURN_WINDOWS_HOURS:
            series = reads[hours]
            try:
                if isinstance(series, str):
                    raise _Unknown(series)
                rates.append(burn_rate(objective, _counts(objective, series, hours=hours)))
            except _Unknown:
                rates.append(None)
        return Budget(objective, budget_left(objective, counts), rates[0], rates[1])

    def _window(self, end: datetime, hours: int, thresholds: Sequence[float]) -> dict[str, _Series]:
        seconds = hours * 3600
        queries = [
            self._query("requests", "RequestCount", "Sum", seconds),
            self._query("elb5xx", "HTTPCode_ELB_5XX_Count", "Sum", seconds),
            self._query("target5xx", "HTTPCode_Target_5XX_Count", "Sum", seconds),
            self._query("answered", "TargetResponseTime", "SampleCount", seconds),
        ] + [
            self._query(_within_id(t), "TargetResponseTime", f"PR(:{t:g})", seconds)
            for t in thresholds
        ]
        found: dict[str, dict[datetime, float]] = {}
        status: dict[str, str] = {}
        try:
            pages = self._cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries,
                StartTime=end - timedelta(hours=hours),
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for item in page.get("MetricDataResults", []):
                    query_id = str(item.get("Id", ""))
                    series = found.setdefault(query_id, {})
                    series.update(
                        zip(item.get("Timestamps", []), item.get("Values", []), strict=False)
                    )
                    status[query_id] = str(item.get("StatusCode", ""))
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            raise _Unknown(f"GetMetricData failed ({code})") from exc
        for query in queries:
            query_id = query["Id"]
            if query_id not in status:
                raise _Unknown(f"GetMetricData returned no {_metric(query)} over {hours} h")
            if status[query_id] != "Complete":
                raise _Unknown(
                    f"GetMetricData returned {status[query_id] or 'no status'} for "
                    f"{_metric(query)} over {hours} h"
                )
        return {query_id: _Series(values) for query_id, values in found.items()}

    def _query(self, query_id: str, metric: str, stat: str, period: int) -> MetricDataQueryTypeDef:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "LoadBalancer", "Value": self._load_balancer}],
                },
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }


def _metric(query: MetricDataQueryTypeDef) -> str:
    stat = query["MetricStat"]
    return f"{stat['Metric']['MetricName']} {stat['Stat']}"


def _within_id(threshold: float) -> str:
    """The query id of ``PR(:<threshold>)``: one query per distinct threshold."""
    return "within" + f"{threshold:g}".replace(".", "_")


def _counts(
    objective: Objective, series: Mapping[str, _Series], *, hours: int, whole: bool = False
) -> Counts:
    """The objective's counts from one window's series. Over the budget's ``whole`` window,
    no requests at all is unknown (the load balancer reported nothing, or the dimension is
    wrong); over an hour it is an idle hour, which burns nothing. (5xx counts are published
    only when there are some: absent is none.)"""
    threshold = objective.threshold_seconds
    if threshold is None:
        requests = series.get("requests", _Series({}))
        if whole and not requests.values:
            raise _Unknown(f"no RequestCount data over {hours // 24} d")
        errors = [series.get(q, _Series({})).total for q in ("elb5xx", "target5xx")]
        return Counts(requests.total, math.fsum(errors))
    answered = series.get("answered", _Series({}))
    if whole and not answered.values:
        raise _Unknown(f"no TargetResponseTime data over {hours // 24} d")
    within = series.get(_within_id(threshold), _Series({})).values
    bad = []
    for at, count in answered.values.items():
        if at not in within:
            # Requests without their percentile rank: how many were slow is not known.
            raise _Unknown(f"TargetResponseTime PR(:{threshold:g}) missing over {hours} h")
        bad.append(count * (1 - min(100.0, max(0.0, within[at])) / 100))
    return Counts(answered.total, math.fsum(bad))
