"""What ``spotops verify`` reads from the account: plain facts, gathered with the clients it
is given, for the pure decisions of :mod:`spotops.proof.verify`.

Only reads here, plus the two calls a verification is made of: each ops function invoked
with a marked event (its dry-run path, forced by the marker) and one Slack message.
"""

from __future__ import annotations

import ast
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spotops.errors import NotDeployedError

# ---- stacks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StackFacts:
    """One stack: outputs, parameters, its resources (logical id -> (type, physical id))
    and its processed template's resources."""

    name: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]
    resources: Mapping[str, tuple[str, str]]
    template: Mapping[str, Any] = field(default_factory=dict)

    def physical(self, logical_id: str) -> str | None:
        found = self.resources.get(logical_id)
        return found[1] if found and found[1] else None

    def of_type(self, resource_type: str) -> dict[str, str]:
        """Logical id -> physical id of every resource of ``resource_type``."""
        return {
            logical: physical
            for logical, (kind, physical) in self.resources.items()
            if kind == resource_type and physical
        }


def read_stack(cfn: Any, name: str, stage: str, *, template: bool = False) -> StackFacts:
    """The stack's outputs, parameters and resources (and, when asked, its template as
    CloudFormation ran it: the Chalice package's SAM transform already applied).

    Raises
    ------
    NotDeployedError
        The stack does not exist.
    """
    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        raise NotDeployedError(
            f"Stack {name} does not exist: deploy the stage first with "
            f"`spotops deploy --stage {stage}`."
        ) from exc
    resources: dict[str, tuple[str, str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for summary in page["StackResourceSummaries"]:
            resources[str(summary["LogicalResourceId"])] = (
                str(summary["ResourceType"]),
                str(summary.get("PhysicalResourceId") or ""),
            )
    body: Mapping[str, Any] = {}
    if template:
        raw = cfn.get_template(StackName=name, TemplateStage="Processed")["TemplateBody"]
        body = raw if isinstance(raw, Mapping) else json.loads(raw)
    return StackFacts(
        name=name,
        outputs={o["OutputKey"]: str(o["OutputValue"]) for o in stack.get("Outputs", [])},
        parameters={
            p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in stack.get("Parameters", [])
        },
        resources=resources,
        template=body,
    )


# ---- flow 1: rules and schedules -------------------------------------------------------


@dataclass(frozen=True)
class RuleFacts:
    """One EventBridge rule of the ops stack and the function it should reach."""

    logical_id: str
    name: str
    function: str  # the physical name of the function the template targets ("" if none)
    function_arn: str
    exists: bool
    state: str = ""
    arn: str = ""
    schedule: bool = False
    targets: tuple[str, ...] = ()
    policy: Mapping[str, Any] | None = None  # the function's resource policy, None if none


def _targeted_function(template: Mapping[str, Any], rule_logical_id: str) -> str:
    """The logical id of the function the template's rule targets (``Fn::GetAtt X.Arn``)."""
    rule = template.get("Resources", {}).get(rule_logical_id, {})
    for target in rule.get("Properties", {}).get("Targets", []):
        arn = target.get("Arn")
        if isinstance(arn, Mapping) and "Fn::GetAtt" in arn:
            got = arn["Fn::GetAtt"]
            return str(got[0] if isinstance(got, list) else str(got).split(".")[0])
    return ""


def read_policy(lambda_client: Any, function: str) -> Mapping[str, Any] | None:
    """The function's resource policy, or ``None`` when it has none."""
    try:
        text = lambda_client.get_policy(FunctionName=function)["Policy"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    policy: Mapping[str, Any] = json.loads(text)
    return policy


def read_rules(ops: StackFacts, events: Any, lambda_client: Any) -> list[RuleFacts]:
    """Every ``AWS::Events::Rule`` of the ops stack, as EventBridge holds it now."""
    functions = ops.of_type("AWS::Lambda::Function")
    policies: dict[str, Mapping[str, Any] | None] = {}
    found: list[RuleFacts] = []
    for logical, name in sorted(ops.of_type("AWS::Events::Rule").items()):
        function = functions.get(_targeted_function(ops.template, logical), "")
        function_arn = ""
        if function:
            if function not in policies:
                policies[function] = read_policy(lambda_client, function)
            function_arn = str(
                lambda_client.get_function_configuration(FunctionName=function)["FunctionArn"]
            )
        try:
            rule = events.describe_rule(Name=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            found.append(RuleFacts(logical, name, function, function_arn, exists=False))
            continue
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        found.append(
            RuleFacts(
                logical_id=logical,
                name=name,
                function=function,
                function_arn=function_arn,
                exists=True,
                state=str(rule.get("State", "")),
                arn=str(rule.get("Arn", "")),
                schedule=bool(rule.get("ScheduleExpression")),
                targets=tuple(str(t["Arn"]) for t in targets),
                policy=policies.get(function),
            )
        )
    return found


# ---- flow 2: the alarm topic -----------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionFacts:
    arn: str
    pending: bool


@dataclass(frozen=True)
class AlarmFacts:
    name: str
    actions_enabled: bool
    actions: tuple[str, ...]  # AlarmActions, OKActions and InsufficientDataActions together


@dataclass(frozen=True)
class AlarmTopicFacts:
    topic_arn: str
    function_arn: str  # alarm_action's
    subscription: SubscriptionFacts | None
    alarms: tuple[AlarmFacts, ...]
    expected_alarms: tuple[str, ...]  # the alarms the stage's stacks created


def read_alarm_topic(
    sns: Any,
    cloudwatch: Any,
    *,
    topic_arn: str,
    function_arn: str,
    alarm_prefix: str,
    expected_alarms: Sequence[str],
) -> AlarmTopicFacts:
    subscription = None
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for sub in page["Subscriptions"]:
            if sub.get("Protocol") != "lambda" or sub.get("Endpoint") != function_arn:
                continue
            arn = str(sub["SubscriptionArn"])
            # AWS lists an unconfirmed subscription with the ARN "PendingConfirmation".
            if arn == "PendingConfirmation":
                subscription = SubscriptionFacts(arn, pending=True)
                continue
            attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
            pending = str(attributes.get("PendingConfirmation", "false")).lower() == "true"
            subscription = SubscriptionFacts(arn, pending=pending)
    alarms: list[AlarmFacts] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=alarm_prefix):
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            actions = (
                *alarm.get("AlarmActions", []),
                *alarm.get("OKActions", []),
                *alarm.get("InsufficientDataActions", []),
            )
            alarms.append(
                AlarmFacts(
                    name=str(alarm["AlarmName"]),
                    actions_enabled=bool(alarm.get("ActionsEnabled", False)),
                    actions=tuple(str(a) for a in actions),
                )
            )
    return AlarmTopicFacts(
        topic_arn=topic_arn,
        function_arn=function_arn,
        subscription=subscription,
        alarms=tuple(alarms),
        expected_alarms=tuple(expected_alarms),
    )


# ---- flow 3: the functions -------------------------------------------------------------


@dataclass(frozen=True)
class InvocationFacts:
    """What one function answered to its verification event and whether its line was logged."""

    function: str
    answer: Mapping[str, Any] | None
    error: str = ""
    logged: bool = False


def invoke_on_lambda(
    lambda_client: Any, function_name: str, event: Mapping[str, Any]
) -> tuple[Mapping[str, Any] | None, str]:
    """Invoke the deployed function and wait for its answer (``RequestResponse``)."""
    try:
        response = lambda_client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
    except (ClientError, BotoCoreError) as exc:
        return None, str(exc)
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage", "") if isinstance(payload, Mapping) else payload
        return None, f"{response['FunctionError']}: {message}"
    if not isinstance(payload, Mapping):
        return None, f"answered {payload!r}, not an object"
    return payload, ""


def logged_in_group(
    logs: Any,
    log_group: str,
    verification: str,
    *,
    since_ms: int,
    wait_seconds: float,
    poll_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once the function's line carrying ``verification`` is in its log group."""
    deadline = clock() + wait_seconds
    while True:
        try:
            found = logs.filter_log_events(
                logGroupName=log_group,
                filterPattern=f'{{ $.verification = "{verification}" }}',
                startTime=since_ms,
                limit=1,
            )
            if found.get("events"):
                return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        if clock() >= deadline:
            return False
        sleep(poll_seconds)


def logged_in_output(output: str, verification: str) -> bool:
    """True when one JSON line of a local run's output carries ``verification``."""
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, Mapping) and record.get("verification") == verification:
            return True
    return False


# ---- flow 4: the deployment hook -------------------------------------------------------


@dataclass(frozen=True)
class HookFacts:
    strategy: str  # ROLLING, CANARY or LINEAR (the site stack's parameter)
    hook_enabled: bool  # the site stack's SmokeTestHook parameter
    function_arn: str  # "" when the function does not exist
    role_name: str  # "" when the site stack has no hook role
    trust_policy: Mapping[str, Any] = field(default_factory=dict)
    policies: tuple[Mapping[str, Any], ...] = ()


def parse_policy_document(document: Any) -> Mapping[str, Any]:
    """A policy document as IAM returns it: a dict (boto3 decodes AWS's URL-encoded JSON),
    JSON text, or (moto 5.2.5, inline policies made by CloudFormation) Python's repr."""
    if isinstance(document, Mapping):
        return document
    try:
        parsed: Mapping[str, Any] = json.loads(document)
    except ValueError:
        parsed = ast.literal_eval(document)
    return parsed


def read_hook(site: StackFacts, lambda_client: Any, iam: Any, *, function_name: str) -> HookFacts:
    strategy = site.parameters.get("DeploymentStrategy", "ROLLING")
    enabled = site.parameters.get("SmokeTestHook", "enabled") == "enabled"
    try:
        function_arn = str(
            lambda_client.get_function_configuration(FunctionName=function_name)["FunctionArn"]
        )
    except ClientError:
        function_arn = ""
    role = site.physical("SmokeTestHookRole") or ""
    if not role or strategy == "ROLLING":
        return HookFacts(strategy, enabled, function_arn, role)
    trust = iam.get_role(RoleName=role)["Role"].get("AssumeRolePolicyDocument", {})
    documents = [
        iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        documents.append(
            iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        )
    return HookFacts(
        strategy,
        enabled,
        function_arn,
        role,
        trust_policy=parse_policy_document(trust),
        policies=tuple(parse_policy_document(d) for d in documents),
    )


# ---- flow 5: Slack ---------------------------------------------------------------------


def read_webhook_url(secretsmanager: Any, secret_name: str) -> str:
    """The webhook URL the secret holds (``{"url": ...}``), or "" when unset or unreadable."""
    try:
        text = secretsmanager.get_secret_value(SecretId=secret_name).get("SecretString") or ""
    except ClientError:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return ""
    return str(value.get("url", "")).strip() if isinstance(value, Mapping) else ""


@dataclass(frozen=True)
class SlackFacts:
    configured: bool
    status: int = 0  # the webhook's HTTP status; 0 when nothing answered
    body: str = ""
    error: str = ""


def send_to_slack(url: str, text: str, *, timeout: int = 10) -> SlackFacts:
    """Post one message to the webhook (slack_sdk, as the functions post)."""
    from slack_sdk.webhook import WebhookClient

    if not url:
        return SlackFacts(configured=False)
    try:
        response = WebhookClient(url, timeout=timeout).send(text=text)
    except (OSError, urllib.error.URLError) as exc:
        return SlackFacts(configured=True, error=str(exc))
    return SlackFacts(configured=True, status=int(response.status_code), body=str(response.body))


# ---- flow 6: the site ------------------------------------------------------------------


@dataclass(frozen=True)
class SiteFacts:
    url: str
    running_image: str  # the image of the service's task definition's "site" container
    healthz_status: int = 0
    version: Mapping[str, Any] | None = None
    error: str = ""


def running_image(ecs: Any, cluster: str, service: str) -> str:
    services = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not services:
        return ""
    definition = ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])
    containers = definition["taskDefinition"]["containerDefinitions"]
    return next((str(c["image"]) for c in containers if c["name"] == "site"), "")


def probe_site(url: str, image: str, *, timeout: float = 10) -> SiteFacts:
    """GET ``/healthz`` and ``/version`` of the site at ``url``."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        return SiteFacts(url, image, error=f"{url!r} is not an http(s) address")
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
        with urllib.request.urlopen(f"{base}/version", timeout=timeout) as response:  # noqa: S310
            version = json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return SiteFacts(url, image, healthz_status=exc.code, error=f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        return SiteFacts(url, image, error=str(exc))
    return SiteFacts(
        url, image, healthz_status=status, version=version if isinstance(version, Mapping) else None
    )
