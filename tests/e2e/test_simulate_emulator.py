"""``spotops simulate``: the deployed functions rehearse one event; with ``--dry-run`` nothing
changes (what ECS describes before and after is equal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.ops_stage import Stage, deployed_stage, spotops
from tests.support.slack_stub import SlackStub
from tests.support.smoke_target import SmokeTarget

pytestmark = pytest.mark.emulator


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


def described(stage: Stage) -> dict[str, Any]:
    ecs = stage.client("ecs")
    service = stage.service()
    family = stage.site["TaskDefinitionFamily"]
    return {
        "task_definition": service["taskDefinition"],
        "desired": service["desiredCount"],
        "deployments": [(d["id"], d["taskDefinition"]) for d in service["deployments"]],
        "strategy": service.get("capacityProviderStrategy"),
        "revisions": ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"],
        "stopped": ecs.list_tasks(cluster=stage.site["ClusterName"], desiredStatus="STOPPED")[
            "taskArns"
        ],
    }


def simulate(stage: Stage, *args: str) -> tuple[int, dict[str, Any], str]:
    done = spotops(stage.project, stage.emulator, "simulate", *args)
    result = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return done.returncode, result, done.stderr


def test_a_dry_run_rehearsal_of_every_kind_changes_nothing(stage: Stage) -> None:
    stage.push_image("v9.9.9")
    before = described(stage)

    runs = {
        "ecr-push": simulate(stage, "ecr-push", "v9.9.9", "--dry-run"),
        "alarm": simulate(stage, "alarm", "unhealthy-hosts", "ALARM", "--dry-run"),
        "placement": simulate(stage, "placement-failure", "--dry-run"),
        "chaos": simulate(stage, "chaos-tick", "--dry-run"),
    }

    for name, (code, result, stderr) in runs.items():
        assert code == 0, f"{name}: {stderr[-2000:]}"
        assert result.get("status"), name
    assert runs["ecr-push"][1]["status"] == "dry-run"
    assert "would" in runs["ecr-push"][1]["reason"]
    assert described(stage) == before


def test_without_dry_run_the_emulator_is_changed_and_bad_kinds_are_refused(stage: Stage) -> None:
    digest = stage.push_image("v1.2.3")

    code, result, _ = simulate(stage, "ecr-push", "v1.2.3")
    wrong, _, message = simulate(stage, "alarm", "only-a-name")

    assert code == 0
    assert result["status"] == "deploying"
    assert stage.site_image().endswith(f"@{digest}")
    assert wrong == 2
    assert "alarm takes 2 argument(s)" in message


def test_the_new_image_and_gate_kinds_rehearse_through_their_functions(stage: Stage) -> None:
    digest = stage.push_image("v3.1.4")
    stage.client("ecr").start_image_scan(
        repositoryName=stage.site["RepositoryName"], imageId={"imageDigest": digest}
    )
    target = SmokeTarget()
    try:
        scanned = simulate(stage, "image-scan", "v3.1.4", "--dry-run")
        gate = simulate(stage, "smoke-test", target.url, "--dry-run")
        unscanned = simulate(stage, "image-scan", "no-such-tag", "--dry-run")
    finally:
        target.close()

    assert scanned[0] == 0, scanned[2][-2000:]
    # Scanned, but the service does not run it: logged, not alerted.
    assert scanned[1]["status"] == "skipped"
    assert "not running" in scanned[1]["reason"]
    assert gate[0] == 0, gate[2][-2000:]
    assert gate[1] == {"hookStatus": "SUCCEEDED"}
    assert [path for path, _ in target.seen] == ["/healthz", "/version", "/"]
    assert unscanned[0] == 2
    assert "No image tagged 'no-such-tag'" in unscanned[2]
    assert "simulate ecr-push no-such-tag" in unscanned[2]


def lock(stage: Stage) -> dict[str, Any]:
    key = f"LOCK#{stage.site['ClusterName']}/{stage.site['ServiceName']}"
    found: dict[str, Any] = stage.client("dynamodb").get_item(
        TableName=stage.ops["LedgerTableName"], Key={"pk": {"S": key}, "sk": {"S": "LOCK"}}
    )
    return found.get("Item", {})


def test_push_redeploy_and_outcome_are_rehearsed_by_hand_without_docker(
    stage: Stage, slack: SlackStub
) -> None:
    hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr

    pushed = simulate(stage, "ecr-push", "v1.0.0")
    held = lock(stage)
    completed = simulate(stage, "deployment", "completed")

    assert pushed[0] == 0, pushed[2][-2000:]
    assert "Emulator: no image tagged 'v1.0.0'" in pushed[2]
    assert pushed[1]["status"] == "deploying"
    digest = pushed[1]["digest"]
    assert stage.site_image().endswith(f"@{digest}")  # the new revision is pinned to it
    assert held, "the redeploy holds the service lock until the outcome"
    assert completed[0] == 0, completed[2][-2000:]
    assert "Emulator: played ECS's end of the deployment" in completed[2]
    assert completed[1]["status"] == "succeeded"
    assert completed[1]["lock_released"] is True
    assert lock(stage) == {}
    assert any(t.startswith(":white_check_mark: Deployed v1.0.0") for t in slack.texts())


def test_a_failed_deployment_rolls_the_emulator_back_and_is_reported(stage: Stage) -> None:
    before = stage.service()["taskDefinition"]
    assert simulate(stage, "ecr-push", "v2.0.0")[0] == 0

    code, result, stderr = simulate(stage, "deployment", "failed")

    assert code == 0, stderr[-2000:]
    assert result["status"] == "failed"
    assert "circuit breaker" in stderr
    assert stage.service()["taskDefinition"] == before
    assert lock(stage) == {}


def test_an_alarm_is_rehearsed_with_its_real_metric_and_runbook(stage: Stage) -> None:
    code, result, stderr = simulate(stage, "alarm", "cpu-high", "ALARM", "--dry-run")
    typo, _, refused = simulate(stage, "alarm", "cpu-hihg", "ALARM", "--dry-run")

    assert code == 0, stderr[-2000:]
    assert "Emulator: alarm spotops-dev-cpu-high set to ALARM" in stderr
    alarm = stage.client("cloudwatch").describe_alarms(AlarmNames=["spotops-dev-cpu-high"])
    (made,) = alarm["MetricAlarms"]
    assert (made["Namespace"], made["MetricName"]) == ("AWS/ECS", "CPUUtilization")
    assert (made["Threshold"], made["ComparisonOperator"]) == (85.0, "GreaterThanThreshold")
    assert made["AlarmDescription"].endswith("/cpu-high.md")
    assert result["alarm"] == "spotops-dev-cpu-high"
    assert typo == 2
    assert "No alarm 'cpu-hihg'" in refused
    assert "cpu-high, memory-high" in refused
    assert "Emulator" not in refused  # refused before anything was made or sent


def test_verdicts_say_why_and_placement_names_the_capacity_provider(stage: Stage) -> None:
    dead = simulate(stage, "smoke-test", "http://127.0.0.1:9", "--dry-run")
    chaos = simulate(stage, "chaos-tick", "--dry-run")
    placement = simulate(stage, "placement-failure")

    assert dead[1] == {"hookStatus": "FAILED"}
    assert "FAILED - http://127.0.0.1:9/healthz: ConnectionRefusedError" in dead[2]
    assert "no-kill - " in chaos[2]
    assert "spotops-dev/spotops-dev-site: not opted in" in chaos[2]
    assert placement[0] == 0, placement[2][-2000:]
    assert "Emulator: gave spotops-dev-site the site template's capacity provider" in placement[2]
    assert "launch type EC2" not in placement[2]
    assert placement[1]["status"] == "acted"
    strategy = {
        p["capacityProvider"]: p["weight"] for p in stage.service()["capacityProviderStrategy"]
    }
    assert strategy["FARGATE"] == 1


def test_a_burn_rate_alert_reaches_slack_with_its_runbook_and_its_window_is_refused(
    stage: Stage, slack: SlackStub
) -> None:
    hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr

    code, result, stderr = simulate(stage, "alarm", "slo-latency-fast-burn", "ALARM")
    window, _, refused = simulate(stage, "alarm", "slo-latency-fast-burn-short", "ALARM")

    assert code == 0, stderr[-2000:]
    assert result["alarm"] == "spotops-dev-slo-latency-fast-burn"
    assert "Emulator: alarm spotops-dev-slo-latency-fast-burn set to ALARM" in stderr
    texts = slack.texts()
    # The alert, then the note that nothing is remediated (notify-only): no :wrench:.
    assert [text.split(" ", 1)[0] for text in texts] == [":rotating_light:", ":hand:"]
    assert texts[0].startswith(":rotating_light: ALARM: spotops-dev-slo-latency-fast-burn")
    assert "composite alarm" in texts[0]
    assert texts[0].endswith("/runbooks/slo-latency.md")
    assert "Composite rule:* ALARM(" in json.dumps(slack.bodies[0])
    assert "no-policy" in texts[1]
    assert window == 2
    assert (
        "slo-latency-fast-burn-short is an input of the burn-rate alert slo-latency-fast-burn; "
        "it notifies nobody: simulate the alert." in refused
    )
    cloudwatch = stage.client("cloudwatch")
    assert (
        cloudwatch.describe_alarms(AlarmNames=["spotops-dev-slo-latency-fast-burn-short"])[
            "MetricAlarms"
        ]
        == []
    )  # refused before anything was placed
    assert len(slack.bodies) == 2  # the refused window sent nothing
