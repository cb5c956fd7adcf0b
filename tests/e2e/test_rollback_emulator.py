"""``spotops rollback``, ``freeze`` and ``unfreeze`` against a stage deployed into the emulator:
two pushes each deployed and completed through the deployed functions, then a rollback by
command; the service, the ledger (history, freeze, lock) and Slack are checked after."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import load_event
from tests.support.ops_stage import Stage, deployed_stage, spotops
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


def run(stage: Stage, *args: str, stdin: str | None = None) -> Any:
    return spotops(stage.project, stage.emulator, *args, stdin=stdin)


def simulate(stage: Stage, *args: str) -> dict[str, Any]:
    done = run(stage, "simulate", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def push_and_complete(stage: Stage, tag: str) -> str:
    pushed = simulate(stage, "ecr-push", tag)
    assert pushed["status"] == "deploying", pushed
    assert simulate(stage, "deployment", "completed")["status"] == "succeeded"
    return str(stage.service()["taskDefinition"])


def item(stage: Stage, pk: str, sk: str) -> dict[str, Any]:
    found: dict[str, Any] = stage.client("dynamodb").get_item(
        TableName=stage.ops["LedgerTableName"], Key={"pk": {"S": pk}, "sk": {"S": sk}}
    )
    return found.get("Item", {})


def service_key(stage: Stage) -> str:
    return f"{stage.site['ClusterName']}/{stage.site['ServiceName']}"


def history(stage: Stage) -> list[dict[str, Any]]:
    found = stage.client("dynamodb").query(
        TableName=stage.ops["LedgerTableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"HISTORY#{service_key(stage)}"}},
    )
    return [{k: next(iter(v.values())) for k, v in i.items()} for i in found["Items"]]


@pytest.fixture
def two_pushes(stage: Stage, slack: SlackStub) -> tuple[Stage, str, str]:
    hook = run(stage, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr
    first = push_and_complete(stage, "v1.0.0")
    second = push_and_complete(stage, "v2.0.0")
    assert first != second
    return stage, first, second


def test_rollback_puts_the_first_push_back_freezes_records_and_reports(
    two_pushes: tuple[Stage, str, str], slack: SlackStub
) -> None:
    stage, first, second = two_pushes
    posted_before = len(slack.bodies)

    started = time.monotonic()
    done = run(stage, "rollback", "--yes")
    took = time.monotonic() - started

    assert done.returncode == 0, done.stderr[-3000:]
    print(f"\nspotops rollback --yes took {took:.2f}s\n{done.stdout}{done.stderr}")
    assert stage.service()["taskDefinition"] == first
    assert f"runs {first.rsplit('/', 1)[-1]} (was {second.rsplit('/', 1)[-1]})" in done.stdout
    assert "Emulator: played ECS's end of the rollout" in done.stderr
    freeze = item(stage, f"FREEZE#{service_key(stage)}", "STATE")
    assert freeze["frozen"] == {"BOOL": True}
    assert freeze["by"] == {"S": "rollback-command"}
    assert first.rsplit("/", 1)[-1] in freeze["reason"]["S"]
    outcomes = {(h["action"], h["outcome"]) for h in history(stage)}
    assert {("rollback", "started"), ("rollback", "succeeded")} <= outcomes
    assert item(stage, f"LOCK#{service_key(stage)}", "LOCK") == {}  # released
    (report,) = slack.bodies[posted_before:]
    assert report["text"].startswith(":rewind: Rolled back")
    assert "/rollback.md" in json.dumps(report["blocks"])

    again = run(stage, "rollback", "--yes")
    assert again.returncode == 2
    assert "Already rolled back at" in again.stderr
    assert "name the target with --to" in again.stderr
    assert stage.service()["taskDefinition"] == first


def test_a_dry_run_changes_nothing_and_bad_targets_are_refused(
    two_pushes: tuple[Stage, str, str],
) -> None:
    stage, first, second = two_pushes
    family = stage.site["TaskDefinitionFamily"]

    dry = run(stage, "rollback", "--dry-run")
    unknown = run(stage, "rollback", "--to", f"{family}:99", "--yes")
    no_tag = run(stage, "rollback", "--to", "v9.9.9", "--yes")
    same = run(stage, "rollback", "--to", second.rsplit("/", 1)[-1], "--yes")
    unasked = run(stage, "rollback")

    assert dry.returncode == 0, dry.stderr
    assert "Dry run, nothing changed. Would roll back" in dry.stdout
    assert f"to {first.rsplit('/', 1)[-1]}" in dry.stdout
    assert (unknown.returncode, no_tag.returncode, same.returncode) == (2, 2, 2)
    assert f"no such revision of {family}" in unknown.stderr
    assert "no image tagged 'v9.9.9'" in no_tag.stderr
    assert "already runs" in same.stderr
    assert unasked.returncode == 2
    assert "Pass --yes" in unasked.stderr
    assert stage.service()["taskDefinition"] == second
    assert item(stage, f"FREEZE#{service_key(stage)}", "STATE") == {}
    assert not [h for h in history(stage) if h["action"] == "rollback"]


def test_rollback_to_a_tag_a_revision_or_a_new_digest(two_pushes: tuple[Stage, str, str]) -> None:
    stage, first, second = two_pushes
    never_deployed = stage.push_image("v0.9.0")
    revisions_before = len(
        stage.client("ecs").list_task_definitions(familyPrefix=stage.site["TaskDefinitionFamily"])[
            "taskDefinitionArns"
        ]
    )

    by_tag = run(stage, "rollback", "--to", "v1.0.0", "--yes")
    on_tag = stage.service()["taskDefinition"]
    by_number = run(stage, "rollback", "--to", second.rsplit(":", 1)[-1], "--yes")
    on_number = stage.service()["taskDefinition"]
    by_digest = run(stage, "rollback", "--to", never_deployed, "--yes")

    assert by_tag.returncode == 0, by_tag.stderr[-2000:]
    assert on_tag == first  # the newest revision already running v1.0.0: none registered
    assert by_number.returncode == 0, by_number.stderr[-2000:]
    assert on_number == second
    assert by_digest.returncode == 0, by_digest.stderr[-2000:]
    assert "Registered" in by_digest.stderr
    assert stage.site_image().endswith(f"@{never_deployed}")
    revisions = stage.client("ecs").list_task_definitions(
        familyPrefix=stage.site["TaskDefinitionFamily"]
    )["taskDefinitionArns"]
    assert len(revisions) == revisions_before + 1


def test_the_kill_switch_and_a_held_lock_refuse(two_pushes: tuple[Stage, str, str]) -> None:
    stage, _, second = two_pushes
    assert run(stage, "kill-switch", "on").returncode == 0
    killed = run(stage, "rollback", "--yes")
    assert run(stage, "kill-switch", "off").returncode == 0
    stage.client("dynamodb").put_item(
        TableName=stage.ops["LedgerTableName"],
        Item={
            "pk": {"S": f"LOCK#{service_key(stage)}"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "chaos:tick-1"},
            "action": {"S": "chaos"},
            "expires_at": {"N": str(int(time.time()) + 600)},
        },
    )
    locked = run(stage, "rollback", "--yes")

    assert killed.returncode == 2
    assert "kill switch" in killed.stderr
    assert "spotops kill-switch off" in killed.stderr
    assert locked.returncode == 2
    assert "locked by chaos:tick-1 (chaos)" in locked.stderr
    assert stage.service()["taskDefinition"] == second
    assert item(stage, f"FREEZE#{service_key(stage)}", "STATE") == {}


def pushes_row(stage: Stage) -> dict[str, Any]:
    done = run(stage, "doctor", "--json")
    rows = json.loads(done.stdout)["rows"]
    row: dict[str, Any] = next(r for r in rows if r["name"] == "pushes")
    return row


def test_freeze_and_unfreeze_round_trip_shown_by_status_and_doctor(stage: Stage) -> None:
    frozen = run(stage, "freeze", "--reason", "launch day")
    twice = run(stage, "freeze")
    state = item(stage, f"FREEZE#{service_key(stage)}", "STATE")
    status_frozen = run(stage, "status")
    doctor_frozen = pushes_row(stage)
    lifted = run(stage, "unfreeze")
    nothing = run(stage, "unfreeze")
    status_lifted = run(stage, "status")
    doctor_lifted = pushes_row(stage)

    assert "Pushes: frozen since" in status_frozen.stdout
    assert "for a planned quiet period (launch day; by freeze-command)" in status_frozen.stdout
    assert "`spotops unfreeze`" in status_frozen.stdout
    assert doctor_frozen["state"] == "warn"
    assert "launch day; by freeze-command" in doctor_frozen["detail"]
    assert "spotops unfreeze" in doctor_frozen["advice"]
    assert "Pushes: deploy" in status_lifted.stdout
    assert doctor_lifted["state"] == "ok"

    assert frozen.returncode == 0, frozen.stderr
    assert "Pushes frozen since" in frozen.stdout
    assert "launch day" in frozen.stdout
    assert "frozen already" in twice.stdout
    assert state["by"] == {"S": "freeze-command"}
    assert state["reason"] == {"S": "launch day"}
    assert lifted.returncode == 0, lifted.stderr
    assert "Pushes deploy again: lifted the freeze" in lifted.stdout
    assert "launch day" in lifted.stdout
    assert nothing.returncode == 0
    assert "Pushes were not frozen; nothing to lift." in nothing.stdout
    assert item(stage, f"FREEZE#{service_key(stage)}", "STATE")["frozen"] == {"BOOL": False}


def test_a_push_while_frozen_is_held_until_unfreeze_deploy_latest(
    two_pushes: tuple[Stage, str, str],
) -> None:
    stage, first, _ = two_pushes
    assert run(stage, "rollback", "--yes").returncode == 0
    digest = stage.push_image("v3.0.0")

    run(stage, "simulate", "ecr-push", "v3.0.0")  # the function defers it: frozen
    held = item(stage, f"IMAGE#{service_key(stage)}", digest)
    running_while_frozen = stage.service()["taskDefinition"]
    deployed = run(stage, "unfreeze", "--deploy-latest")

    assert held["outcome"] == {"S": "frozen"}
    assert running_while_frozen == first
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "Pushes deploy again: lifted the freeze" in deployed.stdout
    assert f"Delivered the push of v3.0.0 ({digest[:19]}" in deployed.stderr
    assert json.loads(deployed.stdout[deployed.stdout.index("{") :])["status"] == "deploying"
    assert stage.site_image().endswith(f"@{digest}")


def test_a_plain_unfreeze_keeps_the_frozen_push_out_even_after_its_record_expires(
    two_pushes: tuple[Stage, str, str],
) -> None:
    stage, first, _ = two_pushes
    assert run(stage, "rollback", "--yes").returncode == 0
    digest = stage.push_image("v3.0.0")
    run(stage, "simulate", "ecr-push", "v3.0.0")  # refused: frozen
    lifted = run(stage, "unfreeze")
    # DynamoDB's TTL removes the push's "frozen" record some 30 days on, at no exact time.
    stage.client("dynamodb").delete_item(
        TableName=stage.ops["LedgerTableName"],
        Key={"pk": {"S": f"IMAGE#{service_key(stage)}"}, "sk": {"S": digest}},
    )
    reconciled = stage.run("reconcile_images", load_event("scheduledEvent"))

    assert lifted.returncode == 0, lifted.stderr
    assert f"stay undeployed (newest: v3.0.0 ({digest[:19]}" in lifted.stdout
    assert item(stage, f"HOLD#{service_key(stage)}", "NEWEST")["digest"] == {"S": digest}
    assert reconciled["result"]["status"] == "skipped", reconciled
    assert "not newer than the newest image ever deployed" in reconciled["result"]["reason"]
    assert stage.service()["taskDefinition"] == first
    # A new push still deploys.
    assert simulate(stage, "ecr-push", "v4.0.0")["status"] == "deploying"
