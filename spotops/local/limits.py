"""The strict layer in front of the local emulator: AWS's limits (:mod:`spotops.stage.limits`) on
every call a botocore client makes, so that moto's leniency cannot hide a breach.

moto accepts an 83 KB inline template or a 5 KB Lambda environment; AWS refuses both. A
botocore handler on ``before-parameter-build`` sees each call's parameters before they are
sent and raises :class:`~spotops.errors.LimitError` for what AWS would refuse. It is
installed on the sessions ``spotops`` makes for the emulator (:class:`spotops.aws.AwsSession`),
and on every botocore session of a process by :func:`install_everywhere` (the test suite, the
demo, the local Lambda runner).

Checked: CloudFormation's template by body or by URL (size, and what
:func:`spotops.stage.limits.template_breaches` checks inside it), a role's inline policies together,
managed policies, a Lambda function's environment and package, alarm descriptions, SSM
values, task definitions.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from spotops.errors import ConfigError, is_error
from spotops.stage import limits

EVENT = "before-parameter-build"
UNIQUE_ID = "spotops-strict-limits"
# https://<bucket>.s3.<region>.amazonaws.com/<key> and https://s3.<region>.amazonaws.com/<bucket>/<key>
_VIRTUAL_HOSTED = re.compile(r"^https://([^./]+)\.s3[.-][^/]*amazonaws\.com(?:\.cn)?/(.+)$")
_PATH_STYLE = re.compile(r"^https://s3[.-][^/]*amazonaws\.com(?:\.cn)?/([^/]+)/(.+)$")

Check = Callable[["StrictLimits", Mapping[str, Any]], list[limits.Breach]]


class StrictLimits:
    """A botocore ``before-parameter-build`` handler enforcing AWS's limits.

    Parameters
    ----------
    endpoint_url:
        The emulator, for the reads a check needs (a template by URL, a role's other inline
        policies); ``None`` reads ``AWS_ENDPOINT_URL`` at each call.
    """

    def __init__(self, endpoint_url: str | None = None) -> None:
        self._endpoint_url = endpoint_url

    def __call__(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        operation = (model.service_model.service_name, model.name)
        check = _CHECKS.get(operation)
        if check is not None:
            limits.refuse(
                check(self, params),
                before=f"{operation[0]}:{operation[1]} reached the emulator (strict layer)",
            )

    def client(self, service: str) -> Any:
        """A client of the same emulator for a check's own reads."""
        import boto3
        from botocore.config import Config

        endpoint = self._endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=os.environ.get("AWS_REGION") or "us-east-1",
            config=Config(retries={"max_attempts": 1}),
        )


# ---- the checks, one per operation ---------------------------------------------------------


def _stack_template(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    name = str(params.get("StackName") or params.get("ChangeSetName") or "template")
    parameters = {
        str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
        for p in params.get("Parameters") or []
        if "ParameterKey" in p
    }
    if "TemplateBody" in params:
        body, by_url = str(params["TemplateBody"]), False
    elif "TemplateURL" in params:
        fetched = _read_template_url(strict, str(params["TemplateURL"]))
        if fetched is None:
            return []  # not an S3 URL of the emulator: the call itself will say so
        body, by_url = fetched, True
    else:
        return []
    breaches = limits.template_source_breaches(body, by_url=by_url, subject=name)
    from spotops.stage.templates import parse_template

    try:
        template = parse_template(body, name)
    except ConfigError:
        return breaches  # CloudFormation (or moto) refuses a template it cannot read
    return breaches + limits.template_breaches(template, parameters, subject=name)


def _read_template_url(strict: StrictLimits, url: str) -> str | None:
    match = _VIRTUAL_HOSTED.match(url) or _PATH_STYLE.match(url)
    if match is None:
        return None
    bucket, key = match.groups()
    body = strict.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return bytes(body).decode("utf-8")


def _zip_bytes(code: Any) -> bytes | None:
    if isinstance(code, bytes | bytearray):
        return bytes(code)
    if isinstance(code, str):  # botocore accepts the blob already base64-encoded
        return base64.b64decode(code)
    return None


def _function(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    name = f"Lambda function {params.get('FunctionName', '')}"
    found = []
    variables = (params.get("Environment") or {}).get("Variables")
    if variables is not None:
        found.append(limits.LAMBDA_ENVIRONMENT.breach(limits.environment_size(variables), name))
    code = params.get("Code") if "Code" in params else params
    archive = _zip_bytes((code or {}).get("ZipFile"))
    if archive is not None:
        zipped, unzipped = limits.zip_sizes(archive)
        found.append(limits.LAMBDA_ZIP.breach(zipped, name))
        found.append(limits.LAMBDA_UNZIPPED.breach(unzipped, name))
    return [breach for breach in found if breach is not None]


def _alarm(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    description = str(params.get("AlarmDescription") or "")
    found = limits.ALARM_DESCRIPTION.breach(
        len(description), f"Alarm {params.get('AlarmName', '')}"
    )
    return [found] if found else []


def _ssm_value(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    if params.get("Tier", "Standard") != "Standard":
        return []
    value = str(params.get("Value") or "")
    found = limits.SSM_VALUE.breach(len(value), f"SSM parameter {params.get('Name', '')}")
    return [found] if found else []


def _task_definition(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    size = limits.utf8_size(json.dumps(params, separators=(",", ":"), default=str))
    found = limits.TASK_DEFINITION.breach(size, f"Task definition {params.get('family', '')}")
    return [found] if found else []


def _managed_policy(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    name = params.get("PolicyName") or params.get("PolicyArn") or ""
    size = limits.policy_size(str(params.get("PolicyDocument") or ""))
    found = limits.MANAGED_POLICY.breach(size, f"Managed policy {name}")
    return [found] if found else []


def _role_policy(strict: StrictLimits, params: Mapping[str, Any]) -> list[limits.Breach]:
    role, name = str(params.get("RoleName", "")), str(params.get("PolicyName", ""))
    total = limits.policy_size(str(params.get("PolicyDocument") or ""))
    iam = strict.client("iam")
    try:
        others = iam.list_role_policies(RoleName=role).get("PolicyNames", [])
    except ClientError as exc:
        if is_error(exc, "NoSuchEntity"):
            return []  # the call itself fails with AWS's own error
        raise
    for other in others:
        if other != name:  # PutRolePolicy replaces a policy of the same name
            document = iam.get_role_policy(RoleName=role, PolicyName=other)["PolicyDocument"]
            total += limits.policy_size(document)
    found = limits.ROLE_INLINE_POLICIES.breach(total, f"IAM role {role}")
    return [found] if found else []


_CHECKS: dict[tuple[str, str], Check] = {
    ("cloudformation", "CreateStack"): _stack_template,
    ("cloudformation", "UpdateStack"): _stack_template,
    ("cloudformation", "CreateChangeSet"): _stack_template,
    ("cloudformation", "ValidateTemplate"): _stack_template,
    ("lambda", "CreateFunction"): _function,
    ("lambda", "UpdateFunctionConfiguration"): _function,
    ("lambda", "UpdateFunctionCode"): _function,
    ("cloudwatch", "PutMetricAlarm"): _alarm,
    ("cloudwatch", "PutCompositeAlarm"): _alarm,
    ("ssm", "PutParameter"): _ssm_value,
    ("ecs", "RegisterTaskDefinition"): _task_definition,
    ("iam", "CreatePolicy"): _managed_policy,
    ("iam", "CreatePolicyVersion"): _managed_policy,
    ("iam", "PutRolePolicy"): _role_policy,
}


# ---- installing ----------------------------------------------------------------------------

_EVERYWHERE = StrictLimits()


def install(events: Any, endpoint_url: str | None = None) -> None:
    """Enforce the limits on one session's (or client's) event system."""
    if installed_everywhere():
        return  # every session of this process has it already
    events.register(EVENT, StrictLimits(endpoint_url), unique_id=UNIQUE_ID)


def install_everywhere() -> None:
    """Enforce the limits on every botocore session this process makes from now on, and on
    boto3's default session if it exists already."""
    import boto3
    from botocore import handlers

    if not installed_everywhere():
        handlers.BUILTIN_HANDLERS.append((EVENT, _EVERYWHERE))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(EVENT, _EVERYWHERE, unique_id=UNIQUE_ID)


def installed_everywhere() -> bool:
    from botocore import handlers

    return any(handler is _EVERYWHERE for _, handler, *_ in handlers.BUILTIN_HANDLERS)
