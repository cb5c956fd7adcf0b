"""End to end on the emulator: a stage deployed by ``spotops deploy``, a push redeployed and
settled and an alarm rehearsed through the deployed functions (``spotops simulate``); then
``spotops timeline`` and ``spotops incident report`` show them, each with its source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.ops_stage import deployed_stage, spotops

pytestmark = pytest.mark.emulator

ALARM = "spotops-dev-unhealthy-hosts"


def test_the_timeline_and_report_show_the_push_the_deployment_and_the_alarm(
    emulator: str, tmp_path: Path
) -> None:
    stage = deployed_stage(emulator, tmp_path)
    for rehearsal in (
        ("ecr-push", "v1.0.0"),
        ("deployment", "completed"),
        ("alarm", "unhealthy-hosts", "ALARM"),
    ):
        done = spotops(stage.project, emulator, "simulate", *rehearsal)
        assert done.returncode == 0, done.stderr[-2000:]

    listed = spotops(stage.project, emulator, "timeline", "--json")
    printed = spotops(stage.project, emulator, "timeline")
    drafted = spotops(stage.project, emulator, "incident", "report", "--alarm", "unhealthy-hosts")

    assert listed.returncode == 0, listed.stderr[-2000:]
    events = json.loads(listed.stdout)
    by_kind = {(e["source"], e["kind"]): e for e in events}
    push = by_kind[("ledger", "push")]
    assert (push["tag"], push["outcome"]) == ("v1.0.0", "deployed")
    deployment = by_kind[("ledger", "deployment")]
    assert (deployment["status"], deployment["tag"]) == ("COMPLETED", "v1.0.0")
    alarm = by_kind[("ledger", "alarm")]
    assert (alarm["alarm"], alarm["state"]) == (ALARM, "ALARM")
    assert events == sorted(events, key=lambda e: e["at"])
    # moto has no DescribeAlarmHistory: that source is one line, the rest is read.
    assert [line.split(":")[0] for line in listed.stderr.splitlines()] == ["cloudwatch"]
    assert printed.returncode == 0, printed.stderr[-2000:]
    assert len(printed.stdout.splitlines()) == len(events)
    assert drafted.returncode == 0, drafted.stderr[-2000:]
    report = drafted.stdout
    assert report.startswith(f"# Incident: spotops-dev, {alarm['at']}\n")
    assert f"- Impact window: from {alarm['at']} (first ALARM)" in report
    assert f"still in ALARM: {ALARM}" in report
    assert re.search(rf"^- {ALARM}: http\S+/unhealthy-hosts\.md$", report, re.MULTILINE)
    assert "| ledger | push | v1.0.0" in report
