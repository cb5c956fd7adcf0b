"""ECR scan findings for the image the service runs, against moto and a Slack stub."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.events import EcrImageScanEvent
from chalicelib.image_scan import handle_scan
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import World
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

RUNBOOK = "https://runbooks.example.com/spotops/image-vulnerability.md"


def scan_event(
    world: World, digest: str, counts: dict[str, int], *, event_id: str = "scan-1", **detail: Any
) -> EcrImageScanEvent:
    event = load_event("ecrImageScanCompleted")
    event["id"] = event_id
    event["resources"] = [f"arn:aws:ecr:us-east-1:123456789012:repository/{world.repository}"]
    event["detail"].update(
        {
            "repository-name": world.repository,
            "image-digest": digest,
            "image-tags": ["v1.2.3"],
            "finding-severity-counts": counts,
            **detail,
        }
    )
    return EcrImageScanEvent(event)


def running(world: World, tag: str = "v1.2.3") -> str:
    digest = world.push_image(tag)
    world.run_image(f"{world.repository_uri}@{digest}")
    return digest


def test_high_findings_in_the_running_image_alert_once_with_the_runbook(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = running(world)
    event = scan_event(world, digest, {"HIGH": 3, "LOW": 7})

    first = handle_scan(event, kit)
    again = handle_scan(event, kit)  # EventBridge delivers at least once

    assert first["status"] == "alerted", first
    assert again["status"] == "duplicate"
    assert len(slack.bodies) == 1
    text = str(slack.bodies[0])
    assert "Vulnerable image running" in text
    assert "HIGH 3" in text
    assert "LOW 7" in text
    assert digest in text
    assert RUNBOOK in text


def test_critical_in_an_image_by_tag_the_first_deploy_runs_alerts(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v0.1.0")
    world.run_image(f"{world.repository_uri}:v0.1.0")  # not pinned: resolved through ECR

    result = handle_scan(scan_event(world, digest, {"CRITICAL": 1}), kit)

    assert result["status"] == "alerted", result
    assert "CRITICAL 1" in str(slack.bodies[-1])


@pytest.mark.parametrize(
    "counts", [{"LOW": 12, "MEDIUM": 4, "INFORMATIONAL": 2}, {}, {"HIGH": 0, "CRITICAL": 0}]
)
def test_findings_below_high_post_nothing(
    world: World, kit: Toolkit, slack: SlackStub, counts: dict[str, int]
) -> None:
    digest = running(world)

    result = handle_scan(scan_event(world, digest, counts), kit)

    assert result["status"] == "skipped"
    assert slack.bodies == []


def test_high_findings_in_an_image_the_service_does_not_run_post_nothing(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    running(world, "v1.2.3")
    other = world.push_image("v1.2.4", seed="never-deployed")

    result = handle_scan(scan_event(world, other, {"CRITICAL": 2, "HIGH": 5}), kit)

    assert result["status"] == "skipped"
    assert "not running" in result["reason"]
    assert slack.bodies == []


def test_a_failed_scan_is_logged_not_alerted(world: World, kit: Toolkit, slack: SlackStub) -> None:
    digest = running(world)

    result = handle_scan(scan_event(world, digest, {}, **{"scan-status": "FAILED"}), kit)

    assert result["status"] == "skipped"
    assert "FAILED" in result["reason"]
    assert slack.bodies == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"repository-name": "someone-elses"}, "is not"),
        ({"image-digest": "sha256:short"}, "image-digest"),
        ({"finding-severity-counts": {"HIGH": "3"}}, "finding-severity-counts"),
        ({"scan-status": None}, "scan-status"),
    ],
)
def test_malformed_or_foreign_scan_events_are_ignored_with_the_reason(
    world: World, kit: Toolkit, slack: SlackStub, change: dict[str, Any], why: str
) -> None:
    digest = running(world)
    event = scan_event(world, digest, {"HIGH": 1}, **change)

    result = handle_scan(event, kit)

    assert result["status"] == "ignored"
    assert why in result["reason"]
    assert slack.bodies == []
