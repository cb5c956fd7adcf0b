"""Enhanced scanning (Amazon Inspector): the event wrappers against AWS's documented events,
and the decisions as pure functions (issue 22, item 10)."""

from __future__ import annotations

import pytest

from chalicelib.events import InspectorFindingEvent, InspectorScanEvent, repository_of
from chalicelib.scan.flow import finding_verdict, scan_finished
from tests.support.events import load_event

REPOSITORY = "amazon/amazon-ecs-sample"


def test_the_documented_finding_event_is_read_field_by_field() -> None:
    raw = load_event("inspector2FindingEcrImage")
    event = InspectorFindingEvent(raw)
    image = raw["detail"]["resources"][0]["details"]["awsEcrContainerImage"]

    assert event.problem(REPOSITORY) is None
    assert event.severity == raw["detail"]["severity"] == "MEDIUM"
    assert event.status == raw["detail"]["status"] == "ACTIVE"
    assert event.title == raw["detail"]["title"]
    assert event.finding_arn == raw["detail"]["findingArn"]
    assert event.repository_name == image["repositoryName"]
    assert event.image_digest == image["imageHash"]
    assert event.image_tags == image["imageTags"]
    assert "is not" in str(event.problem("another-repository"))


def test_the_documented_initial_scan_event_is_read_field_by_field() -> None:
    raw = load_event("inspector2ScanEcrImage")
    event = InspectorScanEvent(raw)

    assert event.problem(REPOSITORY) is None
    assert event.scan_status == "INITIAL_SCAN_COMPLETE"
    assert event.repository_name == REPOSITORY  # from the ARN in detail.repository-name
    assert event.image_digest == raw["detail"]["image-digest"]
    assert event.image_tags == ["latest"]
    assert event.severity_counts == {"CRITICAL": 7, "HIGH": 61, "MEDIUM": 62}  # no TOTAL


def test_an_ecr_image_scan_event_is_not_read_as_inspector_s() -> None:
    assert "not an Inspector2 Scan event" in str(
        InspectorScanEvent(load_event("ecrImageScanCompleted")).problem("my-repository-name")
    )


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:ecr:us-east-2:123456789012:repository/site", "site"),
        ("arn:aws:ecr:us-east-2:123456789012:repository/a/b/sha256:" + "0" * 64, "a/b"),
        ("arn:aws:s3:::bucket", ""),
    ],
)
def test_the_repository_is_read_from_repository_and_image_arns(arn: str, name: str) -> None:
    assert repository_of(arn) == name


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ("COMPLETE", True),
        ("ACTIVE", True),
        ("INITIAL_SCAN_COMPLETE", True),
        ("PENDING", False),
        ("IN_PROGRESS", False),
        ("FAILED", False),
        ("FINDINGS_UNAVAILABLE", False),
        ("SCAN_ELIGIBILITY_EXPIRED", False),
    ],
)
def test_active_is_a_finished_scan_like_complete(status: str, finished: bool) -> None:
    assert scan_finished(status) is finished


@pytest.mark.parametrize(
    ("severity", "status", "alert"),
    [
        ("CRITICAL", "ACTIVE", True),
        ("HIGH", "ACTIVE", True),
        ("MEDIUM", "ACTIVE", False),
        ("UNTRIAGED", "ACTIVE", False),
        ("HIGH", "CLOSED", False),
        ("CRITICAL", "SUPPRESSED", False),
    ],
)
def test_only_an_open_high_or_critical_finding_is_worth_an_alert(
    severity: str, status: str, alert: bool
) -> None:
    assert finding_verdict(severity, status).alert is alert
