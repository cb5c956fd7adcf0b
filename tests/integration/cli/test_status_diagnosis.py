"""``spotops status`` says why the last deployment failed, against the moto server: the
ledger's latest record FAILED (ECS's rolloutState FAILED is the same path, tested with the
pure choice below), the stopped task of that revision and its reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)
from spotops.reports.diagnosis import failed_task_definition

# isort: split
from chalicelib.deployments import DeploymentRecord
from chalicelib.ledger import SafetyLedger
from tests.integration.cli.test_commands import (  # noqa: F401 - fixtures
    StatusFactory,
    deployed,
    run,
    tasks_stay_running,
)

SITE = "spotops-dev-site"
CLUSTER = "spotops-dev"
HEADING = "Why the last deployment failed"
OPS_WITH_LEDGER = """
Resources:
  Ledger:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: spotops-dev-ledger
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
Outputs:
  LedgerTableName: {Value: !Ref Ledger}
"""


def _stopped_task(aws: Callable[[str], Any]) -> tuple[str, str]:
    """A task of a new revision that crashed: (its revision, its id)."""
    ecs, ec2 = aws("ecs"), aws("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"][0]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ][0]["SubnetId"]
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    sg = ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc["VpcId"])["GroupId"]
    definition = ecs.register_task_definition(
        family=SITE,
        containerDefinitions=[{"name": "site", "image": "x", "memory": 512, "essential": True}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    arn = ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}},
    )["tasks"][0]["taskArn"]
    ecs.stop_task(cluster=CLUSTER, task=arn, reason="Essential container in task exited")
    return str(definition), str(arn).rsplit("/", 1)[-1]


def _ledger(aws: Callable[[str], Any], status: str, task_definition: str) -> None:
    aws("cloudformation").create_stack(StackName="spotops-dev-ops", TemplateBody=OPS_WITH_LEDGER)
    SafetyLedger(aws("dynamodb"), "spotops-dev-ledger").put_deployment(
        f"{CLUSTER}/{SITE}",
        {
            "deployment_id": "ecs-svc/1234567890123456789",
            "digest": "sha256:" + "0" * 64,
            "tag": "v2",
            "status": status,
            "task_definition": task_definition,
        },
    )


@pytest.mark.emulator
def test_status_says_why_the_last_deployment_failed(
    run: Callable[..., Result],  # noqa: F811
    aws: Callable[[str], Any],
    deployed: None,  # noqa: F811
    tasks_stay_running: None,  # noqa: F811
) -> None:
    definition, task = _stopped_task(aws)
    _ledger(aws, "FAILED", definition)

    result = run("status")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = lines.index(HEADING)
    assert lines[at + 1] == f"  task {task} stopped: Essential container in task exited"


@pytest.mark.emulator
def test_status_after_a_completed_deployment_has_no_such_block(
    run: Callable[..., Result],  # noqa: F811
    aws: Callable[[str], Any],
    deployed: None,  # noqa: F811
    tasks_stay_running: None,  # noqa: F811
) -> None:
    definition, _ = _stopped_task(aws)
    _ledger(aws, "COMPLETED", definition)

    result = run("status")

    assert result.exit_code == 0, result.output
    assert HEADING not in result.stdout


def record(status: str) -> DeploymentRecord:
    found = DeploymentRecord.from_item(
        {
            "deployment_id": "d",
            "digest": "sha256:1",
            "tag": "",
            "status": status,
            "task_definition": "td:2",
        }
    )
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("rollouts", "status", "expected"),
    [
        ([("COMPLETED", "td:1"), ("FAILED", "td:3")], "COMPLETED", "td:3"),  # ECS says so
        ([("COMPLETED", "td:1")], "ROLLED_BACK", "td:2"),  # the ledger says so
        ([("COMPLETED", "td:1")], "FAILED", "td:2"),
        ([("COMPLETED", "td:1")], "COMPLETED", None),
        ([("IN_PROGRESS", "td:2")], "IN_PROGRESS", None),
    ],
)
def test_which_revision_failed(
    rollouts: list[tuple[str, str]], status: str, expected: str | None
) -> None:
    assert failed_task_definition(rollouts, record(status)) == expected
    assert failed_task_definition([("FAILED", "td:9")], None) == "td:9"
