"""The row decisions of ``spotops doctor``: each broken case fails (or warns) with the advice
that gets out of it, and a runbook that exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spotops.proof import doctor_rows as decide
from spotops.proof.doctor_rows import OtherStage, StackFacts
from spotops.proof.rows import State
from spotops.reports.cost import peak_vcpu

RUNBOOKS = Path(__file__).resolve().parents[4] / "runbooks"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _peak(tasks: int, *, spot_weight: int = 1, on_demand_weight: int = 0, cpu: int = 1024):
    return peak_vcpu(
        steady_tasks=tasks,
        steady_source="MaxTasks",
        task_cpu=cpu,
        strategy="ROLLING",
        maximum_percent=200,
        base=0,
        on_demand_weight=on_demand_weight,
        spot_weight=spot_weight,
    )


# ---- quotas ------------------------------------------------------------------------------


def _quota(quota, *, spot=True, others=(), proves=True, error=""):
    return decide.quota_row(
        spot=spot,
        stage="dev",
        region="eu-west-1",
        own=_peak(4),  # 4 tasks of 1 vCPU, doubled while deploying: 8 vCPU on Spot
        others=others,
        quota=quota,
        error=error,
        proves_account=proves,
    )


@pytest.mark.parametrize(
    ("quota", "state"),
    [(100.0, State.OK), (10.0, State.OK), (9.0, State.WARN), (8.0, State.WARN), (7.0, State.FAIL)],
)
def test_spot_quota_against_the_stages_peak(quota, state):
    assert _quota(quota).state is state


def test_quota_below_need_fails_with_the_increase_command_for_the_missing_vcpu():
    row = _quota(7.0)

    assert row.state is State.FAIL
    assert (
        "aws service-quotas request-service-quota-increase --service-code fargate "
        "--quota-code L-36FBB829 --desired-value 8 --region eu-west-1" in row.advice
    )
    assert "SpotWeight" in row.advice
    assert row.runbook == "running-tasks-below-desired.md"


def test_other_deployed_stages_count_against_the_same_quota():
    others = [OtherStage("prod", _peak(6)), OtherStage("old", None)]

    row = _quota(19.0, others=others)  # 8 + 12 = 20 > 19

    assert row.state is State.FAIL
    assert "prod 12" in row.detail
    assert "not counted (parameters unreadable): old" in row.detail


def test_on_demand_quota_counts_only_the_on_demand_share():
    assert _quota(0.0, spot=False).state is State.OK  # all tasks on Spot: nothing needed


def test_an_unreadable_quota_warns_and_the_emulator_says_so():
    unreadable = _quota(None, error="AccessDeniedException: no")
    assert (unreadable.state, "servicequotas:GetServiceQuota" in unreadable.advice) == (
        State.WARN,
        True,
    )
    assert _quota(None, proves=False).state is State.EMULATOR


# ---- stacks ------------------------------------------------------------------------------


def _stack(status, *, minutes=5, resource="", reason=""):
    facts = StackFacts(
        "spotops-dev-site",
        status,
        last_change=NOW - timedelta(minutes=minutes),
        failed_resource=resource,
        failed_reason=reason,
    )
    return decide.stack_row(
        "site", "spotops-dev-site", facts, stage="dev", region="us-east-1", now=NOW
    )


@pytest.mark.parametrize(
    ("status", "minutes", "state", "advice"),
    [
        ("CREATE_COMPLETE", 5, State.OK, ""),
        ("UPDATE_ROLLBACK_COMPLETE", 5, State.OK, ""),
        (
            "ROLLBACK_COMPLETE",
            5,
            State.FAIL,
            "aws cloudformation delete-stack --stack-name spotops-dev-site --region us-east-1",
        ),
        (
            "UPDATE_ROLLBACK_FAILED",
            5,
            State.FAIL,
            "aws cloudformation continue-update-rollback --stack-name spotops-dev-site "
            "--region us-east-1 --resources-to-skip Service",
        ),
        (
            "DELETE_FAILED",
            5,
            State.FAIL,
            "delete-stack --stack-name spotops-dev-site --region us-east-1 "
            "--retain-resources Service",
        ),
        ("ROLLBACK_FAILED", 5, State.FAIL, "can only be deleted"),
        ("UPDATE_IN_PROGRESS", 20, State.WARN, "spotops status"),
        (
            "UPDATE_IN_PROGRESS",
            61,
            State.FAIL,
            "aws cloudformation cancel-update-stack --stack-name spotops-dev-site",
        ),
        ("CREATE_IN_PROGRESS", 90, State.FAIL, "this stops the creation"),
        ("UPDATE_ROLLBACK_IN_PROGRESS", 90, State.FAIL, "cannot be cancelled"),
    ],
)
def test_stack_states_and_their_way_out(status, minutes, state, advice):
    row = _stack(status, minutes=minutes, resource="Service", reason="Service did not stabilize")

    assert row.state is state
    assert advice in row.advice
    if state is State.FAIL:
        assert row.runbook == "deploy-failed.md"
        assert "Service: Service did not stabilize" in row.detail


def test_a_stack_not_created_yet_passes():
    row = decide.stack_row("ops", "spotops-dev-ops", None, stage="dev", region="r", now=NOW)
    assert (row.state, "not deployed yet" in row.detail) == (State.OK, True)


# ---- layer -------------------------------------------------------------------------------


def _layer(description, error=""):
    return decide.layer_row(
        arn="arn:aws:lambda:us-east-1:017000801446:layer:L:99",
        description=description,
        error=error,
        pinned="3.37.0",
        chosen_by="the ops stack's PowertoolsLayerVersion 99",
        proves_account=True,
    )


def test_an_absent_layer_version_fails_with_the_way_to_the_right_one():
    row = _layer(None, "ResourceNotFoundException: not found")

    assert row.state is State.FAIL
    assert "/aws/service/powertools/python/x86_64/python3.11/3.37.0" in row.advice
    assert "PowertoolsLayerArn" in row.advice


@pytest.mark.parametrize(
    ("description", "state"),
    [
        ("Powertools for AWS Lambda (Python) V3 [x86_64] version 3.37.0", State.OK),
        ("Powertools for AWS Lambda (Python) V3 [x86_64] version 3.23.0", State.WARN),
    ],
)
def test_the_layer_must_hold_the_pinned_version(description, state):
    assert _layer(description).state is state


# ---- slack, runbooks, scanning -----------------------------------------------------------


def _webhook(url_set=True, status=200, *, send_test=True, sent=True, proves=True, error=""):
    return decide.webhook_row(
        secret="spotops/dev/slack-webhook",
        url_set=url_set,
        error="",
        sent_status=status,
        send_error=error,
        send_test=send_test,
        sent=sent,
        stage="dev",
        proves_account=proves,
    )


@pytest.mark.parametrize(
    ("row", "state", "says"),
    [
        (_webhook(url_set=False, send_test=False), State.FAIL, "holds no URL"),
        (_webhook(url_set=None), State.FAIL, "could not be read"),
        (_webhook(status=404), State.FAIL, "answered 404"),
        (_webhook(status=None, error="ConnectionRefusedError"), State.FAIL, "ConnectionRefused"),
        (_webhook(send_test=False), State.OK, "holds a URL"),
        (_webhook(), State.OK, "delivered (200)"),
        (_webhook(proves=False), State.EMULATOR, "delivered (200)"),
        (_webhook(proves=False, sent=False), State.EMULATOR, "not posted"),
    ],
)
def test_webhook_rows(row, state, says):
    assert row.state is state
    assert says in row.detail
    if state is State.FAIL:
        assert "spotops slack-webhook set --stage dev" in row.advice
        assert row.runbook == "slack-webhook-missing.md"


@pytest.mark.parametrize(
    ("status", "state"), [(200, State.OK), (404, State.FAIL), (None, State.FAIL)]
)
def test_runbook_url_answers_or_fails(status, state):
    row = decide.runbook_url_row(
        url="https://example.com/runbooks/ops-dead-letters.md",
        status=status,
        error="URLError: timed out",
        fetched=True,
        proves_account=True,
    )
    assert row.state is state
    if state is State.FAIL:
        assert "RunbookBaseUrl" in row.advice


def test_scanning_names_the_rule_that_fires():
    assert "ECR Image Scan rule reaches" in decide.scanning_row("BASIC", "").detail
    assert "InspectorFindings rule" in decide.scanning_row("ENHANCED", "").detail
    assert decide.scanning_row(None, "AccessDeniedException").state is State.WARN


# ---- dead letters, switches, account --------------------------------------------------------


@pytest.mark.parametrize(("depth", "state"), [(0, State.OK), (3, State.WARN), (None, State.WARN)])
def test_dead_letters_warn_when_messages_wait(depth, state):
    row = decide.dead_letter_row("slack", "spotops-dev-slack-dlq", depth, "AccessDenied")
    assert (row.state, row.runbook) == (state, "ops-dead-letters.md")


@pytest.mark.parametrize(
    ("switch", "value", "says"),
    [
        ("kill-switch", "on", "stopped"),
        ("dry-run", "true", "only reports"),
        ("chaos-leash", "off", "chaos stops tasks"),
    ],
)
def test_switches_state_what_they_mean(switch, value, says):
    row = decide.switch_row(switch, f"/spotops/dev/{switch}", value, "dev")
    assert (row.state, says in row.detail) == (State.OK, True)
    assert decide.switch_row(switch, "/x", None, "dev").state is State.WARN


def test_a_missing_service_linked_role_warns_with_the_command_an_administrator_runs():
    row = decide.service_linked_role_row(False)
    assert row.state is State.WARN
    assert "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com" in row.advice
    assert decide.service_linked_role_row(True).state is State.OK


def test_fargate_spot_on_the_cluster_or_as_ecs_lists_it():
    def spot(providers, offered, proves=True):
        return decide.fargate_spot_row(
            cluster="c",
            cluster_providers=providers,
            offered=offered,
            region="r",
            proves_account=proves,
        ).state

    assert spot(["FARGATE", "FARGATE_SPOT"], None) is State.OK
    assert spot(["FARGATE"], None) is State.FAIL
    assert spot(None, "ACTIVE") is State.OK
    assert spot(None, "MISSING") is State.WARN
    assert spot(None, None, proves=False) is State.EMULATOR


def test_credentials_rows():
    identity = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/x"}
    assert decide.credentials_row(identity, "", region="r", proves_account=True).state is State.OK
    assert decide.credentials_row(None, "Expired", region="r", proves_account=True).state is (
        State.FAIL
    )
    assert decide.credentials_row(identity, "", region="r", proves_account=False).state is (
        State.EMULATOR
    )


def test_config_problem_fails():
    row = decide.config_row("dev", "TaskCpu 300 is not a Fargate size")
    assert (row.state, "config/dev.json" in row.advice) == (State.FAIL, True)


def test_every_runbook_a_row_names_exists():
    names = [value for key, value in vars(decide).items() if key.startswith("RUNBOOK_")]
    assert names
    assert all((RUNBOOKS / name).is_file() for name in names)
