"""Verification events (issue 24, item 2): each function, given its AWS-documented event plus
``spotopsVerification``, answers what it would do and changes nothing, in a world where the
same event without the marker acts (the last step of each test shows it does).

"Nothing changed" is read from moto and the Slack stub: task definition revisions, the
service (task definition, desired count, deployments), running tasks, every ledger and
idempotency item, and the webhook's received bodies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import app
from chalicelib.alarms import flow as alarms
from chalicelib.chaos import flow as chaos_flow
from chalicelib.events import ScheduledEvent
from chalicelib.hook import flow as hook_flow
from chalicelib.toolkit import Toolkit
from chalicelib.verification import MARKER_KEY, run_job
from tests.functional.ops.test_alarm_action import Clock, kit_for, run
from tests.functional.ops.test_chaos import ALWAYS, WEDNESDAY_10AM, FakeTime, only
from tests.functional.ops.test_image_scan import running, scan_event
from tests.support.alarms import eventbridge_alarm, prepare_service, put_alarm
from tests.support.events import load_event
from tests.support.ops_world import (
    ChaosWorld,
    FakeLambdaContext,
    LogLines,
    World,
    build_chaos_world,
    settings_env,
)
from tests.support.slack_stub import SlackStub
from tests.support.smoke_target import SmokeTarget

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

VERIFY_ID = "verify-20261207-1"


def marked(event: dict[str, Any], verification: str = VERIFY_ID) -> dict[str, Any]:
    return {**event, MARKER_KEY: verification}


def items(world: World, table: str) -> list[dict[str, Any]]:
    return list(world.clients.dynamodb.scan(TableName=table)["Items"])


def snapshot(world: World) -> dict[str, Any]:
    """Everything a run could change that these tests can see."""
    service = world.service_desc()
    return {
        "revisions": world.revisions(),
        "task_definition": service["taskDefinition"],
        "desired": service["desiredCount"],
        "deployments": [d["id"] for d in service.get("deployments", [])],
        "ledger": items(world, world.ledger_table),
        "idempotency": items(world, world.idempotency_table),
    }


def verification_lines(logs: LogLines, verification: str = VERIFY_ID) -> list[dict[str, Any]]:
    """The lines the filter pattern ``{ $.verification = "<id>" }`` would find."""
    return [r for r in logs.records() if r.get("verification") == verification]


def assert_answered(answer: dict[str, Any], logs: LogLines) -> None:
    assert answer["verification"] == VERIFY_ID
    assert answer["dry_run"] is True
    (summary,) = [
        line
        for line in verification_lines(logs)
        if line["message"] == "verification event answered"
    ]
    assert summary["dry_run"] is True
    assert summary["status"] == answer.get("status", answer.get("hookStatus"))


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The functions' environment for ``world``: app handlers build their toolkit from it."""
    for name, value in settings_env(world).items():
        monkeypatch.setenv(name, value)
    return world


# ---- redeploy_on_push ------------------------------------------------------------------------


def test_a_marked_push_says_it_would_deploy_and_deploys_nothing(
    env: World, slack: SlackStub, logs: LogLines
) -> None:
    digest = env.push_image("0123abc")
    push = env.push_event(load_event("ecrImageActionPush"), digest, "0123abc")
    before = snapshot(env)

    answer = app.redeploy_on_push(marked(push), FakeLambdaContext())

    assert answer["status"] == "dry-run", answer
    assert f"verification event {VERIFY_ID}" in answer["reason"]
    assert "would register a new revision of site" in answer["reason"]
    (notice,) = answer["would_notify"]
    assert notice.startswith(":test_tube: [dry run] would deploy 0123abc")
    assert snapshot(env) == before
    assert slack.bodies == []
    assert_answered(answer, logs)

    # The same push without the marker deploys: the world above was one that acts.
    assert app.redeploy_on_push(push, FakeLambdaContext())["status"] == "deploying"
    assert env.revisions() == before["revisions"] + 1


def test_a_marked_push_stays_dry_with_dry_run_and_the_kill_switch_both_off(
    env: World, slack: SlackStub, logs: LogLines
) -> None:
    env.set_dry_run("false")
    env.set_kill_switch("off")
    digest = env.push_image("v2.0.0")
    push = env.push_event(load_event("ecrImageActionPush"), digest, "v2.0.0")
    before = snapshot(env)

    answer = app.redeploy_on_push(marked(push), FakeLambdaContext())

    assert answer["status"] == "dry-run"
    assert snapshot(env) == before
    assert slack.bodies == []


def test_a_marker_with_a_bad_id_is_ignored_and_acts_on_nothing(
    env: World, slack: SlackStub, logs: LogLines
) -> None:
    digest = env.push_image("0123abc")
    push = env.push_event(load_event("ecrImageActionPush"), digest, "0123abc")
    before = snapshot(env)

    answer = app.redeploy_on_push(marked(push, "no spaces; allowed"), FakeLambdaContext())

    assert answer["status"] == "ignored"
    assert "malformed verification event" in answer["reason"]
    assert "1 to 64 letters, digits or hyphens" in answer["reason"]
    assert "verification" not in answer
    assert snapshot(env) == before
    assert slack.bodies == []
    (warning,) = [r for r in logs.records() if r["message"] == "event ignored"]
    assert "malformed verification event" in warning["reason"]


# ---- reconcile_images ------------------------------------------------------------------------


def test_a_marked_reconcile_run_finds_the_lost_push_and_deploys_nothing(
    env: World, slack: SlackStub, logs: LogLines
) -> None:
    env.push_image("v1.2.0")  # its push event was lost: reconcile would deploy it
    tick = load_event("scheduledEvent")
    before = snapshot(env)

    answer = app.reconcile_images(marked(tick), FakeLambdaContext())

    assert answer["status"] == "dry-run", answer
    assert "would register a new revision" in answer["reason"]
    assert snapshot(env) == before
    assert slack.bodies == []
    assert_answered(answer, logs)

    assert app.reconcile_images(tick, FakeLambdaContext())["status"] == "deploying"


# ---- deployment_outcome ----------------------------------------------------------------------


def test_a_marked_deployment_failure_is_reported_not_posted_nor_recorded(
    env: World, slack: SlackStub, logs: LogLines
) -> None:
    failed = load_event("ecsDeploymentStateChangeFailed")
    failed["resources"] = [
        f"arn:aws:ecs:us-east-1:123456789012:service/{env.cluster}/{env.service}"
    ]
    before = snapshot(env)

    answer = app.deployment_outcome(marked(failed), FakeLambdaContext())

    assert answer["would_notify"], answer  # the failure would be announced
    assert answer["suppressed_writes"]  # and recorded in the ledger
    assert all(w.startswith("dynamodb:") for w in answer["suppressed_writes"])
    assert snapshot(env) == before
    assert slack.bodies == []
    assert_answered(answer, logs)

    real = app.deployment_outcome(failed, FakeLambdaContext())
    assert real["status"] == answer["status"]
    assert len(slack.bodies) == len(answer["would_notify"])
    assert items(env, env.ledger_table) != before["ledger"]


# ---- image_scan_alert ------------------------------------------------------------------------


def test_a_marked_scan_of_the_running_image_would_alert_and_posts_nothing(
    env: World, slack: SlackStub, logs: LogLines
) -> None:
    digest = running(env)
    event = dict(scan_event(env, digest, {"HIGH": 3}).raw_event)
    before = snapshot(env)

    answer = app.image_scan_alert(marked(event), FakeLambdaContext())

    assert answer["status"] == "alerted", answer
    assert len(answer["would_notify"]) == 1
    assert snapshot(env) == before  # no idempotency record: a real delivery still alerts
    assert slack.bodies == []
    assert_answered(answer, logs)

    assert app.image_scan_alert(event, FakeLambdaContext())["status"] == "alerted"
    assert len(slack.bodies) == 1


# ---- alarm_action ----------------------------------------------------------------------------


def test_a_marked_alarm_says_it_would_scale_out_and_scales_nothing(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    prepare_service(
        world.clients.ecs,
        world.clients.autoscaling,
        cluster=world.cluster,
        service=world.service,
        desired=2,
        max_tasks=4,
    )
    clock = Clock()
    kit = kit_for(world, clock)
    event = eventbridge_alarm("spotops-test-cpu-high", at=clock())
    put_alarm(world.clients.cloudwatch, "spotops-test-cpu-high", "ALARM")
    before = snapshot(world)

    def remediate(with_kit: Toolkit) -> dict[str, Any]:
        return alarms.handle_event(event, with_kit, clock=clock)

    answer = run_job(alarms.JOB, marked(event), lambda: kit, remediate)

    assert answer["status"] == "dry-run", answer
    assert "would scale servicetest out from 2 to 3 tasks" in answer["reason"]
    assert f"verification event {VERIFY_ID}" in answer["reason"]
    assert len(answer["would_notify"]) == 2  # the alert and the follow-up
    assert snapshot(world) == before
    assert slack.bodies == []
    assert_answered(answer, logs)

    assert run(kit, event, clock)["status"] == "acted"
    assert world.desired_count() == 3


# ---- chaos_tick ------------------------------------------------------------------------------


def test_a_marked_chaos_tick_picks_its_victim_and_stops_nothing(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    from moto.moto_api import state_manager

    chaos: ChaosWorld = build_chaos_world(world)
    try:
        chaos.tag(chaos="on", mtbk_hours=ALWAYS)
        chaos.set_leash("off")
        kit = chaos.kit()
        time = FakeTime(WEDNESDAY_10AM)
        tasks = chaos.running_tasks()
        ledger = items(world, world.ledger_table)
        tick = load_event("scheduledEvent")

        def run_tick(with_kit: Toolkit) -> dict[str, Any]:
            return chaos_flow.handle_tick(
                ScheduledEvent(tick), with_kit, clock=time.clock, sleep=time.sleep
            )

        answer = run_job("chaos", marked(tick), lambda: kit, run_tick)

        assert answer["leashed"] is True, answer
        assert f"verification event {VERIFY_ID}" in json.dumps(answer)
        assert chaos.running_tasks() == tasks
        assert chaos.stopped() == {}
        assert items(world, world.ledger_table) == ledger
        assert slack.bodies == []
        assert_answered(answer, logs)

        time.on_sleep = lambda elapsed: None
        real = run_job("chaos", tick, lambda: kit, run_tick)
        assert real["status"] == "killed", real
        assert len(chaos.stopped()) == 1
        assert only(answer)["status"] != only(real)["status"]
    finally:
        state_manager.unset_transition("ecs::task")


# ---- deployment_hook -------------------------------------------------------------------------


def test_a_marked_hook_event_runs_no_smoke_test_and_calls_no_ecs(
    monkeypatch: pytest.MonkeyPatch, logs: LogLines
) -> None:
    def no_ecs() -> Any:
        raise AssertionError("a verification must not build the ECS revision reader")

    monkeypatch.setattr(hook_flow, "default_revisions", no_ecs)
    target = SmokeTarget()
    try:
        event = target.hook_event(load_event("ecsLifecycleHookPostTestTrafficShift"))

        answer = app.deployment_hook(marked(event), FakeLambdaContext())

        assert answer["hookStatus"] == "IN_PROGRESS"  # decides nothing
        assert f"run the smoke tests on {target.url}" in answer["would"]
        assert "compare /version with the image of arn:aws:ecs:" in answer["would"]
        assert target.seen == []
        assert_answered(answer, logs)
    finally:
        target.close()


def test_a_marked_hook_event_without_a_target_says_it_would_fail(logs: LogLines) -> None:
    event = load_event("ecsLifecycleHookPostTestTrafficShift")
    event.pop("hookDetails", None)

    answer = app.deployment_hook(marked(event), FakeLambdaContext())

    assert answer["hookStatus"] == "IN_PROGRESS"
    assert answer["would"].startswith("answer FAILED: cannot test: hookDetails is missing")


def test_a_hook_event_with_a_bad_marker_fails_closed_without_testing() -> None:
    target = SmokeTarget()
    try:
        event = target.hook_event(load_event("ecsLifecycleHookPostTestTrafficShift"))

        answer = app.deployment_hook(marked(event, "x" * 65), FakeLambdaContext())

        assert answer == {"hookStatus": "FAILED"}
        assert target.seen == []
    finally:
        target.close()
