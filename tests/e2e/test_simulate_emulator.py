"""``spotops simulate``: the deployed functions rehearse one event; with ``--dry-run`` nothing
changes (what ECS describes before and after is equal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.ops_stage import Stage, deployed_stage, spotops
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
    assert "aws ecr start-image-scan" in unscanned[2]
