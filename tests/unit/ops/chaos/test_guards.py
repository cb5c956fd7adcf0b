"""The chaos guards, one by one, over frozen facts; the probability model, seeded.

A baseline where every guard passes; each test changes one fact and expects exactly one
guard to refuse. No AWS, no clock, no real randomness.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from chalicelib.chaos.guards import (
    GUARDS,
    KIND_CHAOS,
    KIND_SPOT,
    ChaosFacts,
    ChaosPolicy,
    Deployment,
    FreezePeriod,
    KillRecord,
    KillSwitch,
    Leash,
    OptIn,
    Reading,
    ServiceFacts,
    TargetState,
    TaskFacts,
    Verdict,
    Window,
    decide,
    draw,
    format_days,
    guard_alarms,
    guard_budget,
    guard_deployment,
    guard_freeze,
    guard_headroom,
    guard_kill_switch,
    guard_lock,
    guard_min_gap,
    guard_opt_in,
    guard_probability,
    guard_running,
    guard_time_left,
    guard_window,
    kill_probability,
    latest_kill,
    latest_spot_interruption,
    leash_state,
    needed_tasks,
    parse_days,
    parse_freeze,
    parse_hours,
    parse_opt_in,
    pick_victim,
    recovered,
    service_facts,
    target_groups,
    targets_verdict,
    task_facts,
    time_zone,
)
from chalicelib.ledger import Lock
from chalicelib.slo import AVAILABILITY, LATENCY, Budget, Objective

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 UTC
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/spotops-dev-site/abc"
POLICY = ChaosPolicy(
    window=Window(frozenset(range(5)), 9, 17, "UTC"),
    freeze=(FreezePeriod(date(2026, 12, 24), date(2026, 12, 26)),),
    mtbk_hours=16.0,
    min_gap_hours=4.0,
    tick_minutes=60,
)


def task(n: int, **changes: Any) -> TaskFacts:
    base = TaskFacts(
        arn=f"arn:aws:ecs:us-east-1:123456789012:task/spotops-dev/{n:032x}",
        last_status="RUNNING",
        desired_status="RUNNING",
        capacity_provider="FARGATE_SPOT",
        availability_zone="us-east-1a",
    )
    return replace(base, **changes)


def service(**changes: Any) -> ServiceFacts:
    base = ServiceFacts(
        cluster="spotops-dev",
        name="spotops-dev-site",
        arn="arn:aws:ecs:us-east-1:123456789012:service/spotops-dev/spotops-dev-site",
        status="ACTIVE",
        desired=2,
        running_count=2,
        pending_count=0,
        deployments=(Deployment("ecs-svc/1", "PRIMARY", "COMPLETED"),),
        minimum_healthy_percent=50,
        target_group_arns=(TG,),
        tags={"spotops:chaos": "on"},
        running_tasks=(task(1), task(2)),
    )
    return replace(base, **changes)


def healthy(*ids: str) -> Reading[tuple[TargetState, ...]]:
    return Reading(tuple(TargetState(TG, target_id, "healthy") for target_id in ids))


AVAIL = Objective(AVAILABILITY, 99.9, 30)
LAT = Objective(LATENCY, 99.9, 30, threshold_seconds=0.3)
SLO_PREFIX = "spotops-dev-slo-"


def budgets(availability: float | None, latency: float | None) -> Reading[tuple[Budget, ...]]:
    return Reading(
        tuple(
            Budget(o, left=left) if left is not None else Budget.unknown(o, "GetMetricData failed")
            for o, left in ((AVAIL, availability), (LAT, latency))
        )
    )


def facts(**changes: Any) -> ChaosFacts:
    svc = changes.pop("service", service())
    base = ChaosFacts(
        now=NOW,
        service=svc,
        opt_in=parse_opt_in(svc.tags, POLICY),
        targets=healthy("10.0.1.10", "10.0.2.20"),
        alarms=Reading(()),
        kill_switch=Reading(KillSwitch(False, "kill switch /spotops/dev/kill-switch is off")),
        lock=Reading(None),
        last_kill=Reading(None),
        budget=budgets(0.62, 0.88),
        slo_alarm_prefix=SLO_PREFIX,
    )
    return replace(base, **changes)


# ---- all guards, and each one refusing alone ------------------------------------------


def test_every_guard_passes_on_a_steady_opted_in_service_inside_the_window() -> None:
    decision = decide(facts(), POLICY, draw_value=0.0)

    assert decision.kill
    assert [v.guard for v in decision.verdicts] == list(GUARDS)
    assert decision.summary() == "every guard passed (13)"


REFUSE_ALONE: dict[str, Callable[[], tuple[ChaosFacts, float]]] = {
    "opt-in": lambda: (facts(service=service(tags={"spotops:chaos": "off"})), 0.0),
    "window": lambda: (facts(now=datetime(2026, 12, 5, 10, tzinfo=UTC)), 0.0),  # Saturday
    "freeze": lambda: (facts(now=datetime(2026, 12, 24, 10, tzinfo=UTC)), 0.0),  # Thursday
    "min-gap": lambda: (
        facts(last_kill=Reading(KillRecord(NOW - timedelta(hours=1), KIND_CHAOS))),
        0.0,
    ),
    "probability": lambda: (facts(), 0.99),
    "kill-switch": lambda: (
        facts(kill_switch=Reading(KillSwitch(True, "kill switch is 'on'"))),
        0.0,
    ),
    "lock": lambda: (
        facts(lock=Reading(Lock(holder="redeploy:sha256:ab", action="redeploy", expires_at=9))),
        0.0,
    ),
    "running": lambda: (facts(service=service(running_count=1)), 0.0),
    "deployment": lambda: (
        facts(
            service=service(
                deployments=(
                    Deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS"),
                    Deployment("ecs-svc/1", "ACTIVE", "COMPLETED"),
                )
            )
        ),
        0.0,
    ),
    "targets": lambda: (
        facts(
            targets=Reading(
                (TargetState(TG, "10.0.1.10", "healthy"), TargetState(TG, "10.0.2.20", "unhealthy"))
            )
        ),
        0.0,
    ),
    "alarms": lambda: (facts(alarms=Reading(("spotops-dev-target-5xx",))), 0.0),
    "budget": lambda: (facts(budget=budgets(0.62, 0.24)), 0.0),
    "headroom": lambda: (facts(service=service(minimum_healthy_percent=100)), 0.0),
}


def test_every_guard_has_a_case_that_refuses_alone() -> None:
    assert set(REFUSE_ALONE) == set(GUARDS)


@pytest.mark.parametrize("guard", GUARDS)
def test_each_guard_refusing_alone_stops_the_kill(guard: str) -> None:
    case, draw_value = REFUSE_ALONE[guard]()

    decision = decide(case, POLICY, draw_value)

    assert not decision.kill
    assert [v.guard for v in decision.refusals] == [guard], decision.summary()


UNREADABLE: dict[str, Callable[[], ChaosFacts]] = {
    "targets": lambda: facts(targets=Reading.failed("target health unreadable (AccessDenied)")),
    "alarms": lambda: facts(alarms=Reading.failed("alarm states unreadable (Throttling)")),
    "kill-switch": lambda: facts(kill_switch=Reading.failed("no kill switch parameter")),
    "lock": lambda: facts(lock=Reading.failed("ledger lock unreadable (LedgerError)")),
    "min-gap": lambda: facts(last_kill=Reading.failed("ledger read failed (500)")),
    "headroom": lambda: facts(service=service(minimum_healthy_percent=None)),
    "budget": lambda: facts(budget=budgets(0.62, None)),
}
# The budget guard reads the alarms too (for the burn-rate alerts), so it refuses with them.
ALSO_UNREADABLE = {"alarms": ["budget"]}


@pytest.mark.parametrize("guard", sorted(UNREADABLE))
def test_a_guard_that_cannot_be_evaluated_refuses(guard: str) -> None:
    decision = decide(UNREADABLE[guard](), POLICY, 0.0)

    expected = sorted([guard, *ALSO_UNREADABLE.get(guard, [])], key=GUARDS.index)
    assert [v.guard for v in decision.refusals] == expected
    assert "cannot evaluate" in decision.verdict(guard).reason


def test_an_unknown_time_zone_refuses_the_window_and_the_freeze() -> None:
    policy = replace(POLICY, window=replace(POLICY.window, time_zone="Mars/Olympus_Mons"))

    decision = decide(facts(), policy, 0.0)

    assert [v.guard for v in decision.refusals] == ["window", "freeze"]


# ---- opt-in and tags --------------------------------------------------------------------


def test_opt_in_takes_the_services_own_mean_and_gap() -> None:
    tags = {
        "spotops:chaos": "ON",
        "spotops:chaos-mtbk-hours": "8",
        "spotops:chaos-min-gap-hours": "0",
    }

    opt_in = parse_opt_in(tags, POLICY)

    assert opt_in == OptIn(True, 8.0, 0.0, None, "on")


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ({"spotops:chaos": "sometimes"}, "neither on nor off"),
        ({"spotops:chaos": "on", "spotops:chaos-mtbk-hours": "often"}, "not a number of hours"),
        ({"spotops:chaos": "on", "spotops:chaos-mtbk-hours": "0"}, "more than 0"),
        ({"spotops:chaos": "on", "spotops:chaos-min-gap-hours": "-1"}, "0 or more"),
        ({"spotops:chaos": "on", "spotops:chaos-mtbk-hours": "nan"}, "more than 0"),
        ({"spotops:chaos": "on", "spotops:chaos-min-gap-hours": "99999"}, "at most a year"),
    ],
)
def test_a_malformed_tag_is_named_and_refuses(tags: dict[str, str], problem: str) -> None:
    opt_in = parse_opt_in(tags, POLICY)
    verdict = decide(facts(opt_in=opt_in), POLICY, 0.0).verdict("opt-in")

    assert not opt_in.enabled
    assert problem in (opt_in.problem or "")
    assert not verdict.passed
    assert "not killing" in verdict.reason


def test_no_tag_means_not_opted_in() -> None:
    verdict = decide(facts(opt_in=parse_opt_in({}, POLICY)), POLICY, 0.0).verdict("opt-in")

    assert verdict.reason == "no spotops:chaos tag (not opted in)"


# ---- window and freeze ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(2026, 12, 2, 9, 0, tzinfo=UTC), True),  # Wednesday 09:00: first hour
        (datetime(2026, 12, 2, 16, 59, tzinfo=UTC), True),
        (datetime(2026, 12, 2, 17, 0, tzinfo=UTC), False),  # the end hour is not inside
        (datetime(2026, 12, 2, 8, 59, tzinfo=UTC), False),
        (datetime(2026, 12, 6, 12, 0, tzinfo=UTC), False),  # Sunday
    ],
)
def test_the_window_is_weekdays_and_hours(moment: datetime, inside: bool) -> None:
    assert decide(facts(now=moment), POLICY, 0.0).verdict("window").passed is inside


def test_the_window_is_kept_in_its_time_zone() -> None:
    london = replace(POLICY, window=replace(POLICY.window, time_zone="Europe/London"))
    summer_morning = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)  # Monday 09:30 in London (BST)

    verdict = decide(facts(now=summer_morning), london, 0.0).verdict("window")

    assert verdict.passed
    assert verdict.reason == "mon 09:30 Europe/London is inside mon-fri 09:00-17:00 Europe/London"


def test_a_freeze_date_is_read_in_the_windows_time_zone() -> None:
    berlin = replace(
        POLICY,
        window=Window(frozenset(range(7)), 0, 24, "Europe/Berlin"),
        freeze=parse_freeze("2026-12-24"),
    )
    late_on_the_23rd_utc = datetime(2026, 12, 23, 23, 30, tzinfo=UTC)  # the 24th in Berlin

    verdict = decide(facts(now=late_on_the_23rd_utc), berlin, 0.0).verdict("freeze")

    assert not verdict.passed
    assert verdict.reason == "2026-12-24 is frozen (2026-12-24)"


def test_days_hours_and_freeze_dates_parse_and_refuse_nonsense() -> None:
    assert sorted(parse_days("mon-wed,sun")) == [0, 1, 2, 6]
    assert format_days(parse_days("fri,mon-wed")) == "mon-wed,fri"
    assert parse_hours("0-24") == (0, 24)
    assert parse_freeze("2026-12-31..2027-01-01, 2027-04-05") == (
        FreezePeriod(date(2026, 12, 31), date(2027, 1, 1)),
        FreezePeriod(date(2027, 4, 5), date(2027, 4, 5)),
    )
    for bad_days in ("", "mon-funday", "fri-mon", "monday"):
        with pytest.raises(ValueError, match=r"day|backwards"):
            parse_days(bad_days)
    for bad_hours in ("9", "17-9", "9-25", "nine-five"):
        with pytest.raises(ValueError, match="hours"):
            parse_hours(bad_hours)
    for bad_dates in ("2026-13-01", "2027-01-02..2027-01-01", "tomorrow"):
        with pytest.raises(ValueError, match=r"YYYY-MM-DD|ends before"):
            parse_freeze(bad_dates)


# ---- minimum gap and Spot --------------------------------------------------------------


def test_the_minimum_gap_counts_from_the_last_kill() -> None:
    just_over = Reading(KillRecord(NOW - timedelta(hours=4, minutes=1), KIND_CHAOS, "arn:t/1"))
    just_under = Reading(KillRecord(NOW - timedelta(hours=3, minutes=59), KIND_CHAOS, "arn:t/1"))

    assert decide(facts(last_kill=just_over), POLICY, 0.0).verdict("min-gap").passed
    refused = decide(facts(last_kill=just_under), POLICY, 0.0).verdict("min-gap")
    assert not refused.passed
    assert "chaos kill of task 1" in refused.reason


def test_a_spot_interruption_counts_as_a_kill_for_the_minimum_gap() -> None:
    stopped = (
        task(
            7,
            last_status="STOPPED",
            desired_status="STOPPED",
            stop_code="SpotInterruption",
            stopped_at=NOW - timedelta(hours=1),
        ),
        task(
            8,
            last_status="STOPPED",
            desired_status="STOPPED",
            stop_code="UserInitiated",
            stopped_at=NOW - timedelta(minutes=5),
        ),
        task(
            9,
            last_status="STOPPED",
            desired_status="STOPPED",
            stop_code="SpotInterruption",
            stopped_at=NOW - timedelta(hours=2),
        ),
    )
    spot = latest_spot_interruption(stopped)
    older_chaos = KillRecord(NOW - timedelta(days=2), KIND_CHAOS)

    last = latest_kill(older_chaos, spot, None)
    verdict = decide(facts(last_kill=Reading(last)), POLICY, 0.0).verdict("min-gap")

    assert spot is not None
    assert spot.kind == KIND_SPOT
    assert spot.task_arn.endswith(f"{7:032x}")
    assert last == spot
    assert not verdict.passed
    assert "Spot interruption" in verdict.reason


# ---- steady state and headroom ---------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "percent", "running", "passes"),
    [
        (2, 100, 2, False),  # the site's template: no headroom at all
        (2, 50, 2, True),  # one task may go
        (1, 0, 1, False),  # never the last task, whatever the percentage
        (4, 75, 4, True),  # needs 3, a kill leaves 3
        (3, 75, 3, False),  # needs ceil(2.25) = 3
    ],
)
def test_headroom_never_takes_the_service_below_minimum_healthy_percent(
    desired: int, percent: int, running: int, passes: bool
) -> None:
    svc = service(
        desired=desired,
        running_count=running,
        minimum_healthy_percent=percent,
        running_tasks=tuple(task(n) for n in range(running)),
    )

    verdict = decide(facts(service=svc), POLICY, 0.0).verdict("headroom")

    assert verdict.passed is passes, verdict.reason
    assert needed_tasks(desired, percent) == max(1, math.ceil(desired * percent / 100))


def test_a_service_without_a_load_balancer_is_not_killed() -> None:
    verdict = targets_verdict(service(target_group_arns=()), healthy())

    assert not verdict.passed
    assert "no load balancer" in verdict.reason


def test_fewer_healthy_targets_than_desired_is_not_steady() -> None:
    verdict = targets_verdict(service(), healthy("10.0.1.10"))

    assert not verdict.passed
    assert "fewer than desired 2" in verdict.reason


def test_a_scaled_to_zero_service_is_not_steady() -> None:
    verdict = decide(
        facts(service=service(desired=0, running_count=0, running_tasks=())), POLICY, 0.0
    ).verdict("running")

    assert not verdict.passed
    assert "nothing to kill" in verdict.reason


def test_recovery_ignores_the_draining_target_of_the_killed_task_but_not_a_new_one() -> None:
    draining = Reading(
        (
            TargetState(TG, "10.0.1.10", "healthy"),
            TargetState(TG, "10.0.2.20", "draining"),
            TargetState(TG, "10.0.3.30", "healthy"),
        )
    )
    starting = Reading(
        (TargetState(TG, "10.0.1.10", "healthy"), TargetState(TG, "10.0.3.30", "initial"))
    )

    assert recovered(service(), draining).passed
    assert not recovered(service(), starting).passed
    assert not recovered(service(running_count=1), draining).passed


# ---- parsing what ECS returns ------------------------------------------------------------


def test_service_facts_keep_only_the_services_own_tasks() -> None:
    raw = {
        "serviceName": "spotops-dev-site",
        "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/spotops-dev/spotops-dev-site",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/spotops-dev",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200},
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "COMPLETED"}],
        "loadBalancers": [{"targetGroupArn": TG, "containerName": "site", "containerPort": 8080}],
        "tags": [{"key": "spotops:chaos", "value": "on"}],
    }
    tasks = [
        {
            "taskArn": "arn:t/1",
            "group": "service:spotops-dev-site",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "capacityProviderName": "FARGATE_SPOT",
        },
        {
            "taskArn": "arn:t/2",
            "group": "service:spotops-dev-site",
            "lastStatus": "RUNNING",
            "desiredStatus": "STOPPED",
        },  # being stopped: not counted as running
        {
            "taskArn": "arn:t/3",
            "group": "family:one-off",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
        },  # not the service's
        {
            "taskArn": "arn:t/4",
            "group": "service:spotops-dev-site",
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "SpotInterruption",
            "stoppedAt": datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        },
    ]

    parsed = service_facts(raw, tasks)

    assert parsed.key == "spotops-dev/spotops-dev-site"
    assert [t.arn for t in parsed.running_tasks] == ["arn:t/1"]
    assert [t.arn for t in parsed.stopped_tasks] == ["arn:t/4"]
    assert parsed.minimum_healthy_percent == 50
    assert parsed.target_group_arns == (TG,)
    assert parsed.tags == {"spotops:chaos": "on"}
    assert parsed.deployments == (Deployment("ecs-svc/1", "PRIMARY", "COMPLETED"),)


ALT = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/spotops-dev-alt/def"


def test_service_facts_of_a_canary_or_linear_service_include_the_alternate_target_group() -> None:
    raw = {
        "serviceName": "spotops-dev-site",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/spotops-dev",
        "loadBalancers": [
            {
                "targetGroupArn": TG,
                "containerName": "site",
                "containerPort": 8080,
                "advancedConfiguration": {
                    "alternateTargetGroupArn": ALT,
                    "productionListenerRule": "arn:rule/production",
                    "testListenerRule": "arn:rule/test",
                    "roleArn": "arn:aws:iam::123456789012:role/traffic-shift",
                },
            }
        ],
    }

    assert service_facts(raw).target_group_arns == (TG, ALT)
    assert target_groups([{"targetGroupArn": TG}, {"targetGroupArn": TG}]) == (TG,)


def test_an_unhealthy_target_in_the_alternate_group_refuses_though_the_other_has_enough() -> None:
    both = service(target_group_arns=(TG, ALT))
    targets = Reading(
        (
            TargetState(TG, "10.0.1.10", "healthy"),
            TargetState(TG, "10.0.2.20", "healthy"),
            TargetState(ALT, "10.0.3.30", "unhealthy"),
        )
    )

    verdict = decide(facts(service=both, targets=targets), POLICY, 0.0).verdict("targets")

    assert not verdict.passed
    assert "10.0.3.30 unhealthy" in verdict.reason


# ---- time left to watch the recovery (checked right before a kill) ---------------------------


@pytest.mark.parametrize(
    ("left", "passes"),
    [(None, True), (900.0, True), (630.0, True), (629.9, False), (90.0, False), (0.0, False)],
)
def test_a_kill_needs_the_whole_recovery_watch_and_the_margin_left(
    left: float | None, passes: bool
) -> None:
    verdict = guard_time_left(left, 600, 30)

    assert (verdict.guard, verdict.passed) == ("time-left", passes)
    if left is None:
        assert verdict.reason == "no time limit (not run by Lambda)"
    else:
        assert "the recovery watch needs 600 s and 30 s more to record and report" in verdict.reason
        assert ("not killing" in verdict.reason) is not passes


# ---- the leash ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "active", "says"),
    [
        ({"value": "off"}, False, "is 'off'"),
        ({"value": "on"}, True, "only 'off' unleashes"),
        ({"value": "maybe"}, True, "only 'off' unleashes"),
        ({"failure": "does not exist"}, True, "does not exist"),
        ({"parameter": ""}, True, "no CHAOS_LEASH_PARAMETER"),
        ({"dry_run": True, "dry_run_reason": "DRY_RUN is true", "value": "off"}, True, "dry run"),
    ],
)
def test_chaos_is_leashed_unless_the_leash_reads_off_and_no_dry_run(
    kwargs: dict[str, Any], active: bool, says: str
) -> None:
    arguments: dict[str, Any] = {
        "dry_run": False,
        "dry_run_reason": "",
        "parameter": "/spotops/dev/chaos-leash",
        **kwargs,
    }

    leash = leash_state(**arguments)

    assert leash.active is active
    assert says in leash.reason


# ---- the probability model ----------------------------------------------------------------


def test_the_per_run_probability_comes_from_the_mean_time_between_kills() -> None:
    assert kill_probability(60, 16) == pytest.approx(1 - math.exp(-1 / 16))
    assert kill_probability(60, 1) == pytest.approx(1 - math.exp(-1))
    assert kill_probability(15, 16) == pytest.approx(1 - math.exp(-0.25 / 16))
    assert kill_probability(60, 0) == 1.0


def test_seeded_draws_hit_at_the_per_run_probability() -> None:
    p = kill_probability(60, 16)
    runs = 100_000

    hits = sum(draw(f"run-{i}/spotops-dev/spotops-dev-site")[0] < p for i in range(runs))

    sigma = math.sqrt(runs * p * (1 - p))
    assert abs(hits - runs * p) < 4 * sigma, (hits, runs * p)


def test_a_seed_repeats_its_draw_and_its_victim() -> None:
    tasks = (task(3), task(1), task(2))
    first_draw, first_rng = draw("evt-1/spotops-dev/spotops-dev-site")
    again_draw, again_rng = draw("evt-1/spotops-dev/spotops-dev-site")

    assert first_draw == again_draw
    assert pick_victim(tasks, first_rng) == pick_victim(tuple(reversed(tasks)), again_rng)
    assert pick_victim((), first_rng) is None


def simulate(
    start: datetime, hours: int, policy: ChaosPolicy, seed: str
) -> tuple[int, int, list[datetime]]:
    """Hourly runs against an always-steady service: (window runs, kills, kill times)."""
    last: KillRecord | None = None
    kills: list[datetime] = []
    window_runs = 0
    for hour in range(hours):
        now = start + timedelta(hours=hour)
        case = facts(
            now=now, last_kill=Reading(last), opt_in=parse_opt_in({"spotops:chaos": "on"}, policy)
        )
        decision = decide(case, policy, draw(f"{seed}-{hour}/svc")[0])
        window_runs += decision.verdict("window").passed and decision.verdict("freeze").passed
        if decision.kill:
            kills.append(now)
            last = KillRecord(now, KIND_CHAOS)
    return window_runs, len(kills), kills


def test_over_simulated_years_without_a_gap_kills_come_at_the_per_run_probability() -> None:
    policy = replace(POLICY, freeze=(), min_gap_hours=0.0)
    years = 4

    window_runs, kills, _ = simulate(
        datetime(2027, 1, 4, tzinfo=UTC), years * 365 * 24, policy, "y"
    )

    p = kill_probability(policy.tick_minutes, policy.mtbk_hours)
    expected = window_runs * p  # mean 1/p = 16.5 window runs, i.e. the configured 16 h
    assert window_runs == 1044 * 8  # the weekdays of 4 x 365 days from a Monday, 8 hours each
    assert abs(kills - expected) < 3 * math.sqrt(window_runs * p * (1 - p)), (kills, expected)
    assert window_runs / kills == pytest.approx(policy.mtbk_hours, rel=0.1)


def test_over_a_simulated_month_the_minimum_gap_holds_and_kills_stay_near_the_mean() -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday; 30 days x 24 hourly runs

    window_runs, kills, times = simulate(start, 30 * 24, POLICY, "month")

    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert window_runs == 22 * 8  # 22 weekdays, 09:00-16:00 runs
    assert all(gap >= timedelta(hours=POLICY.min_gap_hours) for gap in gaps)
    expected = window_runs / POLICY.mtbk_hours  # 11 kills at the configured mean
    assert abs(kills - expected) <= 3 * math.sqrt(expected), (kills, expected)
    assert all(t.weekday() < 5 and 9 <= t.hour < 17 for t in times)


# ---- the chaos settings: optional, validated, naming the variable ------------------------


def test_chaos_settings_are_optional_and_default_to_a_leashed_weekday_window() -> None:
    from chalicelib.chaos.settings import load_chaos_settings

    settings = load_chaos_settings({})

    assert settings.leash_parameter == ""
    assert settings.window == Window(frozenset(range(5)), 9, 17, "UTC")
    assert (settings.mtbk_hours, settings.min_gap_hours) == (16.0, 4.0)
    assert (settings.recovery_timeout_seconds, settings.poll_seconds) == (600, 10)
    assert settings.policy(60) == ChaosPolicy(settings.window, (), 16.0, 4.0, 60)


def test_chaos_settings_are_read_from_their_variables() -> None:
    from chalicelib.chaos.settings import load_chaos_settings

    settings = load_chaos_settings(
        {
            "CHAOS_LEASH_PARAMETER": "/spotops/dev/chaos-leash",
            "CHAOS_WINDOW_DAYS": "mon,wed",
            "CHAOS_WINDOW_HOURS": "10-16",
            "CHAOS_TIME_ZONE": "Europe/London",
            "CHAOS_FREEZE_DATES": "2026-12-24..2026-12-26",
            "CHAOS_MTBK_HOURS": "40",
            "CHAOS_MIN_GAP_HOURS": "0",
            "CHAOS_RECOVERY_TIMEOUT_SECONDS": "840",
            "CHAOS_POLL_SECONDS": "5",
        }
    )

    assert settings.window == Window(frozenset({0, 2}), 10, 16, "Europe/London")
    assert settings.freeze == (FreezePeriod(date(2026, 12, 24), date(2026, 12, 26)),)
    assert (settings.mtbk_hours, settings.min_gap_hours) == (40.0, 0.0)
    assert (settings.recovery_timeout_seconds, settings.poll_seconds) == (840, 5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CHAOS_WINDOW_DAYS", "weekdays"),
        ("CHAOS_WINDOW_HOURS", "17-9"),
        ("CHAOS_TIME_ZONE", "Mars/Olympus_Mons"),
        ("CHAOS_FREEZE_DATES", "christmas"),
        ("CHAOS_MTBK_HOURS", "0"),
        ("CHAOS_MIN_GAP_HOURS", "-1"),
        ("CHAOS_RECOVERY_TIMEOUT_SECONDS", "900"),
        ("CHAOS_POLL_SECONDS", "0"),
    ],
)
def test_a_bad_chaos_setting_names_its_variable(variable: str, value: str) -> None:
    from chalicelib.chaos.settings import load_chaos_settings
    from chalicelib.errors import SettingsError

    with pytest.raises(SettingsError, match=variable):
        load_chaos_settings({variable: value})


# ---- the site template's opt-in uses the tag the guards read --------------------------------


def test_enable_chaos_tags_the_site_service_with_the_opt_in_tag_only_when_true() -> None:
    from chalicelib.chaos.guards import TAG_OPT_IN
    from tests.support.templates import load

    site = load("site")
    tags = site["Resources"]["Service"]["Properties"]["Tags"]
    (chaos_tag,) = [t for t in tags if "Fn::If" in t]
    condition, when_true, when_false = chaos_tag["Fn::If"]

    assert site["Parameters"]["EnableChaos"]["Default"] == "false"
    assert site["Conditions"][condition] == {"Fn::Equals": [{"Ref": "EnableChaos"}, "true"]}
    assert when_true == {"Key": TAG_OPT_IN, "Value": "on"}
    assert when_false == {"Ref": "AWS::NoValue"}
    assert parse_opt_in({when_true["Key"]: when_true["Value"]}, POLICY).enabled


# ==== what each guard answers: the verdict first, then the reason on-call reads ==============
#
# The tests below assert the verdict (``passed is True/False``, ``decision.kill``) at each
# boundary and for each input a guard can be handed, then pin each guard's reasons word for
# word once, in one table per function, with the whole Verdict.


def test_a_service_without_the_opt_in_tag_is_refused() -> None:
    opt_in = parse_opt_in({}, POLICY)

    decision = decide(facts(opt_in=opt_in), POLICY, 0.0)

    assert opt_in.enabled is False
    assert decision.verdict("opt-in").passed is False
    assert decision.kill is False
    assert [v.guard for v in decision.refusals] == ["opt-in"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param({}, OptIn(False, 16.0, 4.0), id="no-tag"),
        pytest.param(
            {"spotops:chaos-mtbk-hours": "8", "spotops:chaos-min-gap-hours": "2"},
            OptIn(False, 8.0, 2.0),
            id="no-tag-keeps-its-limits",
        ),
        pytest.param(
            {"spotops:chaos": " Off ", "spotops:chaos-min-gap-hours": "2"},
            OptIn(False, 16.0, 2.0, tag_value="off"),
            id="off",
        ),
        pytest.param(
            {"spotops:chaos": "Sometimes", "spotops:chaos-min-gap-hours": "2"},
            OptIn(
                False,
                16.0,
                2.0,
                problem="tag spotops:chaos='Sometimes' is neither on nor off",
                tag_value="Sometimes",
            ),
            id="neither-on-nor-off",
        ),
        pytest.param(
            {"spotops:chaos": "on", "spotops:chaos-min-gap-hours": "0"},
            OptIn(True, 16.0, 0.0, tag_value="on"),
            id="on-without-a-gap",
        ),
        pytest.param(
            {"spotops:chaos": "on", "spotops:chaos-mtbk-hours": "0"},
            OptIn(
                False,
                16.0,
                4.0,
                problem="tag spotops:chaos-mtbk-hours='0' must be more than 0 and at most a year",
                tag_value="on",
            ),
            id="on-with-a-bad-mean",
        ),
        pytest.param(
            {"spotops:chaos": "on", "spotops:chaos-min-gap-hours": "-1"},
            OptIn(
                False,
                16.0,
                4.0,
                problem="tag spotops:chaos-min-gap-hours='-1' must be 0 or more and at most a year",
                tag_value="on",
            ),
            id="on-with-a-bad-gap",
        ),
    ],
)
def test_the_opt_in_tags_parse_to_whether_and_how_often(
    tags: dict[str, str], expected: OptIn
) -> None:
    assert parse_opt_in(tags, POLICY) == expected


@pytest.mark.parametrize("value", ["on", "true", "yes", "1", "enabled", " ON "])
def test_each_on_word_opts_in(value: str) -> None:
    opt_in = parse_opt_in({"spotops:chaos": value}, POLICY)

    assert (opt_in.enabled, opt_in.problem) == (True, None)
    assert guard_opt_in(opt_in).passed is True


@pytest.mark.parametrize("value", ["off", "false", "no", "0", "disabled"])
def test_each_off_word_opts_out_without_a_problem(value: str) -> None:
    opt_in = parse_opt_in({"spotops:chaos": value}, POLICY)

    assert (opt_in.enabled, opt_in.problem, opt_in.tag_value) == (False, None, value)
    assert guard_opt_in(opt_in).passed is False


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        pytest.param("spotops:chaos-mtbk-hours", "1", True, id="mean-1h"),
        pytest.param("spotops:chaos-mtbk-hours", "0.5", True, id="mean-half-an-hour"),
        pytest.param("spotops:chaos-mtbk-hours", "0", False, id="mean-0"),
        pytest.param("spotops:chaos-mtbk-hours", "8784", True, id="mean-a-leap-year"),
        pytest.param("spotops:chaos-mtbk-hours", "8784.01", False, id="mean-past-a-year"),
        pytest.param("spotops:chaos-mtbk-hours", "inf", False, id="mean-infinite"),
        pytest.param("spotops:chaos-min-gap-hours", "0", True, id="gap-0"),
        pytest.param("spotops:chaos-min-gap-hours", "-0.01", False, id="gap-negative"),
        pytest.param("spotops:chaos-min-gap-hours", "8784", True, id="gap-a-leap-year"),
        pytest.param("spotops:chaos-min-gap-hours", "8784.01", False, id="gap-past-a-year"),
    ],
)
def test_the_hours_tags_accept_up_to_a_year_and_the_mean_more_than_0(
    key: str, value: str, accepted: bool
) -> None:
    opt_in = parse_opt_in({"spotops:chaos": "on", key: value}, POLICY)

    assert opt_in.enabled is accepted
    assert guard_opt_in(opt_in).passed is accepted
    taken = opt_in.mtbk_hours if key == "spotops:chaos-mtbk-hours" else opt_in.min_gap_hours
    default = POLICY.mtbk_hours if key == "spotops:chaos-mtbk-hours" else POLICY.min_gap_hours
    assert taken == (float(value) if accepted else default)


def test_the_chaos_constants_are_reviewed_changes() -> None:
    """Tags, codes, words and limits the guards decide by: changing one is a reviewed change."""
    from chalicelib.chaos import guards

    assert (guards.TAG_OPT_IN, guards.TAG_MTBK_HOURS, guards.TAG_MIN_GAP_HOURS) == (
        "spotops:chaos",
        "spotops:chaos-mtbk-hours",
        "spotops:chaos-min-gap-hours",
    )
    assert (guards.SPOT_STOP_CODE, guards.KIND_CHAOS, guards.KIND_SPOT) == (
        "SpotInterruption",
        "chaos",
        "spot",
    )
    assert guards.WEEKDAYS == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    assert {"on", "true", "yes", "1", "enabled"} == guards._ON
    assert {"off", "false", "no", "0", "disabled"} == guards._OFF
    assert {"off", "false", "0", "no", "unleashed"} == guards.LEASH_OFF
    assert guards._ECHO_LIMIT == 40
    assert guards.MAX_HOURS == 24 * 366
    assert guards.TICK_MINUTES == 60
    # the stage's defaults: weekdays 09:00-17:00 UTC, a kill every 16 window hours on
    # average, never two within 4 hours, hourly runs
    assert ChaosPolicy() == ChaosPolicy(
        Window(frozenset({0, 1, 2, 3, 4}), 9, 17, "UTC"), (), 16.0, 4.0, 60
    )


# ---- boundaries: at the limit, and one unit either side ----------------------------------


@pytest.mark.parametrize(
    ("ago", "passes"),
    [
        pytest.param(timedelta(hours=4), True, id="exactly-4h"),
        pytest.param(timedelta(hours=4) - timedelta(seconds=1), False, id="a-second-short"),
        pytest.param(timedelta(hours=4) + timedelta(seconds=1), True, id="a-second-past"),
        pytest.param(timedelta(0), False, id="just-now"),
    ],
)
def test_the_minimum_gap_is_at_least_4_hours(ago: timedelta, passes: bool) -> None:
    last = Reading(KillRecord(NOW - ago, KIND_CHAOS))

    decision = decide(facts(last_kill=last), POLICY, 0.0)

    assert decision.verdict("min-gap").passed is passes
    assert decision.kill is passes


def test_a_minimum_gap_of_0_allows_a_kill_right_after_the_last() -> None:
    last = Reading(KillRecord(NOW, KIND_SPOT))

    assert guard_min_gap(NOW, last, 0.0).passed is True


@pytest.mark.parametrize(
    ("draw_value", "passes"),
    [
        pytest.param(0.25, False, id="draw-equal-to-p"),
        pytest.param(0.2499, True, id="draw-just-below"),
        pytest.param(0.0, True, id="draw-0"),
        pytest.param(0.2501, False, id="draw-just-above"),
    ],
)
def test_the_draw_kills_only_below_the_probability(draw_value: float, passes: bool) -> None:
    assert guard_probability(draw_value, 0.25, 16.0).passed is passes


def test_decide_derives_the_probability_from_the_services_mean_and_keeps_the_draw() -> None:
    opt_in = parse_opt_in({"spotops:chaos": "on", "spotops:chaos-mtbk-hours": "2"}, POLICY)
    p = kill_probability(60, 2.0)  # 1 - exp(-1/2), about 0.39: a draw of 0.3 kills

    decision = decide(facts(opt_in=opt_in), POLICY, 0.3)

    assert (decision.probability, decision.draw) == (p, 0.3)
    assert p == pytest.approx(0.3935, abs=1e-4)
    assert decision.verdict("probability").passed is True
    assert decision.kill is True
    assert decision.verdict("lock").reason == "no live lock on spotops-dev/spotops-dev-site"


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        pytest.param(datetime(2026, 12, 4, 16, 59, 59, tzinfo=UTC), True, id="fri-16:59:59"),
        pytest.param(datetime(2026, 12, 4, 17, 0, tzinfo=UTC), False, id="fri-17:00"),
        pytest.param(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), True, id="mon-09:00"),
        pytest.param(datetime(2026, 12, 7, 8, 59, 59, tzinfo=UTC), False, id="mon-08:59:59"),
        pytest.param(datetime(2026, 12, 5, 12, 0, tzinfo=UTC), False, id="sat-noon"),
        pytest.param(datetime(2026, 12, 7, 9, 0), True, id="naive-is-utc"),
        pytest.param(
            datetime(2026, 12, 7, 9, 30, tzinfo=timezone(timedelta(hours=2))),
            False,
            id="mon-09:30+02-is-07:30-utc",
        ),
    ],
)
def test_the_window_boundaries(moment: datetime, inside: bool) -> None:
    assert guard_window(moment, POLICY.window).passed is inside


@pytest.mark.parametrize(
    ("today", "frozen"),
    [
        pytest.param(date(2026, 12, 23), False, id="the-day-before"),
        pytest.param(date(2026, 12, 24), True, id="the-first-day"),
        pytest.param(date(2026, 12, 26), True, id="the-last-day"),
        pytest.param(date(2026, 12, 27), False, id="the-day-after"),
    ],
)
def test_freeze_dates_are_inclusive(today: date, frozen: bool) -> None:
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)

    assert guard_freeze(now, POLICY.window, POLICY.freeze).passed is not frozen


def test_an_empty_window_9_9_is_refused() -> None:
    for empty in ("9-9", "0-0", "24-24"):
        with pytest.raises(ValueError, match="0 <= start < end <= 24"):
            parse_hours(empty)
    assert parse_hours("9-10") == (9, 10)
    assert parse_hours(" 23-24 ") == (23, 24)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("-0-5", id="a-signed-start"),
        pytest.param("9--5", id="a-signed-end"),
        pytest.param("9-17-18", id="three-numbers"),
        pytest.param("9:00-17:00", id="clock-times"),
        pytest.param("-1-5", id="a-negative-start"),
    ],
)
def test_hours_are_two_whole_hours_with_one_dash(text: str) -> None:
    with pytest.raises(ValueError, match="is not <start>-<end> hours"):
        parse_hours(text)


def test_a_single_task_service_is_steady_but_never_killed() -> None:
    one = service(desired=1, running_count=1, running_tasks=(task(1),))

    decision = decide(facts(service=one, targets=healthy("10.0.1.10")), POLICY, 0.0)

    assert decision.verdict("running") == Verdict(
        "running", True, "desired 1, running 1 (ECS), 1 task(s) RUNNING"
    )
    assert decision.verdict("targets").passed is True
    assert decision.verdict("headroom").passed is False
    assert decision.kill is False
    assert [v.guard for v in decision.refusals] == ["headroom"]


@pytest.mark.parametrize(
    ("desired", "running_count", "tasks", "steady"),
    [
        pytest.param(2, 2, 2, True, id="steady"),
        pytest.param(1, 1, 1, True, id="one-task"),
        pytest.param(0, 0, 0, False, id="scaled-to-zero"),
        pytest.param(2, 2, 1, False, id="ecs-counts-a-task-that-is-stopping"),
        pytest.param(2, 3, 3, False, id="more-running-than-desired"),
    ],
)
def test_running_means_ecs_count_tasks_and_desired_agree_above_zero(
    desired: int, running_count: int, tasks: int, steady: bool
) -> None:
    svc = service(
        desired=desired,
        running_count=running_count,
        running_tasks=tuple(task(n) for n in range(tasks)),
    )

    assert guard_running(svc).passed is steady


@pytest.mark.parametrize(
    ("deployments", "settled"),
    [
        pytest.param((("PRIMARY", "COMPLETED"),), True, id="primary-completed"),
        pytest.param((("PRIMARY", ""),), True, id="primary-without-rollout-state"),
        pytest.param((("PRIMARY", "IN_PROGRESS"),), False, id="primary-alone-in-progress"),
        pytest.param((("PRIMARY", "FAILED"),), False, id="primary-failed"),
        pytest.param((("ACTIVE", "COMPLETED"),), False, id="active-alone"),
        pytest.param((), False, id="none"),
        pytest.param(
            (("PRIMARY", "COMPLETED"), ("ACTIVE", "COMPLETED")), False, id="two-deployments"
        ),
    ],
)
def test_only_one_settled_primary_deployment_allows_a_kill(
    deployments: tuple[tuple[str, str], ...], settled: bool
) -> None:
    svc = service(
        deployments=tuple(
            Deployment(f"ecs-svc/{n}", status, state)
            for n, (status, state) in enumerate(deployments)
        )
    )

    decision = decide(facts(service=svc), POLICY, 0.0)

    assert decision.verdict("deployment").passed is settled
    assert decision.kill is settled


def test_a_draining_target_refuses_a_kill_but_not_a_recovery() -> None:
    targets = Reading(
        (
            TargetState(TG, "10.0.1.10", "healthy"),
            TargetState(TG, "10.0.2.20", "healthy"),
            TargetState(TG, "10.0.3.30", "draining"),
        )
    )

    decision = decide(facts(targets=targets), POLICY, 0.0)

    assert decision.verdict("targets").passed is False
    assert decision.kill is False
    assert targets_verdict(service(), targets).passed is False
    assert targets_verdict(service(), targets, ignore_draining=True).passed is True
    assert recovered(service(), targets).passed is True


@pytest.mark.parametrize(
    ("desired", "healthy_targets", "passes"),
    [
        pytest.param(1, 1, True, id="one-of-one"),
        pytest.param(2, 2, True, id="two-of-two"),
        pytest.param(2, 1, False, id="one-of-two"),
        pytest.param(0, 0, False, id="none-at-all"),
        pytest.param(2, 3, True, id="more-than-desired"),
    ],
)
def test_targets_need_as_many_healthy_as_desired_and_at_least_one(
    desired: int, healthy_targets: int, passes: bool
) -> None:
    ids = [f"10.0.{n}.10" for n in range(healthy_targets)]

    assert targets_verdict(service(desired=desired), healthy(*ids)).passed is passes


NEITHER: Reading[Any] = Reading(None, None)  # read, yet with neither a value nor an error


@pytest.mark.parametrize("guard", ["kill-switch", "targets", "alarms"])
def test_a_reading_with_neither_a_value_nor_an_error_refuses(guard: str) -> None:
    field_of = {"kill-switch": "kill_switch", "targets": "targets", "alarms": "alarms"}

    decision = decide(facts(**{field_of[guard]: NEITHER}), POLICY, 0.0)

    assert decision.verdict(guard) == Verdict(
        guard, False, "cannot evaluate (not read); not killing"
    )
    expected = sorted([guard, *ALSO_UNREADABLE.get(guard, [])], key=GUARDS.index)
    assert [v.guard for v in decision.refusals] == expected


def test_a_naive_time_is_read_as_utc() -> None:
    naive_now = datetime(2026, 12, 2, 10, 0)  # naive: the point of the test
    last = Reading(KillRecord(NOW - timedelta(hours=4), KIND_CHAOS))
    naive_last = Reading(KillRecord(datetime(2026, 12, 2, 6, 0), KIND_CHAOS))

    assert guard_min_gap(naive_now, last, 4.0).passed is True
    assert guard_min_gap(NOW, naive_last, 4.0).passed is True
    assert guard_min_gap(NOW + timedelta(seconds=-1), naive_last, 4.0).passed is False


@pytest.mark.parametrize(
    ("desired", "percent", "needed"),
    [
        pytest.param(2, 50, 1, id="half-of-2"),
        pytest.param(2, 100, 2, id="all-of-2"),
        pytest.param(3, 75, 3, id="rounds-up"),
        pytest.param(4, 75, 3, id="exact"),
        pytest.param(1, 0, 1, id="never-0"),
        pytest.param(0, 100, 1, id="never-0-of-0"),
        pytest.param(200, 100, 200, id="all-of-200"),
    ],
)
def test_needed_tasks_is_minimum_healthy_percent_of_desired_rounded_up(
    desired: int, percent: int, needed: int
) -> None:
    assert needed_tasks(desired, percent) == needed


def test_pick_victim_picks_one_of_the_running_tasks() -> None:
    tasks = (task(3), task(1), task(2))

    victim = pick_victim(tasks, draw("evt-1/spotops-dev/spotops-dev-site")[1])

    assert victim in tasks


def test_latest_spot_interruption_is_the_newest_whatever_the_order() -> None:
    def spot(n: int, hours_ago: int) -> TaskFacts:
        return task(
            n,
            last_status="STOPPED",
            desired_status="STOPPED",
            stop_code="SpotInterruption",
            stopped_at=NOW - timedelta(hours=hours_ago),
        )

    found = latest_spot_interruption((spot(1, 3), spot(2, 1), spot(3, 2)))

    assert found == KillRecord(NOW - timedelta(hours=1), KIND_SPOT, task(2).arn)
    assert latest_spot_interruption((task(4, stopped_at=NOW),)) is None  # not Spot
    assert latest_kill(None, None) is None
    assert latest_kill() is None


@pytest.mark.parametrize(
    ("name", "is_utc"),
    [
        pytest.param("UTC", True, id="UTC"),
        pytest.param(" utc ", True, id="lower-case"),
        pytest.param("z", True, id="Z"),
        pytest.param("Etc/UTC", True, id="Etc/UTC"),
        pytest.param("Europe/London", False, id="a-zone"),
    ],
)
def test_utc_needs_no_time_zone_database(name: str, is_utc: bool) -> None:
    assert (time_zone(name) is UTC) is is_utc


def test_an_unknown_time_zone_is_named() -> None:
    with pytest.raises(ValueError, match=r"^unknown time zone 'Mars/Olympus_Mons'$"):
        time_zone("Mars/Olympus_Mons")


def test_empty_items_in_a_list_are_skipped_not_the_end_of_it() -> None:
    assert parse_days("mon,,wed") == frozenset({0, 2})
    assert parse_freeze("2026-12-24,,2026-12-31") == (
        FreezePeriod(date(2026, 12, 24), date(2026, 12, 24)),
        FreezePeriod(date(2026, 12, 31), date(2026, 12, 31)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "no days given (e.g. mon-fri)", id="empty"),
        pytest.param(
            "Monday", "'monday' is not a day or range of days (mon, tue, ... sun)", id="a-name"
        ),
        pytest.param(
            "mon-funday",
            "'mon-funday' is not a day or range of days (mon, tue, ... sun)",
            id="a-bad-end",
        ),
        pytest.param(
            "fri-mon", "'fri-mon' runs backwards; write it as e.g. fri-sun or sat,sun", id="back"
        ),
    ],
)
def test_a_bad_day_list_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_days(text)


# ---- the ECS responses, parsed field by field ---------------------------------------------


def test_task_facts_read_every_field_of_describe_tasks() -> None:
    raw = {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/spotops-dev/abc",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "capacityProviderName": "FARGATE_SPOT",
        "launchType": "FARGATE",
        "availabilityZone": "us-east-1b",
        "stopCode": "SpotInterruption",
        "stoppedReason": "Your Spot Task was interrupted.",
        "stoppedAt": datetime(2026, 12, 2, 9, 0),  # naive: read as UTC
    }

    parsed = task_facts(raw)

    assert parsed == TaskFacts(
        arn="arn:aws:ecs:us-east-1:123456789012:task/spotops-dev/abc",
        last_status="STOPPED",
        desired_status="STOPPED",
        capacity_provider="FARGATE_SPOT",
        availability_zone="us-east-1b",
        stop_code="SpotInterruption",
        stopped_reason="Your Spot Task was interrupted.",
        stopped_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
    )
    assert parsed.stopped_at is not None
    assert parsed.stopped_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({}, TaskFacts("", "", ""), id="nothing"),
        pytest.param(
            {"launchType": "FARGATE"}, TaskFacts("", "", "", capacity_provider="FARGATE"), id="lt"
        ),
        pytest.param(
            {"stoppedAt": "2026-12-02T09:00:00Z"}, TaskFacts("", "", ""), id="at-not-a-datetime"
        ),
        pytest.param(
            {"stoppedAt": datetime(2026, 12, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))},
            TaskFacts("", "", "", stopped_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
            id="at-with-its-zone",
        ),
    ],
)
def test_task_facts_default_what_describe_tasks_leaves_out(
    raw: dict[str, Any], expected: TaskFacts
) -> None:
    assert task_facts(raw) == expected


def test_service_facts_read_every_field_of_describe_services() -> None:
    raw = {
        "serviceName": "spotops-dev-site",
        "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/spotops-dev/spotops-dev-site",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/spotops-dev",
        "status": "ACTIVE",
        "desiredCount": 3,
        "runningCount": 2,
        "pendingCount": 1,
        "deploymentConfiguration": {"minimumHealthyPercent": 50},
        "deployments": [
            {"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"},
            {"id": "ecs-svc/1", "status": "ACTIVE"},
        ],
        "loadBalancers": [{"targetGroupArn": TG}],
        "tags": [{"key": "spotops:chaos", "value": "on"}, {"key": "team"}],
    }
    tasks = [{"taskArn": "arn:t/1", "lastStatus": "RUNNING", "desiredStatus": "RUNNING"}]

    assert service_facts(raw, tasks) == ServiceFacts(
        cluster="spotops-dev",
        name="spotops-dev-site",
        arn="arn:aws:ecs:us-east-1:123456789012:service/spotops-dev/spotops-dev-site",
        status="ACTIVE",
        desired=3,
        running_count=2,
        pending_count=1,
        deployments=(
            Deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS"),
            Deployment("ecs-svc/1", "ACTIVE", ""),
        ),
        minimum_healthy_percent=50,
        target_group_arns=(TG,),
        tags={"spotops:chaos": "on", "team": ""},
        running_tasks=(TaskFacts("arn:t/1", "RUNNING", "RUNNING"),),  # no group: counted
    )


def test_service_facts_default_what_describe_services_leaves_out() -> None:
    parsed = service_facts({"deployments": [{}], "tags": [{}]})

    assert parsed == ServiceFacts(
        cluster="",
        name="",
        arn="",
        status="",
        desired=0,
        running_count=0,
        pending_count=0,
        deployments=(Deployment("", "", ""),),
        minimum_healthy_percent=None,
        target_group_arns=(),
        tags={"": ""},
    )
    assert guard_running(parsed).passed is False  # no counts read: nothing to kill


# ---- the reasons on-call reads: each function's sentences, word for word, with the verdict ----


@pytest.mark.parametrize(
    ("opt_in", "expected"),
    [
        pytest.param(
            OptIn(False, 16.0, 4.0, problem="tag x='y' is wrong", tag_value="on"),
            Verdict("opt-in", False, "tag x='y' is wrong; not killing"),
            id="problem",
        ),
        pytest.param(
            OptIn(False, 16.0, 4.0),
            Verdict("opt-in", False, "no spotops:chaos tag (not opted in)"),
            id="no-tag",
        ),
        pytest.param(
            OptIn(False, 16.0, 4.0, tag_value="off"),
            Verdict("opt-in", False, "spotops:chaos=off (opted out)"),
            id="off",
        ),
        pytest.param(
            OptIn(True, 8.0, 0.5, tag_value="on"),
            Verdict("opt-in", True, "spotops:chaos=on; mean 8 h between kills, minimum gap 0.5 h"),
            id="on",
        ),
    ],
)
def test_the_opt_in_reason_on_call_reads(opt_in: OptIn, expected: Verdict) -> None:
    assert guard_opt_in(opt_in) == expected


@pytest.mark.parametrize(
    ("now", "window", "expected"),
    [
        pytest.param(
            NOW,
            POLICY.window,
            Verdict("window", True, "wed 10:00 UTC is inside mon-fri 09:00-17:00 UTC"),
            id="inside",
        ),
        pytest.param(
            datetime(2026, 12, 5, 8, 5, tzinfo=UTC),
            Window(frozenset({0, 2, 3, 4}), 9, 17, "UTC"),
            Verdict("window", False, "sat 08:05 UTC is outside mon,wed-fri 09:00-17:00 UTC"),
            id="outside",
        ),
        pytest.param(
            NOW,
            replace(POLICY.window, time_zone="Mars/Olympus_Mons"),
            Verdict(
                "window",
                False,
                "cannot evaluate (unknown time zone 'Mars/Olympus_Mons'); not killing",
            ),
            id="unknown-zone",
        ),
    ],
)
def test_the_window_reason_on_call_reads(now: datetime, window: Window, expected: Verdict) -> None:
    assert guard_window(now, window) == expected


@pytest.mark.parametrize(
    ("now", "window", "freeze", "expected"),
    [
        pytest.param(
            datetime(2026, 12, 25, 10, tzinfo=UTC),
            POLICY.window,
            POLICY.freeze,
            Verdict("freeze", False, "2026-12-25 is frozen (2026-12-24..2026-12-26)"),
            id="frozen",
        ),
        pytest.param(
            NOW,
            POLICY.window,
            (),
            Verdict("freeze", True, "2026-12-02 is not a freeze date (listed: none)"),
            id="none-listed",
        ),
        pytest.param(
            NOW,
            POLICY.window,
            parse_freeze("2026-12-24..2026-12-26,2027-01-01"),
            Verdict(
                "freeze",
                True,
                "2026-12-02 is not a freeze date (listed: 2026-12-24..2026-12-26, 2027-01-01)",
            ),
            id="two-listed",
        ),
        pytest.param(
            NOW,
            replace(POLICY.window, time_zone="Mars/Olympus_Mons"),
            (),
            Verdict(
                "freeze",
                False,
                "cannot evaluate (unknown time zone 'Mars/Olympus_Mons'); not killing",
            ),
            id="unknown-zone",
        ),
    ],
)
def test_the_freeze_reason_on_call_reads(
    now: datetime, window: Window, freeze: tuple[FreezePeriod, ...], expected: Verdict
) -> None:
    assert guard_freeze(now, window, freeze) == expected


TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/spotops-dev/abc"


@pytest.mark.parametrize(
    ("last_kill", "expected"),
    [
        pytest.param(
            Reading.failed("ledger read failed (500)"),
            Verdict("min-gap", False, "cannot evaluate (ledger read failed (500)); not killing"),
            id="unreadable",
        ),
        pytest.param(
            Reading(None),
            Verdict("min-gap", True, "no kill or Spot interruption on record"),
            id="never",
        ),
        pytest.param(
            Reading(KillRecord(NOW - timedelta(minutes=90), KIND_CHAOS, TASK_ARN)),
            Verdict(
                "min-gap",
                False,
                "last chaos kill of task abc at 2026-12-02 08:30:00Z, 1.5 h ago; minimum gap 4 h",
            ),
            id="too-soon",
        ),
        pytest.param(
            Reading(KillRecord(NOW - timedelta(hours=200), KIND_SPOT, TASK_ARN)),
            Verdict(
                "min-gap",
                True,
                "last Spot interruption of task abc at 2026-11-24 02:00:00Z, 200.0 h ago (>= 4 h)",
            ),
            id="long-ago",
        ),
    ],
)
def test_the_min_gap_reason_on_call_reads(
    last_kill: Reading[KillRecord], expected: Verdict
) -> None:
    assert guard_min_gap(NOW, last_kill, 4.0) == expected


@pytest.mark.parametrize(
    ("record", "described"),
    [
        pytest.param(
            KillRecord(datetime(2026, 12, 2, 9, 5, 7, tzinfo=UTC), KIND_SPOT, TASK_ARN),
            "Spot interruption of task abc at 2026-12-02 09:05:07Z",
            id="spot",
        ),
        pytest.param(
            KillRecord(datetime(2026, 12, 2, 9, 5, 7, tzinfo=UTC), KIND_CHAOS, "t-1"),
            "chaos kill of task t-1 at 2026-12-02 09:05:07Z",
            id="chaos-short-arn",
        ),
        pytest.param(
            KillRecord(datetime(2026, 12, 2, 9, 5, 7, tzinfo=UTC), KIND_CHAOS),
            "chaos kill at 2026-12-02 09:05:07Z",
            id="no-task",
        ),
    ],
)
def test_a_kill_record_describes_itself(record: KillRecord, described: str) -> None:
    assert record.describe() == described


def test_the_probability_reason_on_call_reads() -> None:
    assert guard_probability(0.05, 0.25, 16.0) == Verdict(
        "probability", True, "drew 0.0500 < p=0.2500 (mean 16 window hours between kills)"
    )
    assert guard_probability(0.25, 0.25, 2.5) == Verdict(
        "probability", False, "drew 0.2500 >= p=0.2500 (mean 2.5 window hours between kills)"
    )


@pytest.mark.parametrize(
    ("kill_switch", "expected"),
    [
        pytest.param(
            Reading(KillSwitch(False, "kill switch /spotops/dev/kill-switch is off")),
            Verdict("kill-switch", True, "kill switch /spotops/dev/kill-switch is off"),
            id="off",
        ),
        pytest.param(
            Reading(KillSwitch(True, "kill switch /spotops/dev/kill-switch is 'on'")),
            Verdict("kill-switch", False, "kill switch /spotops/dev/kill-switch is 'on'"),
            id="engaged",
        ),
        pytest.param(
            Reading.failed("no kill switch parameter"),
            Verdict(
                "kill-switch", False, "cannot evaluate (no kill switch parameter); not killing"
            ),
            id="unreadable",
        ),
    ],
)
def test_the_kill_switch_reason_on_call_reads(
    kill_switch: Reading[KillSwitch], expected: Verdict
) -> None:
    assert guard_kill_switch(kill_switch) == expected


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        pytest.param(
            Reading.failed("ledger lock unreadable (LedgerError)"),
            Verdict(
                "lock", False, "cannot evaluate (ledger lock unreadable (LedgerError)); not killing"
            ),
            id="unreadable",
        ),
        pytest.param(
            Reading(None), Verdict("lock", True, "no live lock on spotops-dev/site"), id="free"
        ),
        pytest.param(
            Reading(Lock(holder="redeploy:sha256:ab", action="redeploy", expires_at=1790000000)),
            Verdict(
                "lock",
                False,
                "spotops-dev/site is locked by redeploy (redeploy:sha256:ab) "
                "until 2026-09-21 14:13:20Z",
            ),
            id="held",
        ),
        pytest.param(
            Reading(Lock(holder="")),
            Verdict("lock", False, "spotops-dev/site is locked by ? (?) until ?"),
            id="held-by-nobody-named",
        ),
    ],
)
def test_the_lock_reason_on_call_reads(
    lock: Reading[Lock], expected: Verdict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine whose local time is 5 hours behind UTC (no tz database needed): the lock's
    # expiry is shown in UTC wherever the job runs.
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    try:
        assert guard_lock(lock, "spotops-dev/site") == expected
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        pytest.param(
            service(),
            Verdict("running", True, "desired 2, running 2 (ECS), 2 task(s) RUNNING"),
            id="steady",
        ),
        pytest.param(
            service(desired=0, running_count=0, running_tasks=()),
            Verdict(
                "running", False, "desired 0, running 0 (ECS), 0 task(s) RUNNING; nothing to kill"
            ),
            id="scaled-to-zero",
        ),
        pytest.param(
            service(running_count=1, running_tasks=(task(1),)),
            Verdict("running", False, "desired 2, running 1 (ECS), 1 task(s) RUNNING"),
            id="short",
        ),
    ],
)
def test_the_running_reason_on_call_reads(svc: ServiceFacts, expected: Verdict) -> None:
    assert guard_running(svc) == expected


@pytest.mark.parametrize(
    ("deployments", "expected"),
    [
        pytest.param((), Verdict("deployment", False, "0 deployments (-)"), id="none"),
        pytest.param(
            (
                Deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS"),
                Deployment("ecs-svc/1", "ACTIVE", "COMPLETED"),
            ),
            Verdict("deployment", False, "2 deployments (PRIMARY, ACTIVE)"),
            id="two",
        ),
        pytest.param(
            (Deployment("ecs-svc/1", "PRIMARY", "COMPLETED"),),
            Verdict("deployment", True, "one deployment ecs-svc/1: PRIMARY COMPLETED"),
            id="settled",
        ),
        pytest.param(
            (Deployment("ecs-svc/1", "PRIMARY", ""),),
            Verdict("deployment", True, "one deployment ecs-svc/1: PRIMARY (no rollout state)"),
            id="no-rollout-state",
        ),
    ],
)
def test_the_deployment_reason_on_call_reads(
    deployments: tuple[Deployment, ...], expected: Verdict
) -> None:
    assert guard_deployment(service(deployments=deployments)) == expected


SIX_UNHEALTHY = Reading(tuple(TargetState(TG, f"10.0.{n}.10", "unhealthy") for n in range(6)))


@pytest.mark.parametrize(
    ("svc", "targets", "expected"),
    [
        pytest.param(
            service(target_group_arns=()),
            healthy("10.0.1.10"),
            Verdict(
                "targets",
                False,
                "the service has no load balancer, so health and recovery cannot be measured",
            ),
            id="no-load-balancer",
        ),
        pytest.param(
            service(),
            Reading.failed("target health unreadable (AccessDenied)"),
            Verdict(
                "targets",
                False,
                "cannot evaluate (target health unreadable (AccessDenied)); not killing",
            ),
            id="unreadable",
        ),
        pytest.param(
            service(),
            SIX_UNHEALTHY,
            Verdict(
                "targets",
                False,
                "6 target(s) not healthy: 10.0.0.10 unhealthy, 10.0.1.10 unhealthy, "
                "10.0.2.10 unhealthy, 10.0.3.10 unhealthy, 10.0.4.10 unhealthy",
            ),
            id="six-unhealthy-five-listed",
        ),
        pytest.param(
            service(),
            healthy("10.0.1.10"),
            Verdict("targets", False, "1 healthy target(s), fewer than desired 2"),
            id="fewer-than-desired",
        ),
        pytest.param(
            service(),
            healthy("10.0.1.10", "10.0.2.20"),
            Verdict("targets", True, "all 2 target(s) healthy"),
            id="healthy",
        ),
    ],
)
def test_the_targets_reason_on_call_reads(
    svc: ServiceFacts, targets: Reading[tuple[TargetState, ...]], expected: Verdict
) -> None:
    assert targets_verdict(svc, targets) == expected


@pytest.mark.parametrize(
    ("alarms", "expected"),
    [
        pytest.param(
            Reading.failed("alarm states unreadable (Throttling)"),
            Verdict(
                "alarms",
                False,
                "cannot evaluate (alarm states unreadable (Throttling)); not killing",
            ),
            id="unreadable",
        ),
        pytest.param(
            Reading(tuple(f"a{n}" for n in range(6))),
            Verdict("alarms", False, "in ALARM: a0, a1, a2, a3, a4"),
            id="six-in-alarm-five-listed",
        ),
        pytest.param(
            Reading(()), Verdict("alarms", True, "no alarm of the stage in ALARM"), id="ok"
        ),
    ],
)
def test_the_alarms_reason_on_call_reads(
    alarms: Reading[tuple[str, ...]], expected: Verdict
) -> None:
    assert guard_alarms(alarms) == expected


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        pytest.param(
            service(minimum_healthy_percent=None),
            Verdict(
                "headroom",
                False,
                "cannot evaluate (the service reports no minimumHealthyPercent); not killing",
            ),
            id="no-percent",
        ),
        pytest.param(
            service(),
            Verdict(
                "headroom",
                True,
                "2 running; minimumHealthyPercent 50 of desired 2 needs 1; a kill leaves 1",
            ),
            id="room",
        ),
        pytest.param(
            service(minimum_healthy_percent=100),
            Verdict(
                "headroom",
                False,
                "2 running; minimumHealthyPercent 100 of desired 2 needs 2; a kill leaves 1",
            ),
            id="no-room",
        ),
    ],
)
def test_the_headroom_reason_on_call_reads(svc: ServiceFacts, expected: Verdict) -> None:
    assert guard_headroom(svc) == expected


@pytest.mark.parametrize(
    ("svc", "targets", "expected"),
    [
        pytest.param(
            service(),
            healthy("10.0.1.10", "10.0.2.20"),
            Verdict(
                "recovered",
                True,
                "desired 2, running 2 (ECS), 2 task(s) RUNNING; all 2 target(s) healthy",
            ),
            id="recovered",
        ),
        pytest.param(
            service(running_count=1, running_tasks=(task(1),)),
            healthy("10.0.1.10"),
            Verdict("recovered", False, "desired 2, running 1 (ECS), 1 task(s) RUNNING"),
            id="both-fail-running-is-said",
        ),
        pytest.param(
            service(running_count=1, running_tasks=(task(1),)),
            healthy("10.0.1.10", "10.0.2.20"),
            Verdict("recovered", False, "desired 2, running 1 (ECS), 1 task(s) RUNNING"),
            id="running-fails",
        ),
        pytest.param(
            service(),
            healthy("10.0.1.10"),
            Verdict("recovered", False, "1 healthy target(s), fewer than desired 2"),
            id="targets-fail",
        ),
    ],
)
def test_the_recovered_reason_on_call_reads(
    svc: ServiceFacts, targets: Reading[tuple[TargetState, ...]], expected: Verdict
) -> None:
    assert recovered(svc, targets) == expected


def test_the_lines_and_summary_on_call_reads() -> None:
    refusing = decide(
        facts(alarms=Reading(("spotops-dev-target-5xx",)), lock=Reading.failed("ledger down")),
        POLICY,
        0.0,
    )

    assert Verdict("window", True, "inside").line() == "PASS window: inside"
    assert Verdict("lock", False, "held").line() == "FAIL lock: held"
    assert refusing.summary() == (
        "lock: cannot evaluate (ledger down); not killing; alarms: in ALARM: spotops-dev-target-5xx"
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"dry_run": True, "dry_run_reason": "DRY_RUN is true", "value": "off"},
            Leash(True, "dry run: DRY_RUN is true"),
            id="dry-run",
        ),
        pytest.param(
            {"parameter": ""},
            Leash(True, "no CHAOS_LEASH_PARAMETER is set, so chaos stays leashed"),
            id="no-parameter",
        ),
        pytest.param(
            {"failure": "does not exist"},
            Leash(True, "chaos leash /spotops/dev/chaos-leash does not exist; staying leashed"),
            id="failure",
        ),
        pytest.param(
            {"value": " OFF "},
            Leash(False, "chaos leash /spotops/dev/chaos-leash is 'off' and dry run is off"),
            id="off",
        ),
        pytest.param(
            {},
            Leash(True, "chaos leash /spotops/dev/chaos-leash is '' (only 'off' unleashes)"),
            id="no-value",
        ),
        pytest.param(
            {"value": "x" * 50},
            Leash(
                True, f"chaos leash /spotops/dev/chaos-leash is '{'x' * 40}' (only 'off' unleashes)"
            ),
            id="long-value-cut",
        ),
    ],
)
def test_the_leash_reason_on_call_reads(kwargs: dict[str, Any], expected: Leash) -> None:
    arguments: dict[str, Any] = {
        "dry_run": False,
        "dry_run_reason": "",
        "parameter": "/spotops/dev/chaos-leash",
        **kwargs,
    }

    assert leash_state(**arguments) == expected


@pytest.mark.parametrize("value", ["off", "false", "0", "no", "unleashed"])
def test_each_leash_off_word_unleashes(value: str) -> None:
    leash = leash_state(
        dry_run=False, dry_run_reason="", parameter="/spotops/dev/chaos-leash", value=value
    )

    assert leash.active is False


# ---- the error budget ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "alarms", "expected"),
    [
        pytest.param(
            budgets(0.62, 0.88),
            Reading(()),
            Verdict(
                "budget",
                True,
                "error budget left: availability 62.0%, latency 88.0% (chaos needs 25%)",
            ),
            id="plenty-left",
        ),
        pytest.param(
            budgets(0.62, 0.25),
            Reading(()),
            Verdict(
                "budget",
                True,
                "error budget left: availability 62.0%, latency 25.0% (chaos needs 25%)",
            ),
            id="exactly-the-limit-passes",
        ),
        pytest.param(
            budgets(0.62, 0.24),
            Reading(()),
            Verdict(
                "budget",
                False,
                "latency has 24.0% of its 30 d error budget left (99.9% target); chaos needs 25%",
            ),
            id="24-percent-refuses",
        ),
        pytest.param(
            budgets(0.2494, 0.9),
            Reading(()),
            Verdict(
                "budget",
                False,
                "availability has 24.9% of its 30 d error budget left (99.9% target); "
                "chaos needs 25%",
            ),
            id="just-under-the-limit-as-shown-refuses",
        ),
        pytest.param(
            budgets(0.2496, 0.9),
            Reading(()),
            Verdict(
                "budget",
                True,
                "error budget left: availability 25.0%, latency 90.0% (chaos needs 25%)",
            ),
            id="what-shows-as-the-limit-passes",
        ),
        pytest.param(
            budgets(0.0004, 0.9),
            Reading(()),
            Verdict(
                "budget",
                False,
                "availability has exhausted its 30 d error budget (0.0% left, 99.9% target); "
                "chaos needs 25%",
            ),
            id="nothing-left-as-shown-is-exhausted",
        ),
        pytest.param(
            budgets(-0.4, 0.9),
            Reading(()),
            Verdict(
                "budget",
                False,
                "availability has exhausted its 30 d error budget (-40.0% left, 99.9% target); "
                "chaos needs 25%",
            ),
            id="overspent-refuses",
        ),
        pytest.param(
            budgets(0.9, 0.9),
            Reading(("spotops-dev-slo-availability-fast-burn", "spotops-dev-target-5xx")),
            Verdict(
                "budget", False, "burn-rate alert in ALARM: spotops-dev-slo-availability-fast-burn"
            ),
            id="burn-alert-in-alarm-refuses",
        ),
        pytest.param(
            budgets(0.9, 0.9),
            Reading(
                (
                    "spotops-dev-slo-availability-fast-burn-short",
                    "spotops-dev-slo-latency-slow-burn-long",
                )
            ),
            Verdict(
                "budget",
                True,
                "error budget left: availability 90.0%, latency 90.0% (chaos needs 25%)",
            ),
            id="a-burn-window-alone-is-no-alert",
        ),
        pytest.param(
            budgets(0.9, 0.9),
            Reading(("spotops-dev-target-5xx",)),
            Verdict(
                "budget",
                True,
                "error budget left: availability 90.0%, latency 90.0% (chaos needs 25%)",
            ),
            id="other-alarms-are-the-alarms-guards",
        ),
        pytest.param(
            budgets(None, 0.9),
            Reading(()),
            Verdict(
                "budget",
                False,
                "cannot evaluate (availability budget unknown: GetMetricData failed); not killing",
            ),
            id="unknown-refuses",
        ),
        pytest.param(
            Reading.failed("no service level objective to read"),
            Reading(()),
            Verdict(
                "budget", False, "cannot evaluate (no service level objective to read); not killing"
            ),
            id="unread-refuses",
        ),
        pytest.param(
            Reading(()),
            Reading(()),
            Verdict("budget", False, "cannot evaluate (no objective read); not killing"),
            id="no-objective-refuses",
        ),
        pytest.param(
            budgets(0.9, 0.9),
            Reading.failed("alarm states unreadable (Throttling)"),
            Verdict(
                "budget",
                False,
                "cannot evaluate (alarm states unreadable (Throttling)); not killing",
            ),
            id="alarms-unreadable-refuses",
        ),
        pytest.param(
            budgets(0.9, 0.9),
            NEITHER,
            Verdict("budget", False, "cannot evaluate (alarms not read); not killing"),
            id="alarms-not-read-refuses",
        ),
    ],
)
def test_the_budget_guard_and_the_reason_on_call_reads(
    budget: Reading[tuple[Budget, ...]], alarms: Reading[tuple[str, ...]], expected: Verdict
) -> None:
    assert guard_budget(budget, alarms, SLO_PREFIX, 25.0) == expected


def test_the_budget_limit_compares_percent_to_percent() -> None:
    at_ten = guard_budget(budgets(0.1, 0.9), Reading(()), SLO_PREFIX, 10.0)
    under_ten = guard_budget(budgets(0.0994, 0.9), Reading(()), SLO_PREFIX, 10.0)

    assert at_ten.passed
    assert not under_ten.passed


def test_a_minimum_under_one_percent_still_gates_and_half_a_percent_is_not_exhausted() -> None:
    # A minimum of half a percent is a gate, not "off"; half a percent left is not nothing.
    refused = guard_budget(budgets(0.003, 0.9), Reading(()), SLO_PREFIX, 0.5)
    passed = guard_budget(budgets(0.005, 0.9), Reading(()), SLO_PREFIX, 0.4)

    assert refused == Verdict(
        "budget",
        False,
        "availability has 0.3% of its 30 d error budget left (99.9% target); chaos needs 0.5%",
    )
    assert passed == Verdict(
        "budget", True, "error budget left: availability 0.5%, latency 90.0% (chaos needs 0.4%)"
    )


def test_the_burning_alerts_are_listed_comma_separated_five_at_most() -> None:
    names = tuple(f"spotops-dev-slo-latency-alert-{n}" for n in range(1, 7))

    verdict = guard_budget(budgets(0.9, 0.9), Reading(names), SLO_PREFIX, 25.0)

    assert verdict == Verdict("budget", False, f"burn-rate alert in ALARM: {', '.join(names[:5])}")


@pytest.mark.parametrize(
    "budget",
    [budgets(-1.0, None), Reading.failed("x")],
    ids=["exhausted-and-unknown", "unread"],
)
def test_a_zero_minimum_turns_the_budget_guard_off(budget: Reading[tuple[Budget, ...]]) -> None:
    verdict = guard_budget(budget, Reading(("spotops-dev-slo-latency-ticket",)), SLO_PREFIX, 0)

    assert verdict == Verdict(
        "budget", True, "the budget gate is off (CHAOS_MIN_BUDGET_PERCENT is 0)"
    )


def test_decide_uses_the_policys_budget_minimum() -> None:
    facts_at_half = facts(budget=budgets(0.4, 0.9))

    assert decide(facts_at_half, POLICY, 0.0).kill
    refused = decide(facts_at_half, replace(POLICY, min_budget_percent=50), 0.0)
    assert [v.guard for v in refused.refusals] == ["budget"]
    assert "chaos needs 50%" in refused.verdict("budget").reason


def test_a_burn_alert_in_alarm_refuses_by_the_alarms_guard_and_the_budget_guard() -> None:
    decision = decide(facts(alarms=Reading(("spotops-dev-slo-latency-fast-burn",))), POLICY, 0.0)

    assert [v.guard for v in decision.refusals] == ["alarms", "budget"]
    assert decision.verdict("budget").reason == (
        "burn-rate alert in ALARM: spotops-dev-slo-latency-fast-burn"
    )
