"""The chaos guards, one by one, over frozen facts; the probability model, seeded.

A baseline where every guard passes; each test changes one fact and expects exactly one
guard to refuse. No AWS, no clock, no real randomness.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
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
    OptIn,
    Reading,
    ServiceFacts,
    TargetState,
    TaskFacts,
    Window,
    decide,
    draw,
    format_days,
    guard_time_left,
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
)
from chalicelib.ledger import Lock

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
    )
    return replace(base, **changes)


# ---- all guards, and each one refusing alone ------------------------------------------


def test_every_guard_passes_on_a_steady_opted_in_service_inside_the_window() -> None:
    decision = decide(facts(), POLICY, draw_value=0.0)

    assert decision.kill
    assert [v.guard for v in decision.verdicts] == list(GUARDS)
    assert decision.summary() == "every guard passed (12)"


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
}


@pytest.mark.parametrize("guard", sorted(UNREADABLE))
def test_a_guard_that_cannot_be_evaluated_refuses(guard: str) -> None:
    decision = decide(UNREADABLE[guard](), POLICY, 0.0)

    assert [v.guard for v in decision.refusals] == [guard]
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
