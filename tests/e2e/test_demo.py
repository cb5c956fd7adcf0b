"""End to end: ``make demo``'s run, its effects checked through the emulator's APIs and the
webhook receiver (not by reading the demo's own output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spotops.local.demo import Demo
from spotops.local.slack_receiver import SlackReceiver

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_every_flow_and_leaves_their_effects_in_the_emulator() -> None:
    seen: dict[str, Any] = {}

    def inspect(demo: Demo, slack: SlackReceiver) -> None:
        site = demo._site_outputs()
        ecs = demo.client("ecs")
        stacks = demo.client("cloudformation").describe_stacks()["Stacks"]
        seen["stacks"] = sorted(s["StackName"] for s in stacks)
        seen["image"] = demo._site_image()
        seen["revisions"] = demo._revisions()
        stopped = ecs.list_tasks(cluster=site["ClusterName"], desiredStatus="STOPPED")["taskArns"]
        seen["stopped"] = ecs.describe_tasks(cluster=site["ClusterName"], tasks=stopped)["tasks"]
        seen["texts"] = slack.texts()
        seen["bodies"] = [json.dumps(m) for m in slack.messages]
        seen["strategy"] = [
            p for p in demo._service()["capacityProviderStrategy"] if p.get("weight")
        ]
        ops = demo.client("cloudformation").describe_stacks(StackName="spotops-dev-ops")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in ops["Stacks"][0]["Outputs"]}
        ledger = outputs["LedgerTableName"]
        key = f"{site['ClusterName']}/{site['ServiceName']}"
        seen["freeze"] = demo.client("dynamodb").get_item(
            TableName=ledger, Key={"pk": {"S": f"FREEZE#{key}"}, "sk": {"S": "STATE"}}
        )["Item"]

    lines: list[str] = []
    status = Demo(ROOT, printer=lines.append, before_teardown=inspect).run()

    assert status == 0, "\n".join(lines[-30:])
    assert seen["stacks"] == [
        "spotops-bootstrap",
        "spotops-dev-network",
        "spotops-dev-ops",
        "spotops-dev-site",
    ]
    assert "@sha256:" in seen["image"]
    # The bootstrap revision and one pinned to each digest pushed (v1.0.0, v1.1.0, v1.2.0):
    # verify, which ran its functions on marked events before the push, registered none, and
    # the rollback reused v1.0.0's revision.
    assert seen["revisions"] == 4
    (killed,) = seen["stopped"]
    assert killed["stoppedReason"].startswith("spotops chaos run")
    texts = seen["texts"]
    assert any(t.startswith(":white_check_mark: spotops verify: spotops dev") for t in texts)
    assert sum(t.startswith(":rocket: deploying v1.0.0") for t in texts) == 1  # pushed twice
    assert any(t.startswith(":white_check_mark: Deployed v1.0.0") for t in texts)
    assert any("recovered in" in t for t in texts)
    assert any("unhealthy-hosts" in t for t in texts)  # the alarm's alert
    assert any(t.startswith(":warning: Vulnerable image running: spotops-dev-site") for t in texts)
    assert seen["strategy"][0]["capacityProvider"] == "FARGATE"  # shifted off Spot
    # The rollback flow: rolled back and reported, a push refused while frozen, the freeze
    # lifted by unfreeze --deploy-latest, whose push then deployed.
    assert any(t.startswith(":snowflake: Push not deployed: v1.2.0") for t in texts)
    (report,) = [b for b in seen["bodies"] if ":rewind: Rolled back spotops-dev-site to" in b]
    assert "runbooks/rollback.md" in report
    assert any(t.startswith(":white_check_mark: Deployed v1.2.0") for t in texts)
    assert seen["freeze"]["frozen"] == {"BOOL": False}
    assert seen["freeze"]["by"] == {"S": "rollback-command"}
    timeline = "\n".join(lines)
    assert "$ spotops timeline --stage dev --since 1h" in timeline
    assert "Time to recover: " in timeline
