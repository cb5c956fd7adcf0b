"""End to end: scheduled chaos as it ships.

``spotops deploy`` puts the chaos function, its hourly rule, its role and the chaos leash
(created ``on``) into the moto server with the rest of the ops stack. The handler is then
imported from the deployed zip and run, under moto's IAM enforcement, holding only its own
policy (conditions stripped: moto does not evaluate them; ``tests/integration/ops/
test_package.py`` asserts them on the template).

The emulator starts no tasks for a service, so the tests start the site's tasks themselves
(``run_task`` in the service's group, kept RUNNING by moto's state manager) and register
targets for them; they also tag the service and put back its load balancer, both of which
moto's CloudFormation drops. The function
runs with its deployed environment except for the window (open all week, so the test does
not depend on the hour it runs at) and, when it kills, a one-second recovery threshold: the
emulator never replaces the task, and the subprocess really waits.
"""

from __future__ import annotations

import copy
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spotops.local.site import steady_site as put_steady_site
from tests.support.events import load_event
from tests.support.iam import enforced_iam, principal_with_policy
from tests.support.ops_stage import APP, STAGE, Stage, deployed_stage, spotops
from tests.support.packaged_handler import invoke
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator

FUNCTION = "chaos_tick"
# The budget guard off: the emulator has no load balancer metrics, and moto no PR() statistic.
OPEN_WINDOW = {
    "CHAOS_WINDOW_DAYS": "mon-sun",
    "CHAOS_WINDOW_HOURS": "0-24",
    "CHAOS_MIN_BUDGET_PERCENT": "0",
}
QUICK_RECOVERY = {"CHAOS_RECOVERY_TIMEOUT_SECONDS": "1", "CHAOS_POLL_SECONDS": "1"}


def _moto_api(emulator: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{emulator}/moto-api/state-manager/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Iterator[Stage]:
    _moto_api(
        emulator,
        "set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
    try:
        yield deployed_stage(emulator, tmp_path)
    finally:
        _moto_api(emulator, "unset-transition", {"model_name": "ecs::task"})


def _without_conditions(policy: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(policy)
    for statement in document["Statement"]:
        statement.pop("Condition", None)
    return document


def steady_site(stage: Stage, tasks: int = 2) -> list[str]:
    """The site as an operator who opted it in would have it (``spotops.local.site``)."""
    return put_steady_site(stage.client("ecs"), stage.client("elbv2"), stage.site, tasks)


def stopped_tasks(stage: Stage) -> dict[str, str]:
    ecs = stage.client("ecs")
    cluster = stage.site["ClusterName"]
    arns = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return {}
    described = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    return {t["taskArn"]: t.get("stoppedReason", "") for t in described}


def run_chaos(
    stage: Stage,
    run_id: str,
    credentials: dict[str, str] | None = None,
    **overrides: str,
) -> dict[str, Any]:
    event = load_event("scheduledEvent")
    event["id"] = run_id
    env = {**stage.environment(FUNCTION, credentials), **OPEN_WINDOW, **overrides}
    return invoke(stage.zip_dir, FUNCTION, event, env, stage.tmp_path)


def site_result(ran: dict[str, Any], stage: Stage) -> dict[str, Any]:
    key = f"{stage.site['ClusterName']}/{stage.site['ServiceName']}"
    (found,) = [s for s in ran["result"]["services"] if s["service"] == key]
    return found


# ---- the deploy ------------------------------------------------------------------------------


def test_the_ops_stack_deploys_the_chaos_function_its_schedule_and_leash_leashed(
    stage: Stage,
) -> None:
    function = stage.function(FUNCTION)
    env = function["Environment"]["Variables"]
    assert function["Handler"] == f"app.{FUNCTION}"
    assert function["Timeout"] == 900
    assert env["CHAOS_LEASH_PARAMETER"] == stage.ops["ChaosLeashParameterName"]
    assert env["CHAOS_LEASH_PARAMETER"] == f"/{APP}/{STAGE}/chaos-leash"
    leash = stage.client("ssm").get_parameter(Name=env["CHAOS_LEASH_PARAMETER"])["Parameter"]
    assert leash["Value"] == "on"
    assert (env["CHAOS_WINDOW_DAYS"], env["CHAOS_WINDOW_HOURS"], env["CHAOS_TIME_ZONE"]) == (
        "mon-fri",
        "9-17",
        "UTC",
    )
    events = stage.client("events")
    (rule,) = [
        r for r in events.list_rules()["Rules"] if r.get("ScheduleExpression") == "rate(60 minutes)"
    ]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == function["FunctionArn"]
    assert target["DeadLetterConfig"]["Arn"].endswith(f":{APP}-{STAGE}-events-dlq")
    assert function["Role"] not in {stage.function(n)["Role"] for n in ("redeploy_on_push",)}
    (group,) = stage.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{APP}-{STAGE}-{FUNCTION}"
    )["logGroups"]
    assert group["retentionInDays"] == 7  # config/dev.json LogRetentionDays


# ---- as shipped, under IAM enforcement ----------------------------------------------------------


def test_chaos_runs_leashed_then_kills_holding_only_its_own_policy(
    stage: Stage, slack: SlackStub
) -> None:
    hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert hook.returncode == 0, hook.stderr
    tasks = steady_site(stage)
    credentials = principal_with_policy(
        stage.client("iam"), "ops-chaos", _without_conditions(stage.role_policy(FUNCTION))
    )

    with enforced_iam(stage.emulator):
        leashed = run_chaos(stage, "run-leashed", credentials)
    assert leashed["result"]["status"] == "leashed", leashed["logs"]
    assert stopped_tasks(stage) == {}

    unleash = spotops(stage.project, stage.emulator, "chaos-leash", "off", "--stage", STAGE)
    assert unleash.returncode == 0, unleash.stderr
    assert unleash.stdout.strip() == "off"
    with enforced_iam(stage.emulator):
        killed = run_chaos(stage, "run-kill", credentials, **QUICK_RECOVERY)

    result = site_result(killed, stage)
    assert killed["result"]["status"] == "killed", killed["logs"]
    assert result["status"] == "not-recovered"  # the emulator never replaces a task
    ((stopped, reason),) = stopped_tasks(stage).items()
    assert stopped == result["task"]
    assert stopped in tasks
    assert reason.startswith(f"spotops chaos run run-kill ({APP}-{STAGE})")
    for ran in (leashed, killed):
        assert "AccessDenied" not in ran["logs"]
        assert ran["origins"]["chalicelib"].startswith(str(stage.zip_dir))
    assert [text.split(" ", 1)[0] for text in slack.texts()] == [":dog2:", ":boom:", ":x:"]


def test_a_policy_without_stop_task_fails_the_kill_and_stops_nothing(
    stage: Stage, slack: SlackStub
) -> None:
    steady_site(stage)
    policy = _without_conditions(stage.role_policy(FUNCTION))
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"] != "ecs:StopTask"]
    credentials = principal_with_policy(stage.client("iam"), "ops-chaos-short", policy)
    stage.client("ssm").put_parameter(
        Name=f"/{APP}/{STAGE}/chaos-leash", Value="off", Type="String", Overwrite=True
    )

    with enforced_iam(stage.emulator):
        ran = run_chaos(stage, "run-denied", credentials, **QUICK_RECOVERY)

    result = site_result(ran, stage)
    assert result["status"] == "failed", ran["logs"]
    assert "AccessDeniedException" in result["reason"]
    assert stopped_tasks(stage) == {}


# ---- spotops chaos --dry-run against the emulator -------------------------------------------


def test_spotops_chaos_dry_run_prints_every_guard_and_never_stops_a_task(stage: Stage) -> None:
    steady_site(stage)
    stage.client("ssm").put_parameter(
        Name=f"/{APP}/{STAGE}/chaos-leash", Value="off", Type="String", Overwrite=True
    )

    done = spotops(
        stage.project,
        stage.emulator,
        "chaos",
        "--dry-run",
        "--stage",
        STAGE,
        "--at",
        "2026-12-02T10:00:00Z",  # a Wednesday inside the deployed mon-fri 9-17 UTC window
        "--seed",
        "by-hand",
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"Chaos decision of {APP}-{STAGE}-chaos_tick at 2026-12-02 10:00:00Z "
        "(dry run: nothing is stopped)"
    )
    assert "Leash: unleashed" in done.stdout
    site = f"{stage.site['ClusterName']}/{stage.site['ServiceName']}"
    start = lines.index(f"{site}  (seed by-hand/{site})")
    verdicts = lines[start + 1 : start + 14]
    assert [line.split()[1] for line in verdicts] == [
        "opt-in",
        "window",
        "freeze",
        "min-gap",
        "probability",
        "kill-switch",
        "lock",
        "running",
        "deployment",
        "targets",
        "alarms",
        "budget",
        "headroom",
    ]
    # The deployed function gates on the error budget (ChaosMinBudgetPercent 25), and the
    # emulator's load balancer has no metrics: unknown, so the guard refuses (fail safe).
    assert lines[3].startswith("Error budget: at least 25% left of each objective (availability ")
    assert [line.split()[0] for line in verdicts if line.split()[1] != "budget"] == ["PASS"] * 12
    (budget,) = [line for line in verdicts if line.split()[1] == "budget"]
    assert budget.split(None, 2)[2] == (
        "cannot evaluate (availability budget unknown: no RequestCount data over 30 d); not killing"
    )
    assert lines[start + 14] == "  => no kill: 1 guard(s) refused"
    assert stopped_tasks(stage) == {}

    refused = spotops(stage.project, stage.emulator, "chaos", "--stage", STAGE)
    assert refused.returncode == 2
    assert "pass --dry-run" in refused.stderr
