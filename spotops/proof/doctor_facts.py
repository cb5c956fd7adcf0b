"""The reads ``spotops doctor`` makes: each takes the boto3 client it needs and returns what
it saw, or why it saw nothing, for :mod:`spotops.proof.doctor_rows` to decide on. Nothing
here writes; an error the row can explain (access denied, not found) is returned as text
rather than raised, so one unreadable thing costs one row, not the whole report.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from spotops.errors import is_error
from spotops.proof.doctor_rows import OtherStage, StackFacts
from spotops.reports.cost import inventory
from spotops.stage.account import ECS_ROLE_PATH
from spotops.stage.stacks import StackEvent

AWS_ERRORS = (ClientError, BotoCoreError)
# Long enough for a page across the world, short enough that a dead host costs one row.
HTTP_TIMEOUT_SECONDS = 5.0


def describe(exc: Exception) -> str:
    """An AWS error as a row shows it: its code and message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '')}: {error.get('Message', '')}".strip(": ")
    return str(exc)


def caller_identity(sts: Any) -> tuple[dict[str, str] | None, str]:
    try:
        answer = sts.get_caller_identity()
    except AWS_ERRORS as exc:
        return None, describe(exc)
    return {"Account": str(answer["Account"]), "Arn": str(answer["Arn"])}, ""


def fargate_quota(service_quotas: Any, code: str) -> tuple[float | None, str]:
    """The account's applied value of a Fargate quota in this region."""
    try:
        answer = service_quotas.get_service_quota(ServiceCode="fargate", QuotaCode=code)
    except AWS_ERRORS as exc:
        return None, describe(exc)
    return float(answer["Quota"]["Value"]), ""


def other_stages(
    cfn: Any, *, app: str, stage: str, site_template: Mapping[str, Any]
) -> list[OtherStage]:
    """The app's other stages deployed here (their site stacks, by the tags deploy sets), and
    the most vCPU each can run, worked out from its deployed parameters."""
    found = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            tags = {t["Key"]: t["Value"] for t in stack.get("Tags") or []}
            other = tags.get("spotops:stage")
            if tags.get("spotops:app") != app or not other or other == stage:
                continue
            if stack["StackName"] != f"{app}-{other}-site":
                continue
            if stack["StackStatus"] in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS"):
                continue
            parameters = {
                p["ParameterKey"]: str(p.get("ParameterValue", ""))
                for p in stack.get("Parameters") or []
            }
            try:
                peak = inventory({"site": site_template}, parameters).peak
            except Exception:  # a stage deployed from an older template: say it is uncounted
                peak = None
            found.append(OtherStage(other, peak))
    return sorted(found, key=lambda o: o.stage)


def ecs_role_present(iam: Any) -> bool | None:
    """Whether ECS's service-linked role exists; ``None`` when IAM may not be read."""
    try:
        return bool(iam.list_roles(PathPrefix=ECS_ROLE_PATH).get("Roles"))
    except ClientError as exc:
        if is_error(exc, "AccessDenied", "AccessDeniedException"):
            return None
        raise


def cluster_providers(ecs: Any, cluster: str) -> list[str] | None:
    """The capacity providers of the stage's cluster; ``None`` when it cannot be found."""
    try:
        clusters = ecs.describe_clusters(clusters=[cluster]).get("clusters") or []
    except AWS_ERRORS:
        return None
    return list(clusters[0].get("capacityProviders") or []) if clusters else None


def fargate_spot_status(ecs: Any) -> str | None:
    """DescribeCapacityProviders' status of FARGATE_SPOT, or what failed."""
    try:
        answer = ecs.describe_capacity_providers(capacityProviders=["FARGATE_SPOT"])
    except AWS_ERRORS as exc:
        return describe(exc)
    for provider in answer.get("capacityProviders") or []:
        if provider.get("name") == "FARGATE_SPOT":
            return str(provider.get("status", ""))
    failures = answer.get("failures") or []
    return str(failures[0].get("reason", "")) if failures else None


# Statuses where the newest failure is the one to act on (the rollback or deletion that
# failed); elsewhere the oldest failure of the operation is its cause.
_NEWEST_FAILURE_MATTERS = ("UPDATE_ROLLBACK_FAILED", "DELETE_FAILED")
_OPERATION_STARTS = frozenset(
    {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS"}
)


def stack_facts(cfn: Any, stack_name: str) -> StackFacts | None:
    """The stack's state, when it last changed, and the failure of its last operation."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if is_error(exc, "ValidationError"):  # what CloudFormation answers for no such stack
            return None
        raise
    if not stacks:
        return None
    raw = stacks[0]
    status = str(raw["StackStatus"])
    failed = None
    if status.endswith("_FAILED") or "ROLLBACK" in status:
        failures = _last_operation_failures(cfn, stack_name)
        if failures:
            failed = failures[0] if status in _NEWEST_FAILURE_MATTERS else failures[-1]
    last_change: datetime | None = raw.get("LastUpdatedTime") or raw.get("CreationTime")
    return StackFacts(
        name=stack_name,
        status=status,
        reason=str(raw.get("StackStatusReason") or ""),
        last_change=last_change,
        failed_resource=failed.logical_id if failed else "",
        failed_reason=failed.reason if failed else "",
    )


def _last_operation_failures(cfn: Any, stack_name: str) -> list[StackEvent]:
    """Failed resource events of the stack's last operation, newest first (CloudFormation
    lists events newest first; the stack's own ``*_IN_PROGRESS`` event opens an operation)."""
    failures: list[StackEvent] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        for raw in page.get("StackEvents", []):
            event = StackEvent.from_api(raw)
            if raw.get("ResourceType") == "AWS::CloudFormation::Stack":
                if event.status in _OPERATION_STARTS:
                    return failures
                continue
            if event.failed:
                failures.append(event)
    return failures


def public_layer_arn(partition: str, region: str, version: str) -> str:
    """AWS's public Powertools layer at ``version``, from the one table that names it
    (``spotops/data/powertools_layers.json``; ops.yaml builds the same ARN)."""
    table = json.loads(
        resources.files("spotops").joinpath("data/powertools_layers.json").read_text()
    )
    unversioned = str(table["layer_arn"]).replace("<region>", region)
    return f"arn:{partition}:{unversioned.removeprefix('arn:aws:')}:{version}"


def published_layer_arn(ssm: Any, parameter: str) -> str | None:
    """The layer ARN AWS publishes in SSM for a Powertools release, if it does here."""
    try:
        return str(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except AWS_ERRORS:
        return None


def layer_description(lambda_client: Any, arn: str) -> tuple[str | None, str]:
    try:
        answer = lambda_client.get_layer_version_by_arn(Arn=arn)
    except AWS_ERRORS as exc:
        return None, describe(exc)
    return str(answer.get("Description") or ""), ""


def registry_scan_type(ecr: Any) -> tuple[str | None, str]:
    try:
        answer = ecr.get_registry_scanning_configuration()
    except AWS_ERRORS as exc:
        return None, describe(exc)
    return str(answer.get("scanningConfiguration", {}).get("scanType") or "BASIC"), ""


def webhook_url(secretsmanager: Any, secret: str) -> tuple[str | None, str]:
    """The webhook URL stored as ``{"url": ...}`` (``""`` when unset), or why it is unreadable."""
    try:
        text = secretsmanager.get_secret_value(SecretId=secret).get("SecretString") or ""
    except AWS_ERRORS as exc:
        return None, describe(exc)
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return "", ""
    return (str(body.get("url") or "").strip() if isinstance(body, dict) else ""), ""


def send_test_message(url: str, text: str) -> tuple[int | None, str]:
    """Post one message through the webhook; its HTTP status, or why none came."""
    from slack_sdk.webhook import WebhookClient

    try:
        answer = WebhookClient(url, timeout=int(HTTP_TIMEOUT_SECONDS)).send(text=text)
    except Exception as exc:  # a refused connection, a timeout, TLS: the row says which
        return None, f"{type(exc).__name__}: {exc}"
    return int(answer.status_code), ""


def http_status(url: str) -> tuple[int | None, str]:
    """GET ``url`` (http or https only); its status, or why there was none."""
    if urlparse(url).scheme not in ("http", "https"):
        return None, f"not an http(s) URL: {url}"
    request = urllib.request.Request(url, headers={"User-Agent": "spotops-doctor"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def queue_depth(sqs: Any, queue_url: str) -> tuple[int | None, str]:
    """Messages waiting in a queue, visible or being read."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    except AWS_ERRORS as exc:
        return None, describe(exc)
    values = attributes.get("Attributes", {})
    return sum(int(values.get(name, 0)) for name in names), ""


def freeze_state(dynamodb: Any, table: str, service_key: str) -> tuple[Any, str]:
    """The service's freeze as the redeploy function reads it (``chalicelib.ledger.Freeze``,
    or None when it was never frozen), or why the ledger could not be read."""
    from spotops.ops.freeze import read_freeze_or_error  # it puts ops_lambdas on the path

    return read_freeze_or_error(dynamodb, table, service_key)
