"""Least-privilege lint of the IAM policies in our CloudFormation templates, with parliament.

cfn-lint checks that a policy is well formed; it does not know which actions exist or which
resource types an action takes. parliament (duo-labs) does, from its bundled copy of the IAM
service reference, so it catches ``s3:*`` on ``*``, a misspelt action and an action granted
on an ARN it can never apply to. parliament only reads concrete JSON policies, so this module
pulls every identity policy out of a template and resolves the intrinsic functions in it with
fake but realistic values (account ``123456789012``, region ``us-east-1``, ARNs shaped like
the ones CloudFormation returns), then hands each document to parliament.

Findings someone has judged acceptable go in ``infra/iam_allowlist.yaml``, each with a reason.

Run ``.venv/bin/python -m infra.iam_lint infra/cloudformation/*.yaml``; it exits 1 while an
unsuppressed finding at or above ``--min-severity`` remains.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import decode

INFRA = Path(__file__).resolve().parent
ALLOWLIST = INFRA / "iam_allowlist.yaml"
SEVERITIES = ("MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")  # parliament's order

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
STACK_NAME = "spotops-dev-stack"
_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
_NO_VALUE = object()  # what ``Ref: AWS::NoValue`` resolves to; dropped from lists and maps
_PSEUDO: dict[str, Any] = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/"
    "51af3dc0-da77-11e4-872e-1234567db123",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
    "AWS::NoValue": _NO_VALUE,
}

# What Ref and Fn::GetAtt return, by resource type: (property holding the name, Ref pattern,
# {attribute: pattern}). Patterns follow the CloudFormation "Return values" pages; {name} is
# the name property when set, else the logical ID in lower case. A type not listed here
# resolves Ref to the name and Arn to arn:<partition>:<service>:<region>:<account>:<name>.
_ARN = "arn:{partition}:"
_RESOURCES: dict[str, tuple[str | None, str, dict[str, str]]] = {
    "AWS::DynamoDB::Table": (
        "TableName",
        "{name}",
        {
            "Arn": _ARN + "dynamodb:{region}:{account}:table/{name}",
            "StreamArn": _ARN + "dynamodb:{region}:{account}:table/{name}/stream/2026-01-01T00:00",
        },
    ),
    "AWS::SQS::Queue": (
        "QueueName",
        "https://sqs.{region}.amazonaws.com/{account}/{name}",
        {"Arn": _ARN + "sqs:{region}:{account}:{name}", "QueueName": "{name}"},
    ),
    "AWS::SNS::Topic": (
        "TopicName",
        _ARN + "sns:{region}:{account}:{name}",
        {"TopicArn": _ARN + "sns:{region}:{account}:{name}", "TopicName": "{name}"},
    ),
    "AWS::IAM::Role": ("RoleName", "{name}", {"Arn": _ARN + "iam::{account}:role/{name}"}),
    "AWS::IAM::User": ("UserName", "{name}", {"Arn": _ARN + "iam::{account}:user/{name}"}),
    "AWS::IAM::Group": ("GroupName", "{name}", {"Arn": _ARN + "iam::{account}:group/{name}"}),
    "AWS::IAM::ManagedPolicy": (
        "ManagedPolicyName",
        _ARN + "iam::{account}:policy/{name}",
        {"PolicyArn": _ARN + "iam::{account}:policy/{name}"},
    ),
    "AWS::SSM::Parameter": ("Name", "{name}", {}),
    "AWS::SecretsManager::Secret": (
        "Name",
        _ARN + "secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
        {"Id": _ARN + "secretsmanager:{region}:{account}:secret:{name}-AbCdEf"},
    ),
    # Real log group ARNs end in ":*" (all streams); moto returns them without it.
    "AWS::Logs::LogGroup": (
        "LogGroupName",
        "{name}",
        {"Arn": _ARN + "logs:{region}:{account}:log-group:{name}:*"},
    ),
    "AWS::S3::Bucket": ("BucketName", "{name}", {"Arn": _ARN + "s3:::{name}"}),
    "AWS::KMS::Key": (
        None,
        _KEY_ID,
        {"Arn": _ARN + "kms:{region}:{account}:key/" + _KEY_ID, "KeyId": _KEY_ID},
    ),
    "AWS::KMS::Alias": ("AliasName", "{name}", {}),
    "AWS::Lambda::Function": (
        "FunctionName",
        "{name}",
        {"Arn": _ARN + "lambda:{region}:{account}:function:{name}"},
    ),
    "AWS::ECR::Repository": (
        "RepositoryName",
        "{name}",
        {
            "Arn": _ARN + "ecr:{region}:{account}:repository/{name}",
            "RepositoryUri": "{account}.dkr.ecr.{region}.amazonaws.com/{name}",
        },
    ),
    "AWS::ECS::Cluster": (
        "ClusterName",
        "{name}",
        {"Arn": _ARN + "ecs:{region}:{account}:cluster/{name}"},
    ),
    "AWS::ECS::Service": (
        "ServiceName",
        _ARN + "ecs:{region}:{account}:service/cluster/{name}",
        {"ServiceArn": _ARN + "ecs:{region}:{account}:service/cluster/{name}", "Name": "{name}"},
    ),
    "AWS::ECS::TaskDefinition": (
        "Family",
        _ARN + "ecs:{region}:{account}:task-definition/{name}:1",
        {"TaskDefinitionArn": _ARN + "ecs:{region}:{account}:task-definition/{name}:1"},
    ),
    "AWS::Events::Rule": (
        "Name",
        "{name}",
        {"Arn": _ARN + "events:{region}:{account}:rule/{name}"},
    ),
    "AWS::StepFunctions::StateMachine": (
        "StateMachineName",
        _ARN + "states:{region}:{account}:stateMachine:{name}",
        {"Arn": _ARN + "states:{region}:{account}:stateMachine:{name}", "Name": "{name}"},
    ),
    "AWS::CloudWatch::Alarm": (
        "AlarmName",
        "{name}",
        {"Arn": _ARN + "cloudwatch:{region}:{account}:alarm:{name}"},
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (
        "Name",
        _ARN + "elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/50dc6c495c0c9188",
        {"LoadBalancerFullName": "app/{name}/50dc6c495c0c9188", "LoadBalancerName": "{name}"},
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (
        "Name",
        _ARN + "elasticloadbalancing:{region}:{account}:targetgroup/{name}/73e2d6bc24d8a067",
        {"TargetGroupFullName": "targetgroup/{name}/73e2d6bc24d8a067", "TargetGroupName": "{name}"},
    ),
}

# Parameters named <Something>Arn with no default: the word in the name picks the ARN shape.
_ARN_HINTS = (
    ("role", _ARN + "iam::{account}:role/{name}"),
    ("topic", _ARN + "sns:{region}:{account}:{name}"),
    ("queue", _ARN + "sqs:{region}:{account}:{name}"),
    ("table", _ARN + "dynamodb:{region}:{account}:table/{name}"),
    ("secret", _ARN + "secretsmanager:{region}:{account}:secret:{name}-AbCdEf"),
    ("key", _ARN + "kms:{region}:{account}:key/" + _KEY_ID),
    ("layer", _ARN + "lambda:{region}:{account}:layer:{name}:1"),
)

# Resource types that carry identity policies, and the properties that hold them. Trust
# policies (AssumeRolePolicyDocument) are left out: they have no Resource element, so
# parliament reports every one as MALFORMED.
_POLICY_TYPES = {
    "AWS::IAM::Role",
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::RolePolicy",
    "AWS::IAM::UserPolicy",
    "AWS::IAM::GroupPolicy",
}
_POLICY_PROPERTIES = ("Policies", "PolicyName", "ManagedPolicyName", "PolicyDocument")


@contextmanager
def _pkg_resources_for_parliament() -> Iterator[None]:
    """Lend parliament the one ``pkg_resources`` function it calls, only while it imports.

    Every parliament release (up to 1.6.4) finds its data files with
    ``pkg_resources.resource_filename`` at import time, and setuptools 82 removed
    ``pkg_resources`` (duo-labs/parliament#247). The stand-in is removed again right after,
    so nothing else in the process sees it.
    """
    if find_spec("pkg_resources") is not None:
        yield
        return
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(files(package) / name)  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        yield
    finally:
        sys.modules.pop("pkg_resources", None)


with _pkg_resources_for_parliament():
    import parliament


class IamLintError(Exception):
    """A template or the allow-list cannot be checked; the message says which and why."""


class UnsupportedIntrinsicError(IamLintError):
    """A policy uses an intrinsic function this module cannot resolve."""


class AllowlistError(IamLintError):
    """An allow-list entry is malformed (no reason, unknown issue, unknown key...)."""


@dataclass(frozen=True)
class PolicyDocument:
    """One identity policy of a template, with its intrinsics resolved.

    ``label`` is ``<LogicalId>/<PolicyName>`` (``<LogicalId>`` for an unnamed managed
    policy). When an ``Fn::If`` makes the same policy differ, each variant is labelled
    with the conditions that produce it, e.g. ``TaskRole/exec (when not IsProd)``.
    """

    label: str
    document: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One parliament finding on one policy.

    ``subjects`` are the actions or resources the finding names; the allow-list matches its
    ``match`` glob against them. ``location`` is parliament's own (line and column refer to
    the resolved JSON document, not the template).
    """

    label: str
    severity: str
    issue: str
    title: str
    detail: str
    subjects: tuple[str, ...] = ()
    location: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AllowEntry:
    """A finding judged acceptable: ``issue``, optional ``label`` and ``match`` globs, a reason."""

    issue: str
    reason: str
    label: str = "*"
    match: str | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> AllowEntry:
        """Validate one entry of the allow-list file; raise ``AllowlistError`` naming ``where``."""
        if not isinstance(raw, dict):
            raise AllowlistError(f"{where}: expected a mapping, not {raw!r}")
        unknown = set(raw) - {"issue", "reason", "label", "match"}
        if unknown:
            raise AllowlistError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        issue = str(raw.get("issue") or "").upper()
        if issue not in parliament.config:
            raise AllowlistError(f"{where}: issue {raw.get('issue')!r} is not a parliament issue")
        reason = raw.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise AllowlistError(f"{where}: every entry needs a reason saying why it is acceptable")
        match = raw.get("match")
        return cls(issue, reason, str(raw.get("label", "*")), None if match is None else str(match))

    def allows(self, finding: Finding) -> bool:
        """Whether this entry covers ``finding``: same issue, label glob and, with ``match``,
        every action/resource the finding names (so it cannot hide an unrelated one)."""
        if finding.issue != self.issue or not fnmatch.fnmatchcase(finding.label, self.label):
            return False
        if self.match is None:
            return True
        pattern = self.match.lower()
        subjects = finding.subjects
        return bool(subjects) and all(fnmatch.fnmatchcase(s.lower(), pattern) for s in subjects)


@dataclass(frozen=True)
class TemplateReport:
    """The outcome for one template: how many policies, what remains, what was allowed."""

    template: Path
    policies: int
    findings: list[Finding]
    allowed: list[Finding]


class _Resolver:
    """Evaluates intrinsic functions with fake values, for one choice of condition values."""

    def __init__(self, template: Mapping[str, Any], conditions: Mapping[str, bool]) -> None:
        self._parameters: Mapping[str, Any] = template.get("Parameters") or {}
        self._resources: Mapping[str, Any] = template.get("Resources") or {}
        self._mappings: Mapping[str, Any] = template.get("Mappings") or {}
        self._conditions = conditions
        self._naming: set[str] = set()  # resources whose name is being resolved (cycle guard)

    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every intrinsic replaced and ``AWS::NoValue`` dropped."""
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref" or key.startswith("Fn::"):
                    return self._call(key, arg)
            pairs = ((key, self.resolve(item)) for key, item in value.items())
            return {key: item for key, item in pairs if item is not _NO_VALUE}
        return value

    def _text(self, value: Any) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool) or not isinstance(resolved, str | int | float):
            raise IamLintError(f"expected a string, got {resolved!r} from {value!r}")
        return str(resolved)

    def _call(self, function: str, arg: Any) -> Any:
        if function == "Ref":
            return self._ref(self._text(arg))
        if function == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self._resource(str(logical_id), self._text(attribute))
        if function == "Fn::Sub":
            return self._sub(arg)
        if function == "Fn::Join":
            delimiter, parts = arg
            return self._text(delimiter).join(self._text(part) for part in self.resolve(parts))
        if function == "Fn::If":
            condition, if_true, if_false = arg
            return self.resolve(if_true if self._conditions.get(condition, True) else if_false)
        if function == "Fn::ImportValue":
            # The value lives in another stack; a token that names the export reads well in a
            # finding (and, used as a whole Resource, parliament reports it as INVALID_ARN).
            return f"imported-{self._text(arg)}"
        if function == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self._text(index))]
        if function == "Fn::Split":
            delimiter, text = arg
            return self._text(text).split(self._text(delimiter))
        if function == "Fn::FindInMap":
            name, top, second = (self._text(part) for part in arg[:3])
            return self.resolve(self._mappings[name][top][second])
        if function == "Fn::GetAZs":
            return [f"{REGION}{zone}" for zone in "abc"]
        raise UnsupportedIntrinsicError(f"{function} is not supported in a policy")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        values = {name: self._text(value) for name, value in variables.items()}

        def one(name: str) -> str:
            if name.startswith("!"):  # ${!Literal} stays ${Literal}, e.g. ${!aws:username}
                return "${" + name[1:] + "}"
            if name in values:
                return values[name]
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._text(self._resource(logical_id, attribute))
            return self._text(self._ref(name))

        out, rest = [], str(text)
        while (start := rest.find("${")) >= 0 and (end := rest.find("}", start)) >= 0:
            out += [rest[:start], one(rest[start + 2 : end])]
            rest = rest[end + 1 :]
        return "".join([*out, rest])

    def _ref(self, name: str) -> Any:
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self._parameters:
            spec = self._parameters[name] or {}
            default = spec.get("Default")
            # Our optional inputs default to "" (see STYLE.md): treat that as "not given".
            value = _token(name) if default is None or str(default) == "" else str(default)
            kind = str(spec.get("Type", "String"))
            return (
                value.split(",")
                if kind == "CommaDelimitedList" or kind.startswith("List<")
                else value
            )
        return self._resource(name, None)

    def _resource(self, logical_id: str, attribute: str | None) -> str:
        """Ref (``attribute`` None) or Fn::GetAtt of a resource, shaped by its type."""
        resource = self._resources.get(logical_id)
        if not isinstance(resource, dict):
            raise IamLintError(f"{logical_id} is neither a parameter nor a resource")
        kind = str(resource.get("Type", ""))
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
        name_property, ref, attributes = _RESOURCES.get(kind, (None, "{name}", {}))
        name = self._name(logical_id, resource, name_property)
        if attribute is None:
            pattern = ref
        elif attribute in attributes:
            pattern = attributes[attribute]
        elif attribute == "Arn":
            pattern = _ARN + service + ":{region}:{account}:{name}"
        else:
            pattern = "{name}-" + attribute.lower()
        return pattern.format(partition=PARTITION, region=REGION, account=ACCOUNT, name=name)

    def _name(self, logical_id: str, resource: Mapping[str, Any], name_property: str | None) -> str:
        raw = (resource.get("Properties") or {}).get(name_property) if name_property else None
        if raw is None:
            return logical_id.lower()
        if logical_id in self._naming:
            raise IamLintError(f"the name of {logical_id} refers to itself")
        self._naming.add(logical_id)
        try:
            return self._text(raw)
        finally:
            self._naming.discard(logical_id)


def _token(parameter: str) -> str:
    """A stand-in for a parameter without a default: its name in lower case or, for a name
    like ``TaskRoleArn``, an ARN of the kind the name says (else parliament would report
    every such parameter used as a Resource as INVALID_ARN)."""
    lowered = parameter.lower()
    if not lowered.endswith("arn"):
        return lowered
    name = lowered.removesuffix("arn")
    for word, pattern in _ARN_HINTS:
        if word in name:
            return pattern.format(partition=PARTITION, region=REGION, account=ACCOUNT, name=name)
    return lowered


def _if_conditions(value: Any) -> set[str]:
    """The condition names of every ``Fn::If`` inside ``value``."""
    if isinstance(value, list):
        return set().union(*(_if_conditions(item) for item in value))
    if not isinstance(value, dict):
        return set()
    found = set().union(*(_if_conditions(item) for item in value.values()))
    branch = value.get("Fn::If")
    if isinstance(branch, list) and branch:
        found.add(str(branch[0]))
    return found


def _as_document(raw: Any, label: str) -> dict[str, Any]:
    if isinstance(raw, str):  # a PolicyDocument may be given as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise IamLintError(f"{label}: PolicyDocument is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise IamLintError(f"{label}: PolicyDocument is not a mapping")
    return raw


def _named_documents(
    logical_id: str, properties: Mapping[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for policy in properties.get("Policies") or []:
        label = f"{logical_id}/{policy.get('PolicyName', '?')}"
        yield label, _as_document(policy.get("PolicyDocument"), label)
    if "PolicyDocument" in properties:
        name = properties.get("PolicyName") or properties.get("ManagedPolicyName")
        label = f"{logical_id}/{name}" if name else logical_id
        yield label, _as_document(properties["PolicyDocument"], label)


def extract_policies(template: Mapping[str, Any]) -> list[PolicyDocument]:
    """Every identity policy in a parsed template, resolved, once per distinct variant.

    Each ``Fn::If`` is checked both ways: the policies of a resource are resolved for every
    combination of the conditions they use (conditions are taken as independent, so a
    combination CloudFormation could never produce may be checked too).

    Parameters
    ----------
    template
        A template as ``load_template`` returns it (short tags already expanded).

    Returns
    -------
    list[PolicyDocument]
        In template order; trust policies are not included.

    Raises
    ------
    IamLintError
        A policy refers to something undeclared or uses an unsupported intrinsic.

    Example
    -------
    >>> network = load_template(Path("infra/cloudformation/network.yaml"))
    >>> [policy.label for policy in extract_policies(network)]
    ['FlowLogRole/write-flow-logs']
    """
    found: list[PolicyDocument] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") not in _POLICY_TYPES:
            continue
        properties = resource.get("Properties") or {}
        wanted = {key: value for key, value in properties.items() if key in _POLICY_PROPERTIES}
        names = sorted(_if_conditions(wanted))
        variants: dict[str, list[tuple[dict[str, Any], dict[str, bool]]]] = {}
        for values in itertools.product((True, False), repeat=len(names)):
            conditions = dict(zip(names, values, strict=True))
            resolved = _Resolver(template, conditions).resolve(wanted)
            for label, document in _named_documents(logical_id, resolved):
                seen = variants.setdefault(label, [])
                if all(document != other for other, _ in seen):
                    seen.append((document, conditions))
        for label, documents in variants.items():
            # Name only the conditions that tell this policy's variants apart.
            telling = [n for n in names if len({when[n] for _, when in documents}) > 1]
            for document, when in documents:
                shown = ", ".join(n if when[n] else f"not {n}" for n in telling)
                found.append(
                    PolicyDocument(f"{label} (when {shown})" if shown else label, document)
                )
    return found


def _describe(detail: Any, location: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Turn parliament's detail (string, list of actions, list of {action, required_format})
    into one readable line, and collect the actions/resources it names."""
    subjects: list[str] = []
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                subjects.append(str(item.get("action", "")))
                parts.append(
                    f"{item.get('action')} needs a resource like {item.get('required_format')}"
                )
            else:
                subjects.append(str(item))
                parts.append(str(item))
        shown = parts if len(parts) <= 5 else [*parts[:5], f"... ({len(parts) - 5} more)"]
        text = "; ".join(shown)
    else:
        text = "" if detail is None else str(detail)
    where = location.get("string")
    if isinstance(where, str):
        subjects.append(where)
        if where not in text:
            text = f"{text}: {where}" if text else where
    return text, tuple(subjects)


def check_policy(policy: PolicyDocument) -> list[Finding]:
    """Run parliament on one resolved policy (no private or community auditors).

    Example
    -------
    >>> doc = {"Version": "2012-10-17", "Statement": [
    ...     {"Effect": "Allow", "Action": "ecs:DescribeServicez", "Resource": "*"}]}
    >>> [f.issue for f in check_policy(PolicyDocument("R/p", doc))]
    ['UNKNOWN_ACTION']
    """
    analyzed = parliament.analyze_policy_string(
        json.dumps(policy.document),
        filepath=policy.label,
        ignore_private_auditors=True,  # else it imports any .py in its package's private_auditors/
        include_community_auditors=False,
    )
    findings = []
    for raw in analyzed.findings:
        parliament.enhance_finding(raw)  # adds severity and title from parliament's config.yaml
        detail, subjects = _describe(raw.detail, raw.location)
        findings.append(
            Finding(
                label=policy.label,
                severity=raw.severity,
                issue=raw.issue,
                title=raw.title,
                detail=detail or raw.title,
                subjects=subjects,
                location=dict(raw.location),
            )
        )
    return findings


def load_template(path: Path) -> dict[str, Any]:
    """Parse a JSON or YAML template the way cfn-lint does (short tags expanded)."""
    template, errors = decode(str(path))
    if errors or not isinstance(template, dict):
        problem = "; ".join(str(error) for error in errors) or "not a mapping"
        raise IamLintError(f"{path} is not a readable template: {problem}")
    return template


def load_allowlist(path: Path = ALLOWLIST) -> list[AllowEntry]:
    """Read the allow-list; raise ``AllowlistError`` if any entry is malformed."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AllowlistError(f"cannot read {path}: {exc}") from exc
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise AllowlistError(f"{path}: expected a list of entries")
    return [AllowEntry.parse(item, f"{path} entry {number}") for number, item in enumerate(raw, 1)]


def lint_template(
    path: Path, allowlist: Sequence[AllowEntry] = (), min_severity: str = "LOW"
) -> TemplateReport:
    """Check every identity policy of one template file.

    Parameters
    ----------
    path
        A CloudFormation template, JSON or YAML.
    allowlist
        Entries from ``load_allowlist``; a finding any of them allows is set aside.
    min_severity
        Findings below this parliament severity are ignored (neither reported nor allowed).

    Returns
    -------
    TemplateReport

    Raises
    ------
    IamLintError
        The template cannot be read or a policy cannot be resolved.
    """
    threshold = SEVERITIES.index(min_severity.upper())
    policies = extract_policies(load_template(path))
    findings, allowed = [], []
    for policy in policies:
        for finding in check_policy(policy):
            if SEVERITIES.index(finding.severity) < threshold:
                continue
            if any(entry.allows(finding) for entry in allowlist):
                allowed.append(finding)
            else:
                findings.append(finding)
    return TemplateReport(path, len(policies), findings, allowed)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print remaining findings, a summary on stderr; exit 1 if any remain."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.iam_lint",
        description="Check the IAM policies of CloudFormation templates with parliament.",
    )
    parser.add_argument("templates", nargs="+", type=Path, metavar="TEMPLATE")
    parser.add_argument("--min-severity", default="LOW", type=str.upper, choices=SEVERITIES[1:])
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        allowlist = load_allowlist(args.allowlist)
        reports = [lint_template(path, allowlist, args.min_severity) for path in args.templates]
    except IamLintError as exc:
        print(f"iam_lint: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        for finding in report.findings:
            where = f"{report.template}: {finding.label}"
            print(f"{where}: {finding.severity} {finding.issue} {finding.detail}")
    policies = sum(report.policies for report in reports)
    remaining = sum(len(report.findings) for report in reports)
    allowed = sum(len(report.allowed) for report in reports)
    print(f"{policies} policies checked, {remaining} findings, {allowed} allowed", file=sys.stderr)
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
