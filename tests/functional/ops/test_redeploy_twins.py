"""Twin pushes (issue 22, item 6): one digest pushed under two tags, a release and its commit,
gives two ``ECR Image Action`` events milliseconds apart. The image is deployed once."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.events import EcrImageActionEvent
from chalicelib.ledger import SafetyLedger
from chalicelib.outcome import handle_deployment_state
from chalicelib.redeploy import handle_push
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_outcome import state_event
from tests.support.ecs_deployments import EcsDeployments
from tests.support.events import load_event
from tests.support.ops_world import World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

RELEASE, COMMIT = "v1.2.3", "0a1b2c3"


def twin_events(world: World) -> tuple[str, EcrImageActionEvent, EcrImageActionEvent]:
    """One image pushed as ``v1.2.3`` and as its commit: one digest, two events."""
    digest = world.push_image(RELEASE)
    assert world.push_image(COMMIT, seed=RELEASE) == digest
    events = []
    for n, tag in enumerate((RELEASE, COMMIT)):
        event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
        event["id"] = f"push-{tag}"
        event["time"] = f"2026-12-01T10:00:0{n}Z"
        events.append(EcrImageActionEvent(event))
    return digest, events[0], events[1]


def ecs_kit(world: World, ecs: EcsDeployments, **overrides: Any) -> Toolkit:
    kit = make_kit(world)
    return dataclasses.replace(kit, ecs=dataclasses.replace(ecs, real=kit.ecs), **overrides)


def messages_naming(slack: SlackStub, *words: str) -> list[str]:
    bodies = [json.dumps(body) for body in slack.bodies]
    return [body for body in bodies if all(word in body for word in words)]


def test_a_twin_arriving_while_the_first_push_deploys_changes_nothing(
    world: World, slack: SlackStub
) -> None:
    digest, release, commit = twin_events(world)
    ecs = EcsDeployments(None)
    twin: list[dict[str, Any]] = []

    class TwinArrives(SafetyLedger):
        """The commit's event is handled while the release's holds the lock (the budget
        not yet counted, nothing registered): the two events are milliseconds apart."""

        def consume_budget(self, action: str, max_per_hour: int) -> bool:
            if not twin:
                twin.append(handle_push(commit, ecs_kit(world, ecs)))
            return super().consume_budget(action, max_per_hour)

    kit = make_kit(world)
    ledger = TwinArrives(kit.ledger._ddb, world.ledger_table)
    owner = handle_push(release, ecs_kit(world, ecs, ledger=ledger))

    # ECS: one revision, one UpdateService; the ledger: one budget count.
    assert ecs.calls.count("update_service") == 1, ecs.calls
    assert ecs.calls.count("register_task_definition") == 1, ecs.calls
    assert world.revisions() == 2
    assert world.site_image() == f"{world.repository_uri}@{digest}"
    svc = kit.settings.service_key
    assert kit.ledger.budget_used("redeploy") == 1
    # The lock and the deployment record name the same deployment, and its tag.
    lock, record = kit.ledger.get_lock(svc), kit.ledger.get_deployment(svc)
    assert lock is not None
    assert record is not None
    assert lock["deployment_id"] == record["deployment_id"] == owner["deployment_id"]
    assert owner["status"] == "deploying", owner
    assert twin[0]["status"] == "twin", twin
    assert twin[0]["twin_of"] == RELEASE
    assert (lock["tag"], record["tag"]) == (RELEASE, RELEASE)
    assert [h["outcome"] for h in kit.ledger.history(svc)].count("twin") == 1
    # One message names both tags; one announces the deployment.
    assert len(messages_naming(slack, RELEASE, COMMIT)) == 1, slack.texts()
    assert sum(":rocket: deploying" in text for text in slack.texts()) == 1

    # The outcome of that deployment frees the lock: chaos and remediation may act again.
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", owner["deployment_id"]), make_kit(world)
    )
    assert done["status"] == "succeeded", done
    assert kit.ledger.get_lock(svc) is None
    # The twin's event delivered again: nothing more.
    posts = len(slack.bodies)
    assert handle_push(commit, ecs_kit(world, ecs))["status"] == "duplicate"
    assert len(slack.bodies) == posts
    assert ecs.calls.count("update_service") == 1


def test_a_twin_arriving_after_the_update_is_mentioned_once_and_changes_nothing(
    world: World, slack: SlackStub
) -> None:
    digest, release, commit = twin_events(world)
    ecs = EcsDeployments(None)
    owner = handle_push(release, ecs_kit(world, ecs))
    assert owner["status"] == "deploying"

    result = handle_push(commit, ecs_kit(world, ecs))

    assert result["status"] == "twin", result
    assert result["twin_of"] == RELEASE
    assert ecs.calls.count("update_service") == 1
    assert world.revisions() == 2
    svc = make_kit(world).settings.service_key
    lock = make_kit(world).ledger.get_lock(svc)
    assert lock is not None
    assert lock["deployment_id"] == owner["deployment_id"]
    image = make_kit(world).ledger.image_record(svc, digest)
    assert image is not None
    assert image["tag"] == RELEASE  # the owner's record is left as it was
    assert len(messages_naming(slack, RELEASE, COMMIT)) == 1, slack.texts()


def test_the_commit_first_then_the_release_is_the_same_story_the_other_way(
    world: World, slack: SlackStub
) -> None:
    _, release, commit = twin_events(world)
    ecs = EcsDeployments(None)

    first = handle_push(commit, ecs_kit(world, ecs))
    second = handle_push(release, ecs_kit(world, ecs))

    assert (first["status"], second["status"]) == ("deploying", "twin")
    assert second["twin_of"] == COMMIT
    assert ecs.calls.count("update_service") == 1
