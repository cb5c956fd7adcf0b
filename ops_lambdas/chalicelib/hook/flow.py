"""The ECS deployment lifecycle hook: smoke tests before production traffic moves.

With the site's ``DeploymentStrategy`` at CANARY or LINEAR, ECS invokes this function at
``POST_TEST_TRAFFIC_SHIFT``: the new revision runs and gets the test traffic (requests with
the test header), users are still on the old one. The answer decides the deployment:
``SUCCEEDED`` lets ECS shift production traffic, ``FAILED`` rolls back before any user saw
the new version. Anything but a clean pass is ``FAILED``: a malformed event, a hook
configured without its test URL, a probe failing, or the time budget running out. The
function changes nothing itself, so it has no dry run or kill switch; the gate is switched
off with the site parameter ``SmokeTestHook=disabled``.

Event (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html)::

    {"executionId": "...", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
     "resourceArn": "arn:aws:ecs:...:service-deployment/<cluster>/<service>/<id>",
     "executionDetails": {"serviceArn": "...", "targetServiceRevisionArn": "...", ...},
     "hookDetails": {"baseUrl": "https://...", "testHeader": "X-Spotops-Test-Traffic",
                     "testHeaderValue": "<stage>"}}

``hookDetails`` comes from the site template (``SmokeTestHook``).

**Which revision answered.** The test header routes to the new revision only if the test
listener rule does; a rule left on the old target group would let the old revision pass the
smoke tests for the new one. So the hook reads the target revision's image
(``ecs:DescribeServiceRevisions`` of ``targetServiceRevisionArn``: the digest ECS resolved for
the site container) and compares it with what ``/version`` says it runs (``image_digest``,
else ``image_tag`` against a revision pinned by tag): another image is ``FAILED`` (the test
traffic reached the old revision). When the comparison cannot run (no ARN in the event, the
revision unreadable, ``/version`` naming no digest) the hook says so in its log and decides
on the smoke tests alone: a check that could not run never fails a deployment by itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code
from chalicelib.errors import OpsError
from chalicelib.hook.smoke import Fetch, SmokeReport, Target, http_get, run_smoke_tests
from chalicelib.observability import count, logger

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

JOB = "deployment-hook"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
# ECS waits for the function; the site template's hook timeout (5 minutes, then ROLLBACK) is
# the outer guard. The function's own Lambda timeout is 90 s (ops.yaml).
BUDGET_SECONDS = 60.0
MARGIN_SECONDS = 5.0
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


MATCH, MISMATCH, UNKNOWN = "match", "mismatch", "unknown"


class RevisionReadError(OpsError):
    """The target revision's image could not be read; the message says why."""


@dataclass(frozen=True)
class RevisionImage:
    """What the target service revision runs in the site container."""

    arn: str
    image: str  # as in the task definition: ``<uri>@sha256:...`` or ``<uri>:<tag>``
    digest: str  # the digest ECS resolved for it (``""``: ECS gave none)


class RevisionReader(Protocol):
    def image_of(self, revision_arn: str) -> RevisionImage: ...


class ServiceRevisions:
    """``ecs:DescribeServiceRevisions``, narrowed to one container's image.

    Parameters
    ----------
    ecs:
        A boto3 ECS client.
    container:
        The site container (``CONTAINER_NAME``).
    """

    def __init__(self, ecs: ECSClient, container: str) -> None:
        self._ecs = ecs
        self._container = container

    def image_of(self, revision_arn: str) -> RevisionImage:
        """The container's image in ``revision_arn``.

        Raises
        ------
        RevisionReadError
            ECS refused or failed, reported the revision as a failure, or the revision has
            no such container.
        """
        try:
            response = self._ecs.describe_service_revisions(serviceRevisionArns=[revision_arn])
        except ClientError as exc:
            raise RevisionReadError(f"DescribeServiceRevisions failed: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise RevisionReadError(f"DescribeServiceRevisions failed: {exc}") from exc
        for failure in response.get("failures") or []:
            reason = failure.get("reason") or failure.get("detail") or "failure"
            raise RevisionReadError(f"ECS cannot describe the revision: {reason}")
        for revision in response.get("serviceRevisions") or []:
            for image in revision.get("containerImages") or []:
                if image.get("containerName") == self._container:
                    return RevisionImage(
                        revision_arn, str(image.get("image", "")), str(image.get("imageDigest", ""))
                    )
        raise RevisionReadError(f"the revision has no container {self._container}")


def default_revisions() -> RevisionReader:
    """The Lambda's reader: its own ECS client (two attempts, short timeouts: the smoke tests
    share the invocation's time), the container from ``CONTAINER_NAME`` (default ``site``)."""
    from chalicelib.aws import AwsClients

    return ServiceRevisions(
        AwsClients(max_attempts=2).ecs, os.environ.get("CONTAINER_NAME") or "site"
    )


@dataclass(frozen=True)
class RevisionCheck:
    """Whether the build that answered the smoke tests is the target revision's."""

    verdict: str  # MATCH, MISMATCH or UNKNOWN (the check could not run)
    reason: str


def compare_revision(
    version: Mapping[str, Any] | None, revision: RevisionImage | None, unreadable: str = ""
) -> RevisionCheck:
    """Compare ``/version`` (what answered the test traffic) with the target revision.

    Example
    -------
    >>> rev = RevisionImage("arn", "repo@sha256:a", "sha256:a")
    >>> compare_revision({"image_digest": "sha256:b"}, rev).verdict
    'mismatch'
    >>> compare_revision({"image_digest": None}, None, "no ARN").verdict
    'unknown'
    """
    if revision is None:
        return RevisionCheck(UNKNOWN, f"the target revision is unknown ({unreadable})")
    if version is None:
        return RevisionCheck(UNKNOWN, "/version gave no JSON document to compare")
    served_digest = version.get("image_digest")
    expected_digest = revision.digest or (
        revision.image.rsplit("@", 1)[1] if "@" in revision.image else ""
    )
    if isinstance(served_digest, str) and served_digest and expected_digest:
        if served_digest == expected_digest:
            return RevisionCheck(MATCH, f"/version runs {served_digest[:19]}, the target revision")
        return RevisionCheck(
            MISMATCH,
            f"/version runs {served_digest[:19]}, not the target revision's "
            f"{expected_digest[:19]}: the test traffic reached another revision",
        )
    served_tag = version.get("image_tag")
    name = revision.image.rsplit("/", 1)[-1]
    expected_tag = name.split(":", 1)[1] if "@" not in name and ":" in name else ""
    if isinstance(served_tag, str) and served_tag and expected_tag:
        if served_tag == expected_tag:
            return RevisionCheck(MATCH, f"/version runs tag {served_tag}, the target revision")
        return RevisionCheck(
            MISMATCH,
            f"/version runs tag {served_tag}, not the target revision's {expected_tag}: the "
            "test traffic reached another revision",
        )
    return RevisionCheck(
        UNKNOWN, "/version names no image_digest to compare with the target revision"
    )


@dataclass(frozen=True)
class HookResult:
    """The hook's decision: the answer to ECS and why."""

    status: str  # SUCCEEDED or FAILED
    reason: str
    revision: RevisionCheck | None = None

    def answer(self) -> dict[str, str]:
        """What ECS reads: ``{"hookStatus": ...}`` only."""
        return {"hookStatus": self.status}


def decide(report: SmokeReport, revision: RevisionCheck) -> HookResult:
    """SUCCEEDED only when every smoke test passed and the build that answered is not
    another revision's; a revision check that could not run leaves the smoke tests to
    decide, and says so."""
    if not report.passed:
        return HookResult(FAILED, f"smoke tests failed: {report.summary()}", revision)
    if revision.verdict == MISMATCH:
        return HookResult(FAILED, revision.reason, revision)
    if revision.verdict == UNKNOWN:
        return HookResult(
            SUCCEEDED,
            f"smoke tests passed; not compared with the target revision: {revision.reason}",
            revision,
        )
    return HookResult(SUCCEEDED, f"smoke tests passed; {revision.reason}", revision)


def target_revision_arn(event: Any) -> str | None:
    """``executionDetails.targetServiceRevisionArn``, when the event carries one."""
    if not isinstance(event, Mapping):
        return None
    details = event.get("executionDetails")
    arn = details.get("targetServiceRevisionArn") if isinstance(details, Mapping) else None
    return arn if isinstance(arn, str) and arn.startswith("arn:") else None


def read_revision(event: Any, revisions: RevisionReader | None) -> tuple[RevisionImage | None, str]:
    """The target revision's image, or why it could not be read (never raises)."""
    arn = target_revision_arn(event)
    if arn is None:
        return None, "the event names no executionDetails.targetServiceRevisionArn"
    if revisions is None:
        return None, "no revision reader"
    try:
        return revisions.image_of(arn), ""
    except RevisionReadError as exc:
        return None, str(exc)
    except Exception as exc:  # the check is extra: its failure never decides the deployment
        return None, f"{type(exc).__name__}: {exc}"[:200]


def parse_target(event: Any) -> tuple[Target | None, str]:
    """The smoke-test target named by the event's ``hookDetails``, or why there is none."""
    if not isinstance(event, Mapping):
        return None, "the event is not an object"
    details: Any = event.get("hookDetails")
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return None, "hookDetails is not JSON"
    if not isinstance(details, Mapping):
        return None, "hookDetails is missing (the site template sets baseUrl and the header)"
    base_url = details.get("baseUrl")
    header = details.get("testHeader")
    value = details.get("testHeaderValue")
    if not isinstance(base_url, str) or not re.match(r"^https?://[^\s/]+", base_url):
        return None, "hookDetails.baseUrl is not an http(s) URL"
    if not isinstance(header, str) or not _HEADER_NAME.match(header):
        return None, "hookDetails.testHeader is not a header name"
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n"):
        return None, "hookDetails.testHeaderValue is not a header value"
    return Target(base_url, {header: value}), ""


def handle_hook(
    event: Any,
    *,
    remaining_seconds: Callable[[], float] | None = None,
    fetch: Fetch = http_get,
    budget_seconds: float = BUDGET_SECONDS,
    revisions: RevisionReader | None = None,
) -> dict[str, str]:
    """Answer ECS: ``{"hookStatus": "SUCCEEDED"}`` only when every smoke test passed and
    the build that answered is the target revision's (or that could not be checked).

    Never raises: an exception would also roll back, but without saying why.
    """
    return run_hook(
        event,
        remaining_seconds=remaining_seconds,
        fetch=fetch,
        budget_seconds=budget_seconds,
        revisions=revisions,
    ).answer()


def run_hook(
    event: Any,
    *,
    remaining_seconds: Callable[[], float] | None = None,
    fetch: Fetch = http_get,
    budget_seconds: float = BUDGET_SECONDS,
    revisions: RevisionReader | None = None,
) -> HookResult:
    """The hook's decision with its reason (``handle_hook`` answers ECS with its status)."""
    facts = _facts(event)
    target, problem = parse_target(event)
    if target is None:
        logger.error(
            "deployment hook cannot test: rolling back", extra={"reason": problem, **facts}
        )
        count("EventsIgnored", JOB)
        return HookResult(FAILED, f"cannot test: {problem}")
    revision, unreadable = read_revision(event, revisions)
    if revision is None:
        logger.warning(
            "target revision not read: the smoke tests alone decide",
            extra={"reason": unreadable, **facts},
        )
    budget = budget_seconds
    if remaining_seconds is not None:
        budget = min(budget, remaining_seconds() - MARGIN_SECONDS)
    try:
        report = run_smoke_tests(target, budget_seconds=max(budget, 0.0), fetch=fetch)
    except Exception:  # a bug here must fail closed, and say so
        logger.exception("smoke tests crashed: rolling back", extra=facts)
        count("ActionsFailed", JOB)
        return HookResult(FAILED, "the smoke tests crashed")
    check = compare_revision(report.document("/version"), revision, unreadable)
    result = decide(report, check)
    _log(result, report, target, revision, facts)
    return result


def _log(
    result: HookResult,
    report: SmokeReport,
    target: Target,
    revision: RevisionImage | None,
    facts: dict[str, Any],
) -> None:
    check = result.revision
    extra = {
        "base_url": target.base_url,
        "summary": report.summary(),
        "hook_status": result.status,
        "reason": result.reason,
        "revision_check": check.verdict if check else None,
        "revision_image": revision.image if revision else None,
        "served": dict(report.document("/version") or {}),
        **facts,
    }
    if result.status == SUCCEEDED:
        logger.info("smoke tests passed: production traffic may shift", extra=extra)
        count("ActionsTaken", JOB)
        return
    for probe in report.results:
        if not probe.passed:
            logger.error(
                "smoke test failed",
                extra={
                    "check": probe.path,
                    "url": target.base_url.rstrip("/") + probe.path,
                    "error": probe.detail,
                    "attempts": probe.attempts,
                },
            )
    message = (
        "smoke tests failed: rolling back"
        if not report.passed
        else "another revision answered the test traffic: rolling back"
    )
    logger.error(message, extra=extra)
    count("ActionsFailed", JOB)


def _facts(event: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        return {}
    details = event.get("executionDetails")
    details = details if isinstance(details, Mapping) else {}
    return {
        "lifecycle_stage": event.get("lifecycleStage"),
        "deployment": event.get("resourceArn"),
        "service": details.get("serviceArn"),
        "target_revision": details.get("targetServiceRevisionArn"),
    }
