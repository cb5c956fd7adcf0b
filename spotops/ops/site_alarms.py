"""The site stack's alarms and capacity provider strategy as its template declares them,
resolved against the deployed stack (its parameters and resources).

``spotops simulate alarm`` builds its event from the stage's real alarm (metric, threshold,
description with the runbook link; for the burn-rate alerts, composite alarms, the rule over
their windows); where the alarm itself is missing (the local emulator drops CloudWatch alarms
and the service's strategy) the target puts back exactly this. Only the intrinsic functions
these resources use are resolved: ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::If`` with the
template's conditions, and ``AWS::NoValue``; a ``Ref`` to an alarm is its name, as
CloudFormation resolves it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALARM_TYPE = "AWS::CloudWatch::Alarm"
COMPOSITE_TYPE = "AWS::CloudWatch::CompositeAlarm"
# What PutCompositeAlarm takes from an AWS::CloudWatch::CompositeAlarm's properties.
_COMPOSITE_ARGUMENTS = (
    "AlarmName",
    "AlarmDescription",
    "AlarmRule",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "ActionsSuppressor",
    "ActionsSuppressorWaitPeriod",
    "ActionsSuppressorExtensionPeriod",
)
# The alarms a composite rule names: ALARM("name"), OK(name), INSUFFICIENT_DATA("arn:...").
_RULE_CHILD = re.compile(r'\b(?:ALARM|OK|INSUFFICIENT_DATA)\(\s*"?([^")]+?)"?\s*\)')
# What PutMetricAlarm takes from an AWS::CloudWatch::Alarm's properties (its Tags aside:
# they say who owns the alarm, not what it watches).
_ALARM_ARGUMENTS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)
_NO_VALUE = object()


@dataclass(frozen=True)
class DeployedStack:
    """What resolves the template: parameter values and resources' physical ids."""

    parameters: Mapping[str, str]
    physical: Mapping[str, str]
    region: str
    account: str


def _get_att(stack: DeployedStack, logical: str, attribute: str) -> str:
    """The attributes the site's alarms use, derived from the resource's physical id (an
    ARN for load balancers, target groups and services)."""
    physical = stack.physical.get(logical, logical)
    if attribute == "LoadBalancerFullName":
        return physical.split(":loadbalancer/", 1)[-1]
    if attribute == "TargetGroupFullName":
        return physical.rsplit(":", 1)[-1]
    if attribute == "Name":
        return physical.rsplit("/", 1)[-1]
    return physical


class _Resolver:
    def __init__(self, template: Mapping[str, Any], stack: DeployedStack) -> None:
        self._conditions = template.get("Conditions", {})
        self._resources = template.get("Resources", {})
        self._stack = stack
        defaults = {
            name: str(spec.get("Default", ""))
            for name, spec in template.get("Parameters", {}).items()
        }
        self._values: dict[str, str] = {
            **defaults,
            **stack.parameters,
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account,
            "AWS::Partition": "aws",
        }

    def condition(self, name: str) -> bool:
        return bool(self.value(self._conditions[name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, Mapping):
            return node
        if len(node) != 1:
            return {
                k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not _NO_VALUE
            }
        ((key, arg),) = node.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return _NO_VALUE
            return self._ref(str(arg))
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return _get_att(self._stack, logical, attribute)
        if key == "Fn::If":
            name, yes, no = arg
            return self.value(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            left, right = (str(self.value(a)) for a in arg)
            return left == right
        if key == "Fn::Not":
            return not self.value(arg[0])
        if key == "Fn::And":
            return all(self.value(a) for a in arg)
        if key == "Fn::Or":
            return any(self.value(a) for a in arg)
        return {key: self.value(arg)}

    def _sub(self, arg: Any) -> str:
        text, extra = (arg[0], self.value(arg[1])) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return _get_att(self._stack, *name.split(".", 1))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, str(text))

    def _ref(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        resource = self._resources.get(name, {})
        named = resource.get("Properties", {}).get("AlarmName")
        if resource.get("Type") in (ALARM_TYPE, COMPOSITE_TYPE) and named is not None:
            # An alarm's Ref is its name; the template's, since the emulator's stack holds
            # no alarm to take a physical id from.
            return self.value(named)
        return self._stack.physical.get(name) or name

    def included(self, resource: Mapping[str, Any]) -> bool:
        return "Condition" not in resource or self.condition(resource["Condition"])


def alarm_definitions(
    template: Mapping[str, Any], stack: DeployedStack
) -> dict[str, dict[str, Any]]:
    """Every alarm the template creates for this stack, by name: PutMetricAlarm's arguments.

    Example
    -------
    >>> alarm_definitions(site_template, deployed)["spotops-dev-cpu-high"]["Threshold"]
    ... # doctest: +SKIP
    85
    """
    resolver = _Resolver(template, stack)
    found: dict[str, dict[str, Any]] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != ALARM_TYPE or not resolver.included(resource):
            continue
        properties = resolver.value(resource.get("Properties", {}))
        definition = {k: properties[k] for k in _ALARM_ARGUMENTS if k in properties}
        found[str(definition["AlarmName"])] = definition
    return found


def composite_alarm_definitions(
    template: Mapping[str, Any], stack: DeployedStack
) -> dict[str, dict[str, Any]]:
    """Every composite alarm the template creates for this stack (the burn-rate alerts), by
    name: PutCompositeAlarm's arguments, the rule naming its child alarms by name.

    Example
    -------
    >>> alerts = composite_alarm_definitions(site_template, deployed)  # doctest: +SKIP
    >>> rule_children(alerts["spotops-dev-slo-latency-fast-burn"]["AlarmRule"])  # doctest: +SKIP
    ['spotops-dev-slo-latency-fast-burn-long', 'spotops-dev-slo-latency-fast-burn-short']
    """
    resolver = _Resolver(template, stack)
    found: dict[str, dict[str, Any]] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != COMPOSITE_TYPE or not resolver.included(resource):
            continue
        properties = resolver.value(resource.get("Properties", {}))
        definition = {k: properties[k] for k in _COMPOSITE_ARGUMENTS if k in properties}
        found[str(definition["AlarmName"])] = definition
    return found


def rule_children(rule: str) -> list[str]:
    """The alarms a composite alarm's rule names, in the rule's order (names or ARNs as
    written)."""
    return _RULE_CHILD.findall(rule)


def composite_inputs(composites: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each alarm that feeds a composite alarm, by name, with the composite it feeds (the
    burn-rate windows and their alert)."""
    return {
        child.rsplit(":alarm:", 1)[-1]: name
        for name, definition in composites.items()
        for child in rule_children(str(definition.get("AlarmRule", "")))
    }


def service_strategy(
    template: Mapping[str, Any], stack: DeployedStack, service_logical_id: str = "Service"
) -> list[dict[str, Any]]:
    """The service's capacity provider strategy as UpdateService takes it (empty when the
    template declares none)."""
    resolver = _Resolver(template, stack)
    service = template.get("Resources", {}).get(service_logical_id, {})
    declared = resolver.value(service.get("Properties", {}).get("CapacityProviderStrategy", []))
    return [
        {
            "capacityProvider": str(item["CapacityProvider"]),
            "base": int(item.get("Base", 0)),
            "weight": int(item.get("Weight", 0)),
        }
        for item in declared or []
    ]
