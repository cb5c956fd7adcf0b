"""One family of errors for the command line, and the translation of AWS faults into it.

Every error carries a message that says what went wrong *and what to do*. The command layer
turns them into ``click.ClickException`` with the error's ``exit_code``.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

_EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
)
_REJECTED_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "AuthFailure",
    }
)


class SpotopsError(Exception):
    """Base of every error the command line reports. ``exit_code`` is the process status."""

    exit_code = 1


class UsageError(SpotopsError):
    """Bad input from the user: an unknown stage, a malformed ``--param``, a refused value."""

    exit_code = 2


class ConfigError(UsageError):
    """The stage configuration file is missing or malformed."""


class ParameterError(UsageError):
    """A template parameter value the template refuses (locally checked or by CloudFormation)."""


class CredentialsError(SpotopsError):
    """No AWS credentials, or credentials AWS rejects or has expired."""


class RegionError(SpotopsError):
    """No region configured, or a region AWS does not know."""


class StackStateError(SpotopsError):
    """A stack is in a state that blocks the operation (ROLLBACK_COMPLETE, in progress...)."""


class ChangeSetError(SpotopsError):
    """CloudFormation could not build a change set."""


class DeployError(SpotopsError):
    """A stack operation ended in failure; the message names the first failing resource."""


class NotDeployedError(SpotopsError):
    """The command needs a stack that does not exist in this region."""


class LimitError(SpotopsError):
    """What we are about to send is over one of AWS's documented limits (spotops.stage.limits):
    AWS would refuse it, although the local emulator accepts it."""


class PackageError(SpotopsError):
    """The ops toolkit could not be packaged (Chalice or SAM refused it)."""


class PushError(SpotopsError):
    """Building or pushing the image failed."""


class DirtyTreeError(PushError):
    """The git working tree has uncommitted changes."""

    exit_code = 2


class ImageTagExistsError(PushError):
    """The tag already exists in a repository with immutable tags."""


class AwsCallError(SpotopsError):
    """An AWS call failed in a way no other error describes."""


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else).

    The one way spotops reads an AWS error: by its code, never by its message text, which
    AWS may reword at any time.

    Example
    -------
    >>> error_code(ClientError({"Error": {"Code": "ClusterNotFoundException"}}, "X"))
    'ClusterNotFoundException'
    """
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_error(exc: BaseException, *codes: str) -> bool:
    """True when ``exc`` is a ``ClientError`` with one of ``codes``."""
    return error_code(exc) in codes


def translate_aws_error(exc: Exception, *, region: str | None = None) -> SpotopsError:
    """Turn a botocore exception into one :class:`SpotopsError` with advice.

    Parameters
    ----------
    exc:
        The exception raised by boto3/botocore.
    region:
        The region in use, named in the messages that depend on it.

    Returns
    -------
    SpotopsError
        The error to raise (``raise translate_aws_error(exc) from exc``).

    Example
    -------
    >>> translate_aws_error(NoCredentialsError()).exit_code
    1
    """
    where = f" in region {region}" if region else ""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(
            "No AWS credentials found. Configure them (aws configure / AWS_PROFILE / "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or, for the local emulator, set "
            "AWS_ENDPOINT_URL=http://127.0.0.1:4566 with any non-empty fake keys."
        )
    if isinstance(exc, TokenRetrievalError | UnauthorizedSSOTokenError):
        return CredentialsError(
            f"Your AWS login has expired ({exc}). Log in again (e.g. `aws sso login`) and retry."
        )
    if isinstance(exc, ProfileNotFound):
        return CredentialsError(f"{exc}. Check AWS_PROFILE / --profile.")
    if isinstance(exc, NoRegionError):
        return RegionError("No AWS region set. Pass --region or set AWS_REGION.")
    if isinstance(exc, EndpointConnectionError):
        return RegionError(
            f"Cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}{where}. "
            "Check the region name (--region / AWS_REGION) and, for the emulator, that it runs "
            "(`make emulator`)."
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        if code in _EXPIRED_CODES:
            return CredentialsError(
                f"Your AWS credentials have expired ({code}). Refresh them (new session token, "
                "`aws sso login`) and retry."
            )
        if code in _REJECTED_CODES:
            return CredentialsError(
                f"AWS rejected your credentials ({code}: {message}). Check the access key and "
                f"profile, and that the account is enabled{where}."
            )
        if code in {"AccessDenied", "AccessDeniedException"}:
            return CredentialsError(
                f"Access denied: {message}. Use a role allowed to manage the spotops stacks."
            )
        if code in {"InvalidRegion", "InvalidRegionException", "UnrecognizedRegion"}:
            return RegionError(f"{message}. Check --region / AWS_REGION.")
        operation = getattr(exc, "operation_name", "an AWS call")
        return AwsCallError(f"{operation} failed{where}: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return AwsCallError(f"AWS call failed{where}: {exc}")
    return AwsCallError(str(exc))
