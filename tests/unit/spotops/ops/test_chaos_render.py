"""``spotops chaos --dry-run``'s lines: the budget guard is shown like every other guard, and
the rule it applies is stated up front."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from spotops.ops.chaos import ChaosReport, ServiceDecision, render

# isort: split
from chalicelib.chaos.guards import Decision, Leash, Verdict
from chalicelib.chaos.settings import ChaosSettings
from chalicelib.slo import SloSettings

AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
REFUSED = Decision(
    (
        Verdict("alarms", True, "no alarm of the stage in ALARM"),
        Verdict(
            "budget",
            False,
            "latency has 24.0% of its 30 d error budget left (99.9% target); chaos needs 25%",
        ),
        Verdict("headroom", True, "2 running; a kill leaves 1"),
    ),
    0.5,
    0.1,
)


def report(settings: ChaosSettings) -> ChaosReport:
    return ChaosReport(
        "spotops-dev-chaos_tick",
        AT,
        Leash(True, "chaos leash /spotops/dev/chaos-leash is 'on' (only 'off' unleashes)"),
        settings,
        [ServiceDecision("spotops-dev/spotops-dev-site", "cli-1/x", REFUSED, None)],
        SloSettings(),
    )


def test_dry_run_states_the_budget_rule_and_shows_the_budget_verdict() -> None:
    lines = render(report(ChaosSettings()))

    assert lines[3] == (
        "Error budget: at least 25% left of each objective (availability 99.9% over 30 d; "
        "latency 99.9% within 0.3 s over 30 d)"
    )
    assert (
        "  FAIL  budget    latency has 24.0% of its 30 d error budget left (99.9% target); "
        "chaos needs 25%"
    ) in lines
    assert lines[-1] == "  => no kill: 1 guard(s) refused"


def test_dry_run_says_when_the_budget_is_not_a_guard() -> None:
    lines = render(report(replace(ChaosSettings(), min_budget_percent=0)))

    assert lines[3] == "Error budget: not a guard (CHAOS_MIN_BUDGET_PERCENT is 0)"
