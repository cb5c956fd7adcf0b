"""The reasons on-call reads in Slack, word for word, each with the verdict it explains.

Every function of :mod:`chalicelib.alarms.rules` that answers with a sentence has ONE table
here: the inputs, the verdict (act or not, the refusal, go or not, the status) and the exact
sentence. The behaviour itself (boundaries, order, plans) is tested in ``test_rules.py``; a
reworded reason is a reviewed change of what on-call is told, so it changes a row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from chalicelib.alarms.rules import (
    AlarmHistory,
    AlarmNow,
    CapacityShift,
    DeploymentFacts,
    NotApplicable,
    Plan,
    PlanAnswer,
    Refusal,
    ScalableTarget,
    ServiceState,
    SpotPolicy,
    StrategyItem,
    Switch,
    decide,
    describe_strategy,
    placement_verdict,
    plan_capacity_return,
    plan_capacity_shift,
    plan_force_new_deployment,
    plan_rollback,
    plan_scale_out,
    return_decision,
    rule_for,
    stale_change,
    unrecorded_check,
)
from chalicelib.results import Status
from tests.unit.ops.alarms.test_rules import SERVICE, SPOT, facts

ON_DEMAND = (StrategyItem("FARGATE", 1, 0),)
MUTED = (
    "not acting: the alarm's actions are disabled (ActionsEnabled is false: muted, for "
    "maintenance or by on-call), so nothing was done; enable them (aws cloudwatch "
    "enable-alarm-actions) to let the toolkit act again"
)
BUDGET = (
    "the budget of 3 automated actions per hour on {} is spent: escalating to a human. "
    "Nothing more is done automatically this hour; follow the runbook"
)


@pytest.mark.parametrize(
    ("changes", "refusal", "reason"),
    [
        pytest.param(
            {"foreign": "the alarm is in account 210987654321"},
            Refusal.FOREIGN,
            "not acting: the alarm is in account 210987654321",
            id="foreign",
        ),
        pytest.param(
            {"stale": "this ALARM arrived late"},
            Refusal.STALE,
            "not acting: this ALARM arrived late",
            id="stale",
        ),
        pytest.param(
            {"suppressed": "WaitPeriod"},
            Refusal.SUPPRESSED,
            "not acting: the composite alarm's actions are suppressed (WaitPeriod)",
            id="suppressed",
        ),
        pytest.param(
            {"rule": None},
            Refusal.NO_POLICY,
            "no automatic remediation for this alarm: follow the runbook",
            id="no-policy-line",
        ),
        pytest.param(
            {"rule": rule_for("alb-5xx")},
            Refusal.NO_POLICY,
            "no automatic remediation for this alarm (no safe automatic fix): follow the runbook",
            id="notify-only-rule",
        ),
        pytest.param(
            {"kill_switch": Switch(True, "kill switch is 'on'")},
            Refusal.KILL_SWITCH,
            "not acting: kill switch is 'on'",
            id="kill-switch",
        ),
        pytest.param(
            {"unreadable": "the safety ledger"},
            Refusal.UNREADABLE,
            "not acting: the safety ledger could not be read",
            id="unreadable",
        ),
        pytest.param(
            {"alarm_now": AlarmNow("ALARM", None, actions_enabled=False)},
            Refusal.MUTED,
            MUTED,
            id="muted",
        ),
        pytest.param(
            {"alarm_now": AlarmNow("OK", 600.0)},
            Refusal.ALARM_OVER,
            "not acting: alarm already OK since 1970-01-01 00:10:00 UTC (read again from "
            "CloudWatch just now): the ALARM this was called for is over",
            id="alarm-over",
        ),
        pytest.param(
            {"alarm_now": AlarmNow("INSUFFICIENT_DATA", None)},
            Refusal.ALARM_OVER,
            "not acting: alarm already INSUFFICIENT_DATA (read again from CloudWatch just "
            "now): the ALARM this was called for is over",
            id="alarm-over-since-unknown",
        ),
        pytest.param(
            {"plan": NotApplicable("at the max")},
            Refusal.NOT_APPLICABLE,
            "nothing to do: at the max",
            id="not-applicable",
        ),
        pytest.param(
            {"plan": None},
            Refusal.UNREADABLE,
            "not acting: no plan could be made",
            id="no-plan",
        ),
        pytest.param(
            {"deployment": "ECS is rolling out ecs-svc/2"},
            Refusal.DEPLOYMENT,
            "not acting while a deployment is in progress (ECS is rolling out ecs-svc/2)",
            id="deployment",
        ),
        pytest.param(
            {"cooldown_remaining": 1},
            Refusal.COOLDOWN,
            "force-new-deployment for unhealthy-hosts is cooling down for another 1 s "
            "(once per 30 min)",
            id="cooldown",
        ),
        pytest.param({"budget_used": 3}, Refusal.BUDGET, BUDGET.format("c/site"), id="budget"),
        pytest.param(
            {"budget_used": 3, "service": ""},
            Refusal.BUDGET,
            BUDGET.format("the service"),
            id="budget-service-unnamed",
        ),
        pytest.param(
            {"dry_run": Switch(True, "DRY_RUN is true")},
            Refusal.DRY_RUN,
            "dry run (DRY_RUN is true): would force a new deployment",
            id="dry-run",
        ),
        pytest.param({}, None, "force a new deployment", id="acts"),
        pytest.param(
            {"rule": rule_for("spot-placement-failure"), "deployment": "ECS is rolling out x"},
            None,
            "force a new deployment, during the deployment in progress (ECS is rolling out x): "
            "tasks Fargate Spot cannot place stall it without tripping the circuit breaker, so "
            "the deployment goes on as a new one on on-demand FARGATE",
            id="acts-during-deployment",
        ),
    ],
)
def test_decide_the_reason_on_call_reads(
    changes: dict[str, object], refusal: Refusal | None, reason: str
) -> None:
    decision = decide(facts(**changes))
    assert decision.act is (refusal is None)
    assert decision.refusal is refusal
    assert decision.reason == reason


def _deployment(**changes: object) -> DeploymentFacts:
    base = DeploymentFacts(
        "ecs-svc/9", "v2.0.0 (sha256:ab)", "COMPLETED", SERVICE.task_definition, "td:7", 1000.0
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _rollback(
    deployment: DeploymentFacts | None,
    alarm_at: float,
    *,
    placeholder: bool = False,
    service: ServiceState = SERVICE,
) -> PlanAnswer:
    return plan_rollback(
        service,
        deployment,
        alarm_at=alarm_at,
        window_seconds=1800,
        previous_is_placeholder=placeholder,
    )


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        pytest.param(
            lambda: plan_force_new_deployment(replace(SERVICE, desired_count=0)),
            "site runs no tasks (desired count 0): nothing to replace",
            id="force-no-tasks",
        ),
        pytest.param(
            lambda: plan_scale_out(SERVICE, None, 50),
            "autoscaling is off for site (no scalable target), so there is no maximum to stay "
            "within: the toolkit does not scale it",
            id="scale-no-autoscaling",
        ),
        pytest.param(
            lambda: plan_scale_out(replace(SERVICE, desired_count=4), ScalableTarget(2, 4), 50),
            "site already runs 4 tasks, the autoscaling maximum (MaxTasks): raise MaxTasks by hand",
            id="scale-at-maximum",
        ),
        pytest.param(
            lambda: _rollback(None, 1600),
            "the toolkit has no deployment on record: a 5xx not caused by one of its "
            "deployments is for a person to diagnose",
            id="rollback-no-record",
        ),
        pytest.param(
            lambda: _rollback(_deployment(status="IN_PROGRESS"), 1600),
            "the last deployment (v2.0.0 (sha256:ab)) is IN_PROGRESS, not COMPLETED: ECS's "
            "circuit breaker and deployment alarms handle a deployment that fails",
            id="rollback-not-completed",
        ),
        pytest.param(
            lambda: _rollback(_deployment(), 1000 - 600),
            "the 5xx started 10 min before the last deployment (v2.0.0 (sha256:ab)) completed: "
            "not caused by it, so it is not rolled back",
            id="rollback-5xx-before-deployment",
        ),
        pytest.param(
            lambda: _rollback(_deployment(), 1000 + 3600),
            "the 5xx started 60 min after the last deployment (v2.0.0 (sha256:ab)), more than "
            "the 30 min rollback window: probably not the deployment",
            id="rollback-past-window",
        ),
        pytest.param(
            lambda: _rollback(_deployment(task_definition="arn:task-definition/site:9"), 1600),
            "site no longer runs the deployed revision site:9 (it runs site:8): someone already "
            "changed it",
            id="rollback-revision-changed",
        ),
        pytest.param(
            lambda: _rollback(_deployment(), 1600, service=replace(SERVICE, task_definition="")),
            "site no longer runs the deployed revision site:8 (it runs ?): someone already "
            "changed it",
            id="rollback-revision-unknown",
        ),
        pytest.param(
            lambda: _rollback(_deployment(previous_task_definition=""), 1600),
            "the deployment recorded no previous revision to go back to",
            id="rollback-no-previous",
        ),
        pytest.param(
            lambda: _rollback(_deployment(), 1600, placeholder=True),
            "the previous revision runs the :bootstrap placeholder (this was the first deploy): "
            "there is no earlier image to go back to",
            id="rollback-placeholder",
        ),
        pytest.param(
            lambda: plan_capacity_shift(replace(SERVICE, strategy=())),
            "site has no capacity provider strategy (launch type default): it does not run on "
            "Fargate Spot",
            id="shift-no-strategy",
        ),
        pytest.param(
            lambda: plan_capacity_shift(replace(SERVICE, strategy=(), launch_type="EC2")),
            "site has no capacity provider strategy (launch type EC2): it does not run on "
            "Fargate Spot",
            id="shift-launch-type",
        ),
        pytest.param(
            lambda: plan_capacity_shift(
                replace(
                    SERVICE,
                    strategy=(StrategyItem("FARGATE", 1, 2), StrategyItem("FARGATE_SPOT", 0, 0)),
                )
            ),
            "site already runs on on-demand FARGATE only (FARGATE base 2 weight 1, "
            "FARGATE_SPOT weight 0)",
            id="shift-already-on-demand",
        ),
        pytest.param(
            lambda: plan_capacity_return(replace(SERVICE, strategy=ON_DEMAND), ()),
            "the shift recorded no strategy to return to",
            id="return-nothing-recorded",
        ),
        pytest.param(
            lambda: plan_capacity_return(SERVICE, SPOT),
            "site already runs its original strategy (FARGATE weight 0, FARGATE_SPOT weight 1)",
            id="return-already-back",
        ),
    ],
)
def test_plans_the_reason_nothing_applies(plan: Callable[[], PlanAnswer], reason: str) -> None:
    # Planned in the test, not at collection, so the plan runs the code under test.
    answer = plan()
    assert isinstance(answer, NotApplicable)
    assert answer.reason == reason


@pytest.mark.parametrize(
    ("make", "summary"),
    [
        pytest.param(
            lambda: plan_force_new_deployment(SERVICE),
            "force a new deployment of site: its 2 task(s) are replaced one by one, the "
            "unhealthy one included",
            id="force",
        ),
        pytest.param(
            lambda: plan_scale_out(replace(SERVICE, desired_count=3), ScalableTarget(2, 10), 67),
            "scale site out from 3 to 6 tasks (autoscaling maximum 10)",
            id="scale-out",
        ),
        pytest.param(
            lambda: _rollback(_deployment(), 1000 + 1790),
            "roll site back from site:8 (v2.0.0 (sha256:ab), deployed 30 min before the 5xx) "
            "to td:7",
            id="rollback",
        ),
        pytest.param(
            lambda: plan_capacity_shift(
                replace(
                    SERVICE,
                    strategy=(StrategyItem("FARGATE", 0, 2), StrategyItem("FARGATE_SPOT", 3, 0)),
                )
            ),
            "shift site to on-demand FARGATE (FARGATE base 2 weight 1; it was FARGATE base 2 "
            "weight 0, FARGATE_SPOT weight 3), replacing its tasks",
            id="shift",
        ),
        pytest.param(
            lambda: plan_capacity_return(replace(SERVICE, strategy=ON_DEMAND), SPOT),
            "return site to its capacity provider strategy (FARGATE weight 0, FARGATE_SPOT "
            "weight 1), replacing its tasks",
            id="return",
        ),
    ],
)
def test_plans_the_summary_on_call_reads(make: Callable[[], PlanAnswer], summary: str) -> None:
    plan = make()
    assert isinstance(plan, Plan)
    assert plan.summary == summary


@pytest.mark.parametrize(
    ("strategy", "text"),
    [
        pytest.param((), "none (launch type)", id="launch-type"),
        pytest.param(SPOT, "FARGATE weight 0, FARGATE_SPOT weight 1", id="spot"),
        pytest.param(
            (StrategyItem("FARGATE", 1, 2), StrategyItem("FARGATE_SPOT", 3, 0)),
            "FARGATE base 2 weight 1, FARGATE_SPOT weight 3",
            id="with-base",
        ),
    ],
)
def test_describe_strategy_the_words_on_call_reads(
    strategy: tuple[StrategyItem, ...], text: str
) -> None:
    assert describe_strategy(strategy) == text


QUIET_FROM_1000 = CapacityShift(1000, SPOT, "spot-interruptions", 1000)


@pytest.mark.parametrize(
    ("shift", "now", "go", "reason"),
    [
        pytest.param(
            None, 9999, False, "the service is not shifted to on-demand", id="not-shifted"
        ),
        pytest.param(
            QUIET_FROM_1000,
            1000 + 3599,
            False,
            "quiet for 59 min of the 1 h before Spot is tried again",
            id="still-waiting",
        ),
        pytest.param(
            QUIET_FROM_1000,
            1000 + 3600,
            True,
            "no Spot placement failure or interruption for 1 h",
            id="returns",
        ),
    ],
)
def test_return_decision_the_reason_on_call_reads(
    shift: CapacityShift | None, now: float, go: bool, reason: str
) -> None:
    answer = return_decision(shift, now=now, policy=SpotPolicy())
    assert answer.go is go
    assert answer.reason == reason


ARN = "arn:aws:ecs:us-east-1:123456789012:capacity-provider/"


@pytest.mark.parametrize(
    ("arns", "strategy", "on_spot", "providers"),
    [
        pytest.param(
            [f"{ARN}FARGATE", f"{ARN}FARGATE_SPOT"], None, True, "FARGATE, FARGATE_SPOT", id="named"
        ),
        pytest.param(
            [],
            None,
            True,
            "not named in the event, and the service could not be read: the shift reads it",
            id="unread",
        ),
        pytest.param(
            [],
            SPOT,
            True,
            "not named in the event; the service's strategy: FARGATE weight 0, FARGATE_SPOT "
            "weight 1",
            id="from-strategy",
        ),
    ],
)
def test_placement_verdict_the_providers_on_call_reads(
    arns: list[str], strategy: tuple[StrategyItem, ...] | None, on_spot: bool, providers: str
) -> None:
    verdict = placement_verdict(arns, strategy)
    assert verdict.on_spot is on_spot
    assert verdict.providers == providers


@pytest.mark.parametrize(
    ("strategy", "home", "status", "reason", "report"),
    [
        pytest.param(
            SPOT,
            None,
            Status.NOT_SHIFTED,
            "the service is not shifted to on-demand",
            None,
            id="spot",
        ),
        pytest.param(
            (StrategyItem("FARGATE", 0, 1),),
            SPOT,
            Status.NOT_SHIFTED,
            "the service runs its own strategy (FARGATE base 1 weight 0), not a shift",
            None,
            id="own-strategy",
        ),
        pytest.param(
            ON_DEMAND,
            SPOT,
            Status.ADOPTED,
            "found on on-demand FARGATE (FARGATE weight 1) with no shift on record: recorded "
            "now; its Spot strategy (FARGATE weight 0, FARGATE_SPOT weight 1) is put back after "
            "the quiet period, within the return's limits",
            "adopted",
            id="adopted",
        ),
        pytest.param(
            ON_DEMAND,
            None,
            Status.ON_DEMAND_UNKNOWN,
            "runs on on-demand FARGATE only (FARGATE weight 1) the way a shift leaves it, with "
            "no shift on record and no Spot strategy known to return to: if the toolkit shifted "
            "it, put its strategy back by hand (runbook); if on-demand is intended, set it in "
            "the site's parameters",
            "unknown",
            id="unknown",
        ),
    ],
)
def test_unrecorded_check_the_reason_on_call_reads(
    strategy: tuple[StrategyItem, ...],
    home: tuple[StrategyItem, ...] | None,
    status: Status,
    reason: str,
    report: str | None,
) -> None:
    check = unrecorded_check(strategy, home, now=10.0)
    assert check.status is status
    assert check.reason == reason
    assert check.report == report


@pytest.mark.parametrize(
    ("since", "reason"),
    [
        pytest.param(
            500.0,
            "this ALARM of 1970-01-01 00:05:00 UTC arrived after the alarm's later change to OK "
            "at 1970-01-01 00:10:00 UTC: alarm already OK since 1970-01-01 00:08:20 UTC",
            id="since-recorded",
        ),
        pytest.param(
            None,
            "this ALARM of 1970-01-01 00:05:00 UTC arrived after the alarm's later change to OK "
            "at 1970-01-01 00:10:00 UTC: alarm already OK since 1970-01-01 00:10:00 UTC",
            id="since-unknown-is-the-last-change",
        ),
    ],
)
def test_stale_change_the_reason_on_call_reads(since: float | None, reason: str) -> None:
    history = AlarmHistory("OK", since=since, last_at=600.0)
    assert stale_change(history, state="ALARM", at=300.0) == reason
