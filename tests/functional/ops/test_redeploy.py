"""Push-to-redeploy as plain functions against moto, with Slack on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.backends import get_backend

from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent, ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, SITE_CONTAINER, LogLines, World, make_kit
from tests.support.slack_stub import SlackStub


def push(world: World, kit: Toolkit, tag: str | None = "v1.2.3", **event_changes: Any) -> Any:
    digest = world.push_image(tag)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    event.update(event_changes)
    return digest, handle_push(EcrImageActionEvent(event), kit)


def test_push_deploys_new_revision_pinned_to_digest(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    before = world.running_task_definition()
    digest, result = push(world, kit)

    assert result["status"] == "deploying"
    assert world.revisions() == 2
    assert world.site_image() == f"{world.repository_uri}@{digest}"
    after = world.running_task_definition()
    assert after["revision"] == before["revision"] + 1
    # Only the site container's image changed, and the digest it reports on /version.
    for old, new in zip(before["containerDefinitions"], after["containerDefinitions"], strict=True):
        if old["name"] == SITE_CONTAINER:
            environment = [e for e in old.get("environment", []) if e["name"] != "IMAGE_DIGEST"]
            assert {"name": "IMAGE_DIGEST", "value": digest} in new["environment"]
            old = {
                **old,
                "image": new["image"],
                "environment": [*environment, {"name": "IMAGE_DIGEST", "value": digest}],
            }
        assert old == new
    for key in ("cpu", "memory", "networkMode", "executionRoleArn", "requiresCompatibilities"):
        assert after[key] == before[key]

    record = kit.ledger.read_deployment(kit.settings.service_key)
    assert record is not None
    assert record.digest == digest
    assert record.status == "IN_PROGRESS"
    assert record.deployment_id == result["deployment_id"]
    assert record.previous_task_definition == world.bootstrap_td  # what a rollback uses
    lock = kit.ledger.read_lock(kit.settings.service_key)
    assert lock is not None
    assert lock.action == "redeploy"
    assert lock.deployment_id == result["deployment_id"]
    assert [h.outcome for h in kit.ledger.read_history(kit.settings.service_key)] == ["deploying"]

    assert len(slack.bodies) == 1
    assert f"deploying v1.2.3 ({digest[:19]})" in slack.texts()[0]
    assert "https://runbooks.example.com/spotops/redeploy.md" in str(slack.bodies[0]["blocks"])


def test_same_event_twice_starts_one_deployment(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v1.2.3")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")

    first = handle_push(EcrImageActionEvent(event), kit)
    second = handle_push(EcrImageActionEvent(event), make_kit(world))

    assert first["status"] == "deploying"
    assert second["status"] == "duplicate"
    assert second["original_status"] == "deploying"
    assert world.revisions() == 2
    assert len(slack.bodies) == 1


def test_same_digest_under_new_event_id_starts_one_deployment(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v1.2.3")
    first_event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    second_event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    second_event["id"] = "b1b5ee1d-0000-4000-8000-000000000002"

    assert handle_push(EcrImageActionEvent(first_event), kit)["status"] == "deploying"
    assert handle_push(EcrImageActionEvent(second_event), kit)["status"] == "duplicate"
    assert world.revisions() == 2


@pytest.fixture
def atomic_dynamodb_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto checks and writes in two Python
    steps, so two threads can both pass a condition. Serialize moto's writes to restore the
    guarantee the code relies on (and that real DynamoDB gives)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def serialized(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialized)


@pytest.mark.usefixtures("atomic_dynamodb_writes")
def test_concurrent_pair_starts_exactly_one_deployment(world: World, slack: SlackStub) -> None:
    digest = world.push_image("v1.2.3")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    kits = [make_kit(world), make_kit(world)]  # two containers
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def run(kit: Toolkit) -> None:
        barrier.wait()
        results.append(handle_push(EcrImageActionEvent(dict(event)), kit))

    threads = [threading.Thread(target=run, args=(k,)) for k in kits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(r["status"] for r in results) == ["deploying", "duplicate"]
    assert world.revisions() == 2
    assert len(slack.bodies) == 1


@pytest.mark.parametrize("tag", ["latest", "feature-x", None, "v1.2", "V1.2.3"])
def test_tag_not_matching_pattern_is_ignored(
    world: World, kit: Toolkit, slack: SlackStub, tag: str | None
) -> None:
    _, result = push(world, kit, tag=tag)

    assert result["status"] == "ignored"
    assert "TAG_PATTERN" in result["reason"]
    assert world.revisions() == 1
    assert slack.bodies == []


def test_custom_tag_pattern_admits_release_tags_only(world: World, slack: SlackStub) -> None:
    kit = make_kit(world, TAG_PATTERN=r"release-\d+")
    assert push(world, kit, tag="release-7")[1]["status"] == "deploying"
    assert push(world, kit, tag="0123abc")[1]["status"] == "ignored"


def test_already_running_digest_is_skipped(world: World, kit: Toolkit, slack: SlackStub) -> None:
    digest = world.push_image("v1.2.3")
    td = world.running_task_definition()
    containers = td["containerDefinitions"]
    containers[0]["image"] = f"{world.repository_uri}@{digest}"
    arn = world.clients.ecs.register_task_definition(
        family="site",
        containerDefinitions=containers,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=arn
    )

    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    result = handle_push(EcrImageActionEvent(event), kit)

    assert result["status"] == "already-running"
    assert world.revisions() == 2  # the bootstrap one and ours, no third
    assert kit.ledger.read_lock(kit.settings.service_key) is None
    assert slack.bodies == []


def test_dry_run_reports_and_changes_nothing(world: World, slack: SlackStub) -> None:
    digest, result = push(world, make_kit(world, DRY_RUN="true"))

    assert result["status"] == "dry-run"
    assert world.revisions() == 1
    assert world.site_image().endswith(":bootstrap")
    assert make_kit(world).ledger.read_lock("default/servicetest") is None
    assert "[dry run] would deploy v1.2.3" in slack.texts()[0]

    # Nothing was remembered: once dry run is off, the same image deploys.
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    assert handle_push(EcrImageActionEvent(event), make_kit(world))["status"] == "deploying"


@pytest.mark.parametrize("value", ["on", "true", "maintenance"])
def test_kill_switch_stops_the_redeploy(world: World, slack: SlackStub, value: str) -> None:
    world.set_kill_switch(value)
    digest, result = push(world, make_kit(world))

    assert result["status"] == "kill-switch"
    assert world.revisions() == 1
    assert "Redeploy stopped" in slack.texts()[0]

    world.set_kill_switch("off")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    assert handle_push(EcrImageActionEvent(event), make_kit(world))["status"] == "deploying"


def test_missing_kill_switch_parameter_fails_closed(world: World, slack: SlackStub) -> None:
    world.clients.ssm.delete_parameter(Name=world.kill_switch)
    _, result = push(world, make_kit(world))

    assert result["status"] == "kill-switch"
    assert "failing closed" in result["reason"]
    assert world.revisions() == 1


def test_lock_held_by_chaos_blocks_the_redeploy(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    svc = kit.settings.service_key
    taken = kit.ledger.acquire_lock(svc, holder="chaos:run-1", action="chaos", ttl_seconds=600)
    assert taken.acquired

    digest, result = push(world, kit)

    assert result["status"] == "locked"
    assert "chaos" in result["reason"]
    assert world.revisions() == 1
    assert "Redeploy waiting" in slack.texts()[0]

    assert kit.ledger.release_lock(svc, holder="chaos:run-1")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    assert handle_push(EcrImageActionEvent(event), kit)["status"] == "deploying"


def test_hourly_budget_postpones_further_redeploys(world: World, slack: SlackStub) -> None:
    kit = make_kit(world, REDEPLOY_MAX_PER_HOUR="1")
    assert push(world, kit, tag="v1.0.0")[1]["status"] == "deploying"
    kit.ledger.release_lock(kit.settings.service_key, action="redeploy")  # deployment done

    _, result = push(world, kit, tag="v1.0.1")

    assert result["status"] == "budget"
    assert world.revisions() == 2
    assert kit.ledger.read_lock(kit.settings.service_key) is None


def _malformed_events() -> list[tuple[str, Any]]:
    def drop(key: str) -> Any:
        return lambda e: e["detail"].pop(key)

    def setter(key: str, value: Any) -> Any:
        return lambda e: e["detail"].__setitem__(key, value)

    return [
        ("missing detail", lambda e: e.pop("detail")),
        ("detail not an object", lambda e: e.__setitem__("detail", "PUSH")),
        ("missing repository-name", drop("repository-name")),
        ("missing image-digest", drop("image-digest")),
        ("missing result", drop("result")),
        ("missing action-type", drop("action-type")),
        ("digest wrong type", setter("image-digest", 12345)),
        ("repository wrong type", setter("repository-name", ["my-repository-name"])),
        ("tag wrong type", setter("image-tag", 7)),
        ("another repository", setter("repository-name", "someone-elses-repo")),
        ("FAILED result", setter("result", "FAILURE")),
        ("DELETE action", setter("action-type", "DELETE")),
        ("digest not sha256", setter("image-digest", "md5:0123456789abcdef")),
        ("digest too short", setter("image-digest", "sha256:7f5b2640fe6f")),
        ("wrong detail-type", lambda e: e.__setitem__("detail-type", "ECR Scan")),
    ]


@pytest.mark.parametrize(("case", "mutate"), _malformed_events())
def test_malformed_event_is_logged_and_changes_nothing(
    world: World,
    kit: Toolkit,
    slack: SlackStub,
    case: str,
    mutate: Any,
    logs: LogLines,
) -> None:
    digest = world.push_image("v1.2.3")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    mutate(event)

    result = handle_push(EcrImageActionEvent(event), kit)

    assert result["status"] == "ignored", case
    assert world.revisions() == 1
    assert kit.ledger.read_lock(kit.settings.service_key) is None
    assert slack.bodies == []
    assert '"message":"event ignored"' in logs.text
    assert result["reason"] in logs.text


def test_documented_sample_digest_is_rejected_as_not_a_real_digest(
    world: World, kit: Toolkit
) -> None:
    # AWS's sample digest has 60 hex digits; real ones have 64. Only the tag is adjusted.
    event = load_event("ecrImageActionPush")
    event["detail"]["repository-name"] = world.repository
    event["detail"]["image-tag"] = "v1.2.3"
    result = handle_push(EcrImageActionEvent(event), kit)
    assert result == {
        "job": "redeploy",
        "status": "ignored",
        "reason": "image-digest is not sha256:<64 hex digits>",
    }


def test_image_deleted_before_the_handler_runs(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v1.2.3")
    world.clients.ecr.batch_delete_image(
        repositoryName=world.repository, imageIds=[{"imageDigest": digest}]
    )
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")

    result = handle_push(EcrImageActionEvent(event), kit)

    assert result["status"] == "skipped"
    assert "no longer exists" in result["reason"]
    assert world.revisions() == 1


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [({"SERVICE_NAME": "ghost"}, "ghost"), ({"CLUSTER_NAME": "nowhere"}, "nowhere")],
)
def test_missing_service_or_cluster_is_reported_not_raised(
    world: World, slack: SlackStub, overrides: dict[str, str], needle: str
) -> None:
    kit = make_kit(world, **overrides)
    digest = world.push_image("v1.2.3")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")

    result = handle_push(EcrImageActionEvent(event), kit)

    assert result["status"] == "skipped"
    assert needle in result["reason"]
    assert world.revisions() == 1


class _ThrottledEcs:
    """The moto ECS client, except that UpdateService is throttled."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.update_calls = 0

    def update_service(self, **kwargs: Any) -> Any:
        self.update_calls += 1
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "UpdateService",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_ecs_throttling_defers_releases_the_lock_and_does_not_raise(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    throttled = _ThrottledEcs(kit.ecs)
    digest, result = push(world, dataclasses.replace(kit, ecs=throttled))

    assert result["status"] == "deferred"
    assert "throttled" in result["reason"]
    assert throttled.update_calls == 1
    assert world.site_image().endswith(":bootstrap")
    assert kit.ledger.read_lock(kit.settings.service_key) is None

    # Not remembered as done: the next delivery (or reconcile) deploys the image.
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")
    assert handle_push(EcrImageActionEvent(event), kit)["status"] == "deploying"


def test_slack_down_sends_the_report_to_the_dlq_and_still_deploys(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    slack.default = "500"
    digest, result = push(world, kit)

    assert result["status"] == "deploying"
    assert len(slack.bodies) == 3  # SLACK_MAX_ATTEMPTS
    (dead,) = world.dlq_messages()
    assert dead["job"] == "redeploy"
    assert dead["reason"].startswith("HTTP 500")
    assert f"deploying v1.2.3 ({digest[:19]})" in dead["message"]["text"]
    assert slack.url not in str(dead)


def test_second_image_waits_while_the_first_deployment_holds_the_lock(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    assert push(world, kit, tag="v1.0.0")[1]["status"] == "deploying"

    second_digest, second = push(world, kit, tag="v1.0.1")

    assert second["status"] == "locked"
    assert "redeploy" in second["reason"]
    assert world.revisions() == 2
    assert not world.site_image().endswith(second_digest)


# ---- reconcile ---------------------------------------------------------------------------------


def deploy(world: World, kit: Toolkit, tag: str = "v1.2.3") -> dict[str, Any]:
    digest = world.push_image(tag)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    result = handle_push(EcrImageActionEvent(event), kit)
    assert result["status"] == "deploying"
    return result


def state_event(name: str, deployment_id: str) -> Any:
    event = load_event(name)
    event["detail"]["deploymentId"] = deployment_id
    return EcsDeploymentStateChangeEvent(event)


def _age_images(world: World, ages: dict[str, int]) -> None:
    """Make moto's push times differ (it stores whole seconds)."""
    backend = get_backend("ecr")[ACCOUNT][REGION]
    now = int(dt.datetime.now(dt.UTC).timestamp())
    for image in backend.repositories[world.repository].images:
        for tag, age in ages.items():
            if tag in (image.image_tags or []) or image.image_tag == tag:
                image.image_pushed_at = now - age


def test_reconcile_deploys_the_newest_matching_image_once(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    world.push_image("v1.0.0")
    newest = world.push_image("v1.1.0")
    world.push_image("latest", seed="latest-build")
    _age_images(world, {"v1.0.0": 300, "v1.1.0": 200, "latest": 10})
    scheduled = ScheduledEvent(load_event("scheduledEvent"))

    result = reconcile(scheduled, kit)

    assert result["status"] == "deploying"
    assert world.site_image() == f"{world.repository_uri}@{newest}"
    assert world.revisions() == 2
    # The next run finds the service on that image and does nothing.
    again = reconcile(scheduled, make_kit(world))
    assert again["status"] == "up-to-date"
    assert world.revisions() == 2


def test_reconcile_and_a_late_push_event_start_one_deployment(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    digest = world.push_image("v2.0.0")
    assert reconcile(ScheduledEvent(load_event("scheduledEvent")), kit)["status"] == "deploying"

    event = world.push_event(load_event("ecrImageActionPush"), digest, "v2.0.0")
    late = handle_push(EcrImageActionEvent(event), make_kit(world))

    assert late["status"] in ("duplicate", "already-running")
    assert world.revisions() == 2


def test_reconcile_reports_an_image_held_back_by_dry_run_once_not_every_run(
    world: World, slack: SlackStub
) -> None:
    world.push_image("v4.0.0")
    scheduled = ScheduledEvent(load_event("scheduledEvent"))

    first = reconcile(scheduled, make_kit(world, DRY_RUN="true"))
    second = reconcile(scheduled, make_kit(world, DRY_RUN="true"))

    assert first["status"] == second["status"] == "dry-run"
    assert world.revisions() == 1
    dry_run_posts = [text for text in slack.texts() if "dry run" in text]
    assert len(dry_run_posts) == 1, slack.texts()


def test_reconcile_with_nothing_matching_does_nothing(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    world.push_image("latest")

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), kit)

    assert result["status"] == "ignored"
    assert world.revisions() == 1


def test_reconcile_does_not_retry_an_image_that_failed(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started = deploy(world, kit, tag="v3.0.0")
    handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=world.bootstrap_td
    )

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), make_kit(world))

    assert result["status"] == "skipped"
    assert "already handled (deployed)" in result["reason"]
    assert world.site_image().endswith(":bootstrap")


def test_reconcile_waits_while_a_deployment_is_in_progress(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    world.push_image("v1.0.0")
    world.clients.ecs.update_service(cluster=world.cluster, service=world.service, desiredCount=2)
    backend = get_backend("ecs")[ACCOUNT][REGION]
    service = backend.services[f"{world.cluster}:{world.service}"]
    service.deployments[0]["rolloutState"] = "IN_PROGRESS"

    result = reconcile(ScheduledEvent(load_event("scheduledEvent")), kit)

    assert result["status"] == "in-progress"
    assert world.revisions() == 1


# ---- late and out of order: a push is ordered by its own time ---------------------------------


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pushed_at(world: World, digest: str, epoch: float) -> None:
    """ECR's imagePushedAt of ``digest`` (moto stamps the wall clock, in whole seconds)."""
    backend = get_backend("ecr")[ACCOUNT][REGION]
    for image in backend.repositories[world.repository].images:
        if image.get_image_digest() == digest:
            image.image_pushed_at = int(epoch)


def push_at(world: World, tag: str, epoch: float, *, seed: str | None = None) -> tuple[str, Any]:
    """Push ``tag`` at ``epoch``: the image in ECR, and its ``ECR Image Action`` event (whose
    ``time`` is the push's), to deliver whenever the test says."""
    digest = world.push_image(tag, seed)
    event = world.push_event(load_event("ecrImageActionPush"), digest, tag)
    event["id"] = f"push-{tag}-{int(epoch)}"
    event["time"] = iso(epoch)
    return digest, EcrImageActionEvent(event)


def completed(kit: Toolkit, result: dict[str, Any]) -> None:
    """ECS's outcome event: the deployment completed (the lock is freed)."""
    event = state_event("ecsDeploymentStateChangeCompleted", result["deployment_id"])
    assert handle_deployment_state(event, kit)["status"] == "succeeded"


def forget_idempotency(world: World) -> None:
    """The idempotency record expired (IDEMPOTENCY_TTL_SECONDS): only the ledger remembers."""
    table = world.clients.dynamodb
    for item in table.scan(TableName=world.idempotency_table)["Items"]:
        table.delete_item(TableName=world.idempotency_table, Key={"id": item["id"]})


def test_a_late_older_push_changes_nothing_and_reconcile_keeps_the_newest(
    world: World, slack: SlackStub
) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    old, old_event = push_at(world, "v1.0.0", now - 600)  # A, pushed first
    new, new_event = push_at(world, "v1.1.0", now - 300)  # B, pushed after
    pushed_at(world, old, now - 600)
    pushed_at(world, new, now - 300)
    kit = make_kit(world)
    deployed = handle_push(new_event, kit)  # B's event arrives first
    assert deployed["status"] == "deploying"
    completed(kit, deployed)
    svc = kit.settings.service_key
    revisions, service_before = world.revisions(), world.service_desc()
    posts = len(slack.bodies)

    late = handle_push(old_event, make_kit(world))  # A's event, late (a retry)

    assert late["status"] == "older", late
    reason = (
        f"v1.0.0 ({old[:19]}) not deployed: older than the image running, "
        f"v1.1.0 ({new[:19]}) pushed at {when(now - 300)}"
    )
    assert late["reason"] == reason
    # Nothing changed on ECS: no revision registered, no UpdateService.
    assert world.site_image() == f"{world.repository_uri}@{new}"
    assert world.revisions() == revisions
    assert world.service_desc()["taskDefinition"] == service_before["taskDefinition"]
    assert kit.ledger.read_lock(svc) is None
    # Recorded, and reported once.
    image = kit.ledger.read_image(svc, old)
    assert image is not None
    assert image.outcome == "older"
    assert [h.outcome for h in kit.ledger.read_history(svc)].count("older") == 1
    assert len(slack.bodies) == posts + 1
    assert reason in slack.texts()[-1]

    # Delivered again once the idempotency record expired: still nothing, and no new post.
    forget_idempotency(world)
    again = handle_push(old_event, make_kit(world))
    assert again["status"] in ("older", "skipped"), again
    assert world.site_image() == f"{world.repository_uri}@{new}"
    assert len(slack.bodies) == posts + 1

    # The reconcile run keeps the newest.
    run = reconcile(ScheduledEvent(load_event("scheduledEvent")), make_kit(world))
    assert run["status"] == "up-to-date", run
    assert world.site_image() == f"{world.repository_uri}@{new}"


def test_an_older_digest_pushed_again_under_a_new_tag_is_deployed(
    world: World, slack: SlackStub
) -> None:
    """A rollback by push: its event is new, though ECR's imagePushedAt of a re-tagged
    digest stays its first push."""
    now = dt.datetime.now(dt.UTC).timestamp()
    old, _ = push_at(world, "v1.0.0", now - 600)
    new, new_event = push_at(world, "v1.1.0", now - 300)
    kit = make_kit(world)
    deployed = handle_push(new_event, kit)
    assert deployed["status"] == "deploying"
    completed(kit, deployed)

    retagged, rollback = push_at(world, "v1.0.1", now, seed="v1.0.0")  # the old manifest
    pushed_at(world, old, now - 600)
    pushed_at(world, new, now - 300)
    assert retagged == old

    result = handle_push(rollback, make_kit(world))

    assert result["status"] == "deploying", result
    assert world.site_image() == f"{world.repository_uri}@{old}"


def test_a_late_push_does_not_undo_a_rollback(world: World, slack: SlackStub) -> None:
    """B failed and ECS rolled the service back to A; B's push event is delivered again (or a
    push older than B, C, arrives late): the rollback stands."""
    now = dt.datetime.now(dt.UTC).timestamp()
    old, old_event = push_at(world, "v1.0.0", now - 900)
    middle, middle_event = push_at(world, "v1.0.5", now - 600)
    new, new_event = push_at(world, "v1.1.0", now - 300)
    for digest, at in ((old, now - 900), (middle, now - 600), (new, now - 300)):
        pushed_at(world, digest, at)
    kit = make_kit(world)
    first = handle_push(old_event, kit)
    completed(kit, first)
    bad = handle_push(new_event, make_kit(world))
    assert bad["status"] == "deploying"
    # ECS's circuit breaker: the service goes back to A, and the deployment fails.
    world.clients.ecs.update_service(
        cluster=world.cluster, service=world.service, taskDefinition=first["task_definition"]
    )
    failed = state_event("ecsDeploymentStateChangeFailed", bad["deployment_id"])
    assert handle_deployment_state(failed, make_kit(world))["status"] == "failed"
    revisions = world.revisions()
    forget_idempotency(world)

    again = handle_push(new_event, make_kit(world))  # B's event, delivered again
    late = handle_push(middle_event, make_kit(world))  # C's event, late

    assert again["status"] == "skipped", again
    assert "already handled" in again["reason"]
    assert late["status"] == "older", late
    assert f"older than v1.1.0 ({new[:19]}), the last image deployed" in late["reason"]
    assert world.site_image() == f"{world.repository_uri}@{old}"
    assert world.revisions() == revisions
