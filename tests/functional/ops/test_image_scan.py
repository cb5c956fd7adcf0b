"""ECR scan findings for the image the service runs, against moto and a Slack stub."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.events import EcrImageScanEvent
from chalicelib.scan.flow import handle_event, handle_scan
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, World
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


# ---- a completed deployment: the image may have been scanned before it ran -----------------


def completed(
    world: World, event_id: str = "deployed-1", name: str | None = None
) -> dict[str, Any]:
    event = load_event("ecsDeploymentStateChangeCompleted")
    event["id"] = event_id
    event["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{world.cluster}/{world.service}"]
    if name:
        event["detail"]["eventName"] = name
    return event


def scanned(world: World, digest: str) -> None:
    """A finished basic scan of ``digest`` (moto's canned result holds one HIGH finding)."""
    world.clients.ecr.start_image_scan(
        repositoryName=world.repository, imageId={"imageDigest": digest}
    )


def test_a_deployment_that_starts_running_an_already_scanned_vulnerable_image_alerts_once(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v2.0.0")
    scanned(world, digest)  # the scan event came and went while the image ran nowhere
    assert handle_scan(scan_event(world, digest, {"HIGH": 1}), kit)["status"] == "skipped"
    world.run_image(f"{world.repository_uri}@{digest}")

    first = handle_event(completed(world), kit)
    again = handle_event(completed(world), kit)

    assert first["status"] == "alerted", first
    assert first["alerted"] == [digest]
    assert again["status"] == "duplicate"
    assert len(slack.bodies) == 1
    text = str(slack.bodies[0])
    assert "Vulnerable image running" in text
    assert "HIGH 1" in text
    assert RUNBOOK in text


def test_a_deployment_of_an_image_not_scanned_yet_waits_for_its_scan_event(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = running(world, "v2.1.0")

    result = handle_event(completed(world), kit)

    assert result["status"] == "skipped"
    assert result["running"] == [digest]
    assert slack.bodies == []


def test_only_completed_deployments_of_our_service_are_read(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    scanned(world, running(world))
    other = completed(world, "elsewhere")
    other["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{world.cluster}/another"]

    in_progress = handle_event(completed(world, "prog", "SERVICE_DEPLOYMENT_IN_PROGRESS"), kit)
    foreign = handle_event(other, kit)

    assert in_progress["status"] == "ignored"
    assert foreign["status"] == "ignored"
    assert "is not" in foreign["reason"]
    assert slack.bodies == []
