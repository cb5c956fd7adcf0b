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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.observability import count, logger
from chalicelib.smoke import Fetch, SmokeReport, Target, http_get, run_smoke_tests

JOB = "deployment-hook"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
# ECS waits for the function; the site template's hook timeout (5 minutes, then ROLLBACK) is
# the outer guard. The function's own Lambda timeout is 90 s (ops.yaml).
BUDGET_SECONDS = 60.0
MARGIN_SECONDS = 5.0
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


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
) -> dict[str, str]:
    """Answer ECS: ``{"hookStatus": "SUCCEEDED"}`` only when every smoke test passed.

    Never raises: an exception would also roll back, but without saying why.
    """
    facts = _facts(event)
    target, problem = parse_target(event)
    if target is None:
        logger.error(
            "deployment hook cannot test: rolling back", extra={"reason": problem, **facts}
        )
        count("EventsIgnored", JOB)
        return {"hookStatus": FAILED}
    budget = budget_seconds
    if remaining_seconds is not None:
        budget = min(budget, remaining_seconds() - MARGIN_SECONDS)
    try:
        report = run_smoke_tests(target, budget_seconds=max(budget, 0.0), fetch=fetch)
    except Exception:  # a bug here must fail closed, and say so
        logger.exception("smoke tests crashed: rolling back", extra=facts)
        count("ActionsFailed", JOB)
        return {"hookStatus": FAILED}
    return _answer(report, target, facts)


def _answer(report: SmokeReport, target: Target, facts: dict[str, Any]) -> dict[str, str]:
    extra = {"base_url": target.base_url, "summary": report.summary(), **facts}
    if report.passed:
        logger.info("smoke tests passed: production traffic may shift", extra=extra)
        count("ActionsTaken", JOB)
        return {"hookStatus": SUCCEEDED}
    for result in report.results:
        if not result.passed:
            logger.error(
                "smoke test failed",
                extra={
                    "check": result.path,
                    "url": target.base_url.rstrip("/") + result.path,
                    "error": result.detail,
                    "attempts": result.attempts,
                },
            )
    logger.error("smoke tests failed: rolling back", extra=extra)
    count("ActionsFailed", JOB)
    return {"hookStatus": FAILED}


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
