"""Event wrappers read the documented AWS events; every property is checked against the raw dict."""

from __future__ import annotations

import pytest

from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent, ScheduledEvent
from tests.support.events import load_event

DIGEST = "sha256:" + "ab" * 32


def test_ecr_image_action_properties_match_the_raw_event() -> None:
    raw = load_event("ecrImageActionPush")
    event = EcrImageActionEvent(raw)

    assert event.get_id == raw["id"]
    assert event.detail_type == "ECR Image Action"
    assert event.source == "aws.ecr"
    assert event.account == "123456789012"
    assert event.region == "us-east-1"
    assert event.action_type == raw["detail"]["action-type"] == "PUSH"
    assert event.result == raw["detail"]["result"] == "SUCCESS"
    assert event.repository_name == raw["detail"]["repository-name"]
    assert event.image_digest == raw["detail"]["image-digest"]
    assert event.image_tag == raw["detail"]["image-tag"] == "latest"
    assert event.raw_event is raw


@pytest.mark.parametrize(
    ("time", "at"),
    [("2019-11-16T01:54:34Z", 1573869274.0), ("not a time", None), (None, None)],
)
def test_a_push_knows_when_it_happened_from_its_own_time(
    time: str | None, at: float | None
) -> None:
    raw = load_event("ecrImageActionPush")
    raw["time"] = time
    assert EcrImageActionEvent(raw).at == at


def test_push_without_tag_has_no_tag() -> None:
    raw = load_event("ecrImageActionPush")
    del raw["detail"]["image-tag"]
    assert EcrImageActionEvent(raw).image_tag is None


def test_valid_push_has_no_problem() -> None:
    raw = load_event("ecrImageActionPush")
    raw["detail"]["image-digest"] = DIGEST
    assert EcrImageActionEvent(raw).problem("my-repository-name") is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"result": "FAILURE"}, "result is FAILURE, not SUCCESS"),
        ({"action-type": "DELETE"}, "action-type is DELETE, not PUSH"),
        ({"repository-name": "other"}, "repository other is not my-repository-name"),
        ({"image-digest": "sha1:abc"}, "image-digest is not sha256:<64 hex digits>"),
        ({"image-digest": None}, "detail.image-digest is NoneType, not a string"),
        ({"repository-name": ""}, "detail.repository-name is empty"),
    ],
)
def test_push_problems_are_named(change: dict[str, object], expected: str) -> None:
    raw = load_event("ecrImageActionPush")
    raw["detail"].update({"image-digest": DIGEST, **change})
    assert EcrImageActionEvent(raw).problem("my-repository-name") == expected


@pytest.mark.parametrize(
    "name",
    [
        "ecsDeploymentStateChangeCompleted",
        "ecsDeploymentStateChangeFailed",
        "ecsDeploymentStateChangeRollback",
        "ecsDeploymentStateChangeInProgress",
    ],
)
def test_deployment_state_properties_match_the_raw_event(name: str) -> None:
    raw = load_event(name)
    event = EcsDeploymentStateChangeEvent(raw)

    assert event.detail_type == "ECS Deployment State Change"
    assert event.event_type == raw["detail"]["eventType"]
    assert event.event_name == raw["detail"]["eventName"]
    assert event.deployment_id == raw["detail"]["deploymentId"]
    assert event.reason == raw["detail"]["reason"]
    assert event.updated_at == raw["detail"]["updatedAt"]
    assert event.service_arn == raw["resources"][0]
    assert event.cluster_and_service == ("default", "servicetest")
    assert event.problem("default", "servicetest") is None
    assert event.is_rollback is (name == "ecsDeploymentStateChangeRollback")


def test_deployment_state_for_another_service_is_a_problem() -> None:
    event = EcsDeploymentStateChangeEvent(load_event("ecsDeploymentStateChangeFailed"))
    assert (
        event.problem("prod", "servicetest")
        == "service default/servicetest is not prod/servicetest"
    )


def test_scheduled_event_rule_arn() -> None:
    raw = load_event("scheduledEvent")
    event = ScheduledEvent(raw)
    assert event.detail_type == "Scheduled Event"
    assert event.rule_arn == raw["resources"][0]
    assert event.detail == {}
