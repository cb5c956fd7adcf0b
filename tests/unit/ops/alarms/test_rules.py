"""The alarm function's decisions, each a pure function over frozen facts (no AWS, no clock)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from chalicelib import runbooks
from chalicelib.alarms.rules import (
    ACTION_RUNBOOKS,
    POLICY,
    REFUSAL_STATUS,
    Action,
    AlarmHistory,
    AlarmNow,
    CapacityShift,
    DeploymentFacts,
    FlapPolicy,
    InterruptionsDecision,
    NotApplicable,
    Notice,
    NoticeDecision,
    Outcome,
    Plan,
    Refusal,
    RemediationFacts,
    ScalableTarget,
    ServiceState,
    Severity,
    SpotPolicy,
    StrategyItem,
    Switch,
    decide,
    duration,
    follow_up_posted,
    interruptions_decision,
    may_share_lock,
    next_history,
    notice_decision,
    placement_verdict,
    plan_capacity_return,
    plan_capacity_shift,
    plan_force_new_deployment,
    plan_rollback,
    plan_scale_out,
    plan_took,
    return_decision,
    rule_for,
    rule_for_alarm,
    stale_change,
    strategy_of,
    unrecorded_check,
    uses_spot,
    when,
)
from chalicelib.ledger import Lock
from tests.support.templates import load

ROOT = Path(__file__).resolve().parents[4]
OFF = Switch(False, "kill switch /spotops/dev/kill-switch is off")
DRY_OFF = Switch(False, "DRY_RUN is false")
SPOT = (StrategyItem("FARGATE", 0, 0), StrategyItem("FARGATE_SPOT", 1, 0))
SERVICE = ServiceState("site", 2, "arn:task-definition/site:8", SPOT, "", "ecs-svc/1")
FORCE = Plan(Action.FORCE_NEW_DEPLOYMENT, "force a new deployment", {"forceNewDeployment": True})


def facts(**changes: object) -> RemediationFacts:
    base = RemediationFacts(
        rule=rule_for("unhealthy-hosts"),
        kill_switch=OFF,
        dry_run=DRY_OFF,
        plan=FORCE,
        service="c/site",
        budget_max=3,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# ---- the policy table --------------------------------------------------------------------


# The shipped policy, line by line: (action, cooldown s, severity, acts during a deployment).
# A changed action, cooldown or severity is a reviewed change of what the toolkit does on its
# own: change it here, in the README's policy table and in the runbooks together.
SHIPPED_POLICY = {
    "unhealthy-hosts": (Action.FORCE_NEW_DEPLOYMENT, 1800, Severity.CRITICAL, False),
    "cpu-high": (Action.SCALE_OUT, 900, Severity.WARNING, False),
    "memory-high": (Action.SCALE_OUT, 900, Severity.WARNING, False),
    "target-5xx": (Action.ROLLBACK, 3600, Severity.CRITICAL, False),
    "alb-5xx": (Action.NOTIFY, 0, Severity.CRITICAL, False),
    "running-tasks-below-desired": (Action.NOTIFY, 0, Severity.CRITICAL, False),
    "target-response-time-p99": (Action.NOTIFY, 0, Severity.WARNING, False),
    "ephemeral-storage-high": (Action.NOTIFY, 0, Severity.WARNING, False),
    "network-anomaly": (Action.NOTIFY, 0, Severity.WARNING, False),
    "slo-availability-fast-burn": (Action.NOTIFY, 0, Severity.CRITICAL, False),
    "slo-availability-slow-burn": (Action.NOTIFY, 0, Severity.CRITICAL, False),
    "slo-availability-ticket": (Action.NOTIFY, 0, Severity.WARNING, False),
    "slo-latency-fast-burn": (Action.NOTIFY, 0, Severity.CRITICAL, False),
    "slo-latency-slow-burn": (Action.NOTIFY, 0, Severity.CRITICAL, False),
    "slo-latency-ticket": (Action.NOTIFY, 0, Severity.WARNING, False),
    "slack-dead-letters": (Action.NOTIFY, 0, Severity.WARNING, False),
    "event-dead-letters": (Action.NOTIFY, 0, Severity.WARNING, False),
    "spot-placement-failure": (Action.CAPACITY_SHIFT, 1800, Severity.CRITICAL, True),
    "spot-interruptions": (Action.CAPACITY_SHIFT, 1800, Severity.WARNING, False),
    "spot-quiet": (Action.CAPACITY_RETURN, 0, Severity.INFO, False),
}


def test_the_policy_maps_each_alarm_to_one_action_with_its_limits() -> None:
    table = {
        rule.trigger: (rule.action, rule.cooldown_seconds, rule.severity, rule.during_deployment)
        for rule in POLICY
    }
    assert table == SHIPPED_POLICY
    assert len(table) == len(POLICY)  # one line per trigger
    # Only the placement failure's shift acts during a deployment (issue 22, item 8).
    assert [r.trigger for r in POLICY if r.during_deployment] == ["spot-placement-failure"]


def test_the_flap_spot_and_budget_defaults_are_pinned() -> None:
    # The defaults the settings fall back to (ALARM_FLAP_*, SPOT_*, CAPACITY_RETURN_AFTER_SECONDS,
    # REMEDIATION_MAX_PER_HOUR): a changed default is a reviewed change.
    assert FlapPolicy() == FlapPolicy(window_seconds=3600, threshold=3, summary_seconds=900)
    assert SpotPolicy() == SpotPolicy(threshold=3, window_seconds=1800, return_after_seconds=3600)
    assert RemediationFacts(rule=None, kill_switch=OFF, dry_run=DRY_OFF).budget_max == 3


def test_every_alarm_of_the_site_and_ops_stacks_has_a_policy_line() -> None:
    # Every alarm whose actions reach the function; the SLO alerts' -long/-short windows have
    # none (their composite alarm is the alert).
    names = set()
    for name in ("site", "ops"):
        for resource in load(name)["Resources"].values():
            props = resource.get("Properties") or {}
            if resource.get("Type", "").startswith("AWS::CloudWatch::") and "AlarmName" in props:
                found = re.fullmatch(
                    r"\$\{AppName\}-\$\{StageName\}-([a-z0-9-]+)", props["AlarmName"]["Fn::Sub"]
                )
                assert found, props["AlarmName"]
                if props.get("AlarmActions"):
                    names.add(found.group(1))
                else:
                    assert found.group(1).endswith(("-long", "-short")), found.group(1)
    assert {"target-5xx", "slo-availability-fast-burn", "slo-latency-ticket"} <= names
    assert names <= {rule.trigger for rule in POLICY}


def test_each_action_has_its_runbook_named_in_runbooks_py() -> None:
    names = {v for k, v in vars(runbooks).items() if k.isupper() and str(v).endswith(".md")}
    for action in Action:
        if action is Action.NOTIFY:
            continue
        assert ACTION_RUNBOOKS[action] in names
        assert (ROOT / "runbooks" / ACTION_RUNBOOKS[action]).is_file()


def test_only_this_stages_alarms_have_a_policy() -> None:
    assert rule_for_alarm("spotops-dev-target-5xx", "spotops-dev-") == rule_for("target-5xx")
    assert rule_for_alarm("spotops-prod-target-5xx", "spotops-dev-") is None
    assert rule_for_alarm("spotops-dev-unknown", "spotops-dev-") is None


def test_the_readme_policy_table_is_the_shipped_policy() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)`[^|]*\| `([a-z-]+)` \|", readme, re.MULTILINE)
    assert {trigger: action for trigger, action in rows} == {
        rule.trigger: rule.action.value for rule in POLICY
    }


# ---- may we act: every reason, in order -------------------------------------------------


def test_all_clear_acts_with_the_plan() -> None:
    decision = decide(facts())
    assert decision.act
    assert decision.plan is FORCE
    assert decision.refusal is None


@pytest.mark.parametrize(
    ("changes", "refusal", "words"),
    [
        ({"foreign": "the alarm is in account 210987654321"}, Refusal.FOREIGN, "210987654321"),
        ({"suppressed": "WaitPeriod: Actions suppressed"}, Refusal.SUPPRESSED, "suppressed"),
        ({"rule": None}, Refusal.NO_POLICY, "no automatic remediation"),
        ({"rule": rule_for("alb-5xx")}, Refusal.NO_POLICY, "no safe automatic fix"),
        ({"kill_switch": Switch(True, "kill switch is 'on'")}, Refusal.KILL_SWITCH, "'on'"),
        ({"unreadable": "the safety ledger"}, Refusal.UNREADABLE, "the safety ledger"),
        ({"plan": NotApplicable("at the max")}, Refusal.NOT_APPLICABLE, "at the max"),
        ({"deployment": "ECS is rolling out ecs-svc/2"}, Refusal.DEPLOYMENT, "ecs-svc/2"),
        ({"cooldown_remaining": 600}, Refusal.COOLDOWN, "another 10 min"),
        ({"budget_used": 3}, Refusal.BUDGET, "escalating to a human"),
        ({"dry_run": Switch(True, "DRY_RUN is true")}, Refusal.DRY_RUN, "would force"),
    ],
)
def test_every_reason_not_to_act_is_named(
    changes: dict[str, object], refusal: Refusal, words: str
) -> None:
    decision = decide(facts(**changes))
    assert decision.act is False
    assert decision.refusal is refusal
    assert words in decision.reason


def test_reasons_are_checked_in_order_and_the_first_wins() -> None:
    everything = facts(
        kill_switch=Switch(True, "on"),
        deployment="rolling",
        cooldown_remaining=60,
        budget_used=9,
        dry_run=Switch(True, "dry"),
    )
    assert decide(everything).refusal is Refusal.KILL_SWITCH
    assert decide(replace(everything, kill_switch=OFF)).refusal is Refusal.DEPLOYMENT
    no_deploy = replace(everything, kill_switch=OFF, deployment=None)
    assert decide(no_deploy).refusal is Refusal.COOLDOWN
    assert decide(replace(no_deploy, cooldown_remaining=0)).refusal is Refusal.BUDGET
    # Dry run is last, so it reports a plan that every limit allows.
    assert decide(replace(no_deploy, cooldown_remaining=0, budget_used=0)).refusal is (
        Refusal.DRY_RUN
    )


# ---- issue 22, item 8: the Spot placement failure's shift acts during a deployment --------


SHIFT = Plan(Action.CAPACITY_SHIFT, "shift site to on-demand FARGATE", {"forceNewDeployment": True})


def test_the_placement_failure_shift_acts_during_a_deployment_and_says_so() -> None:
    during = facts(
        rule=rule_for("spot-placement-failure"),
        plan=SHIFT,
        deployment="ECS is rolling out ecs-svc/2",
    )
    decision = decide(during)
    assert decision.act
    assert decision.refusal is None
    assert decision.plan is not None
    assert decision.plan.update == SHIFT.update  # the same UpdateService
    assert "during the deployment in progress (ECS is rolling out ecs-svc/2)" in decision.reason
    assert decision.reason == decision.plan.summary


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"cooldown_remaining": 60}, Refusal.COOLDOWN),
        ({"budget_used": 3}, Refusal.BUDGET),
        ({"dry_run": Switch(True, "DRY_RUN is true")}, Refusal.DRY_RUN),
        ({"kill_switch": Switch(True, "on")}, Refusal.KILL_SWITCH),
    ],
)
def test_during_a_deployment_the_shift_keeps_every_other_limit(
    changes: dict[str, object], refusal: Refusal
) -> None:
    during = facts(
        rule=rule_for("spot-placement-failure"), plan=SHIFT, deployment="ECS is rolling out x"
    )
    decision = decide(replace(during, **changes))  # type: ignore[arg-type]
    assert not decision.act
    assert decision.refusal is refusal


@pytest.mark.parametrize(
    "trigger", ["spot-interruptions", "spot-quiet", "unhealthy-hosts", "cpu-high", "target-5xx"]
)
def test_every_other_rule_waits_for_the_deployment(trigger: str) -> None:
    decision = decide(facts(rule=rule_for(trigger), deployment="ECS is rolling out ecs-svc/2"))
    assert decision.refusal is Refusal.DEPLOYMENT


def test_only_the_lock_held_for_the_rolling_deployment_is_shared() -> None:
    shift = rule_for("spot-placement-failure")
    assert shift is not None
    redeploy = Lock(holder="redeploy:sha256:ab", action="redeploy", deployment_id="ecs-svc/2")
    assert may_share_lock(shift, redeploy, rolling="ecs-svc/2")
    assert not may_share_lock(shift, redeploy, rolling="ecs-svc/3")  # held for another one
    assert not may_share_lock(shift, redeploy, rolling="")
    before_update = Lock(holder="redeploy:sha256:ab", action="redeploy")  # no change made yet
    assert not may_share_lock(shift, before_update, rolling="ecs-svc/2")
    assert not may_share_lock(shift, Lock(holder="chaos:1", action="chaos"), rolling="ecs-svc/2")
    interruptions = rule_for("spot-interruptions")
    assert interruptions is not None
    assert not may_share_lock(interruptions, redeploy, rolling="ecs-svc/2")


def test_budget_spent_escalates() -> None:
    decision = decide(facts(budget_used=3))
    assert decision.escalate
    assert "3 automated actions per hour on c/site" in decision.reason


# ---- plans -------------------------------------------------------------------------------


def test_force_new_deployment_needs_tasks() -> None:
    assert plan_force_new_deployment(SERVICE).update == {"forceNewDeployment": True}  # type: ignore[union-attr]
    assert isinstance(plan_force_new_deployment(replace(SERVICE, desired_count=0)), NotApplicable)


@pytest.mark.parametrize(
    ("desired", "maximum", "percent", "expected"),
    [(2, 4, 50, 3), (3, 4, 50, 4), (4, 10, 50, 6), (1, 10, 10, 2), (9, 10, 100, 10)],
)
def test_scale_out_adds_a_share_and_stops_at_the_maximum(
    desired: int, maximum: int, percent: int, expected: int
) -> None:
    plan = plan_scale_out(
        replace(SERVICE, desired_count=desired), ScalableTarget(1, maximum), percent
    )
    assert isinstance(plan, Plan)
    assert plan.update == {"desiredCount": expected}


def test_scale_out_refuses_at_the_maximum_and_without_autoscaling() -> None:
    at_max = plan_scale_out(replace(SERVICE, desired_count=4), ScalableTarget(2, 4), 50)
    assert isinstance(at_max, NotApplicable)
    assert "MaxTasks" in at_max.reason
    off = plan_scale_out(SERVICE, None, 50)
    assert isinstance(off, NotApplicable)
    assert "autoscaling is off" in off.reason


def deployment(**changes: object) -> DeploymentFacts:
    base = DeploymentFacts(
        "ecs-svc/9",
        "v2.0.0 (sha256:ab)",
        "COMPLETED",
        SERVICE.task_definition,
        "arn:task-definition/site:7",
        1000.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_rollback_goes_to_the_previous_revision_within_the_window() -> None:
    plan = plan_rollback(
        SERVICE,
        deployment(),
        alarm_at=1000 + 600,
        window_seconds=1800,
        previous_is_placeholder=False,
    )
    assert isinstance(plan, Plan)
    assert plan.update == {"taskDefinition": "arn:task-definition/site:7"}
    assert plan.undoes_deployment == "ecs-svc/9"
    assert "site:8" in plan.summary
    assert "site:7" in plan.summary


@pytest.mark.parametrize(
    ("record", "alarm_at", "placeholder", "words"),
    [
        (None, 1600, False, "no deployment on record"),
        (deployment(status="IN_PROGRESS"), 1600, False, "circuit breaker"),
        (deployment(), 1000 + 3600, False, "more than the 30 min rollback window"),
        (deployment(task_definition="arn:task-definition/site:9"), 1600, False, "no longer runs"),
        (deployment(previous_task_definition=""), 1600, False, "no previous revision"),
        (deployment(), 1600, True, ":bootstrap placeholder"),
    ],
)
def test_rollback_refuses_when_the_5xx_is_not_the_deployments(
    record: DeploymentFacts | None, alarm_at: float, placeholder: bool, words: str
) -> None:
    answer = plan_rollback(
        SERVICE,
        record,
        alarm_at=alarm_at,
        window_seconds=1800,
        previous_is_placeholder=placeholder,
    )
    assert isinstance(answer, NotApplicable)
    assert words in answer.reason


@pytest.mark.parametrize(
    ("alarm_at", "rolls_back"),
    [
        (1000 - 1, False),  # began just before the deployment completed: not its doing
        (1000 - 600, False),
        (1000, True),  # began as it completed
        (1000 + 1800, True),  # exactly at the window limit
        (1000 + 1800 + 1, False),  # just past it
    ],
)
def test_rollback_only_for_a_5xx_that_began_after_the_deployment_completed_within_the_window(
    alarm_at: float, rolls_back: bool
) -> None:
    answer = plan_rollback(
        SERVICE,
        deployment(),  # completed at 1000
        alarm_at=alarm_at,
        window_seconds=1800,
        previous_is_placeholder=False,
    )
    if rolls_back:
        assert isinstance(answer, Plan), answer
        assert answer.action is Action.ROLLBACK
        assert answer.update == {"taskDefinition": "arn:task-definition/site:7"}
        assert answer.undoes_deployment == "ecs-svc/9"
        return
    assert isinstance(answer, NotApplicable), answer
    if alarm_at < 1000:
        assert "before the last deployment (v2.0.0 (sha256:ab)) completed" in answer.reason
    else:
        assert "more than the 30 min rollback window" in answer.reason


def test_capacity_shift_moves_everything_to_fargate_and_keeps_the_way_back() -> None:
    plan = plan_capacity_shift(SERVICE)
    assert isinstance(plan, Plan)
    assert plan.update == {
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}],
        "forceNewDeployment": True,
    }
    assert plan.original_strategy == SPOT
    on_demand = replace(SERVICE, strategy=(StrategyItem("FARGATE", 1, 2),))
    assert isinstance(plan_capacity_shift(on_demand), NotApplicable)
    assert isinstance(plan_capacity_shift(replace(SERVICE, strategy=())), NotApplicable)


def test_capacity_return_restores_the_original_strategy() -> None:
    shifted = replace(SERVICE, strategy=(StrategyItem("FARGATE", 1, 0),))
    plan = plan_capacity_return(shifted, SPOT)
    assert isinstance(plan, Plan)
    assert plan.update["capacityProviderStrategy"] == [i.as_dict() for i in SPOT]
    assert plan.update["forceNewDeployment"] is True
    assert isinstance(plan_capacity_return(SERVICE, SPOT), NotApplicable)  # already back
    assert isinstance(plan_capacity_return(shifted, ()), NotApplicable)


def test_a_return_that_finds_spot_already_back_is_typed_so_the_check_can_forget_the_shift() -> None:
    shifted = replace(SERVICE, strategy=(StrategyItem("FARGATE", 1, 0),))
    already_back = plan_capacity_return(SERVICE, SPOT)
    assert isinstance(already_back, NotApplicable)
    assert already_back.refusal is Refusal.ALREADY_RETURNED
    nothing_recorded = plan_capacity_return(shifted, ())
    assert isinstance(nothing_recorded, NotApplicable)
    assert nothing_recorded.refusal is Refusal.NOT_APPLICABLE
    rule = rule_for("spot-quiet")
    facts = RemediationFacts(rule=rule, kill_switch=OFF, dry_run=DRY_OFF, plan=already_back)
    decision = decide(facts)
    assert decision.refusal is Refusal.ALREADY_RETURNED
    assert Outcome.of(decision).status == "already-returned"


def test_every_refusal_is_a_job_status_with_the_same_json_value() -> None:
    assert set(REFUSAL_STATUS) == set(Refusal)
    for refusal, status in REFUSAL_STATUS.items():
        assert status.value == refusal.value
    assert Outcome(True, "done").status == "acted"
    assert Outcome(True, "tried", failure="ECS refused it").status == "failed"
    assert Outcome(False, "recorded by an older toolkit").status == "refused"


@pytest.mark.parametrize(
    ("plan", "after", "took"),
    [
        (Plan(Action.SCALE_OUT, "", {"desiredCount": 3}), replace(SERVICE, desired_count=3), True),
        (Plan(Action.SCALE_OUT, "", {"desiredCount": 3}), SERVICE, False),
        (FORCE, replace(SERVICE, primary_deployment="ecs-svc/2"), True),
        (FORCE, SERVICE, False),
        (
            Plan(Action.ROLLBACK, "", {"taskDefinition": "td:7"}),
            replace(SERVICE, task_definition="td:7"),
            True,
        ),
        (
            Plan(
                Action.CAPACITY_SHIFT,
                "",
                {
                    "capacityProviderStrategy": [
                        {"capacityProvider": "FARGATE", "weight": 1, "base": 0}
                    ]
                },
            ),
            replace(SERVICE, strategy=(StrategyItem("FARGATE", 1, 0),)),
            True,
        ),
        (FORCE, None, False),
    ],
)
def test_after_a_lost_answer_the_service_says_whether_ecs_took_it(
    plan: Plan, after: ServiceState | None, took: bool
) -> None:
    assert plan_took(plan, SERVICE, after) is took


# ---- flapping ----------------------------------------------------------------------------


POLICY_FLAP = FlapPolicy(window_seconds=3600, threshold=3, summary_seconds=900)


def replay(changes: Sequence[tuple[str, float]]) -> list[NoticeDecision]:
    history, decisions = AlarmHistory(), []
    for state, at in changes:
        decision = notice_decision(history, state=state, at=at, policy=POLICY_FLAP)
        history = next_history(history, state=state, at=at, decision=decision, policy=POLICY_FLAP)
        decisions.append(decision)
    return decisions


def test_a_steady_alarm_is_posted_every_time() -> None:
    decisions = replay([("ALARM", 0), ("OK", 600), ("ALARM", 4000), ("OK", 4600)])
    assert [d.notice for d in decisions] == [Notice.POST] * 4
    assert decisions[1].lasted == 600


def test_a_flapping_alarm_is_summarised_then_held_then_summarised_again() -> None:
    flaps = [(state, i * 36.0) for i in range(100) for state in ["ALARM" if i % 2 == 0 else "OK"]]
    decisions = replay(flaps)
    notices = [d.notice for d in decisions]
    assert notices[:4] == [Notice.POST] * 4  # ALARM, OK, ALARM, OK
    assert notices[4] is Notice.SUMMARY  # the third time into ALARM
    assert notices.count(Notice.SUMMARY) == 4  # at most one per 15 minutes over the hour
    assert notices.count(Notice.POST) + notices.count(Notice.SUMMARY) == 8
    summaries = [d for d in decisions if d.notice is Notice.SUMMARY]
    assert summaries[1].held == 24  # alerts held between the first and the second summary


def test_after_flapping_the_next_post_reports_what_was_held() -> None:
    changes = [("ALARM", 0), ("OK", 10), ("ALARM", 20), ("OK", 30), ("ALARM", 40), ("OK", 50)]
    changes.append(("ALARM", 5000))  # an hour later: the old entries left the window
    decisions = replay(changes)
    assert decisions[-1].notice is Notice.POST
    assert decisions[-1].held == 1  # the OK at 50 s was held


# ---- late and out of order ---------------------------------------------------------------

AT_0205 = 1795831500.0  # 2026-11-28 02:05:00 UTC
AT_0210 = AT_0205 + 300


def test_an_alarm_older_than_the_recorded_ok_is_stale_and_changes_no_history() -> None:
    history = AlarmHistory()
    ok = notice_decision(history, state="OK", at=AT_0210, policy=POLICY_FLAP)
    history = next_history(history, state="OK", at=AT_0210, decision=ok, policy=POLICY_FLAP)

    late = notice_decision(history, state="ALARM", at=AT_0205, policy=POLICY_FLAP)

    assert late.stale is not None
    assert "alarm already OK since 2026-11-28 02:10:00 UTC" in late.stale
    assert late.notice is Notice.POST  # posted once, marked late
    after = next_history(history, state="ALARM", at=AT_0205, decision=late, policy=POLICY_FLAP)
    assert after == history  # not the alarm's state, not an entry of flapping


@pytest.mark.parametrize(
    ("history", "state", "at"),
    [
        (AlarmHistory(), "ALARM", AT_0205),  # nothing recorded
        (AlarmHistory("OK", AT_0205, AT_0205), "ALARM", AT_0210),  # in order
        (AlarmHistory("OK", AT_0205, AT_0205), "ALARM", AT_0205),  # the same moment
    ],
)
def test_a_change_in_order_is_not_stale(history: AlarmHistory, state: str, at: float) -> None:
    assert stale_change(history, state=state, at=at) is None
    assert notice_decision(history, state=state, at=at, policy=POLICY_FLAP).stale is None


def test_a_stale_change_is_refused_before_anything_is_read() -> None:
    decision = decide(facts(stale="this ALARM arrived late: alarm already OK since 02:10"))
    assert (decision.act, decision.refusal) == (False, Refusal.STALE)
    assert "alarm already OK since 02:10" in decision.reason


def test_an_alarm_no_longer_in_alarm_when_read_again_is_not_acted_on() -> None:
    over = decide(facts(alarm_now=AlarmNow("OK", AT_0210)))
    assert (over.act, over.refusal, over.plan) == (False, Refusal.ALARM_OVER, None)
    assert "alarm already OK since 2026-11-28 02:10:00 UTC" in over.reason
    still = decide(facts(alarm_now=AlarmNow("ALARM", AT_0205)))
    assert still.act
    assert still.plan == FORCE


def test_a_muted_alarm_is_not_acted_on_even_in_a_dry_run() -> None:
    muted = AlarmNow("ALARM", AT_0205, actions_enabled=False)
    for dry_run in (DRY_OFF, Switch(True, "DRY_RUN is true")):
        decision = decide(facts(alarm_now=muted, dry_run=dry_run))
        assert (decision.act, decision.refusal, decision.plan) == (False, Refusal.MUTED, None)
        assert "the alarm's actions are disabled" in decision.reason
        assert "so nothing was done" in decision.reason


# ---- follow-ups ------------------------------------------------------------------------


def test_actions_are_always_reported_refusals_only_after_a_posted_alert() -> None:
    acted = Outcome(True, "did it", None, "did it")
    failed = Outcome(True, "tried", None, "tried", "throttled")
    refused = Outcome.refused(Refusal.COOLDOWN, "cooling down")
    assert follow_up_posted(Notice.HOLD, acted)
    assert follow_up_posted(Notice.HOLD, failed)
    assert not follow_up_posted(Notice.HOLD, refused)
    assert not follow_up_posted(Notice.SUMMARY, refused)
    assert follow_up_posted(Notice.POST, refused)


def test_an_outcome_survives_the_ledger_round_trip() -> None:
    outcome = Outcome(False, "dry run", Refusal.DRY_RUN, "would scale")
    assert Outcome.from_dict(outcome.as_dict()) == outcome
    assert Outcome(True, "x", None, "x", "denied").status == "failed"
    assert outcome.status == "dry-run"


# ---- Spot --------------------------------------------------------------------------------


def test_interruptions_are_posted_up_to_the_threshold_which_shifts() -> None:
    policy = SpotPolicy(threshold=3, window_seconds=1800, return_after_seconds=3600)
    answers = [interruptions_decision(n, shifted=False, policy=policy) for n in (1, 2, 3, 4)]
    assert [(a.notify, a.shift) for a in answers] == [
        (True, False),
        (True, False),
        (True, True),
        (False, True),  # still over the threshold: the shift (or its refusal) speaks
    ]
    assert interruptions_decision(5, shifted=True, policy=policy).shift is False


def test_spot_returns_after_a_quiet_period_counted_from_the_last_trouble() -> None:
    policy = SpotPolicy(return_after_seconds=3600)
    shift = CapacityShift(1000, SPOT, "spot-interruptions", 1000)
    assert not return_decision(shift, now=1000 + 3599, policy=policy).go
    assert return_decision(shift, now=1000 + 3600, policy=policy).go
    troubled = replace(shift, last_trouble_at=3000)
    assert not return_decision(troubled, now=1000 + 3600, policy=policy).go
    assert not return_decision(None, now=9999, policy=policy).go


# ---- issue 22, item 10: no provider in the event; a shift with no record -------------------


def test_a_placement_failure_naming_no_provider_falls_back_to_the_services_strategy() -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:capacity-provider/"
    assert placement_verdict([f"{arn}FARGATE_SPOT"], None).on_spot
    assert not placement_verdict([f"{arn}FARGATE"], SPOT).on_spot  # the event decides
    assert placement_verdict([], SPOT).on_spot
    assert not placement_verdict([], (StrategyItem("FARGATE", 1, 1),)).on_spot
    assert not placement_verdict([], ()).on_spot  # launch type
    unread = placement_verdict([], None)
    assert unread.on_spot  # the shift reads the service again before it acts
    assert "could not be read" in unread.providers


def test_a_service_with_no_shift_on_record() -> None:
    shifted = (StrategyItem("FARGATE", 1, 0),)
    spot = unrecorded_check(SPOT, None, now=10.0)
    assert (spot.status, spot.remember, spot.adopt) == ("not-shifted", SPOT, None)
    assert unrecorded_check(SPOT, SPOT, now=10.0).remember is None  # already remembered
    found = unrecorded_check(shifted, SPOT, now=10.0)
    assert found.status == "adopted"
    assert found.adopt == CapacityShift(10.0, SPOT, "found-shifted", 10.0)
    assert found.report is not None
    unknown = unrecorded_check(shifted, None, now=10.0)
    assert (unknown.status, unknown.adopt, unknown.report) == ("on-demand-unknown", None, "unknown")
    chosen = (StrategyItem("FARGATE", 1, 1), StrategyItem("FARGATE_SPOT", 0, 0))
    assert unrecorded_check(chosen, SPOT, now=10.0).status == "not-shifted"
    assert unrecorded_check((), SPOT, now=10.0).status == "not-shifted"


# ---- issue 28: the verdicts, boundaries and parsers no test pinned -------------------------


def test_an_acting_rule_with_no_plan_is_refused_not_acted_on() -> None:
    # The flow stopped gathering before a plan was made: "act" here would act on nothing.
    decision = decide(facts(plan=None))
    assert (decision.act, decision.refusal, decision.plan) == (False, Refusal.UNREADABLE, None)


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        pytest.param({"deployment": "ECS is rolling out x"}, Refusal.DEPLOYMENT, id="deployment"),
        pytest.param({"cooldown_remaining": 60}, Refusal.COOLDOWN, id="cooldown"),
        pytest.param({"budget_used": 3}, Refusal.BUDGET, id="budget"),
        pytest.param({"dry_run": Switch(True, "DRY_RUN is true")}, Refusal.DRY_RUN, id="dry-run"),
    ],
)
def test_a_refusal_after_the_plan_was_made_keeps_the_plan_for_the_follow_up(
    changes: dict[str, object], refusal: Refusal
) -> None:
    decision = decide(facts(**changes))
    assert (decision.act, decision.refusal, decision.plan) == (False, refusal, FORCE)
    assert Outcome.of(decision).summary == FORCE.summary


@pytest.mark.parametrize(
    ("remaining", "act"),
    [
        pytest.param(0, True, id="cooled-down"),
        pytest.param(1, False, id="one-second-left"),
        pytest.param(1800, False, id="a-whole-cooldown-left"),
    ],
)
def test_a_cooldown_of_one_second_still_refuses(remaining: int, act: bool) -> None:
    decision = decide(facts(cooldown_remaining=remaining))
    assert decision.act is act
    assert decision.refusal is (None if act else Refusal.COOLDOWN)


@pytest.mark.parametrize(
    ("used", "act"),
    [
        pytest.param(0, True, id="none-used"),
        pytest.param(2, True, id="one-left"),
        pytest.param(3, False, id="spent"),
        pytest.param(4, False, id="overspent"),
    ],
)
def test_the_hourly_budget_allows_up_to_its_maximum(used: int, act: bool) -> None:
    decision = decide(facts(budget_used=used, budget_max=3))
    assert decision.act is act
    assert decision.escalate is not act


def test_no_lock_is_nothing_to_share() -> None:
    shift = rule_for("spot-placement-failure")
    assert shift is not None
    assert may_share_lock(shift, None, rolling="ecs-svc/2") is False


@pytest.mark.parametrize(
    ("raw", "item"),
    [
        pytest.param(
            {"capacityProvider": "FARGATE", "weight": 1, "base": 2},
            StrategyItem("FARGATE", 1, 2),
            id="every-field",
        ),
        pytest.param(
            {"capacityProvider": "FARGATE_SPOT"}, StrategyItem("FARGATE_SPOT", 0, 0), id="defaults"
        ),
        pytest.param(
            {"capacityProvider": "FARGATE", "weight": None, "base": None},
            StrategyItem("FARGATE", 0, 0),
            id="nulls",
        ),
        pytest.param({}, StrategyItem("", 0, 0), id="no-provider"),
    ],
)
def test_a_strategy_item_is_parsed_with_its_weight_and_base(
    raw: dict[str, object], item: StrategyItem
) -> None:
    assert StrategyItem.parse(raw) == item
    assert strategy_of([raw]) == (item,)
    assert strategy_of(None) == ()


@pytest.mark.parametrize(
    ("spot", "shifts"),
    [
        pytest.param(StrategyItem("FARGATE_SPOT", 0, 0), False, id="spot-weight-0-base-0"),
        pytest.param(StrategyItem("FARGATE_SPOT", 1, 0), True, id="spot-weight-1"),
        pytest.param(StrategyItem("FARGATE_SPOT", 0, 1), True, id="spot-base-1"),
    ],
)
def test_spot_listed_with_weight_0_and_base_0_places_nothing_so_it_is_not_shifted(
    spot: StrategyItem, shifts: bool
) -> None:
    # SpotWeight 0 keeps FARGATE_SPOT in the strategy yet places no task on it: shifting such
    # a service would replace its tasks for nothing.
    service = replace(SERVICE, strategy=(StrategyItem("FARGATE", 1, 0), spot))
    assert uses_spot(service.strategy) is shifts
    assert isinstance(plan_capacity_shift(service), Plan) is shifts


@pytest.mark.parametrize(
    ("strategy", "shifted"),
    [
        pytest.param(SPOT, {"capacityProvider": "FARGATE", "weight": 1, "base": 0}, id="base-0"),
        pytest.param(
            (StrategyItem("FARGATE", 0, 2), StrategyItem("FARGATE_SPOT", 1, 0)),
            {"capacityProvider": "FARGATE", "weight": 1, "base": 2},
            id="fargate-base-2-kept",
        ),
        pytest.param(
            (StrategyItem("FARGATE", 0, 0), StrategyItem("FARGATE_SPOT", 1, 3)),
            {"capacityProvider": "FARGATE", "weight": 1, "base": 0},
            id="spot-base-not-carried",
        ),
        pytest.param(
            (StrategyItem("FARGATE_SPOT", 1, 0),),
            {"capacityProvider": "FARGATE", "weight": 1, "base": 0},
            id="spot-only",
        ),
    ],
)
def test_the_shift_keeps_the_on_demand_base_the_service_had(
    strategy: tuple[StrategyItem, ...], shifted: dict[str, object]
) -> None:
    plan = plan_capacity_shift(replace(SERVICE, strategy=strategy))
    assert isinstance(plan, Plan)
    assert plan.action is Action.CAPACITY_SHIFT
    assert plan.update == {"capacityProviderStrategy": [shifted], "forceNewDeployment": True}
    assert plan.original_strategy == strategy


def test_the_return_plans_the_original_strategy_and_remembers_it() -> None:
    shifted = replace(SERVICE, strategy=(StrategyItem("FARGATE", 1, 0),))
    plan = plan_capacity_return(shifted, list(SPOT))
    assert isinstance(plan, Plan)
    assert plan.action is Action.CAPACITY_RETURN
    assert plan.original_strategy == SPOT


@pytest.mark.parametrize(
    ("desired", "applies"),
    [pytest.param(0, False, id="no-tasks"), pytest.param(1, True, id="a-single-task")],
)
def test_force_new_deployment_replaces_even_a_single_task(desired: int, applies: bool) -> None:
    plan = plan_force_new_deployment(replace(SERVICE, desired_count=desired))
    assert isinstance(plan, Plan) is applies
    if isinstance(plan, Plan):
        assert plan.action is Action.FORCE_NEW_DEPLOYMENT
        assert plan.update == {"forceNewDeployment": True}


@pytest.mark.parametrize(
    ("desired", "maximum", "percent", "expected"),
    [
        pytest.param(3, 10, 67, 6, id="ceil-of-2.01-is-3"),
        pytest.param(1, 10, 101, 3, id="ceil-of-1.01-is-2"),
        pytest.param(3, 3, 50, None, id="at-the-maximum"),
        pytest.param(2, 3, 50, 3, id="one-below-the-maximum"),
    ],
)
def test_scale_out_rounds_the_share_up(
    desired: int, maximum: int, percent: int, expected: int | None
) -> None:
    plan = plan_scale_out(
        replace(SERVICE, desired_count=desired), ScalableTarget(1, maximum), percent
    )
    if expected is None:
        assert isinstance(plan, NotApplicable)
        return
    assert isinstance(plan, Plan)
    assert plan.action is Action.SCALE_OUT
    assert plan.update == {"desiredCount": expected}


@pytest.mark.parametrize(
    ("task_definition", "revision"),
    [
        pytest.param("arn:aws:ecs:us-east-1:1:task-definition/site:8", "site:8", id="arn"),
        pytest.param("td:8", "td:8", id="no-slash"),
        pytest.param("a/b/site:8", "site:8", id="last-slash"),
    ],
)
def test_the_rollback_names_the_revision_after_the_last_slash(
    task_definition: str, revision: str
) -> None:
    service = replace(SERVICE, task_definition=task_definition)
    record = replace(deployment(), task_definition=task_definition, previous_task_definition="x")
    plan = plan_rollback(
        service, record, alarm_at=1600, window_seconds=1800, previous_is_placeholder=False
    )
    assert isinstance(plan, Plan)
    assert plan.summary.startswith(f"roll site back from {revision} (")


@pytest.mark.parametrize(
    ("arns", "on_spot"),
    [
        pytest.param(["FARGATE_SPOT"], True, id="bare-spot-name"),
        pytest.param(["a/b/FARGATE_SPOT"], True, id="last-slash"),
        pytest.param(["", "arn:x:capacity-provider/FARGATE"], False, id="empty-arn-skipped"),
    ],
)
def test_the_provider_is_named_by_what_follows_the_last_slash(
    arns: list[str], on_spot: bool
) -> None:
    verdict = placement_verdict(arns, SPOT)
    assert verdict.on_spot is on_spot


def test_a_plan_that_changes_nothing_was_not_taken() -> None:
    nothing = Plan(Action.NOTIFY, "", {})
    assert plan_took(nothing, SERVICE, SERVICE) is False
    assert plan_took(nothing, SERVICE, replace(SERVICE, primary_deployment="ecs-svc/2")) is False


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(-5, "0 s", id="negative"),
        pytest.param(0, "0 s", id="zero"),
        pytest.param(1, "1 s", id="one-second"),
        pytest.param(59, "59 s", id="under-a-minute"),
        pytest.param(60, "1 min", id="a-minute"),
        pytest.param(3599, "59 min", id="under-an-hour"),
        pytest.param(3600, "1 h", id="an-hour"),
        pytest.param(3660, "1 h 1 min", id="an-hour-and-a-minute"),
        pytest.param(7500, "2 h 5 min", id="hours-and-minutes"),
    ],
)
def test_durations_read_in_the_largest_units(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_moments_are_utc_whatever_the_machines_zone() -> None:
    assert when(0.0) == "1970-01-01 00:00:00 UTC"
    assert when(AT_0205) == "2026-11-28 02:05:00 UTC"


# ---- issue 28: flapping, each count and boundary ------------------------------------------


def test_a_stale_change_is_posted_with_no_count_of_its_own() -> None:
    history = AlarmHistory("OK", 600.0, 600.0, entries=(100.0, 200.0), held=2)
    decision = notice_decision(history, state="ALARM", at=300.0, policy=POLICY_FLAP)
    late = stale_change(history, state="ALARM", at=300.0)
    assert late is not None
    assert late.startswith("this ALARM of ")
    assert decision == NoticeDecision(Notice.POST, 2, 0, None, late)


@pytest.mark.parametrize(
    ("at", "notice", "count"),
    [
        pytest.param(3600.0, Notice.POST, 2, id="first-entry-exactly-a-window-old-is-out"),
        pytest.param(3599.0, Notice.SUMMARY, 3, id="one-second-inside-the-window"),
    ],
)
def test_the_flapping_window_excludes_an_entry_exactly_a_window_old(
    at: float, notice: Notice, count: int
) -> None:
    history = AlarmHistory("OK", 200.0, 200.0, entries=(0.0, 100.0))
    decision = notice_decision(history, state="ALARM", at=at, policy=POLICY_FLAP)
    assert (decision.notice, decision.entries_in_window) == (notice, count)
    after = next_history(history, state="ALARM", at=at, decision=decision, policy=POLICY_FLAP)
    assert len(after.entries) == count


@pytest.mark.parametrize(
    ("history", "state", "at", "lasted"),
    [
        pytest.param(AlarmHistory("ALARM", 1000.0, 1000.0), "OK", 1600.0, 600.0, id="ok-after"),
        pytest.param(AlarmHistory("ALARM", 1000.0, 1000.0), "OK", 1000.0, 0.0, id="same-second"),
        pytest.param(AlarmHistory("ALARM", 1000.0, 1000.0), "ALARM", 1600.0, None, id="still"),
        pytest.param(AlarmHistory("OK", 1000.0, 1000.0), "OK", 1600.0, None, id="never-alarm"),
        pytest.param(AlarmHistory("ALARM", None, 1000.0), "OK", 1600.0, None, id="since-unknown"),
    ],
)
def test_a_change_out_of_alarm_reports_how_long_it_lasted(
    history: AlarmHistory, state: str, at: float, lasted: float | None
) -> None:
    assert notice_decision(history, state=state, at=at, policy=POLICY_FLAP).lasted == lasted


FLAPPING = AlarmHistory("ALARM", 250.0, 250.0, entries=(100.0, 200.0, 250.0), held=4)


@pytest.mark.parametrize(
    ("last_summary_at", "notice"),
    [
        pytest.param(None, Notice.SUMMARY, id="never-summarised"),
        pytest.param(300.0 - 900, Notice.SUMMARY, id="exactly-summary-seconds-ago"),
        pytest.param(300.0 - 899, Notice.HOLD, id="one-second-short"),
        pytest.param(250.0, Notice.HOLD, id="just-summarised"),
    ],
)
def test_a_flapping_alarm_is_summarised_at_most_every_summary_period(
    last_summary_at: float | None, notice: Notice
) -> None:
    history = replace(FLAPPING, last_summary_at=last_summary_at)
    decision = notice_decision(history, state="OK", at=300.0, policy=POLICY_FLAP)
    assert decision == NoticeDecision(notice, 3, 4, 50.0)


def test_a_posted_change_reports_its_count_and_what_was_held() -> None:
    history = AlarmHistory("OK", 100.0, 100.0, entries=(50.0,), held=2)
    decision = notice_decision(history, state="ALARM", at=200.0, policy=POLICY_FLAP)
    assert decision == NoticeDecision(Notice.POST, 2, 2, None)


IN_ORDER = AlarmHistory("OK", 100.0, 100.0)


@pytest.mark.parametrize(
    ("decision", "at"),
    [
        pytest.param(NoticeDecision(Notice.POST, 0, 0, None, "late"), 200.0, id="decision-late"),
        pytest.param(NoticeDecision(Notice.POST, 0, 0), 50.0, id="change-older-than-history"),
    ],
)
def test_either_sign_of_a_late_change_leaves_the_history_as_it_was(
    decision: NoticeDecision, at: float
) -> None:
    after = next_history(IN_ORDER, state="ALARM", at=at, decision=decision, policy=POLICY_FLAP)
    assert after == IN_ORDER


@pytest.mark.parametrize(
    ("history", "state", "since"),
    [
        pytest.param(AlarmHistory("OK", 100.0, 150.0), "OK", 100.0, id="same-state-keeps-since"),
        pytest.param(AlarmHistory("OK", 100.0, 150.0), "ALARM", 200.0, id="new-state-starts-now"),
        pytest.param(AlarmHistory("OK", None, 150.0), "OK", 200.0, id="unknown-since-is-now"),
    ],
)
def test_the_state_began_when_it_last_changed(
    history: AlarmHistory, state: str, since: float
) -> None:
    decision = NoticeDecision(Notice.POST, 0, 0)
    after = next_history(history, state=state, at=200.0, decision=decision, policy=POLICY_FLAP)
    assert (after.state, after.since, after.last_at) == (state, since, 200.0)


# ---- issue 28: the outcome recorded in the ledger --------------------------------------------


def test_an_outcome_is_the_decision_with_its_plan_summary() -> None:
    assert Outcome.of(decide(facts())) == Outcome(True, FORCE.summary, None, FORCE.summary)
    refused = decide(facts(rule=None))
    assert Outcome.of(refused) == Outcome(False, refused.reason, Refusal.NO_POLICY, "")
    assert Outcome.refused(Refusal.LOCKED, "held") == Outcome(False, "held", Refusal.LOCKED, "")
    assert Outcome.refused(Refusal.LOCKED, "held", "would scale") == Outcome(
        False, "held", Refusal.LOCKED, "would scale"
    )


def test_an_outcome_is_stored_under_its_field_names() -> None:
    assert Outcome(True, "did it", None, "did it", "throttled").as_dict() == {
        "acted": True,
        "reason": "did it",
        "refusal": None,
        "summary": "did it",
        "failure": "throttled",
    }


@pytest.mark.parametrize(
    ("raw", "outcome"),
    [
        pytest.param({}, Outcome(False, "", None, "", None), id="empty"),
        pytest.param(
            {"acted": True, "reason": "r", "refusal": None, "summary": None, "failure": "denied"},
            Outcome(True, "r", None, "", "denied"),
            id="failed",
        ),
        pytest.param(
            {"acted": False, "reason": "r", "refusal": "renamed-since"},
            Outcome(False, "r", None, "", None),
            id="unknown-refusal",
        ),
    ],
)
def test_an_outcome_is_read_back_whatever_an_older_toolkit_wrote(
    raw: dict[str, object], outcome: Outcome
) -> None:
    assert Outcome.from_dict(raw) == outcome


@pytest.mark.parametrize(
    ("count", "shifted", "answer"),
    [
        pytest.param(2, False, InterruptionsDecision(2, True, False), id="below"),
        pytest.param(3, False, InterruptionsDecision(3, True, True), id="at-the-threshold"),
        pytest.param(4, False, InterruptionsDecision(4, False, True), id="past-it"),
        pytest.param(3, True, InterruptionsDecision(3, False, False), id="already-shifted"),
    ],
)
def test_an_interruption_is_counted_posted_and_shifts_at_the_threshold(
    count: int, shifted: bool, answer: InterruptionsDecision
) -> None:
    assert interruptions_decision(count, shifted=shifted, policy=SpotPolicy()) == answer
