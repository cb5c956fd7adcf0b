"""``spotops timeline`` and ``spotops incident report`` through the command line against the
moto server: ``--since`` in each form, bad input (exit 2, nothing read or written), a stage
whose sources are missing (one line each, not a crash)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from click.testing import Result

pytestmark = pytest.mark.emulator

KILL_SWITCH = "/spotops/dev/kill-switch"


@pytest.fixture
def flipped(emulator: str) -> None:
    """The kill switch created off, then turned on: two versions in its history."""
    ssm = boto3.client("ssm", endpoint_url=emulator, region_name="us-east-1")
    ssm.put_parameter(Name=KILL_SWITCH, Value="off", Type="String")
    ssm.put_parameter(Name=KILL_SWITCH, Value="on", Type="String", Overwrite=True)


def test_a_stage_not_deployed_shows_one_line_per_missing_source_and_what_could_be_read(
    spotops: Callable[..., Result], flipped: None
) -> None:
    done = spotops("timeline", "--json")

    assert done.exit_code == 0, done.output
    events = json.loads(done.stdout)
    assert [(e["source"], e["kind"], e["switch"], e["value"]) for e in events] == [
        ("ssm", "switch", "kill-switch", "off"),
        ("ssm", "switch", "kill-switch", "on"),
    ]
    gaps = done.stderr.splitlines()
    assert gaps[0] == "ledger: not read: no ledger table (stack spotops-dev-ops not deployed)"
    assert gaps[1] == "ecs: not read: no service (stack spotops-dev-site not deployed)"
    assert gaps[2].startswith("cloudwatch: not read: ")  # moto has no DescribeAlarmHistory
    assert len(gaps) == 3


@pytest.mark.parametrize("since", ["30m", "2h", "3d", "2000-01-01T00:00:00Z", "2000-01-01"])
def test_each_form_of_since_reads_back_that_far(
    spotops: Callable[..., Result], flipped: None, since: str
) -> None:
    done = spotops("timeline", "--since", since)

    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].split()[1:4] == ["ssm", "switch", "kill-switch"]
    assert lines[1].endswith("kill-switch set to on (version 2)")


def test_a_time_after_the_events_shows_none(spotops: Callable[..., Result], flipped: None) -> None:
    done = spotops("timeline", "--since", "2999-01-01T00:00:00Z")

    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    assert "No events in range." in done.stderr


@pytest.mark.parametrize("since", ["2 hours", "yesterday", "-2h", "2y"])
def test_a_bad_since_exits_2_naming_the_forms_it_takes(
    spotops: Callable[..., Result], since: str
) -> None:
    for command in (("timeline",), ("incident", "report")):
        done = spotops(*command, "--since", since)

        assert done.exit_code == 2, done.output
        assert f"--since {since!r}" in done.stderr
        assert "30s, 10m, 2h, 1d, 1w" in done.stderr
        assert "ISO-8601" in done.stderr


def test_the_report_refuses_to_overwrite_without_force_and_since_with_alarm(
    spotops: Callable[..., Result], tmp_path: Path, flipped: None
) -> None:
    out = tmp_path / "incident.md"
    out.write_text("notes of the people involved\n")

    kept = spotops("incident", "report", "--out", str(out))
    both = spotops("incident", "report", "--since", "2h", "--alarm", "cpu-high")
    forced = spotops("incident", "report", "--out", str(out), "--force")

    assert kept.exit_code == 2
    assert "exists: pass --force" in kept.stderr
    assert both.exit_code == 2
    assert "--since or --alarm, not both" in both.stderr
    assert forced.exit_code == 0, forced.output
    written = out.read_text()
    assert written.startswith("# Incident: spotops-dev, no alarm in range\n")
    assert "| ssm | switch | kill-switch set to on (version 2) |" in written
    assert "- ledger: not read: no ledger table (stack spotops-dev-ops not deployed)" in written
