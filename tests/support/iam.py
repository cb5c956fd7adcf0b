"""Run AWS calls under moto's IAM enforcement, as a principal holding exactly one policy.

Why this exists: moto answers every call by default, so a Lambda handler whose role lacks a
permission still passes its tests. moto can authorise calls against IAM policies, but in
moto 5.2.5 that enforcement on its own cannot back a least-privilege test:

* It is off until more than ``settings.INITIAL_NO_AUTH_ACTION_COUNT`` requests have been made
  (default: infinity). Switching it on is process-wide, and ``/moto-api/reset`` does not
  switch it off again, so a test that forgets to restore it breaks every later test.
* Only SQS (existing queues), S3, IAM role actions and ``sts:AssumeRole`` name a resource.
  Every other call (DynamoDB, ECS, SSM, Secrets Manager, ECR, ...) is checked against ``"*"``,
  so a statement scoped to a table or parameter ARN never matches, even for that resource.
* ``Resource``/``Action`` patterns are used as regular expressions (``*`` becomes ``.*``), so
  ``?`` breaks: ``secret:name-??????`` makes the server answer 500.
* A denial is an XML body with status 403, which botocore cannot parse for JSON-protocol
  services: the error code reads ``"403"``, not ``AccessDeniedException``.
* ``Condition`` blocks in identity policies are not evaluated (an ``Allow`` with a condition
  allows always); a statement with ``NotResource`` is treated as ``Allow`` on every resource,
  even with ``"Effect": "Deny"``; ``iam:PassRole`` is never checked.
* The action is named by the request's signing name, not the IAM prefix: CloudWatch's
  ``DescribeAlarms`` is checked as ``monitoring:DescribeAlarms``, which no policy written for
  AWS (``cloudwatch:DescribeAlarms``) allows.

So the context managers below switch enforcement on *and*, while it is on, patch moto's
evaluation in this process: calls to DynamoDB, ECS, ECR, SSM and Secrets Manager are checked
against the ARNs they touch (every ARN of a batch call must be allowed), patterns follow IAM
wildcards (``*`` and ``?`` only, actions case-insensitive, under their IAM prefix), and a
denial is returned in the service's own protocol (``AccessDeniedException`` for JSON
services). Calls the patch cannot name a resource for are still checked against ``"*"``: a
scoped statement then denies, so the harness errs towards failing. ``principal_with_policy``
refuses ``Condition`` and ``NotResource`` because moto would silently over-grant them.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from functools import cache
from typing import Any
from unittest import mock

import pytest
from werkzeug.exceptions import HTTPException

_SESSION_ENV_KEYS = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


# --- switching enforcement on and off ---------------------------------------------------


def _reset_auth(moto_url: str, count: str) -> str:
    """POST the count to ``/moto-api/reset-auth``; return the previous count as moto reports it.

    The body must not be sent as a form: moto reads ``request.data``, which Flask leaves empty
    for ``application/x-www-form-urlencoded`` (urllib's default), and then answers 500.
    """
    request = urllib.request.Request(
        f"{moto_url.rstrip('/')}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


@contextmanager
def enforced_iam(moto_url: str, *, faithful: bool = True) -> Iterator[None]:
    """Enforce IAM on the moto server at ``moto_url`` inside the block; restore it on exit.

    Entry sets the server's no-auth count to 0 (every request is authenticated and authorised
    from then on); exit, even on error, puts back the count the server had before. Inside the
    block only credentials of IAM users or assumed roles that exist in moto work: the fixture
    credentials ("testing") are rejected, so create tables, queues and principals first.

    With ``faithful`` (the default) moto's evaluation is also patched (see the module
    docstring). The patch acts on this Python process, so it needs the server to run in it,
    as the session's ``ThreadedMotoServer`` does; with a server in another process this
    raises ``RuntimeError``, because resource-scoped statements would then never match.
    """
    from moto import settings

    before_in_process = settings.INITIAL_NO_AUTH_ACTION_COUNT
    previous = _reset_auth(moto_url, "0")
    try:
        in_process = settings.INITIAL_NO_AUTH_ACTION_COUNT == 0 and before_in_process == float(
            previous
        )
        if faithful and not in_process:
            raise RuntimeError(
                f"the moto server at {moto_url} does not run in this process, so "
                "enforced_iam(faithful=True) cannot patch its IAM evaluation"
            )
        with _faithful_evaluation() if faithful else _nothing():
            yield
    finally:
        _reset_auth(moto_url, previous)


@contextmanager
def enforced_iam_in_process(*, faithful: bool = True) -> Iterator[None]:
    """Enforce IAM for in-process moto (``mock_aws``) inside the block; restore it on exit.

    The switch is the module-level ``moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`` plus the
    request counter, which a ``ThreadedMotoServer`` in this process shares: the server is
    enforced too while the block runs. ``faithful`` as for ``enforced_iam``.
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    previous_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    previous_requests = ActionAuthenticatorMixin.request_count
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        with _faithful_evaluation() if faithful else _nothing():
            yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = previous_count
        ActionAuthenticatorMixin.request_count = previous_requests


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# --- the principal ----------------------------------------------------------------------


def principal_with_policy(
    iam_client: Any,
    name: str,
    policy_document: Mapping[str, Any] | str,
    *,
    allow_conditions: bool = False,
) -> dict[str, str]:
    """Create IAM user ``name`` holding exactly ``policy_document`` inline; return its keys.

    ``iam_client`` is a boto3 IAM client with unrestricted (fixture) credentials.
    Returns ``{"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}`` (apply them with
    ``use_principal``). Call it before enforcement is on: creating the user needs the
    unrestricted fixture credentials.

    A user rather than an assumed role: moto evaluates both the same way (inline and attached
    policies; a user's group policies too; session policies and permission boundaries never),
    so the role adds an STS call, a trust policy and a session token without checking more.

    ``Condition`` is refused unless ``allow_conditions``, because moto does not evaluate
    conditions in identity policies: the statement would apply unconditionally. ``NotResource``
    is always refused: moto treats such a statement as allowing every resource, even when its
    effect is ``Deny``.
    """
    document = json.loads(policy_document) if isinstance(policy_document, str) else policy_document
    statements = document["Statement"]
    for statement in statements if isinstance(statements, list) else [statements]:
        if "NotResource" in statement:
            raise ValueError("moto treats a NotResource statement as Allow on every resource")
        if "Condition" in statement and not allow_conditions:
            raise ValueError(
                "moto ignores Condition in identity policies, so this statement would apply "
                "unconditionally; pass allow_conditions=True to accept that"
            )
    iam_client.create_user(UserName=name)
    iam_client.put_user_policy(
        UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document)
    )
    key = iam_client.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def use_principal(monkeypatch: pytest.MonkeyPatch, credentials: Mapping[str, str]) -> None:
    """Put ``credentials`` in the environment, drop the fixture session token, forget boto3's.

    moto rejects a user's access key sent with any session token (InvalidClientTokenId), and
    the session's fake environment sets ``AWS_SESSION_TOKEN``. ``boto3.client()`` goes through
    ``boto3.DEFAULT_SESSION``, whose botocore session keeps the credentials it resolved first,
    so that session is dropped too (monkeypatch restores it). Clients created before this call,
    for instance at a handler module's import, keep the old credentials.
    """
    import boto3

    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    if "AWS_SESSION_TOKEN" not in credentials:
        for name in _SESSION_ENV_KEYS:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


# --- the patch: resources, wildcards and error shapes -----------------------------------


@contextmanager
def _faithful_evaluation() -> Iterator[None]:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicyStatement

    original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def authorize(self: Any, resource: str = "*") -> None:
        resources = [resource]
        resolver = _RESOLVERS.get(getattr(self, "service_name", None) or "")
        if resolver is not None and resource == "*":
            # An unexpected request shape keeps moto's "*".
            with suppress(KeyError, TypeError, AttributeError, ValueError):
                resources = resolver(_Call(self)) or resources
        current = resources[0]
        try:
            for current in resources:
                original(self, current)
        except HTTPException as error:
            raise _in_service_protocol(self, error, current) from None

    with ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(
                ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", authorize
            )
        )
        stack.enter_context(
            mock.patch.object(IAMPolicyStatement, "_check_element_matches", _element_matches)
        )
        yield


# Signing names moto puts in front of an action, and the IAM prefix AWS authorises it under.
_IAM_PREFIX = {"monitoring": "cloudwatch"}


def _element_matches(self: Any, element: str, value: str) -> bool:
    """IAM wildcard matching: ``*`` any run, ``?`` one character; actions ignore case and
    are named by their IAM prefix."""
    patterns = self._statement[element]
    flags = re.IGNORECASE if element in ("Action", "NotAction") else 0
    if flags:
        prefix, _, name = value.partition(":")
        value = f"{_IAM_PREFIX.get(prefix.lower(), prefix)}:{name}"
    return any(
        _wildcard(pattern, flags).fullmatch(value)
        for pattern in ([patterns] if isinstance(patterns, str) else patterns)
    )


@cache
def _wildcard(pattern: str, flags: int) -> re.Pattern[str]:
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(body, flags | re.DOTALL)


_JSON_ERRORS = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def _in_service_protocol(response: Any, error: HTTPException, resource: str) -> HTTPException:
    """Re-shape moto's XML auth errors for JSON services, naming the resource on denial."""
    from moto.core.exceptions import JsonRESTError

    code = getattr(error, "error_type", None)
    if code not in _JSON_ERRORS:
        return error
    message = str(getattr(error, "message", ""))
    if code == "AccessDenied":
        message += f" on resource: {resource}"
        if resource == "*":
            message += " (no resource named for this call: only Resource '*' can allow it)"
    protocol, query_compatible = _protocol(response.boto3_service_name)
    if protocol not in ("json", "rest-json"):
        return error  # query/XML services already parse moto's error (code AccessDenied etc.)
    reshaped = JsonRESTError(_JSON_ERRORS[code], message)
    reshaped.code = 400 if protocol == "json" else 403
    response.response_headers["Content-Type"] = (
        "application/x-amz-json-1.0" if protocol == "json" else "application/json"
    )
    if query_compatible:  # e.g. SQS: botocore takes the code from this header
        response.response_headers["x-amzn-query-error"] = f"{code};Sender"
    return reshaped


@cache
def _protocol(service: str) -> tuple[str, bool]:
    from moto.core.utils import get_service_model

    try:
        model = get_service_model(service)
    except Exception:
        return "", False
    return str(model.protocol), "awsQueryCompatible" in model.metadata


class _Call:
    """What a resolver needs from one request: action, JSON parameters, account and region."""

    def __init__(self, response: Any) -> None:
        from moto.utilities.utils import get_partition

        self.action: str = response._get_action() or ""
        self.account: str = response.current_account
        self.region: str = response.region
        self.partition: str = get_partition(self.region)
        raw = response.raw_body or b"{}"
        try:
            params = json.loads(raw)
        except ValueError:
            params = {}
        self.params: dict[str, Any] = params if isinstance(params, dict) else {}

    def arn(self, service: str, resource: str) -> str:
        if resource.startswith("arn:"):
            return resource
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def _dynamodb(call: _Call) -> list[str]:
    p = call.params

    def table(name: str) -> str:
        return call.arn("dynamodb", f"table/{name}")

    if "TableName" in p:
        arn = table(p["TableName"])
        if p.get("IndexName") and call.action in ("Query", "Scan"):
            arn += f"/index/{p['IndexName']}"
        return [arn]
    if "RequestItems" in p:
        return [table(name) for name in p["RequestItems"]]
    if "TransactItems" in p:
        return [
            table(inner["TableName"])
            for item in p["TransactItems"]
            for inner in item.values()
            if isinstance(inner, dict) and "TableName" in inner
        ]
    return [str(p[key]) for key in ("ResourceArn", "TableArn") if key in p]


def _ecs(call: _Call) -> list[str]:
    p = call.params
    cluster = str(p.get("cluster") or "default").rsplit("/", 1)[-1]

    def in_cluster(kind: str, name: str) -> str:
        return call.arn("ecs", name if name.startswith("arn:") else f"{kind}/{cluster}/{name}")

    action = call.action
    if action == "DescribeClusters":
        names = p.get("clusters") or ["default"]
        return [call.arn("ecs", f"cluster/{name}") for name in names]
    if action == "DescribeServices":
        return [in_cluster("service", name) for name in p.get("services", [])]
    if action in ("UpdateService", "DeleteService"):
        return [in_cluster("service", p["service"])]
    if action == "CreateService":
        return [in_cluster("service", p["serviceName"])]
    if action == "DescribeTasks":
        return [in_cluster("task", name) for name in p.get("tasks", [])]
    if action == "StopTask":
        return [in_cluster("task", p["task"])]
    if action in ("RunTask", "StartTask"):
        definition = str(p["taskDefinition"])
        if not definition.startswith("arn:"):
            definition = f"task-definition/{definition}"
        return [call.arn("ecs", definition)]
    if action == "RegisterTaskDefinition":
        # The revision is not known before the call; AWS authorises the family's new revision,
        # which a statement on "task-definition/<family>:*" covers.
        return [call.arn("ecs", f"task-definition/{p['family']}:*")]
    if action == "DescribeServiceRevisions":
        # AWS authorises each revision and its service (both resource types are required).
        revisions = [str(arn) for arn in p.get("serviceRevisionArns", [])]
        services = [
            arn.replace(":service-revision/", ":service/").rsplit("/", 1)[0] for arn in revisions
        ]
        return revisions + services
    if action in ("DeleteCluster", "UpdateCluster", "PutClusterCapacityProviders"):
        return [call.arn("ecs", f"cluster/{cluster}")]
    if "resourceArn" in p:
        return [str(p["resourceArn"])]
    return []


_SSM_BY_NAME = {
    "GetParameter",
    "PutParameter",
    "DeleteParameter",
    "GetParameterHistory",
    "LabelParameterVersion",
    "UnlabelParameterVersion",
}


def _ssm(call: _Call) -> list[str]:
    p = call.params

    def parameter(name: str) -> str:
        if not name.startswith("arn:"):
            name = name.split(":", 1)[0]  # drop a ":version" or ":label" selector
        return call.arn("ssm", f"parameter/{name.lstrip('/')}")

    if call.action in _SSM_BY_NAME and "Name" in p:
        return [parameter(p["Name"])]
    if call.action in ("GetParameters", "DeleteParameters"):
        return [parameter(name) for name in p.get("Names", [])]
    if call.action == "GetParametersByPath" and "Path" in p:
        return [parameter(p["Path"].rstrip("/"))]
    return []


def _secretsmanager(call: _Call) -> list[str]:
    from moto.secretsmanager.models import secretsmanager_backends

    p = call.params
    if "SecretId" in p:
        secret_id = str(p["SecretId"])
        try:
            secret = secretsmanager_backends[call.account][call.region].secrets.get(secret_id)
        except Exception:
            secret = None
        if secret is not None:
            return [str(secret.arn)]
        return [call.arn("secretsmanager", f"secret:{secret_id}")]
    if call.action == "CreateSecret" and "Name" in p:
        return [call.arn("secretsmanager", f"secret:{p['Name']}")]
    return []


def _ecr(call: _Call) -> list[str]:
    p = call.params
    names = [p["repositoryName"]] if "repositoryName" in p else p.get("repositoryNames", [])
    return [call.arn("ecr", f"repository/{name}") for name in names]


_RESOLVERS: dict[str, Callable[[_Call], list[str]]] = {
    "ecr": _ecr,
    "dynamodb": _dynamodb,
    "ecs": _ecs,
    "ssm": _ssm,
    "secretsmanager": _secretsmanager,
}
