"""Alarm to action, in-process: the alarm function's flow against moto (ECS, Application Auto
Scaling, DynamoDB, SSM, Secrets Manager, SQS), Slack as a real HTTP server on 127.0.0.1, and
a fake clock for the ledger (cooldowns, budgets) and the capacity check.

The world's service runs 2 tasks on a Fargate Spot strategy with an autoscaling range of
2-4; its alarms are named ``spotops-test-<alarm>`` (the test stage).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.alarms.facts import RemediationRecords
from chalicelib.alarms.flow import handle_event
from chalicelib.chaos.facts import ChaosRecords
from chalicelib.ledger import HistoryEntry, SafetyLedger
from chalicelib.observability import metrics
from chalicelib.toolkit import Toolkit
from tests.support.alarms import (
    RUNBOOKS,
    SPOT_STRATEGY,
    alarm_in,
    eventbridge_alarm,
    placement_failure,
    prepare_service,
    put_alarm,
    scheduled,
    sns_alarm,
    spot_interruption,
)
from tests.support.faults import Faults, FaultyClient
from tests.support.ops_world import ACCOUNT, REGION, LogLines, World, make_kit
from tests.support.slack_stub import SlackStub

START = datetime(2026, 11, 28, 10, 0, tzinfo=UTC).timestamp()
PREFIX = "spotops-test-"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:spotops-test-alarms"
ON_DEMAND = [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(world: World) -> World:
    assert DEFAULT_ACCOUNT_ID == ACCOUNT
    prepare_service(
        world.clients.ecs,
        world.clients.autoscaling,
        cluster=world.cluster,
        service=world.service,
        desired=2,
        max_tasks=4,
    )
    return world


def kit_for(world: World, clock: Clock, **overrides: str) -> Toolkit:
    env = {"ALARM_TOPIC_ARN": TOPIC, **overrides}
    kit = make_kit(world, **env)
    ledger = SafetyLedger(kit.dynamodb, world.ledger_table, 30, clock=clock)
    return replace(kit, ledger=ledger)


@pytest.fixture
def kit(site: World, clock: Clock) -> Toolkit:
    return kit_for(site, clock)


def run(kit: Toolkit, event: Any, clock: Clock) -> dict[str, Any]:
    """A change delivered on time: CloudWatch holds the alarm in the state the event reports
    (actions enabled) when the function reads it again."""
    found = alarm_in(event)
    if found is not None and found[1] in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        put_alarm(kit.cloudwatch, found[0], found[1])
    return deliver(kit, event, clock)


def deliver(kit: Toolkit, event: Any, clock: Clock) -> dict[str, Any]:
    """Only the delivery: CloudWatch holds whatever the test put there (a late event)."""
    return handle_event(event, kit, clock=clock)


def service(world: World) -> dict[str, Any]:
    return world.service_desc()


def titles(slack: SlackStub) -> list[str]:
    return [str(body["blocks"][0]["text"]["text"]) for body in slack.bodies]


def all_text(body: dict[str, Any]) -> str:
    parts = [body.get("text", "")]
    for block in body["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(element["text"] for element in block.get("elements", []))
    return "\n".join(parts)


def history(kit: Toolkit) -> list[HistoryEntry]:
    return kit.ledger.read_history(kit.settings.service_key)


# ---- the alert first, then the action, then the follow-up ----------------------------------


def test_an_alarm_is_alerted_with_its_runbook_then_remediated_then_followed_up(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    before = service(site)["deployments"][0]["id"]

    result = run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)

    assert result["status"] == "acted", result
    assert result["action"] == "force-new-deployment"
    assert service(site)["deployments"][0]["id"] != before  # forceNewDeployment
    alert, follow_up = slack.bodies
    assert titles(slack) == [
        ":rotating_light: ALARM: spotops-test-unhealthy-hosts",
        ":wrench: Remediation: force-new-deployment for spotops-test-unhealthy-hosts",
    ]
    text = all_text(alert)
    assert f"Runbook: <{RUNBOOKS}/unhealthy-hosts.md>" in text
    assert "#alarmsV2:alarm/spotops-test-unhealthy-hosts|Open the alarm in CloudWatch>" in text
    assert "*Region:* us-east-1" in text
    assert f"*Account:* {ACCOUNT}" in text
    assert "*Threshold:* &gt;= 1.0 for 3 period(s)" in text  # escaped for mrkdwn
    assert "Reason: Threshold Crossed" in text
    assert f"Runbook: <{RUNBOOKS}/remediation-force-new-deployment.md>" in all_text(follow_up)
    # Recorded, and the lock shared with redeploy and chaos is free again.
    latest = history(kit)[0]
    assert (latest.action, latest.outcome) == ("remediation", "force-new-deployment")
    assert kit.ledger.read_lock(kit.settings.service_key) is None
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 1


def test_cpu_high_scales_out_within_the_autoscaling_maximum(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    first = run(kit, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)
    assert first["status"] == "acted"
    assert site.desired_count() == 3

    # Past the 15-minute cooldown, and spaced so the alarm does not count as flapping.
    clock.advance(31 * 60)
    second = run(kit, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)
    assert second["status"] == "acted"
    assert site.desired_count() == 4

    clock.advance(31 * 60)
    third = run(kit, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)
    assert third["status"] == "not-applicable"
    assert "already runs 4 tasks, the autoscaling maximum (MaxTasks)" in third["reason"]
    assert site.desired_count() == 4
    assert titles(slack)[-1] == ":hand: No remediation for spotops-test-cpu-high: not-applicable"


def test_memory_high_without_autoscaling_is_not_scaled(
    world: World, clock: Clock, slack: SlackStub
) -> None:
    prepare_service(
        world.clients.ecs, None, cluster=world.cluster, service=world.service, desired=2
    )
    result = run(kit_for(world, clock), sns_alarm(f"{PREFIX}memory-high", at=clock()), clock)
    assert result["status"] == "not-applicable"
    assert "autoscaling is off" in result["reason"]
    assert world.desired_count() == 2


def deployed(
    site: World, kit: Toolkit, clock: Clock, *, status: str = "COMPLETED"
) -> tuple[str, str]:
    """The redeploy job deployed v2 over v1 (the ledger's record), now."""
    old = site.run_image(f"{site.repository_uri}@sha256:{'a' * 64}")
    new = site.run_image(f"{site.repository_uri}@sha256:{'b' * 64}")
    kit.ledger.put_deployment(
        kit.settings.service_key,
        {
            "deployment_id": "ecs-svc/77",
            "digest": f"sha256:{'b' * 64}",
            "tag": "v2.0.0",
            "task_definition": new,
            "previous_task_definition": old,
            "status": status,
        },
    )
    return old, new


def test_5xx_soon_after_the_toolkits_deployment_rolls_back_to_the_previous_revision(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    old, _new = deployed(site, kit, clock)
    clock.advance(10 * 60)

    result = run(kit, sns_alarm(f"{PREFIX}target-5xx", at=clock()), clock)

    assert result["status"] == "acted", result
    assert service(site)["taskDefinition"] == old
    record = kit.ledger.read_deployment(kit.settings.service_key)
    assert record is not None
    assert record.status == "ROLLED_BACK"
    assert "rolled back by remediation of spotops-test-target-5xx" in record.reason
    assert titles(slack)[-1].startswith(":wrench: Remediation: rollback")
    assert "v2.0.0" in all_text(slack.bodies[-1])


def test_a_rollback_by_remediation_freezes_pushes_and_says_so(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    deployed(site, kit, clock)
    clock.advance(10 * 60)

    result = run(kit, sns_alarm(f"{PREFIX}target-5xx", at=clock()), clock)

    assert result["status"] == "acted", result
    state = kit.ledger.read_freeze(kit.settings.service_key)
    assert state is not None
    assert (state.frozen, state.by, state.deployment_id) == (True, "remediation", "ecs-svc/77")
    assert state.since == clock()
    assert state.reason == (f"remediation of {PREFIX}target-5xx rolled back deployment ecs-svc/77")
    assert "pushes are now frozen" in all_text(slack.bodies[-1])
    assert "`spotops unfreeze` resumes" in all_text(slack.bodies[-1])


def test_a_dry_run_rollback_by_remediation_freezes_nothing(
    site: World, clock: Clock, slack: SlackStub
) -> None:
    site.set_dry_run("true")
    kit = kit_for(site, clock)
    _, new = deployed(site, kit, clock)
    clock.advance(10 * 60)

    result = run(kit, sns_alarm(f"{PREFIX}target-5xx", at=clock()), clock)

    assert result["status"] == "dry-run", result
    assert service(site)["taskDefinition"] == new
    assert kit.ledger.read_freeze(kit.settings.service_key) is None
    assert "frozen" not in all_text(slack.bodies[-1])


def test_5xx_long_after_the_deployment_is_not_rolled_back(
    kit: Toolkit, site: World, clock: Clock
) -> None:
    _, new = deployed(site, kit, clock)
    clock.advance(3 * 3600)
    result = run(kit, sns_alarm(f"{PREFIX}target-5xx", at=clock()), clock)
    assert result["status"] == "not-applicable"
    assert "more than the 30 min rollback window" in result["reason"]
    assert service(site)["taskDefinition"] == new


def test_a_5xx_that_began_before_the_deployment_completed_is_not_rolled_back(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    _, new = deployed(site, kit, clock)  # completed now

    result = run(kit, sns_alarm(f"{PREFIX}target-5xx", at=clock() - 60), clock)

    assert result["status"] == "not-applicable", result
    assert "the 5xx started 1 min before the last deployment (v2.0.0" in result["reason"]
    assert service(site)["taskDefinition"] == new  # no UpdateService
    record = kit.ledger.read_deployment(kit.settings.service_key)
    assert record is not None
    assert record.status == "COMPLETED"
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 0
    assert titles(slack)[-1] == ":hand: No remediation for spotops-test-target-5xx: not-applicable"


def test_the_first_deploys_placeholder_is_never_rolled_back_to(
    kit: Toolkit, site: World, clock: Clock
) -> None:
    new = site.run_image(f"{site.repository_uri}@sha256:{'b' * 64}")
    kit.ledger.put_deployment(
        kit.settings.service_key,
        {
            "deployment_id": "ecs-svc/1",
            "digest": f"sha256:{'b' * 64}",
            "tag": "v1.0.0",
            "task_definition": new,
            "previous_task_definition": site.bootstrap_td,
            "status": "COMPLETED",
        },
    )
    result = run(kit, sns_alarm(f"{PREFIX}target-5xx", at=clock()), clock)
    assert result["status"] == "not-applicable"
    assert ":bootstrap placeholder" in result["reason"]


# ---- every reason for not acting, each posted as the follow-up ----------------------------


def start_deployment(world: World) -> None:
    """A second deployment rolling out (moto's UpdateService starts none)."""
    from moto.ecs.models import ecs_backends

    svc = ecs_backends[ACCOUNT][REGION].services[f"{world.cluster}:{world.service}"]
    primary = dict(svc.deployments[0])
    svc.deployments = [
        {**primary, "id": "ecs-svc/rolling", "rolloutState": "IN_PROGRESS"},
        {**primary, "status": "ACTIVE"},
    ]


def test_no_action_while_the_kill_switch_is_on(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    site.set_kill_switch("on")
    before = service(site)["deployments"][0]["id"]
    result = run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)
    assert result["status"] == "kill-switch"
    assert "is 'on' (automation stopped)" in result["reason"]
    assert service(site)["deployments"][0]["id"] == before
    assert titles(slack)[1] == (
        ":hand: No remediation for spotops-test-unhealthy-hosts: kill-switch"
    )


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    site.set_dry_run("true")
    result = run(kit, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)
    assert result["status"] == "dry-run"
    assert "would scale servicetest out from 2 to 3 tasks" in result["reason"]
    assert site.desired_count() == 2
    assert titles(slack)[1] == ":test_tube: [dry run] scale-out for spotops-test-cpu-high"
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 0


def test_no_action_while_a_deployment_is_in_progress(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    start_deployment(site)
    result = run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)
    assert result["status"] == "deployment-in-progress"
    assert "ECS is rolling out ecs-svc/rolling" in result["reason"]


def test_no_action_while_the_redeploy_jobs_deployment_is_open(
    kit: Toolkit, site: World, clock: Clock
) -> None:
    deployed(site, kit, clock, status="IN_PROGRESS")
    result = run(kit, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)
    assert result["status"] == "deployment-in-progress"
    assert "the toolkit's deployment of v2.0.0" in result["reason"]


def test_the_same_alarm_cools_down_between_actions(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    assert run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)["status"] == "acted"
    clock.advance(5 * 60)
    run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", "OK", at=clock()), clock)
    clock.advance(5 * 60)
    again = run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)
    assert again["status"] == "cooldown"
    assert "cooling down for another 20 min (once per 30 min)" in again["reason"]
    clock.advance(21 * 60)
    later = run(
        kit, sns_alarm(f"{PREFIX}unhealthy-hosts", "ALARM", old="OK", at=clock() + 1), clock
    )
    assert later["status"] == "acted"


def test_a_spent_budget_escalates_to_a_human_and_stops_acting(
    site: World, clock: Clock, slack: SlackStub
) -> None:
    kit = kit_for(site, clock, REMEDIATION_MAX_PER_HOUR="2")
    assert run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)["status"] == "acted"
    assert run(kit, sns_alarm(f"{PREFIX}cpu-high", at=clock()), clock)["status"] == "acted"

    spent = run(kit, sns_alarm(f"{PREFIX}memory-high", at=clock()), clock)

    assert spent["status"] == "budget"
    assert "escalating to a human" in spent["reason"]
    assert titles(slack)[-1] == ":sos: Escalating to a human: spotops-test-memory-high"
    assert site.desired_count() == 3  # the cpu-high scale-out only
    clock.advance(3600)  # a new UTC hour: a new budget
    assert run(kit, sns_alarm(f"{PREFIX}memory-high", at=clock()), clock)["status"] == "acted"


def test_a_composite_alarm_whose_actions_are_suppressed_is_not_acted_on(
    kit: Toolkit, clock: Clock, slack: SlackStub
) -> None:
    event = eventbridge_alarm(
        f"{PREFIX}site-degraded", at=clock(), fixture="eventBridgeCompositeAlarmStateChange"
    )
    # moto has no composite alarms: a metric alarm of the same name holds the description
    # DescribeAlarms gives back (the EventBridge event of a composite alarm has none).
    kit.cloudwatch.put_metric_alarm(
        AlarmName=f"{PREFIX}site-degraded",
        AlarmDescription=f"Errors and slowness. Runbook: {RUNBOOKS}/target-5xx.md",
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )

    result = run(kit, event, clock)

    assert result["status"] == "suppressed"
    assert "WaitPeriod" in result["reason"]
    alert = all_text(slack.bodies[0])
    assert ":mute: The composite alarm's actions are suppressed" in alert
    assert f"Runbook: <{RUNBOOKS}/target-5xx.md>" in alert  # read back: the event has none
    assert titles(slack)[1].endswith(": suppressed")


def test_an_alarm_without_a_policy_says_so(kit: Toolkit, clock: Clock, slack: SlackStub) -> None:
    result = run(kit, sns_alarm(f"{PREFIX}alb-5xx", at=clock()), clock)
    assert result["status"] == "no-policy"
    assert titles(slack)[1] == ":hand: No remediation for spotops-test-alb-5xx: no-policy"
    assert f"Runbook: <{RUNBOOKS}/alb-5xx.md>" in all_text(slack.bodies[1])


def test_a_service_locked_by_the_redeploy_job_is_not_touched(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    held = kit.ledger.acquire_lock(
        kit.settings.service_key,
        holder="redeploy:sha256:" + "c" * 64,
        action="redeploy",
        ttl_seconds=600,
    )
    assert held.acquired
    before = service(site)["deployments"][0]["id"]

    result = run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)

    assert result["status"] == "locked"
    assert "locked by redeploy (redeploy:sha256:ccc" in result["reason"]
    assert service(site)["deployments"][0]["id"] == before
    assert kit.ledger.read_lock(kit.settings.service_key).holder.startswith("redeploy:")
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 0


def test_redeploy_waits_for_the_lock_a_remediation_holds(
    kit: Toolkit, site: World, clock: Clock
) -> None:
    from chalicelib.redeploy.flow import Image, deploy_image

    kit.ledger.acquire_lock(
        kit.settings.service_key,
        holder="remediation:spotops-test-cpu-high:evt-1",
        action="remediation",
        ttl_seconds=300,
    )
    digest = site.push_image("v9.9.9")
    result = deploy_image(Image(site.repository, digest, "v9.9.9"), kit, trigger="test")
    assert result["status"] == "locked"
    assert "remediation:spotops-test-cpu-high:evt-1" in result["reason"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"account": "210987654321"}, "in account 210987654321, not this stage's 123456789012"),
        ({"region": "eu-west-1"}, "in region eu-west-1, not this stage's us-east-1"),
        ({"topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-elses"}, "not " + TOPIC),
    ],
)
def test_an_alarm_from_elsewhere_is_alerted_with_a_warning_and_never_acted_on(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub, changes: dict[str, str], words: str
) -> None:
    result = run(kit, sns_alarm(f"{PREFIX}cpu-high", at=clock(), **changes), clock)
    assert result["status"] == "foreign"
    assert words in result["reason"]
    assert site.desired_count() == 2
    assert ":warning:" in all_text(slack.bodies[0])
    assert words in all_text(slack.bodies[0])


# ---- delivery: once, whatever the form; OK; no runbook -----------------------------------


def test_one_change_delivered_by_sns_and_eventbridge_and_twice_is_handled_once(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    name = f"{PREFIX}cpu-high"
    first = run(kit, sns_alarm(name, at=clock()), clock)
    twin = run(kit, eventbridge_alarm(name, at=clock()), clock)
    again = run(kit, sns_alarm(name, at=clock()), clock)
    assert first["status"] == "acted"
    assert twin["status"] == again["status"] == "duplicate"
    assert site.desired_count() == 3
    assert len(slack.bodies) == 2  # one alert, one follow-up


def test_ok_says_how_long_the_alarm_lasted(kit: Toolkit, clock: Clock, slack: SlackStub) -> None:
    name = f"{PREFIX}alb-5xx"
    run(kit, sns_alarm(name, at=clock()), clock)
    clock.advance(12 * 60 + 5)
    result = run(kit, sns_alarm(name, "OK", at=clock()), clock)
    assert result["status"] == "alerted"
    assert titles(slack)[-1] == ":white_check_mark: OK: spotops-test-alb-5xx"
    assert "It was in ALARM for *12 min*." in all_text(slack.bodies[-1])


def test_ok_from_eventbridge_knows_the_duration_even_when_the_alarm_was_missed(
    kit: Toolkit, clock: Clock, slack: SlackStub
) -> None:
    event = eventbridge_alarm(f"{PREFIX}cpu-high", "OK", at=clock(), since=clock() - 2 * 3600)
    run(kit, event, clock)
    assert "It was in ALARM for *2 h*." in all_text(slack.bodies[0])


def test_an_alarm_without_a_runbook_links_the_index_with_a_warning(
    kit: Toolkit, clock: Clock, slack: SlackStub, logs: LogLines
) -> None:
    run(kit, sns_alarm(f"{PREFIX}alb-5xx", at=clock(), description="No link here."), clock)
    alert = all_text(slack.bodies[0])
    assert f"Runbook: <{RUNBOOKS}/README.md>" in alert
    assert "has no `Runbook: &lt;url&gt;` link" in alert
    assert "alarm names no runbook; linking the index" in logs.text


def test_each_severity_can_have_its_own_channel(
    site: World, clock: Clock, slack: SlackStub
) -> None:
    critical = SlackStub()
    try:
        site.clients.secretsmanager.create_secret(
            Name="ops/slack-webhook-critical", SecretString=json.dumps({"url": critical.url})
        )
        kit = kit_for(
            site, clock, SLACK_WEBHOOK_SECRETS_BY_SEVERITY="critical=ops/slack-webhook-critical"
        )
        run(kit, sns_alarm(f"{PREFIX}alb-5xx", at=clock()), clock)  # critical
        run(kit, sns_alarm(f"{PREFIX}network-anomaly", at=clock()), clock)  # warning
        assert next(t.split(":", 3)[3].strip() for t in titles(critical)) == (
            "spotops-test-alb-5xx"
        )
        assert len(critical.bodies) == 2  # the alert and its follow-up
        assert [t for t in titles(slack) if "network-anomaly" in t]
        assert not [t for t in titles(slack) if "alb-5xx" in t]
    finally:
        critical.close()


# ---- flapping: one alarm in and out of ALARM 50 times in an hour --------------------------


def test_one_alarm_flapping_50_times_in_an_hour(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    name = f"{PREFIX}unhealthy-hosts"
    results = []
    for flap in range(50):
        at = START + flap * 72
        clock.now = at
        results.append(run(kit, sns_alarm(name, "ALARM", at=at), clock))
        clock.now = at + 36
        results.append(run(kit, sns_alarm(name, "OK", at=at + 36), clock))

    posts = titles(slack)
    alerts = [t for t in posts if t.startswith((":rotating_light:", ":white_check_mark:"))]
    summaries = [t for t in posts if t.startswith(":repeat: Flapping")]
    actions = [t for t in posts if t.startswith(":wrench:")]
    refusals = [t for t in posts if t.startswith(":hand:")]
    assert len(alerts) == 4  # ALARM, OK, ALARM, OK: then it flaps
    assert len(summaries) == 4  # one every 15 minutes over the hour
    assert len(actions) == 2  # force-new-deployment at 0 and after its 30-minute cooldown
    assert len(refusals) == 1  # the second ALARM (cooldown), posted with its alert
    assert len(posts) == 11
    acted = [r for r in results if r["status"] == "acted"]
    assert len(acted) == 2
    # Held: every OK change but the two posted as alerts and the two a summary fell on.
    assert [r["status"] for r in results].count("held") == 50 - 2 - 2
    assert kit.ledger.budget_used(f"remediation:{kit.settings.service_key}") == 2
    assert all(r["status"] != "budget" for r in results)


# ---- Spot: interruptions, placement failures, the shift and its return ---------------------


def spot(site: World, task: str, at: float) -> dict[str, Any]:
    return spot_interruption(site.cluster, site.service, task, at=at)


def test_repeated_spot_interruptions_shift_to_on_demand_and_spot_comes_back(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    statuses = []
    for n in range(4):
        clock.advance(60)
        statuses.append(run(kit, spot(site, f"task{n}", clock()), clock)["status"])

    assert statuses == ["noticed", "noticed", "acted", "noticed"]
    assert service(site)["capacityProviderStrategy"] == ON_DEMAND
    posts = titles(slack)
    assert posts.count(":zap: Spot interruption: servicetest") == 3  # the 4th: counted only
    assert posts[3].startswith(":wrench: Remediation: capacity-shift for 3 Spot interruptions")
    assert "spot-interruption.md" in all_text(slack.bodies[0])
    # Chaos counts its minimum gap from the last interruption.
    last = ChaosRecords(kit.dynamodb, site.ledger_table).last_kill(kit.settings.service_key)
    assert last is not None
    assert last.kind == "spot"
    assert last.task_arn.endswith("task3")

    clock.advance(30 * 60)
    waiting = run(kit, scheduled("check-1"), clock)
    assert waiting["status"] == "waiting"
    assert "before Spot is tried again" in waiting["reason"]

    clock.advance(31 * 60)
    back = run(kit, scheduled("check-2"), clock)
    assert back["status"] == "acted", back
    assert service(site)["capacityProviderStrategy"] == SPOT_STRATEGY
    assert titles(slack)[-1].startswith(":wrench: Remediation: capacity-return")
    assert run(kit, scheduled("check-3"), clock)["status"] == "not-shifted"


def test_the_same_interruption_twice_counts_once(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    event = spot(site, "task0", clock())
    run(kit, event, clock)
    warning = spot(site, "task0", clock())  # the two-minute warning, then the stop
    warning["id"] = "another-event-for-the-same-task"
    assert run(kit, warning, clock)["status"] == "duplicate"
    assert len(slack.bodies) == 1


def test_a_placement_failure_on_spot_shifts_at_once(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    result = run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)
    assert result["status"] == "acted"
    assert service(site)["capacityProviderStrategy"] == ON_DEMAND
    assert titles(slack) == [
        ":no_entry_sign: Task placement failed: servicetest",
        ":wrench: Remediation: capacity-shift for Spot placement failure of servicetest",
    ]
    clock.advance(60)
    again = run(
        kit, placement_failure(site.cluster, site.service, at=clock(), event_id="p-2"), clock
    )
    assert again["status"] == "already-shifted"
    assert len(slack.bodies) == 2
    # The trouble restarts the quiet period before Spot is tried again.
    clock.advance(59 * 60 + 30)
    assert run(kit, scheduled(), clock)["status"] == "waiting"


def test_a_placement_failure_on_fargate_is_alerted_not_shifted(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    event = placement_failure(site.cluster, site.service, at=clock(), provider="FARGATE")
    result = run(kit, event, clock)
    assert result["status"] == "alerted"
    assert service(site)["capacityProviderStrategy"] == SPOT_STRATEGY
    assert "not a Spot shortage" in all_text(slack.bodies[0])


def test_a_strategy_put_back_by_hand_ends_the_shift(
    kit: Toolkit, site: World, clock: Clock
) -> None:
    run(kit, placement_failure(site.cluster, site.service, at=clock()), clock)
    site.clients.ecs.update_service(
        cluster=site.cluster, service=site.service, capacityProviderStrategy=SPOT_STRATEGY
    )
    clock.advance(2 * 3600)
    assert run(kit, scheduled(), clock)["status"] == "returned-by-hand"
    assert run(kit, scheduled("again"), clock)["status"] == "not-shifted"


# ---- bad input and faults: logged with the reason, never raised, never a storm -------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({}, "not an alarm or an event this function handles"),
        ("hello", "not an object"),
        (None, "not an object"),
        ({"Records": []}, "Records is empty"),
        ({"Records": [{"Sns": {"Message": "{", "Subject": "Hello"}}]}, "not valid JSON"),
        ({"Records": [{"Sns": {"Message": '{"Hello": 1}'}}]}, "not an alarm notification"),
        (
            {
                "source": "aws.cloudwatch",
                "detail-type": "CloudWatch Alarm State Change",
                "detail": {},
            },
            "detail.alarmName is missing",
        ),
    ],
)
def test_bad_input_is_logged_with_its_reason_and_not_raised(
    kit: Toolkit, clock: Clock, slack: SlackStub, logs: LogLines, raw: Any, words: str
) -> None:
    result = run(kit, raw, clock)
    assert result["status"] == "ignored"
    assert words in result["reason"]
    assert words in logs.text
    assert slack.bodies == []


def test_a_truncated_alarm_message_is_still_alerted_but_not_acted_on(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    event = sns_alarm(f"{PREFIX}cpu-high", at=clock())
    sns = event["Records"][0]["Sns"]
    sns["Message"] = sns["Message"][:120]
    result = run(kit, event, clock)
    assert result["status"] == "foreign"
    assert "could not be read (the SNS message is not valid JSON" in result["reason"]
    assert titles(slack)[0] == ":rotating_light: ALARM: spotops-test-cpu-high"
    assert f"Runbook: <{RUNBOOKS}/README.md>" in all_text(slack.bodies[0])
    assert site.desired_count() == 2


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (
            lambda site, at: spot_interruption("other-cluster", site.service, "t1", at=at),
            "cluster other-cluster",
        ),
        (
            lambda site, at: placement_failure(site.cluster, "other-service", at=at),
            "other-service is not",
        ),
    ],
)
def test_events_about_other_services_are_ignored(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub, event: Any, words: str
) -> None:
    result = run(kit, event(site, clock()), clock)
    assert result["status"] == "ignored"
    assert words in result["reason"]
    assert slack.bodies == []


@pytest.mark.parametrize(
    ("fault", "words"), [("throttle", "throttled"), ("denied", "access denied")]
)
def test_a_remediation_call_that_fails_is_reported_once_and_not_retried(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub, fault: str, words: str
) -> None:
    faults = Faults(step="ecs.update_service", fault=fault)
    faulty = replace(kit, ecs=FaultyClient(kit.ecs, "ecs", faults))

    result = run(faulty, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)

    assert result["status"] == "failed"
    assert site.desired_count() == 2
    assert titles(slack)[-1].startswith(":x: Remediation failed: scale-out")
    assert words in all_text(slack.bodies[-1])
    assert kit.ledger.read_lock(kit.settings.service_key) is None
    # The next delivery of the same change does not try again.
    assert run(faulty, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)["status"] == (
        "duplicate"
    )


def test_a_lost_answer_is_checked_with_ecs_before_calling_it_a_failure(
    kit: Toolkit, site: World, clock: Clock
) -> None:
    faults = Faults(step="ecs.update_service", fault="lost-reply")
    faulty = replace(kit, ecs=FaultyClient(kit.ecs, "ecs", faults))
    result = run(faulty, eventbridge_alarm(f"{PREFIX}cpu-high", at=clock()), clock)
    assert result["status"] == "acted"
    assert site.desired_count() == 3


def test_an_unreadable_ledger_still_alerts_and_does_not_act(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    site.clients.dynamodb.delete_table(TableName=site.ledger_table)
    result = run(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)
    assert result["status"] == "unreadable"
    assert titles(slack) == [
        ":rotating_light: ALARM: spotops-test-unhealthy-hosts",
        ":hand: No remediation for spotops-test-unhealthy-hosts: unreadable",
    ]


# ---- late and out of order: order by the change's own time, act on the present -------------


NIGHT = datetime(2026, 11, 28, 2, 5, tzinfo=UTC).timestamp()  # the ALARM began at 02:05
RECOVERED = NIGHT + 300  # and was OK again at 02:10
SINCE_0210 = "alarm already OK since 2026-11-28 02:10:00 UTC"


def nothing_changed(kit: Toolkit, site: World, deployment_before: str) -> None:
    """No UpdateService, no budget counted, no cooldown started, no history, no lock."""
    svc = kit.settings.service_key
    assert service(site)["deployments"][0]["id"] == deployment_before
    assert site.desired_count() == 2
    assert kit.ledger.budget_used(f"remediation:{svc}") == 0
    assert kit.ledger.cooldown_remaining(svc, "remediation:unhealthy-hosts") == 0
    assert [h for h in history(kit) if h.action == "remediation"] == []
    assert kit.ledger.read_lock(svc) is None


@pytest.mark.parametrize("form", [sns_alarm, eventbridge_alarm])
def test_a_late_alarm_older_than_the_recorded_ok_changes_nothing(
    site: World, clock: Clock, slack: SlackStub, form: Any
) -> None:
    """ALARM at 02:05, OK at 02:10: the OK is delivered first, the ALARM late (a retry)."""
    clock.now = NIGHT + 25 * 60
    kit = kit_for(site, clock)
    name = f"{PREFIX}unhealthy-hosts"
    before = service(site)["deployments"][0]["id"]
    put_alarm(kit.cloudwatch, name, "OK", since=RECOVERED)
    assert deliver(kit, form(name, "OK", at=RECOVERED), clock)["status"] == "alerted"

    late = deliver(kit, form(name, "ALARM", at=NIGHT), clock)
    again = deliver(kit_for(site, clock), form(name, "ALARM", at=NIGHT), clock)  # twice

    assert late["status"] == "stale", late
    assert SINCE_0210 in late["reason"]
    assert again["status"] == "duplicate"
    nothing_changed(kit, site, before)
    # The newer OK stays the alarm's recorded state.
    records = RemediationRecords(kit.dynamodb, site.ledger_table)
    recorded = records.alarm_history(name)
    assert (recorded.state, recorded.since, recorded.last_at) == ("OK", RECOVERED, RECOVERED)
    assert recorded.entries == ()  # the late ALARM is not counted as flapping either
    # The late alert says so, and the follow-up says what was refused and why: once.
    assert titles(slack) == [
        ":white_check_mark: OK: spotops-test-unhealthy-hosts",
        ":rotating_light: ALARM: spotops-test-unhealthy-hosts",
        ":hand: No remediation for spotops-test-unhealthy-hosts: stale",
    ]
    assert "Delivered late" in all_text(slack.bodies[1])
    assert SINCE_0210 in all_text(slack.bodies[2])


def test_an_alarm_over_when_read_again_is_not_remediated(
    site: World, clock: Clock, slack: SlackStub
) -> None:
    """The OK has not arrived (or its record expired): CloudWatch, read again, says OK."""
    clock.now = NIGHT + 25 * 60
    kit = kit_for(site, clock)
    name = f"{PREFIX}unhealthy-hosts"
    before = service(site)["deployments"][0]["id"]
    put_alarm(kit.cloudwatch, name, "OK", since=RECOVERED)

    result = deliver(kit, sns_alarm(name, "ALARM", at=NIGHT), clock)

    assert result["status"] == "alarm-over", result
    assert SINCE_0210 in result["reason"]
    nothing_changed(kit, site, before)
    assert titles(slack) == [
        ":rotating_light: ALARM: spotops-test-unhealthy-hosts",
        ":hand: No remediation for spotops-test-unhealthy-hosts: alarm-over",
    ]
    assert SINCE_0210 in all_text(slack.bodies[1])


@pytest.mark.parametrize("form", [sns_alarm, eventbridge_alarm])
def test_a_muted_alarm_is_alerted_but_not_remediated(
    site: World, clock: Clock, slack: SlackStub, form: Any
) -> None:
    """On-call disabled the alarm's actions for maintenance; CloudWatch still sends its state
    changes to EventBridge (and a late SNS delivery may still come)."""
    kit = kit_for(site, clock)
    name = f"{PREFIX}unhealthy-hosts"
    before = service(site)["deployments"][0]["id"]
    put_alarm(kit.cloudwatch, name, "ALARM", actions_enabled=False)

    result = deliver(kit, form(name, at=clock()), clock)

    assert result["status"] == "actions-disabled", result
    assert "the alarm's actions are disabled" in result["reason"]
    nothing_changed(kit, site, before)
    assert titles(slack) == [
        ":rotating_light: ALARM: spotops-test-unhealthy-hosts",  # the alert still goes out
        ":hand: No remediation for spotops-test-unhealthy-hosts: actions-disabled",
    ]
    follow_up = all_text(slack.bodies[1])
    assert "the alarm's actions are disabled" in follow_up
    assert "so nothing was done" in follow_up

    # Actions enabled again: the next change is acted on.
    kit.cloudwatch.enable_alarm_actions(AlarmNames=[name])
    clock.advance(3600)
    again = deliver(kit, form(name, at=clock()), clock)
    assert again["status"] == "acted", again
    assert service(site)["deployments"][0]["id"] != before


def test_an_alarm_cloudwatch_does_not_know_is_not_remediated(
    kit: Toolkit, site: World, clock: Clock, slack: SlackStub
) -> None:
    before = service(site)["deployments"][0]["id"]
    result = deliver(kit, sns_alarm(f"{PREFIX}unhealthy-hosts", at=clock()), clock)
    assert result["status"] == "unreadable", result
    assert "not found in CloudWatch" in result["reason"]
    nothing_changed(kit, site, before)


def test_counts_are_published_as_metrics(kit: Toolkit, site: World, clock: Clock) -> None:
    run(kit, spot(site, "task0", clock()), clock)
    run(kit, {"Records": []}, clock)
    names = {m for m in metrics.metric_set}
    assert {"SpotInterruptions", "EventsIgnored"} <= names
