"""The incident report from fixed events: the impact window, the times to detect, mitigate
and recover, and the whole draft compared byte for byte with tests/golden/incident/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spotops.reports.incident import TO_WRITE, ReportInput, duration, impact_window, report
from spotops.reports.timeline import (
    CLOUDWATCH,
    ECS,
    LEDGER,
    SSM,
    Event,
    Gap,
    Timeline,
    merge,
    render_lines,
)

GOLDEN = Path(__file__).resolve().parents[3] / "golden"
T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
DIGEST_2 = "sha256:" + "2" * 64
DIGEST_3 = "sha256:" + "3" * 64


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def alarm(minutes: float, source: str, name: str, state: str, text: str, **facts: str) -> Event:
    return Event(
        at(minutes),
        source,
        "alarm",
        text,
        tuple({"alarm": name, "state": state, **facts}.items()),
    )


def sequence() -> Timeline:
    """A bad push, its alarms, a refused remediation, a rollback by command, the freeze, a
    push refused while frozen, recovery, the unfreeze; ECS's events could not be read."""
    hosts, errors = "spotops-dev-unhealthy-hosts", "spotops-dev-target-5xx"
    events = [
        Event(
            at(0),
            LEDGER,
            "push",
            f"v2 ({DIGEST_2[:19]}) deployed",
            (("digest", DIGEST_2), ("outcome", "deployed")),
        ),
        Event(
            at(0),
            LEDGER,
            "redeploy",
            f"deploying: v2 ({DIGEST_2[:19]}) ecs-svc/2",
            (("action", "redeploy"), ("outcome", "deploying")),
        ),
        alarm(4, CLOUDWATCH, hosts, "ALARM", f"{hosts} OK -> ALARM: Threshold Crossed"),
        alarm(
            4,
            LEDGER,
            hosts,
            "ALARM",
            f"{hosts} ALARM: notice post; remediation cooldown: cooldown 300s",
            remediation="cooldown",
        ),
        alarm(5, CLOUDWATCH, errors, "ALARM", f"{errors} OK -> ALARM: Threshold Crossed"),
        Event(
            at(7),
            LEDGER,
            "rollback",
            "succeeded: to spotops-dev-site:1",
            (("action", "rollback"), ("outcome", "succeeded")),
        ),
        Event(
            at(7),
            LEDGER,
            "freeze",
            "pushes frozen by rollback-command (deployment ecs-svc/2): rolled back by command",
            (("by", "rollback-command"),),
        ),
        Event(
            at(7),
            LEDGER,
            "deployment",
            f"ROLLED_BACK v2 ({DIGEST_2[:19]}) ecs-svc/2: rolled back by command",
            (("status", "ROLLED_BACK"),),
        ),
        Event(
            at(9),
            LEDGER,
            "push",
            f"v3 ({DIGEST_3[:19]}) frozen: frozen since 14:07",
            (("digest", DIGEST_3), ("outcome", "frozen")),
        ),
        Event(
            at(9),
            LEDGER,
            "redeploy",
            f"frozen: v3 ({DIGEST_3[:19]})",
            (("action", "redeploy"), ("outcome", "frozen")),
        ),
        alarm(11, CLOUDWATCH, errors, "OK", f"{errors} ALARM -> OK: Threshold Crossed"),
        alarm(12, CLOUDWATCH, hosts, "OK", f"{hosts} ALARM -> OK: Threshold Crossed"),
        Event(
            at(30),
            LEDGER,
            "unfreeze",
            "pushes unfrozen by freeze-command",
            (("by", "freeze-command"),),
        ),
        Event(
            at(45),
            SSM,
            "switch",
            "kill-switch set to off (version 2)",
            (("switch", "kill-switch"), ("value", "off")),
        ),
    ]
    return Timeline(merge(events), (Gap(ECS, "AccessDeniedException: not authorized"),))


DESCRIPTIONS = {
    "spotops-dev-unhealthy-hosts": "Unhealthy. Runbook: https://example.com/runbooks/unhealthy-hosts.md",
    "spotops-dev-target-5xx": "5xx. Runbook: https://example.com/runbooks/target-5xx.md",
}


def draft(alarm_name: str | None = None, timeline: Timeline | None = None) -> str:
    return report(
        ReportInput(
            "spotops",
            "dev",
            timeline or sequence(),
            DESCRIPTIONS,
            "https://example.com/runbooks/rollback.md",
            alarm=alarm_name,
            since=at(-60),
        )
    )


@pytest.mark.parametrize(
    ("golden", "alarm_name"),
    [("incident/stage.md", None), ("incident/one-alarm.md", "spotops-dev-target-5xx")],
)
def test_the_report_matches_its_golden_file_byte_for_byte(
    golden: str, alarm_name: str | None
) -> None:
    assert draft(alarm_name) == (GOLDEN / golden).read_text(encoding="utf-8")


def test_the_timeline_lines_match_their_golden_file() -> None:
    text = "\n".join(render_lines(sequence())) + "\n"

    assert text == (GOLDEN / "timeline" / "sequence.txt").read_text(encoding="utf-8")


def test_the_same_events_in_another_order_give_the_same_bytes() -> None:
    shuffled = Timeline(merge(reversed(sequence().events)), sequence().gaps)

    assert draft(timeline=shuffled) == draft()


def test_the_window_runs_from_the_first_alarm_to_the_last_ok_and_the_times_follow() -> None:
    window = impact_window(sequence().events)
    text = draft()

    assert window is not None
    assert (window.start, window.end) == (at(4), at(12))
    assert "- Time to detect: 0s (the toolkit's alert, 2026-12-07T14:04:00Z" in text
    assert "- Time to mitigate: 3m 00s (2026-12-07T14:07:00Z" in text
    assert "- Time to recover: 8m 00s (alarms back to OK)" in text


def test_one_alarms_episode_is_its_own_window_and_hides_what_lies_outside_it() -> None:
    window = impact_window(sequence().events, "spotops-dev-target-5xx")
    text = draft("spotops-dev-target-5xx")

    assert window is not None
    assert (window.start, window.end) == (at(5), at(11))
    assert "kill-switch set to off" not in text  # 34 minutes after the episode ended
    assert "unhealthy-hosts.md" not in text


def test_an_alarm_still_in_alarm_has_no_end_and_no_recovery() -> None:
    events = [
        e
        for e in sequence().events
        if not (e.kind == "alarm" and e.fact("state") == "OK" and "hosts" in e.text)
    ]
    window = impact_window(events)
    text = draft(timeline=Timeline(tuple(events)))

    assert window is not None
    assert window.end is None
    assert window.still_alarming == ("spotops-dev-unhealthy-hosts",)
    assert "still in ALARM: spotops-dev-unhealthy-hosts" in text
    assert "- Time to recover: not recovered in the data" in text


def test_no_alarm_means_no_window_and_sections_for_people_stay_empty() -> None:
    quiet = Timeline(tuple(e for e in sequence().events if e.kind != "alarm"))
    text = draft(timeline=quiet)

    assert impact_window(quiet.events) is None
    assert "No state change to ALARM of the spotops-dev alarms since 2026-12-07T13:00:00Z" in text
    for section in ("## Root causes", "## Trigger", "## Action items", "### Where we got lucky"):
        assert f"{section}\n\n{TO_WRITE}\n" in text
    assert "| Action item | Type | Owner | Priority | Bug |\n|---|---|---|---|---|\n\n" in text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m 00s"), (3599, "59m 59s"), (3600, "1h 00m 00s"), (-5, "0s")],
)
def test_durations(seconds: int, shown: str) -> None:
    assert duration(timedelta(seconds=seconds)) == shown
