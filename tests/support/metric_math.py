"""A small evaluator of the CloudWatch alarms the site template ships, for synthetic traffic.

It evaluates what the rendered template says (read with :class:`tests.support.templates.Resolver`),
so the expression tested is the expression shipped: each metric-math alarm's ``MetricStat``
queries (``Sum`` and the percentile rank ``PR(:t)`` of the load balancer's metrics), its
``Expression`` (numbers, metric ids, ``+ - * /``, parentheses and ``FILL(id, n)``), its
``Period``, ``EvaluationPeriods``, ``DatapointsToAlarm``, ``Threshold``,
``ComparisonOperator`` and ``TreatMissingData``; and each composite alarm's ``AlarmRule``
(``ALARM("name")`` terms joined by ``AND`` or by ``OR``). Anything else raises
:class:`UnsupportedError`, so a template change cannot slip past it.

How CloudWatch evaluates, as modelled here: every minute, over the last ``EvaluationPeriods``
periods ending at that minute (a rolling window, not aligned to the clock); a period's value
is the expression over that period's aggregated metrics; the load balancer publishes a 5xx
count only for a minute that had one (so the expression needs ``FILL``); no requests means no
data, which ``notBreaching`` treats as fine.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.templates import Resolver


class UnsupportedError(ValueError):
    """The alarm uses something this evaluator does not model."""


@dataclass(frozen=True)
class Minute:
    """One minute of the load balancer's traffic.

    ``latencies`` are the targets' response times as ``(seconds, requests)``; requests the load
    balancer answered itself (``elb_5xx``) never reached a target and have none.
    """

    requests: int
    elb_5xx: int = 0
    target_5xx: int = 0
    latencies: tuple[tuple[float, int], ...] = ()


def steady(minutes: int, **minute: Any) -> list[Minute]:
    """``minutes`` identical minutes."""
    return [Minute(**minute)] * minutes


@dataclass
class Traffic:
    """Per-minute series with prefix sums, so a 3-day window costs what a 5-minute one does."""

    minutes: Sequence[Minute]
    _sums: dict[str, list[float]] = field(init=False, default_factory=dict)
    _latency_sums: dict[float, list[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        columns = {
            "RequestCount": [float(m.requests) for m in self.minutes],
            "HTTPCode_ELB_5XX_Count": [float(m.elb_5xx) for m in self.minutes],
            "HTTPCode_Target_5XX_Count": [float(m.target_5xx) for m in self.minutes],
        }
        self._sums = {k: [0.0, *itertools.accumulate(v)] for k, v in columns.items()}
        speeds = sorted({s for m in self.minutes for s, _ in m.latencies})
        for speed in speeds:
            counts = [sum(n for s, n in m.latencies if s == speed) for m in self.minutes]
            self._latency_sums[speed] = [0, *itertools.accumulate(counts)]

    def _window(self, start: int, end: int) -> tuple[int, int]:
        return max(start, 0), max(min(end, len(self.minutes)), 0)

    def stat(self, metric: str, stat: str, start: int, end: int) -> float | None:
        """``stat`` of ``metric`` over minutes ``[start, end)``; ``None``: no data."""
        start, end = self._window(start, end)
        if end <= start:
            return None
        if stat == "Sum":
            if metric not in self._sums:
                raise UnsupportedError(f"metric {metric}")
            sums = self._sums[metric]
            summed = sums[end] - sums[start]
            # RequestCount and the 5xx counts are published only for minutes that had some.
            return summed if summed > 0 else None
        rank = re.fullmatch(r"PR\(:([0-9.]+)\)", stat)
        if rank and metric == "TargetResponseTime":
            threshold = float(rank.group(1))
            within = total = 0
            for speed, counts in self._latency_sums.items():
                count = counts[end] - counts[start]
                total += count
                within += count if speed <= threshold else 0  # upper bound inclusive
            return 100.0 * within / total if total else None
        raise UnsupportedError(f"statistic {stat} of {metric}")


# ---- expressions -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/(),]))"
)


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    text = expression.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise UnsupportedError(f"cannot read {text[position:]!r} in {expression!r}")
        tokens.append(match.group(match.lastgroup or ""))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over ``+ - * /``, unary minus, parentheses, numbers, ids, FILL."""

    def __init__(self, expression: str, values: Mapping[str, float | None]) -> None:
        self.tokens = _tokens(expression)
        self.position = 0
        self.values = values
        self.expression = expression

    def parse(self) -> float | None:
        value = self._sum()
        if self.position != len(self.tokens):
            raise UnsupportedError(
                f"trailing {self.tokens[self.position :]} in {self.expression!r}"
            )
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token != expected):
            raise UnsupportedError(f"expected {expected or 'more'} in {self.expression!r}")
        self.position += 1
        return token

    def _sum(self) -> float | None:
        value = self._product()
        while self._peek() in ("+", "-"):
            op, right = self._take(), self._product()
            value = (
                None
                if value is None or right is None
                else (value + right if op == "+" else value - right)
            )
        return value

    def _product(self) -> float | None:
        value = self._unary()
        while self._peek() in ("*", "/"):
            op, right = self._take(), self._unary()
            if value is None or right is None:
                value = None
            elif op == "*":
                value = value * right
            else:
                value = None if right == 0 else value / right  # no datapoint, as CloudWatch
        return value

    def _unary(self) -> float | None:
        if self._peek() == "-":
            self._take()
            value = self._unary()
            return None if value is None else -value
        return self._atom()

    def _atom(self) -> float | None:
        token = self._take()
        if token == "(":
            value = self._sum()
            self._take(")")
            return value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if token == "FILL":
            self._take("(")
            value = self._sum()
            self._take(",")
            fill = self._sum()
            self._take(")")
            return fill if value is None else value
        if re.fullmatch(r"[A-Z_]+", token):
            raise UnsupportedError(f"function {token} in {self.expression!r}")
        if token not in self.values:
            raise UnsupportedError(f"unknown id {token} in {self.expression!r}")
        return self.values[token]


def evaluate_expression(expression: str, values: Mapping[str, float | None]) -> float | None:
    """The value of a metric-math ``expression`` over one period's ``values`` by metric id
    (``None``: no data)."""
    return _Parser(expression, values).parse()


# ---- alarms ----------------------------------------------------------------------------

_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class MetricMathAlarm:
    """One rendered ``AWS::CloudWatch::Alarm`` with ``Metrics``."""

    name: str
    properties: Mapping[str, Any]

    @property
    def period_minutes(self) -> int:
        periods = {int(m["MetricStat"]["Period"]) for m in self._stats}
        if len(periods) != 1 or next(iter(periods)) % 60:
            raise UnsupportedError(f"{self.name}: periods {periods}")
        return next(iter(periods)) // 60

    @property
    def evaluation_periods(self) -> int:
        return int(self.properties["EvaluationPeriods"])

    @property
    def window_minutes(self) -> int:
        """How far back the alarm looks: period x evaluation periods."""
        return self.period_minutes * self.evaluation_periods

    @property
    def expression(self) -> str:
        (returned,) = [m for m in self.properties["Metrics"] if str(m.get("ReturnData")) == "true"]
        return str(returned["Expression"])

    @property
    def _stats(self) -> list[Mapping[str, Any]]:
        return [m for m in self.properties["Metrics"] if "MetricStat" in m]

    def value(self, traffic: Traffic, start: int, end: int) -> float | None:
        """The expression over minutes ``[start, end)``."""
        values = {
            str(m["Id"]): traffic.stat(
                str(m["MetricStat"]["Metric"]["MetricName"]),
                str(m["MetricStat"]["Stat"]),
                start,
                end,
            )
            for m in self._stats
        }
        return evaluate_expression(self.expression, values)

    def in_alarm(self, traffic: Traffic, minute: int) -> bool:
        """The alarm's state when evaluated just after ``minute`` (0-based) ended."""
        if self.properties.get("TreatMissingData") != "notBreaching":
            raise UnsupportedError(f"{self.name}: TreatMissingData")
        compare = _COMPARE[str(self.properties["ComparisonOperator"])]
        threshold = float(self.properties["Threshold"])
        end, period = minute + 1, self.period_minutes
        breaching = 0
        for k in range(self.evaluation_periods):
            value = self.value(traffic, end - (k + 1) * period, end - k * period)
            breaching += value is not None and compare(value, threshold)
        return breaching >= int(self.properties.get("DatapointsToAlarm", self.evaluation_periods))


@dataclass(frozen=True)
class CompositeAlarm:
    """One rendered ``AWS::CloudWatch::CompositeAlarm``; its rule names its children."""

    name: str
    properties: Mapping[str, Any]
    children: tuple[str, ...]
    all_of: bool


@dataclass(frozen=True)
class SiteAlarms:
    """The rendered template's metric-math and composite alarms, by alarm name."""

    metric: Mapping[str, MetricMathAlarm]
    composite: Mapping[str, CompositeAlarm]

    @classmethod
    def render(cls, resolver: Resolver, prefix: str = "") -> SiteAlarms:
        """The alarms of ``resolver``'s template whose name starts with ``prefix``."""
        resources = resolver.template["Resources"]
        names: dict[str, str] = {}
        rendered: dict[str, tuple[str, dict[str, Any]]] = {}
        for logical_id, resource in resources.items():
            if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                if not resolver.exists(logical_id):
                    continue
                properties = resolver.value(resource["Properties"])
                names[logical_id] = properties["AlarmName"]
                rendered[logical_id] = (resource["Type"], properties)
        metric, composite = {}, {}
        for logical_id, (kind, properties) in rendered.items():
            name = names[logical_id]
            if not name.startswith(prefix):
                continue
            if kind == "AWS::CloudWatch::Alarm":
                if "Metrics" not in properties:
                    continue  # a plain metric alarm: not what this evaluator is for
                metric[name] = MetricMathAlarm(name, properties)
                continue
            rule = str(properties["AlarmRule"])
            # Ref to an alarm is its name; the resolver renders a resource as <LogicalId>.
            terms = re.split(r" (AND|OR) ", rule)
            operators = set(terms[1::2])
            if len(operators) > 1:
                raise UnsupportedError(f"{name}: mixed AND/OR in {rule!r}")
            children = []
            for term in terms[0::2]:
                found = re.fullmatch(r'ALARM\("?<?([^">]+)>?"?\)', term.strip())
                if not found:
                    raise UnsupportedError(f"{name}: {term!r}")
                children.append(names.get(found.group(1), found.group(1)))
            composite[name] = CompositeAlarm(
                name, properties, tuple(children), all_of=operators != {"OR"}
            )
        return cls(metric, composite)

    def in_alarm(self, name: str, traffic: Traffic, minute: int) -> bool:
        if name in self.composite:
            alarm = self.composite[name]
            states = (self.in_alarm(child, traffic, minute) for child in alarm.children)
            return all(states) if alarm.all_of else any(states)
        return self.metric[name].in_alarm(traffic, minute)

    def first_alarm(self, name: str, traffic: Traffic, minutes: Iterable[int]) -> int | None:
        """The first of ``minutes`` at which ``name`` is in ALARM, or ``None``."""
        return next((m for m in minutes if self.in_alarm(name, traffic, m)), None)
