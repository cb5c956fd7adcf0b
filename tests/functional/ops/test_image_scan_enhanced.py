"""ECR enhanced scanning (Amazon Inspector): ACTIVE scans, Inspector's events, one alert per
image and one notice per stage; against moto and a Slack stub (issue 22, item 10)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import app
from chalicelib.scan.flow import handle_event
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, FakeLambdaContext, World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

RUNBOOK = "https://runbooks.example.com/spotops/image-vulnerability.md"


class EnhancedEcr:
    """ECR with enhanced scanning on: ``DescribeImageScanFindings`` reports ``ACTIVE`` where
    moto (basic scanning only) says ``COMPLETE``; every other call goes to moto."""

    def __init__(self, ecr: Any) -> None:
        self._ecr = ecr

    def describe_image_scan_findings(self, **kwargs: Any) -> dict[str, Any]:
        response = self._ecr.describe_image_scan_findings(**kwargs)
        response["imageScanStatus"] = {
            "status": "ACTIVE",
            "description": "Continuous scan is selected for image.",
        }
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ecr, name)


def finding(
    world: World,
    digest: str,
    *,
    event_id: str = "finding-1",
    severity: str = "HIGH",
    status: str = "ACTIVE",
    cve: str = "CVE-2024-0001",
    repository: str | None = None,
) -> dict[str, Any]:
    """The documented ``Inspector2 Finding`` of an ECR image, about ``digest``."""
    repository = repository or world.repository
    event = load_event("inspector2FindingEcrImage")
    event["id"] = event_id
    image_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repository}/{digest}"
    event["resources"] = [image_arn]
    detail = event["detail"]
    detail.update(severity=severity, status=status, title=f"{cve} - openssl")
    resource = detail["resources"][0]
    resource["id"] = image_arn
    resource["details"]["awsEcrContainerImage"].update(
        repositoryName=repository, imageHash=digest, imageTags=["v1.2.3"]
    )
    return event


def initial_scan(world: World, digest: str, counts: dict[str, int], event_id: str = "scan-1"):
    """The documented ``Inspector2 Scan`` (initial scan complete) of ``digest``."""
    event = load_event("inspector2ScanEcrImage")
    event["id"] = event_id
    repository_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{world.repository}"
    event["resources"] = [repository_arn]
    event["detail"].update(
        {
            "repository-name": repository_arn,
            "image-digest": digest,
            "image-tags": ["v1.2.3"],
            "finding-severity-counts": counts,
        }
    )
    return event


def running(world: World, tag: str = "v1.2.3", seed: str | None = None) -> str:
    digest = world.push_image(tag, seed=seed)
    world.run_image(f"{world.repository_uri}@{digest}")
    return digest


def alerts(slack: SlackStub) -> list[str]:
    return [str(b) for b in slack.bodies if "Vulnerable image running" in str(b)]


def notices(slack: SlackStub) -> list[str]:
    return [str(b) for b in slack.bodies if "Image scanning is enhanced" in str(b)]


def completed(world: World, event_id: str = "deployed-1") -> dict[str, Any]:
    event = load_event("ecsDeploymentStateChangeCompleted")
    event["id"] = event_id
    event["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{world.cluster}/{world.service}"]
    return event


# ---- ACTIVE is a finished scan ------------------------------------------------------------


def test_a_deployment_reads_a_scan_ecr_reports_active_and_alerts(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v2.0.0")
    world.clients.ecr.start_image_scan(
        repositoryName=world.repository, imageId={"imageDigest": digest}
    )  # moto's canned findings: one HIGH
    world.run_image(f"{world.repository_uri}@{digest}")
    enhanced = dataclasses.replace(kit, ecr=EnhancedEcr(kit.ecr))

    result = handle_event(completed(world), enhanced)

    assert result["status"] == "alerted", result
    assert result["alerted"] == [digest]
    assert len(alerts(slack)) == 1
    assert "HIGH 1" in alerts(slack)[0]


def test_an_ecr_scan_event_reporting_active_alerts_like_complete(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = running(world)
    event = load_event("ecrImageScanCompleted")
    event["detail"].update(
        {
            "repository-name": world.repository,
            "image-digest": digest,
            "scan-status": "ACTIVE",
            "finding-severity-counts": {"CRITICAL": 1},
        }
    )

    result = handle_event(event, kit)

    assert result["status"] == "alerted", result
    assert len(alerts(slack)) == 1


# ---- Inspector's events --------------------------------------------------------------------


def test_findings_of_a_running_image_alert_once_per_image_and_once_that_scanning_is_enhanced(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = running(world)

    first = handle_event(finding(world, digest, event_id="f-1", cve="CVE-2024-0001"), kit)
    second = handle_event(
        finding(world, digest, event_id="f-2", severity="CRITICAL", cve="CVE-2024-0002"), kit
    )
    scan = handle_event(initial_scan(world, digest, {"HIGH": 2, "CRITICAL": 1, "TOTAL": 9}), kit)
    redelivered = handle_event(finding(world, digest, event_id="f-1"), kit)

    assert first["status"] == "alerted", first
    assert first["enhanced_notice"] is True
    assert [second["status"], scan["status"], redelivered["status"]] == ["duplicate"] * 3
    assert "enhanced_notice" not in second
    assert len(alerts(slack)) == 1
    assert len(notices(slack)) == 1
    assert len(slack.bodies) == 2
    alert = alerts(slack)[0]
    assert digest in alert
    assert "CVE-2024-0001 - openssl (HIGH)" in alert
    assert "enhanced (Amazon Inspector)" in alert
    assert RUNBOOK in alert


def test_the_initial_scan_of_a_running_image_alerts_with_its_counts(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = running(world)

    result = handle_event(
        initial_scan(world, digest, {"CRITICAL": 7, "HIGH": 61, "TOTAL": 158}), kit
    )

    assert result["status"] == "alerted", result
    alert = alerts(slack)[0]
    assert "CRITICAL 7, HIGH 61" in alert
    assert "TOTAL" not in alert


def test_a_finding_below_high_closed_or_on_an_image_nobody_runs_does_not_use_up_the_alert(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    running(world, "v1.0.0")
    later = world.push_image("v1.1.0", seed="not-yet-running")

    medium = handle_event(finding(world, later, event_id="m", severity="MEDIUM"), kit)
    closed = handle_event(finding(world, later, event_id="c", status="CLOSED"), kit)
    idle = handle_event(finding(world, later, event_id="i"), kit)
    world.run_image(f"{world.repository_uri}@{later}")
    now_running = handle_event(finding(world, later, event_id="r"), kit)

    assert [medium["status"], closed["status"], idle["status"]] == ["skipped"] * 3
    assert "MEDIUM" in medium["reason"]
    assert "CLOSED" in closed["reason"]
    assert "not running" in idle["reason"]
    assert now_running["status"] == "alerted", now_running
    assert len(alerts(slack)) == 1
    assert len(notices(slack)) == 1  # the first Inspector event of the stage, only


def test_the_enhanced_notice_is_once_per_stage_not_per_container_or_idempotency_window(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v1.0.0")

    handle_event(finding(world, digest, event_id="a", severity="LOW"), kit)
    handle_event(finding(world, digest, event_id="b", severity="LOW"), make_kit(world))
    item = world.clients.dynamodb.get_item(
        TableName=world.ledger_table,
        Key={"pk": {"S": f"SCAN#{world.cluster}/{world.service}"}, "sk": {"S": "ENHANCED"}},
    )["Item"]

    assert len(notices(slack)) == 1
    assert alerts(slack) == []
    assert item["event_id"] == {"S": "a"}
    assert "ttl" not in item


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"repository": "someone-elses"}, "is not"),
        ({"digest": "sha256:short"}, "imageHash"),
        ({"no_image": True}, "not about an ECR image"),
        ({"severity": None}, "severity"),
    ],
)
def test_findings_not_about_an_image_of_our_repository_are_ignored_with_the_reason(
    world: World, kit: Toolkit, slack: SlackStub, change: dict[str, Any], why: str
) -> None:
    digest = running(world)
    event = finding(
        world,
        change.get("digest", digest),
        repository=change.get("repository"),
    )
    if change.get("no_image"):
        event["detail"]["resources"] = [{"type": "AWS_EC2_INSTANCE", "id": "i-0123456789"}]
    if "severity" in change:
        event["detail"]["severity"] = change["severity"]

    result = handle_event(event, kit)

    assert result["status"] == "ignored"
    assert why in result["reason"]
    assert slack.bodies == []


def test_the_app_routes_inspector_events_to_the_scan_alert(
    world: World, slack: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.ops_world import settings_env

    for name, value in settings_env(world).items():
        monkeypatch.setenv(name, value)
    digest = running(world)

    result = app.image_scan_alert(finding(world, digest), FakeLambdaContext())

    assert result["status"] == "alerted", result
    assert len(alerts(slack)) == 1
