"""The Chalice app end to end in-process: its test client, the dev stage's settings, moto."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import ECR_PUSH_PATTERN, ECS_DEPLOYMENT_PATTERN, app
from spotops.ops.package import package_environment, stage_config
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, World, build_world, settings_env
from tests.support.slack_stub import SlackStub

OPS_DIR = Path(__file__).resolve().parents[3] / "ops_lambdas"


@pytest.fixture
def dev_world(aws: None, slack: SlackStub, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("SLACK_BACKOFF_BASE_SECONDS", "0.01")
    # Named as a stage names them, unlike AWS's sample events (which must be ignored).
    return build_world(
        repository="spotops-test-site",
        cluster="spotops-test",
        service="spotops-test-site",
        webhook_url=slack.url,
    )


@pytest.fixture
def client(dev_world: World, tmp_path: Path) -> Iterator[Client]:
    """The test client over a copy of the app whose ``test`` stage is written the way
    ``spotops deploy`` writes it (names from the site, the rest as the ops stack sets it)."""
    project = tmp_path / "ops_lambdas"
    shutil.copytree(OPS_DIR, project, ignore=shutil.ignore_patterns("__pycache__", "deployments"))
    config_path = project / ".chalice" / "config.json"
    environment = package_environment(
        "spotops",
        "test",
        {
            "ClusterName": dev_world.cluster,
            "ServiceName": dev_world.service,
            "RepositoryName": dev_world.repository,
            "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:spotops-test-alarms",
        },
    )
    environment.update(settings_env(dev_world))
    config = stage_config(json.loads(config_path.read_text()), "test", environment, {})
    config_path.write_text(json.dumps(config))
    with Client(app, stage_name="test", project_dir=str(project)) as test_client:
        yield test_client


def invoke(client: Client, name: str, event: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = client.lambda_.invoke(name, event).payload
    return payload


def test_push_outcome_and_reconcile_through_the_test_client(
    client: Client, dev_world: World, slack: SlackStub
) -> None:
    digest = dev_world.push_image("0123abc")
    push = dev_world.push_event(load_event("ecrImageActionPush"), digest, "0123abc")

    started = invoke(client, "redeploy_on_push", push)
    assert started["status"] == "deploying"
    assert dev_world.site_image() == f"{dev_world.repository_uri}@{digest}"
    assert invoke(client, "redeploy_on_push", push)["status"] == "duplicate"

    completed = load_event("ecsDeploymentStateChangeCompleted")
    completed["resources"] = [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{dev_world.cluster}/{dev_world.service}"
    ]
    completed["detail"]["deploymentId"] = started["deployment_id"]
    assert invoke(client, "deployment_outcome", completed)["status"] == "succeeded"

    assert invoke(client, "reconcile_images", load_event("scheduledEvent"))["status"] == (
        "up-to-date"
    )
    texts = slack.texts()
    assert len(texts) == 2
    assert texts[0].startswith(":rocket: deploying 0123abc")
    assert texts[1].startswith(":white_check_mark: Deployed 0123abc")
    assert "https://runbooks.example.com/spotops/redeploy.md" in str(slack.bodies[0])


def test_documented_events_for_other_resources_are_ignored_not_raised(
    client: Client, dev_world: World, slack: SlackStub
) -> None:
    # The fixtures name AWS's sample repository and service, not ours.
    assert invoke(client, "redeploy_on_push", load_event("ecrImageActionPush"))["status"] == (
        "ignored"
    )
    failed = load_event("ecsDeploymentStateChangeFailed")
    assert invoke(client, "deployment_outcome", failed)["status"] == "ignored"
    empty_detail = load_event("ecrImageActionPush")
    empty_detail["detail"] = {}
    assert invoke(client, "redeploy_on_push", empty_detail)["status"] == "ignored"
    assert slack.bodies == []
    assert dev_world.revisions() == 1


def test_event_patterns_select_successful_pushes_and_deployment_changes() -> None:
    assert ECR_PUSH_PATTERN["source"] == ["aws.ecr"]
    assert ECR_PUSH_PATTERN["detail-type"] == ["ECR Image Action"]
    assert ECR_PUSH_PATTERN["detail"]["action-type"] == ["PUSH"]
    assert ECR_PUSH_PATTERN["detail"]["result"] == ["SUCCESS"]
    assert ECS_DEPLOYMENT_PATTERN["detail-type"] == ["ECS Deployment State Change"]
    assert set(app.handler_map) >= {"redeploy_on_push", "deployment_outcome", "reconcile_images"}


def test_the_alarm_function_takes_any_shape_through_chalices_sns_handler(
    client: Client, dev_world: World, slack: SlackStub
) -> None:
    # Chalice's own SNSEvent would raise IndexError on an empty Records list, and KeyError
    # on the EventBridge events the same function gets: app.py gives it the raw event.
    assert invoke(client, "alarm_action", {"Records": []})["status"] == "ignored"
    spot = load_event("ecsTaskStateChangeSpotInterruption")  # another cluster: ignored
    assert invoke(client, "alarm_action", spot)["status"] == "ignored"
    alarm = load_event("snsAlarmStateChange")  # spotops-dev-...: not this stage's alarm
    assert invoke(client, "alarm_action", alarm)["status"] == "foreign"
    assert slack.texts()[0].startswith(":rotating_light: ALARM: spotops-dev-unhealthy-hosts")
