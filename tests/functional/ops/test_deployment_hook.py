"""The deployment lifecycle hook against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import app
from chalicelib.hook import flow as deployment_hook
from chalicelib.hook.flow import ServiceRevisions, handle_hook
from tests.support.events import load_event
from tests.support.ops_world import FakeLambdaContext, LogLines
from tests.support.service_revisions import FakeServiceRevisions
from tests.support.smoke_target import HEADER, VALUE, SmokeTarget


@pytest.fixture
def target() -> Iterator[SmokeTarget]:
    server = SmokeTarget()
    try:
        yield server
    finally:
        server.close()


def event_for(target: SmokeTarget) -> dict[str, Any]:
    return target.hook_event(load_event("ecsLifecycleHookPostTestTrafficShift"))


def test_all_smoke_tests_pass_through_the_test_header(target: SmokeTarget) -> None:
    answer = handle_hook(event_for(target))

    assert answer == {"hookStatus": "SUCCEEDED"}
    assert [path for path, _ in target.seen] == ["/healthz", "/version", "/"]
    assert {header for _, header in target.seen} == {VALUE}


@pytest.mark.parametrize(
    ("path", "behaviour", "error"),
    [
        ("/healthz", "500", "HTTP 500"),
        ("/version", "not-json", "not JSON"),
        ("/", "redirect", "HTTP 301"),
    ],
)
def test_one_failing_smoke_test_answers_failed_and_logs_why(
    target: SmokeTarget, logs: LogLines, path: str, behaviour: str, error: str
) -> None:
    target.behaviour[path] = behaviour

    answer = handle_hook(event_for(target))

    assert answer == {"hookStatus": "FAILED"}
    failed = next(r for r in logs.records() if r.get("message") == "smoke test failed")
    assert failed["check"] == path
    assert failed["error"] == error
    assert failed["attempts"] == 3


def test_a_blip_right_after_the_traffic_shift_is_retried(target: SmokeTarget) -> None:
    target.behaviour["/healthz"] = "503-then-ok"

    assert handle_hook(event_for(target)) == {"hookStatus": "SUCCEEDED"}


def test_a_hanging_candidate_times_out_to_failed_instead_of_hanging_the_deployment(
    target: SmokeTarget, logs: LogLines
) -> None:
    target.behaviour["/healthz"] = "hang"

    answer = handle_hook(event_for(target), budget_seconds=1.0)

    assert answer == {"hookStatus": "FAILED"}
    summary = next(
        r for r in logs.records() if r.get("message") == "smoke tests failed: rolling back"
    )
    assert "time budget spent" in summary["summary"] or "timed out" in summary["summary"]


def test_the_lambda_time_left_bounds_the_budget(target: SmokeTarget) -> None:
    target.behaviour["/healthz"] = "hang"

    # 5.5 s left minus the 5 s margin: half a second to test, then FAILED.
    answer = handle_hook(event_for(target), remaining_seconds=lambda: 5.5)

    assert answer == {"hookStatus": "FAILED"}


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        (None, "hookDetails is missing"),
        (
            {"baseUrl": "file:///etc/passwd", "testHeader": HEADER, "testHeaderValue": VALUE},
            "baseUrl",
        ),
        (
            {"baseUrl": "https://example.com", "testHeader": "X Bad", "testHeaderValue": VALUE},
            "testHeader",
        ),
        (
            {"baseUrl": "https://example.com", "testHeader": HEADER, "testHeaderValue": "a\r\nb"},
            "testHeaderValue",
        ),
        ("{not json", "not JSON"),
    ],
)
def test_a_hook_configured_without_a_usable_target_fails_closed(
    target: SmokeTarget, logs: LogLines, details: Any, reason: str
) -> None:
    event = event_for(target)
    event["hookDetails"] = details

    assert handle_hook(event) == {"hookStatus": "FAILED"}
    assert target.seen == []
    logged = next(r for r in logs.records() if "cannot test" in str(r.get("message")))
    assert reason in logged["reason"]


def test_the_app_handler_answers_ecs_with_only_the_hook_status(
    target: SmokeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler's own ECS client is replaced: tests talk only to 127.0.0.1.
    monkeypatch.setattr(
        deployment_hook,
        "default_revisions",
        lambda: ServiceRevisions(FakeServiceRevisions(), "site"),
    )

    answer = app.deployment_hook(event_for(target), FakeLambdaContext())

    assert answer == {"hookStatus": "SUCCEEDED"}


def test_the_header_is_what_routes_to_the_candidate(target: SmokeTarget) -> None:
    event = event_for(target)
    event["hookDetails"]["testHeaderValue"] = "prod"  # another stage's rule: no candidate here

    assert handle_hook(event) == {"hookStatus": "FAILED"}
    assert {header for _, header in target.seen} == {"prod"}
