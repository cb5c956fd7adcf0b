"""End to end: ``make demo``'s run, its effects checked through the emulator's APIs and the
webhook receiver (not by reading the demo's own output)."""

from __future__ import annotations

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
        seen["strategy"] = [
            p for p in demo._service()["capacityProviderStrategy"] if p.get("weight")
        ]

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
    # The bootstrap revision and one pinned to the digest: verify, which ran its functions on
    # marked events before the push, registered none.
    assert seen["revisions"] == 2
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
