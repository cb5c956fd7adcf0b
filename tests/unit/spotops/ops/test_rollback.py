"""``spotops rollback``'s decisions (pure), and the CANARY path that stops the deployment in
progress with ``ROLLBACK`` (ECS's ListServiceDeployments, StopServiceDeployment and
DescribeServiceDeployments through botocore's Stubber, which moto lacks; the rest in moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

import spotops.lambda_code  # noqa: F401
from spotops.errors import UsageError
from spotops.ops import freeze as freezing
from spotops.ops import rollback as rb

# isort: split
from chalicelib.ledger import DeploymentRecord, DeploymentStatus, Freeze, ImageRecord, Lock

FAMILY = "spotops-dev-site"
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/spotops-dev-site:{}"
DIGEST = "sha256:" + "ab" * 32
AT_14_02 = datetime(2026, 12, 7, 14, 2, tzinfo=UTC).timestamp()


def record(current: int, previous: int | None) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id="ecs-svc/1",
        digest=DIGEST,
        tag="v2",
        status=DeploymentStatus("COMPLETED"),
        task_definition=ARN.format(current),
        previous_task_definition=ARN.format(previous) if previous else "",
    )


# ---- --to --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (None, "previous", ""),
        ("  ", "previous", ""),
        ("spotops-dev-site:7", "revision", "spotops-dev-site:7"),
        ("7", "revision", "spotops-dev-site:7"),
        ("007", "revision", "spotops-dev-site:7"),
        (ARN.format(7), "revision", "spotops-dev-site:7"),
        (DIGEST, "digest", DIGEST),
        ("v1.0.0", "tag", "v1.0.0"),
        ("a" * 128, "tag", "a" * 128),
    ],
)
def test_every_form_of_to_is_read(text: str | None, kind: str, value: str) -> None:
    assert rb.parse_to(text, FAMILY) == rb.Wanted(kind, value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("other-family:3", "revision of family other-family"),
        (ARN.format(3).replace("spotops-dev-site", "other"), "revision of family other"),
        ("sha256:abc", "64 lowercase hex digits"),
        ("a" * 129, "is not a revision"),
        ("-v1", "is not a revision"),
        ("v 1", "is not a revision"),
    ],
)
def test_a_bad_to_is_refused_naming_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as raised:
        rb.parse_to(text, FAMILY)
    assert raised.value.exit_code == 2


# ---- what ran before -----------------------------------------------------------------------


def test_the_previous_revision_is_the_ledgers_when_it_knows_the_current_one() -> None:
    assert rb.previous_revision(ARN.format(5), record(5, 4), None) == ARN.format(4)


def test_a_planned_freeze_does_not_stop_a_rollback_without_to() -> None:
    planned = Freeze(True, AT_14_02, "launch", "freeze-command")
    assert rb.previous_revision(ARN.format(5), record(5, 4), planned) == ARN.format(4)


@pytest.mark.parametrize("by", ["rollback-command", "remediation", "ecs"])
def test_without_to_a_second_rollback_after_one_is_refused(by: str) -> None:
    frozen = Freeze(True, AT_14_02, "rolled back to spotops-dev-site:4 by spotops rollback", by)
    with pytest.raises(UsageError) as raised:
        rb.previous_revision(ARN.format(4), record(5, 4), frozen)
    said = str(raised.value)
    assert "Already rolled back at 14:02 UTC (rolled back to spotops-dev-site:4" in said
    assert "pushes are frozen" in said
    assert "name the target with --to" in said


def test_a_lifted_freeze_does_not_refuse() -> None:
    lifted = Freeze(False, AT_14_02, "rolled back", "rollback-command", unfrozen_at=AT_14_02 + 60)
    assert rb.previous_revision(ARN.format(5), record(5, 4), lifted) == ARN.format(4)


@pytest.mark.parametrize(
    ("ledger", "says"),
    [
        (None, "no deployment of the redeploy job records it"),
        (record(5, None), "no deployment of the redeploy job records it"),
        (record(6, 5), "its last deployment is of spotops-dev-site:6"),
    ],
)
def test_when_the_ledger_does_not_know_what_ran_before_it_says_so(
    ledger: DeploymentRecord | None, says: str
) -> None:
    with pytest.raises(UsageError, match="does not know what ran before") as raised:
        rb.previous_revision(ARN.format(5), ledger, None)
    assert says in str(raised.value)
    assert "--to" in str(raised.value)


# ---- how -----------------------------------------------------------------------------------


def test_a_rolling_service_is_updated() -> None:
    chosen = rb.plan(rb.ServiceState(ARN.format(5)), ARN.format(4), source=ARN.format(4))
    assert chosen == rb.Plan("update", ARN.format(5), ARN.format(4))
    assert chosen.describe("svc") == "update svc from spotops-dev-site:5 to spotops-dev-site:4"


def test_rolling_back_to_what_runs_is_refused() -> None:
    with pytest.raises(UsageError, match="already runs spotops-dev-site:5"):
        rb.plan(rb.ServiceState(ARN.format(5)), ARN.format(5), source=None)


@pytest.mark.parametrize("strategy", ["CANARY", "LINEAR"])
def test_an_open_canary_or_linear_deployment_is_stopped_with_rollback(strategy: str) -> None:
    state = rb.ServiceState(ARN.format(5), strategy, ("arn:sd/1",))
    chosen = rb.plan(state, ARN.format(4), source=ARN.format(4))
    assert (chosen.how, chosen.stop_arn, chosen.target) == ("stop", "arn:sd/1", ARN.format(4))


def test_a_canary_without_an_open_deployment_is_updated() -> None:
    chosen = rb.plan(rb.ServiceState(ARN.format(5), "CANARY", ()), ARN.format(3), source=None)
    assert chosen.how == "update"


def test_an_open_canary_refuses_a_target_its_rollback_does_not_return_to() -> None:
    state = rb.ServiceState(ARN.format(5), "CANARY", ("arn:sd/1",))
    with pytest.raises(UsageError, match="stopping it returns to spotops-dev-site:4, not"):
        rb.plan(state, ARN.format(2), source=ARN.format(4))


# ---- kill switch and lock ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["off", "OFF", " false ", "0", "disabled"])
def test_the_kill_switch_off_lets_it_act(value: str) -> None:
    rb.check_kill_switch("/spotops/dev/kill-switch", value, "dev")


@pytest.mark.parametrize("value", ["on", "no", "anything", None])
def test_the_kill_switch_on_missing_or_unknown_refuses_with_how_to_turn_it_off(
    value: str | None,
) -> None:
    with pytest.raises(UsageError, match="spotops kill-switch off --stage dev") as raised:
        rb.check_kill_switch("/spotops/dev/kill-switch", value, "dev")
    assert "Nothing changed" in str(raised.value)


def test_a_lock_held_by_another_refuses_naming_it() -> None:
    lock = Lock("redeploy:sha256:ab", "redeploy", expires_at=int(AT_14_02))
    with pytest.raises(UsageError, match=r"locked by redeploy:sha256:ab \(redeploy\) until 14:02"):
        rb.check_lock(lock, "rollback:spotops-dev-site:4")
    rb.check_lock(None, "rollback:x")
    rb.check_lock(Lock("rollback:x", "rollback"), "rollback:x")


# ---- the frozen push to deploy ---------------------------------------------------------------


def test_the_newest_frozen_push_is_chosen_by_its_push_time() -> None:
    records = [
        ImageRecord("sha256:1", "frozen", "v3", at=300.0, event_at=100.0),
        ImageRecord("sha256:2", "frozen", "v4", at=200.0, event_at=150.0),
        ImageRecord("sha256:3", "deployed", "v5", at=400.0, event_at=400.0),
        ImageRecord("sha256:4", "frozen", "v2", at=250.0, event_at=None),
    ]
    assert freezing.newest_frozen(records) == records[3]  # recorded at 250 > pushed at 150
    assert freezing.newest_frozen(records[:3]) == records[1]
    assert freezing.newest_frozen(records[2:3]) is None


# ---- the CANARY path: stopped with ROLLBACK, against the Stubber -----------------------------

CLUSTER, SERVICE = "spotops-dev", "spotops-dev-site"
SERVICE_ARN = f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}"
CLUSTER_ARN = f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"
SD_ARN = f"arn:aws:ecs:us-east-1:123456789012:service-deployment/{CLUSTER}/{SERVICE}/r9i43YFjvg"


def _stack(cfn: Any, name: str, outputs: dict[str, str], parameters: dict[str, str]) -> None:
    template = {
        "Parameters": {k: {"Type": "String"} for k in parameters},
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/marker/{name}", "Type": "String", "Value": "x"},
            }
        },
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


@pytest.fixture
def canary_stage() -> Iterator[dict[str, Any]]:
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("cloudformation", "dynamodb", "ssm", "secretsmanager", "sqs")
        }
        queue = clients["sqs"].create_queue(QueueName="spotops-dev-slack-dlq")["QueueUrl"]
        _stack(
            clients["cloudformation"],
            "spotops-dev-site",
            {
                "ClusterName": CLUSTER,
                "ServiceName": SERVICE,
                "RepositoryName": SERVICE,
                "TaskDefinitionFamily": FAMILY,
            },
            {},
        )
        _stack(
            clients["cloudformation"],
            "spotops-dev-ops",
            {
                "LedgerTableName": "spotops-dev-ledger",
                "KillSwitchParameterName": "/spotops/dev/kill-switch",
                "SlackDeadLetterQueueUrl": queue,
            },
            {"RunbookBaseUrl": "https://example.com/runbooks"},
        )
        clients["dynamodb"].create_table(
            TableName="spotops-dev-ledger",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        clients["ssm"].put_parameter(Name="/spotops/dev/kill-switch", Value="off", Type="String")
        ecs = boto3.client("ecs", region_name="us-east-1")
        stubber = Stubber(ecs)
        clients["ecs"] = ecs
        yield {"clients": clients, "stubber": stubber, "queue": queue}


def _described(strategy: str) -> dict[str, Any]:
    """DescribeServices' answer (Amazon ECS API Reference, DescribeServices, Service)."""
    return {
        "services": [
            {
                "serviceArn": SERVICE_ARN,
                "serviceName": SERVICE,
                "clusterArn": CLUSTER_ARN,
                "status": "ACTIVE",
                "desiredCount": 2,
                "runningCount": 2,
                "pendingCount": 0,
                "taskDefinition": ARN.format(5),
                "deploymentConfiguration": {
                    "strategy": strategy,
                    "bakeTimeInMinutes": 10,
                    "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
                },
                "deployments": [
                    {
                        "id": "ecs-svc/2",
                        "status": "PRIMARY",
                        "taskDefinition": ARN.format(5),
                        "rolloutState": "IN_PROGRESS",
                    }
                ],
            }
        ],
        "failures": [],
    }


@pytest.mark.parametrize(
    ("end", "succeeded", "recorded"),
    [("ROLLBACK_SUCCESSFUL", True, "succeeded"), ("ROLLBACK_FAILED", False, "failed")],
)
def test_an_open_canary_deployment_is_stopped_with_rollback_and_followed(
    canary_stage: dict[str, Any], end: str, succeeded: bool, recorded: str
) -> None:
    clients, stubber = canary_stage["clients"], canary_stage["stubber"]
    service_ref = {"cluster": CLUSTER, "services": [SERVICE]}
    stubber.add_response("describe_services", _described("CANARY"), service_ref)
    stubber.add_response(
        "list_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": SD_ARN,
                    "serviceArn": SERVICE_ARN,
                    "clusterArn": CLUSTER_ARN,
                    "startedAt": datetime(2026, 12, 7, 14, 0, tzinfo=UTC),
                    "createdAt": datetime(2026, 12, 7, 14, 0, tzinfo=UTC),
                    "targetServiceRevisionArn": f"{SERVICE_ARN}/1234",
                    "status": "IN_PROGRESS",
                }
            ]
        },
        {"cluster": CLUSTER, "service": SERVICE, "status": ["PENDING", "IN_PROGRESS"]},
    )
    stubber.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": SD_ARN},
        {"serviceDeploymentArn": SD_ARN, "stopType": "ROLLBACK"},
    )
    for status in ("ROLLBACK_IN_PROGRESS", end):
        stubber.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": SD_ARN,
                        "serviceArn": SERVICE_ARN,
                        "clusterArn": CLUSTER_ARN,
                        "status": status,
                        "statusReason": "Stopped by user; rolling back.",
                        "sourceServiceRevisions": [{"arn": f"{SERVICE_ARN}/1233"}],
                        "targetServiceRevision": {"arn": f"{SERVICE_ARN}/1234"},
                    }
                ],
                "failures": [],
            },
            {"serviceDeploymentArns": [SD_ARN]},
        )
    ledger = rb.SafetyLedger(clients["dynamodb"], "spotops-dev-ledger")
    ledger.put_deployment(
        f"{CLUSTER}/{SERVICE}",
        {
            "deployment_id": "ecs-svc/2",
            "digest": DIGEST,
            "tag": "v5",
            "status": "IN_PROGRESS",
            "task_definition": ARN.format(5),
            "previous_task_definition": ARN.format(4),
        },
    )
    progress: list[str] = []
    runner = rb.Rollback(
        clients.__getitem__,
        app="spotops",
        stage="dev",
        progress=progress.append,
        poll_seconds=0,
        sleep=lambda seconds: None,
    )

    with stubber:
        prepared = runner.prepare(None)
        outcome = runner.run(prepared)
        stubber.assert_no_pending_responses()

    assert prepared.plan == rb.Plan("stop", ARN.format(5), ARN.format(4), stop_arn=SD_ARN)
    assert outcome.state == end
    assert outcome.succeeded is succeeded
    # Both in one second: the ledger orders them by second only.
    outcomes = sorted(h.outcome for h in ledger.read_history(f"{CLUSTER}/{SERVICE}"))
    assert outcomes == sorted([recorded, "started"])
    assert any("ROLLBACK_IN_PROGRESS" in line for line in progress)
    freeze = ledger.read_freeze(f"{CLUSTER}/{SERVICE}")
    assert freeze is not None
    assert freeze.frozen
    assert freeze.by == "rollback-command"
    assert freeze.deployment_id == SD_ARN
    assert ledger.read_lock(f"{CLUSTER}/{SERVICE}") is None
    # No webhook is set: the report waits on the Slack dead-letter queue, as replay reads it.
    assert "dead-letter queue" in outcome.slack
    (letter,) = clients["sqs"].receive_message(QueueUrl=canary_stage["queue"])["Messages"]
    body = json.loads(letter["Body"])
    assert body["job"] == "rollback-command"
    assert "https://example.com/runbooks/rollback.md" in json.dumps(body["message"]["blocks"])


# ---- the freeze as status and doctor show it ------------------------------------------------


def test_status_says_whether_pushes_deploy_and_how_to_resume() -> None:
    after = Freeze(True, AT_14_02, "rolled back to spotops-dev-site:4 by spotops rollback", "ecs")
    planned = Freeze(True, AT_14_02, "launch day", "freeze-command")
    lifted = Freeze(False, AT_14_02, "x", "ecs", unfrozen_at=AT_14_02 + 1)

    assert freezing.pushes_line(None) == "deploy"
    assert freezing.pushes_line(lifted) == "deploy"
    assert freezing.pushes_line(after).startswith(
        "frozen since 14:02 UTC after a rollback (rolled back to spotops-dev-site:4"
    )
    assert freezing.pushes_line(after).endswith("`spotops unfreeze`")
    assert "for a planned quiet period (launch day; by freeze-command)" in freezing.pushes_line(
        planned
    )


def test_doctor_warns_while_frozen_naming_since_why_and_how_to_resume() -> None:
    from spotops.proof.doctor_rows import pushes_row
    from spotops.proof.rows import State

    frozen = pushes_row(frozen=True, since="2026-12-07 14:02 UTC", reason="rolled back", by="ecs")
    unread = pushes_row(frozen=None, error="AccessDeniedException")

    assert frozen.state is State.WARN
    assert "frozen since 2026-12-07 14:02 UTC (rolled back; by ecs)" in frozen.detail
    assert "spotops unfreeze" in frozen.advice
    assert frozen.runbook == "rollback.md"
    assert pushes_row(frozen=False).state is State.OK
    assert unread.state is State.WARN
    assert "AccessDeniedException" in unread.detail


def test_a_deregistered_revision_or_unknown_image_is_refused_naming_it() -> None:
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName=SERVICE)
        for image in ("a", "b"):
            ecs.register_task_definition(
                family=FAMILY,
                containerDefinitions=[{"name": "site", "image": image, "memory": 512}],
            )
        ecs.deregister_task_definition(taskDefinition=f"{FAMILY}:1")
        names = rb.StageNames(
            "spotops", "dev", CLUSTER, SERVICE, SERVICE, FAMILY, "t", "k", "s", "", ""
        )
        runner = rb.Rollback({"ecs": ecs, "ecr": ecr}.__getitem__, app="spotops", stage="dev")

        with pytest.raises(UsageError, match="deregistered"):
            runner._resolve(names, ARN.format(2), rb.Wanted("revision", f"{FAMILY}:1"))
        with pytest.raises(UsageError, match=f"no such revision of {FAMILY}"):
            runner._resolve(names, ARN.format(2), rb.Wanted("revision", f"{FAMILY}:9"))
        with pytest.raises(UsageError, match="no such image"):
            runner._resolve(names, ARN.format(2), rb.Wanted("digest", DIGEST))
        assert runner._resolve(names, ARN.format(2), rb.Wanted("revision", f"{FAMILY}:2"))[
            0
        ] == ARN.format(2)
