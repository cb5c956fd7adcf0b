"""AWS's documented limits that the local emulator does not enforce, and the checks made
before every call that could break one.

moto accepts a 83 KB inline template, a 5 KB Lambda environment or a 2,000-character alarm
description; AWS refuses each. So every limit lives here once, with its source, and is
checked twice: by ``spotops`` before the call (a :class:`~spotops.errors.LimitError` naming
the limit, the measured size and the fix, before anything changes), and by the strict layer
in front of the emulator's clients (:mod:`spotops.local.limits`), so that a test or
``make demo`` fails on a breach although moto accepts it.

Sizes in a template are measured as CloudFormation will send them: ``Fn::If`` resolved for
the stage's parameters, ``Ref`` and ``Fn::Sub`` of parameters replaced by their values,
pseudo parameters by their longest plausible values; a reference to another resource
(``Fn::GetAtt``, ``Fn::ImportValue``) is counted as written, which for ARNs is shorter than
the value: those sizes keep a margin (:data:`MARGIN`) below the limit in ``make lint``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spotops.errors import ConfigError, LimitError


@dataclass(frozen=True)
class Limit:
    """One documented AWS limit."""

    key: str
    what: str
    maximum: int
    unit: str
    source: str
    fix: str

    def breach(self, measured: int, subject: str) -> Breach | None:
        """A :class:`Breach` when ``measured`` is over the limit (at the limit is fine)."""
        return Breach(self, measured, subject) if measured > self.maximum else None


@dataclass(frozen=True)
class Breach:
    """A measured size over a limit, with what to do."""

    limit: Limit
    measured: int
    subject: str

    def __str__(self) -> str:
        return (
            f"{self.subject}: {self.measured:,} {self.limit.unit}, over AWS's limit of "
            f"{self.limit.maximum:,} {self.limit.unit} for {self.limit.what} "
            f"({self.limit.source}). {self.limit.fix}"
        )


_CFN_QUOTAS = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html"
)
_IAM_QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
_LAMBDA_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"

TEMPLATE_BODY = Limit(
    "template-body",
    "a template sent inline (TemplateBody of CreateStack, UpdateStack, CreateChangeSet, "
    "ValidateTemplate)",
    51_200,
    "bytes",
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html",
    "Send it from S3 by TemplateURL (spotops deploy does so for every template over the limit).",
)
TEMPLATE_URL = Limit(
    "template-url",
    "a template read from S3 (TemplateURL)",
    1_000_000,
    "bytes",
    _CFN_QUOTAS,
    "Split the template (another stack joined by exports, or a nested stack).",
)
RESOURCES = Limit(
    "resources",
    "resources declared in one template",
    500,
    "resources",
    _CFN_QUOTAS,
    "Move resources into another stack joined by exports.",
)
OUTPUTS = Limit(
    "outputs",
    "outputs declared in one template",
    200,
    "outputs",
    _CFN_QUOTAS,
    "Drop outputs no one reads, or move resources and their outputs into another stack.",
)
PARAMETERS = Limit(
    "parameters",
    "parameters declared in one template",
    200,
    "parameters",
    _CFN_QUOTAS,
    "Derive values inside the template (Mappings, Conditions) instead of passing them.",
)
ROLE_INLINE_POLICIES = Limit(
    "role-inline-policies",
    "all inline policies of one IAM role together, whitespace not counted",
    10_240,
    "characters",
    _IAM_QUOTAS,
    "Merge statements, use wildcards within the stage's own name prefix, or move statements "
    "into a managed policy (6,144 characters each) attached to the role.",
)
MANAGED_POLICY = Limit(
    "managed-policy",
    "one IAM managed policy, whitespace not counted",
    6_144,
    "characters",
    _IAM_QUOTAS,
    "Split it into two managed policies.",
)
LAMBDA_ENVIRONMENT = Limit(
    "lambda-environment",
    "a Lambda function's environment variables, all together",
    4_096,
    "bytes",
    _LAMBDA_QUOTAS,
    "Move large or many settings into SSM parameters read at run time.",
)
LAMBDA_ZIP = Limit(
    "lambda-zip",
    "a Lambda deployment package (.zip), zipped",
    50 * 1024 * 1024,
    "bytes",
    _LAMBDA_QUOTAS,
    "Take dependencies out of the zip (the runtime's boto3, a layer) or ship a container image.",
)
LAMBDA_UNZIPPED = Limit(
    "lambda-unzipped",
    "a Lambda deployment package unzipped, with its layers",
    250 * 1024 * 1024,
    "bytes",
    _LAMBDA_QUOTAS,
    "Take dependencies out of the zip or ship a container image (10 GB).",
)
ALARM_DESCRIPTION = Limit(
    "alarm-description",
    "a CloudWatch AlarmDescription",
    1_024,
    "characters",
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
    "Shorten it: the runbook it links holds the detail.",
)
SSM_VALUE = Limit(
    "ssm-value",
    "an SSM parameter value (standard tier)",
    4_096,
    "characters",
    "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html",
    "Store less, or use the advanced tier (8 KB, charged).",
)
TASK_DEFINITION = Limit(
    "task-definition",
    "an ECS task definition",
    65_536,
    "bytes",
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html",
    "Move large settings (environment, secrets) out of the container definitions.",
)

ALL: tuple[Limit, ...] = (
    TEMPLATE_BODY,
    TEMPLATE_URL,
    RESOURCES,
    OUTPUTS,
    PARAMETERS,
    ROLE_INLINE_POLICIES,
    MANAGED_POLICY,
    LAMBDA_ENVIRONMENT,
    LAMBDA_ZIP,
    LAMBDA_UNZIPPED,
    ALARM_DESCRIPTION,
    SSM_VALUE,
    TASK_DEFINITION,
)

# How close to a limit `make lint` lets a measured size come (a share of the limit): the
# measure counts references to other resources as written, shorter than their values.
MARGIN = 0.9


def refuse(breaches: Iterable[Breach], *, before: str) -> None:
    """Raise one :class:`LimitError` listing every breach; return when there is none."""
    found = list(breaches)
    if found:
        raise LimitError(
            f"Refused before {before}, nothing was changed: "
            + " ".join(f"{breach}" for breach in found)
        )


# ---- measuring -------------------------------------------------------------------------


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def policy_size(document: Any) -> int:
    """Characters IAM counts for a policy: its JSON without any whitespace."""
    text = document if isinstance(document, str) else json.dumps(document)
    return len(re.sub(r"\s", "", text))


def environment_size(variables: Mapping[str, Any]) -> int:
    """Bytes Lambda counts for an environment: every key and value together."""
    return sum(utf8_size(str(key)) + utf8_size(_text(value)) for key, value in variables.items())


def zip_sizes(archive: bytes) -> tuple[int, int]:
    """``(zipped, unzipped)`` bytes of a deployment package."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return len(archive), sum(info.file_size for info in opened.infolist())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


# Longest plausible values of the pseudo parameters a template may reference.
_PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "ap-southeast-5",
    "AWS::Partition": "aws-us-gov",
    "AWS::URLSuffix": "amazonaws.com.cn",
    "AWS::StackName": "x" * 64,
    "AWS::StackId": "x" * 128,
    "AWS::NoValue": "",
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class _Resolver:
    """Turns template values into the text CloudFormation would send, as far as we can know
    it here: parameters and pseudo parameters resolved, other references as written."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        from spotops.stage.templates import TemplateLogic, effective_values, template_parameters

        self._values = effective_values(template_parameters(template), parameters)
        try:
            self._logic: Any = TemplateLogic(template, parameters)
        except ConfigError:
            self._logic = None

    def chosen(self, node: Any) -> Any:
        """``node`` with ``Fn::If`` resolved (both branches kept when it cannot be)."""
        if self._logic is None:
            return node
        try:
            return self._logic.choose(node)
        except ConfigError:
            return node

    def exists(self, resource: Mapping[str, Any]) -> bool:
        if self._logic is None:
            return True
        try:
            return bool(self._logic.exists(resource))
        except ConfigError:
            return True

    def text(self, node: Any) -> Any:
        """A JSON-like value with parameter references replaced by their values."""
        if isinstance(node, list):
            return [self.text(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((function, arg),) = node.items()
            if function == "Ref" and isinstance(arg, str):
                if arg in self._values:
                    return self._values[arg]
                if arg in _PSEUDO:
                    return _PSEUDO[arg]
            if function == "Fn::Sub":
                return self._sub(arg)
            if function == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
                parts = self.text(arg[1])
                if isinstance(parts, list):
                    return str(arg[0]).join(_text(part) for part in parts)
        return {key: self.text(value) for key, value in node.items()}

    def _sub(self, arg: Any) -> str:
        template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {name: _text(self.text(value)) for name, value in dict(variables).items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            if name in self._values:
                return self._values[name]
            if name in _PSEUDO:
                return _PSEUDO[name]
            return match.group(0)  # Resource.Attribute: counted as written

        return _SUB_VARIABLE.sub(replace, str(template))


# ---- checks over a template ---------------------------------------------------------------


def template_source_breaches(body: str, *, by_url: bool, subject: str) -> list[Breach]:
    """The template's own size, inline or from S3."""
    limit = TEMPLATE_URL if by_url else TEMPLATE_BODY
    found = limit.breach(utf8_size(body), subject)
    return [found] if found else []


@dataclass(frozen=True)
class Measure:
    """One measured size, against the limit it counts towards."""

    limit: Limit
    subject: str
    measured: int

    @property
    def share(self) -> float:
        return self.measured / self.limit.maximum

    def breach(self) -> Breach | None:
        return self.limit.breach(self.measured, self.subject)


def template_measures(
    template: Mapping[str, Any], parameters: Mapping[str, str], *, subject: str
) -> list[Measure]:
    """Every size a template's declarations and resources will have when deployed with
    ``parameters``: counts, each role's inline policies together, managed policies, function
    environments, alarm descriptions, SSM values, task definitions."""
    resolver = _Resolver(template, parameters)
    resources = template.get("Resources") or {}
    measures = [
        Measure(RESOURCES, subject, len(resources)),
        Measure(OUTPUTS, subject, len(template.get("Outputs") or {})),
        Measure(PARAMETERS, subject, len(template.get("Parameters") or {})),
    ]
    inline: dict[str, int] = {}
    for name, resource in resources.items():
        if not isinstance(resource, dict) or not resolver.exists(resource):
            continue
        kind = resource.get("Type", "")
        properties = resolver.text(resolver.chosen(resource.get("Properties") or {}))
        where = f"{subject} {name}"
        if kind == "AWS::IAM::Role":
            inline.setdefault(name, 0)
            for policy in properties.get("Policies") or []:
                inline[name] += policy_size(policy.get("PolicyDocument"))
        elif kind in {"AWS::IAM::Policy", "AWS::IAM::RolePolicy"}:
            # An inline policy of its own counts towards each role it is attached to.
            roles = properties.get("Roles") or [properties.get("RoleName")]
            for role in roles:
                target = role.get("Ref") if isinstance(role, dict) else None
                if isinstance(target, str) and target in resources:
                    size = policy_size(properties.get("PolicyDocument"))
                    inline[target] = inline.get(target, 0) + size
        elif kind == "AWS::IAM::ManagedPolicy":
            size = policy_size(properties.get("PolicyDocument"))
            measures.append(Measure(MANAGED_POLICY, where, size))
        elif kind in {"AWS::Lambda::Function", "AWS::Serverless::Function"}:
            variables = (properties.get("Environment") or {}).get("Variables") or {}
            measures.append(Measure(LAMBDA_ENVIRONMENT, where, environment_size(variables)))
        elif kind in {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"}:
            description = _text(properties.get("AlarmDescription", ""))
            measures.append(Measure(ALARM_DESCRIPTION, where, len(description)))
        elif kind == "AWS::SSM::Parameter" and properties.get("Tier", "Standard") == "Standard":
            measures.append(Measure(SSM_VALUE, where, len(_text(properties.get("Value", "")))))
        elif kind == "AWS::ECS::TaskDefinition":
            size = utf8_size(json.dumps(properties, separators=(",", ":")))
            measures.append(Measure(TASK_DEFINITION, where, size))
    measures += [
        Measure(ROLE_INLINE_POLICIES, f"{subject} {role}", size) for role, size in inline.items()
    ]
    return measures


def template_breaches(
    template: Mapping[str, Any], parameters: Mapping[str, str], *, subject: str
) -> list[Breach]:
    """Every limit :func:`template_measures` finds broken."""
    found = (m.breach() for m in template_measures(template, parameters, subject=subject))
    return [breach for breach in found if breach is not None]


def largest(measures: Iterable[Measure]) -> dict[str, Measure]:
    """The largest measure of each limit, by the limit's key."""
    top: dict[str, Measure] = {}
    for measure in measures:
        key = measure.limit.key
        if key not in top or measure.measured > top[key].measured:
            top[key] = measure
    return top
