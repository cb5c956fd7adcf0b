"""How an AWS failure is handled, from its error code: one classification for every job."""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """How an AWS failure should be handled."""

    TRANSIENT = "transient"  # throttling, 5xx: may pass; the next delivery or reconcile retries
    DENIED = "denied"  # a misconfiguration on-call must fix: alert once, with the runbook
    REFUSED = "refused"  # will fail again (invalid request): record, alert once, wait for a push
    MISSING = "missing"  # the thing is gone (image deleted, service not found)
    UNKNOWN = "unknown"  # transport error: the call may have happened; ask AWS before deciding


THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
    }
)
SERVER_CODES = frozenset(
    {"ServerException", "InternalFailure", "InternalError", "ServiceUnavailable", "503", "500"}
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"})
MISSING_CODES = frozenset(
    {
        "ImageNotFoundException",
        "RepositoryNotFoundException",
        "ScanNotFoundException",
        "ServiceNotFoundException",
        "ClusterNotFoundException",
        "ServiceNotActiveException",
    }
)


def failure_kind(code: str) -> FailureKind:
    """Classify an AWS error code; ``""`` (no code: a timeout or broken connection) is
    :attr:`FailureKind.UNKNOWN`, because the request may have been carried out.

    Example
    -------
    >>> failure_kind("ThrottlingException").value, failure_kind("").value
    ('transient', 'unknown')
    """
    if not code:
        return FailureKind.UNKNOWN
    if code in THROTTLING_CODES or code in SERVER_CODES:
        return FailureKind.TRANSIENT
    if code in DENIED_CODES:
        return FailureKind.DENIED
    if code in MISSING_CODES:
        return FailureKind.MISSING
    return FailureKind.REFUSED
