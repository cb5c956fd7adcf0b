"""Twin pushes (issue 22, item 6): one digest pushed under two tags, a release and its commit,
gives two ``ECR Image Action`` events milliseconds apart. The image is deployed once."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.events import EcrImageActionEvent, ScheduledEvent
from chalicelib.ledger import SafetyLedger
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_outcome import state_event
from tests.functional.ops.test_redeploy import forget_idempotency
from tests.functional.ops.test_redeploy_faults import pushed_at
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
    lock, record = kit.ledger.read_lock(svc), kit.ledger.read_deployment(svc)
    assert lock is not None
    assert record is not None
    assert lock.deployment_id == record.deployment_id == owner["deployment_id"]
    assert owner["status"] == "deploying", owner
    assert twin[0]["status"] == "twin", twin
    assert twin[0]["twin_of"] == RELEASE
    assert (lock.tag, record.tag) == (RELEASE, RELEASE)
    assert [h.outcome for h in kit.ledger.read_history(svc)].count("twin") == 1
    # One message names both tags; one announces the deployment.
    assert len(messages_naming(slack, RELEASE, COMMIT)) == 1, slack.texts()
    assert sum(":rocket: deploying" in text for text in slack.texts()) == 1

    # The outcome of that deployment frees the lock: chaos and remediation may act again.
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", owner["deployment_id"]), make_kit(world)
    )
    assert done["status"] == "succeeded", done
    assert kit.ledger.read_lock(svc) is None
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
    lock = make_kit(world).ledger.read_lock(svc)
    assert lock is not None
    assert lock.deployment_id == owner["deployment_id"]
    image = make_kit(world).ledger.read_image(svc, digest)
    assert image is not None
    assert image.tag == RELEASE  # the owner's record is left as it was
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


# ---- a twin's or late push after the deployment of its digest failed -------------------------


def failed_and_rolled_back(world: World, deployment_id: str) -> None:
    """ECS's circuit breaker: the service goes back to the placeholder, the deployment
    fails, and the outcome event records it."""
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )
    failed = state_event("ecsDeploymentStateChangeFailed", deployment_id, "failed-1")
    assert handle_deployment_state(failed, make_kit(world))["status"] == "failed"


def push_of(world: World, digest: str, tag: str, time: str) -> EcrImageActionEvent:
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    event["id"] = f"push-{tag}-{time}"
    event["time"] = time
    return EcrImageActionEvent(event)


def held_back_posts(slack: SlackStub) -> list[str]:
    return [text for text in slack.texts() if "Not deployed again" in text]


def test_a_late_twin_does_not_deploy_again_a_digest_whose_deployment_failed(
    world: World, slack: SlackStub
) -> None:
    digest, release, commit = twin_events(world)
    pushed_at(world, digest, "2026-12-01T10:00:00Z")  # ECR: the digest's first push
    ecs = EcsDeployments(None)
    owner = handle_push(release, ecs_kit(world, ecs))
    assert owner["status"] == "deploying", owner
    failed_and_rolled_back(world, owner["deployment_id"])

    late = handle_push(commit, ecs_kit(world, ecs))  # the twin, a second later, delivered now

    assert late["status"] == "held-back", late
    assert late["reason"].startswith(
        f"{COMMIT} ({digest[:19]}) not deployed: the same image as {RELEASE}, whose "
        "deployment failed at "
    )
    assert ecs.calls.count("update_service") == 1
    assert world.site_image().endswith(":bootstrap")
    svc = make_kit(world).settings.service_key
    history = [h.outcome for h in make_kit(world).ledger.read_history(svc)]
    assert history.count("held-back") == 1
    assert len(held_back_posts(slack)) == 1, slack.texts()
    assert late["reason"] in held_back_posts(slack)[0]

    # Delivered again after its idempotency record expired: still nothing, no second post.
    forget_idempotency(world)
    again = handle_push(commit, ecs_kit(world, ecs))
    assert again["status"] == "held-back", again
    assert len(held_back_posts(slack)) == 1
    # The reconcile run keeps it out too, whatever tag it finds.
    run = reconcile(ScheduledEvent(load_event("scheduledEvent")), ecs_kit(world, ecs))
    assert run["status"] == "skipped", run
    assert ecs.calls.count("update_service") == 1


def test_the_failed_digest_pushed_again_under_a_new_tag_after_the_window_is_deployed(
    world: World, slack: SlackStub
) -> None:
    """A person retries on purpose: a new push, past TWIN_WINDOW_SECONDS of the first."""
    digest, release, _ = twin_events(world)
    pushed_at(world, digest, "2026-12-01T10:00:00Z")
    ecs = EcsDeployments(None)
    owner = handle_push(release, ecs_kit(world, ecs))
    failed_and_rolled_back(world, owner["deployment_id"])
    # The rollback froze pushes; on-call lifts the freeze before retrying.
    assert make_kit(world).ledger.unfreeze(make_kit(world).settings.service_key, by="test")
    for tag in ("v1.2.4", "v1.2.5"):  # the same manifest under new tags
        assert world.push_image(tag, seed=RELEASE) == digest
    pushed_at(world, digest, "2026-12-01T10:00:00Z")  # ECR keeps the first push's time

    # Exactly TWIN_WINDOW_SECONDS after the first push: still that push (a twin), held back...
    inside = handle_push(
        push_of(world, digest, "v1.2.4", "2026-12-01T10:01:00Z"), ecs_kit(world, ecs)
    )
    assert inside["status"] == "held-back", inside
    # ...a second past it: a new push, deployed.
    retry = handle_push(
        push_of(world, digest, "v1.2.5", "2026-12-01T10:01:01Z"), ecs_kit(world, ecs)
    )

    assert retry["status"] == "deploying", retry
    assert ecs.calls.count("update_service") == 2
    assert world.site_image() == f"{world.repository_uri}@{digest}"


def test_a_late_release_push_does_not_deploy_what_reconcile_deployed_as_its_twin(
    world: World, slack: SlackStub
) -> None:
    """The reconcile run deployed the digest as the commit tag (no event time); it failed;
    the release tag's push, delivered an hour late, is the same push."""
    digest, release, _ = twin_events(world)
    pushed_at(world, digest, "2026-12-01T10:00:00Z")
    ecs = EcsDeployments(None)
    found = reconcile(ScheduledEvent(load_event("scheduledEvent")), ecs_kit(world, ecs))
    assert found["status"] == "deploying", found
    assert found["tag"] == COMMIT  # the first matching tag, sorted
    failed_and_rolled_back(world, found["deployment_id"])

    late = handle_push(release, ecs_kit(world, ecs))

    assert late["status"] == "held-back", late
    assert f"the same image as {COMMIT}, whose deployment failed at" in late["reason"]
    assert ecs.calls.count("update_service") == 1
    assert world.site_image().endswith(":bootstrap")
    assert len(held_back_posts(slack)) == 1
