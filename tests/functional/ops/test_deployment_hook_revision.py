"""The deployment hook tells the new revision from the old one: /version against the target
revision's image (DescribeServiceRevisions, faked at the gateway seam), against a real HTTP
server on 127.0.0.1 (issue 22, item 10)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import app
from chalicelib.hook import flow as deployment_hook
from chalicelib.hook.flow import ServiceRevisions, handle_hook, run_hook
from tests.support.events import load_event
from tests.support.ops_world import FakeLambdaContext, LogLines
from tests.support.service_revisions import REVISION_ARN, FakeServiceRevisions
from tests.support.smoke_target import SmokeTarget

NEW = "sha256:" + "1" * 64
OLD = "sha256:" + "0" * 64
URI = "123456789012.dkr.ecr.us-west-2.amazonaws.com/spotops-dev-site"


@pytest.fixture
def target() -> Iterator[SmokeTarget]:
    server = SmokeTarget()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ecs() -> FakeServiceRevisions:
    fake = FakeServiceRevisions()
    fake.add(REVISION_ARN, image=f"{URI}@{NEW}", digest=NEW)
    return fake


def event_for(target: SmokeTarget) -> dict[str, Any]:
    event = target.hook_event(load_event("ecsLifecycleHookPostTestTrafficShift"))
    assert event["executionDetails"]["targetServiceRevisionArn"] == REVISION_ARN
    return event


def serves(target: SmokeTarget, digest: str | None, tag: str | None = "0a1b2c3") -> None:
    target.version = {
        "service": "spotops-dev-site",
        "version": "1.2.3",
        "git_commit": "0a1b2c3",
        "image_tag": tag,
        "image_digest": digest,
        "started_at": "2025-01-01T00:00:00Z",
    }


def hook_log(logs: LogLines) -> dict[str, Any]:
    return next(r for r in logs.records() if "hook_status" in r)


def test_the_old_revision_answering_the_test_traffic_fails_the_deployment(
    target: SmokeTarget, ecs: FakeServiceRevisions, logs: LogLines
) -> None:
    serves(target, OLD)  # the test listener rule still points at the old target group

    result = run_hook(event_for(target), revisions=ServiceRevisions(ecs, "site"))
    answer = handle_hook(event_for(target), revisions=ServiceRevisions(ecs, "site"))

    assert answer == {"hookStatus": "FAILED"}
    assert result.status == "FAILED"
    assert result.revision is not None
    assert result.revision.verdict == "mismatch"
    assert "not the target revision's" in result.reason
    assert ecs.asked == [REVISION_ARN, REVISION_ARN]
    logged = hook_log(logs)
    assert logged["message"] == "another revision answered the test traffic: rolling back"
    assert logged["revision_check"] == "mismatch"
    assert logged["served"]["image_digest"] == OLD


def test_the_target_revision_answering_succeeds(
    target: SmokeTarget, ecs: FakeServiceRevisions, logs: LogLines
) -> None:
    serves(target, NEW)

    result = run_hook(event_for(target), revisions=ServiceRevisions(ecs, "site"))

    assert result.answer() == {"hookStatus": "SUCCEEDED"}
    assert result.revision is not None
    assert result.revision.verdict == "match"
    assert hook_log(logs)["revision_check"] == "match"


def test_a_revision_pinned_by_tag_is_compared_by_tag_when_version_names_no_digest(
    target: SmokeTarget,
) -> None:
    fake = FakeServiceRevisions()
    fake.add(REVISION_ARN, image=f"{URI}:v1.2.4", digest="")
    serves(target, None, tag="v1.2.3")

    result = run_hook(event_for(target), revisions=ServiceRevisions(fake, "site"))

    assert result.status == "FAILED"
    assert "tag v1.2.3, not the target revision's v1.2.4" in result.reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("no-arn", "names no executionDetails.targetServiceRevisionArn"),
        ("denied", "DescribeServiceRevisions failed: AccessDeniedException"),
        ("unknown-revision", "ECS cannot describe the revision: MISSING"),
        ("no-container", "the revision has no container site"),
        ("no-digest-served", "/version names no image_digest"),
    ],
)
def test_a_check_that_cannot_run_says_so_and_leaves_the_smoke_tests_to_decide(
    target: SmokeTarget, logs: LogLines, change: str, why: str
) -> None:
    fake = FakeServiceRevisions()
    fake.add(REVISION_ARN, image=f"{URI}@{NEW}", digest=NEW, container="web")
    container = "web"
    event = event_for(target)
    serves(target, OLD)
    if change == "no-arn":
        del event["executionDetails"]["targetServiceRevisionArn"]
    elif change == "denied":
        fake.error = "AccessDeniedException"
    elif change == "unknown-revision":
        fake.revisions.clear()
    elif change == "no-container":
        container = "site"
    elif change == "no-digest-served":
        serves(target, None, tag=None)

    result = run_hook(event, revisions=ServiceRevisions(fake, container))

    assert result.answer() == {"hookStatus": "SUCCEEDED"}
    assert result.revision is not None
    assert result.revision.verdict == "unknown"
    assert why in result.reason
    assert "not compared with the target revision" in result.reason
    logged = hook_log(logs)
    assert logged["revision_check"] == "unknown"
    assert why in logged["reason"]


def test_an_unreadable_revision_never_saves_a_failing_smoke_test(
    target: SmokeTarget, logs: LogLines
) -> None:
    target.behaviour["/healthz"] = "500"

    result = run_hook(event_for(target), revisions=ServiceRevisions(FakeServiceRevisions(), "site"))

    assert result.status == "FAILED"
    assert "smoke tests failed" in result.reason


def test_the_app_handler_reads_the_target_revision_with_its_own_client(
    target: SmokeTarget, ecs: FakeServiceRevisions, monkeypatch: pytest.MonkeyPatch
) -> None:
    serves(target, OLD)
    monkeypatch.setattr(deployment_hook, "default_revisions", lambda: ServiceRevisions(ecs, "site"))

    answer = app.deployment_hook(event_for(target), FakeLambdaContext())

    assert answer == {"hookStatus": "FAILED"}
    assert ecs.asked == [REVISION_ARN]
