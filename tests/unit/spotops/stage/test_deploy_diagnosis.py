"""``spotops deploy``'s wait: when the site stack fails because its ECS service did not
stabilise, the deploy says why its tasks failed before it exits non-zero."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spotops.errors import DeployError
from spotops.reports.diagnosis import HEADING, diagnosis_block
from spotops.stage.config import StageConfig
from spotops.stage.deploy import StageDeployment
from spotops.stage.images import SiteLocation
from spotops.stage.stacks import ResourceChange, StackEvent, StackInfo
from spotops.target import AWS
from tests.unit.spotops.stage.test_deployment import (
    BOOTSTRAP,
    DEPLOYED_BOOTSTRAP,
    NETWORK,
    SITE,
    SITE_STACKS,
    FakeIam,
    FakeImages,
    FakeS3,
    FakeStacks,
    Progress,
    project,  # noqa: F401 - the fixture
)

SITE_OUTPUTS = {"ClusterName": "spotops-dev", "ServiceName": "spotops-dev-site"}


class FailingSite(FakeStacks):
    """The site stack's update fails on ``failed_type`` and CloudFormation rolls it back."""

    def __init__(self, failed_type: str) -> None:
        super().__init__(
            {
                NETWORK: [ResourceChange("Add", "Vpc", "AWS::EC2::VPC")],
                SITE: [ResourceChange("Modify", "Service", "AWS::ECS::Service")],
            }
        )
        self.failed_type = failed_type

    def execute(self, review, body, parameters, tags, *, template_url="") -> Iterator[StackEvent]:
        if review.stack_name != SITE:
            yield from super().execute(review, body, parameters, tags, template_url=template_url)
            return
        self.existing[SITE] = StackInfo(SITE, "UPDATE_ROLLBACK_COMPLETE", SITE_OUTPUTS, {})
        yield StackEvent(datetime.now(UTC), SITE, "Service", self.failed_type, "UPDATE_FAILED")
        raise DeployError(f"Stack {SITE} ended in UPDATE_ROLLBACK_COMPLETE.")

    def first_failure(self, stack_name: str) -> StackEvent | None:
        return StackEvent(
            datetime.now(UTC),
            stack_name,
            "Service",
            self.failed_type,
            "UPDATE_FAILED",
            "Resource handler returned message: \"Error occurred during operation 'ECS "
            "Deployment Circuit Breaker was triggered'.\"",
        )


def _deploy(project_dir: Path, stacks: FakeStacks, asked: list[SiteLocation]) -> Progress:
    progress = Progress()
    stacks.existing.setdefault(BOOTSTRAP, DEPLOYED_BOOTSTRAP)

    def diagnose(site: SiteLocation) -> str:
        asked.append(site)
        return f"{HEADING}:\n  task 0a1b stopped: Essential container in task exited"

    deployment = StageDeployment(
        project_dir,
        SITE_STACKS,
        stacks=stacks,  # type: ignore[arg-type]
        images=FakeImages(),  # type: ignore[arg-type]
        ops_builder=lambda: None,
        iam=FakeIam(),
        s3=FakeS3(),
        region="us-east-1",
        target=AWS,
        progress=progress,
        diagnose=diagnose,
    )
    with pytest.raises(DeployError, match="UPDATE_ROLLBACK_COMPLETE"):
        deployment.run(
            StageConfig("dev", {"AppName": "spotops", "StageName": "dev"}), image=None, yes=True
        )
    return progress


def test_a_service_that_did_not_stabilise_is_diagnosed_before_the_deploy_fails(
    project: Path,  # noqa: F811
) -> None:
    asked: list[SiteLocation] = []
    progress = _deploy(project, FailingSite("AWS::ECS::Service"), asked)

    assert [(s.cluster, s.service) for s in asked] == [("spotops-dev", "spotops-dev-site")]
    notes = [message for kind, message in progress.calls if kind == "note"]
    assert f"{HEADING}:\n  task 0a1b stopped: Essential container in task exited" in notes


def test_a_stack_that_failed_on_another_resource_is_not_diagnosed(
    project: Path,  # noqa: F811
) -> None:
    asked: list[SiteLocation] = []
    progress = _deploy(project, FailingSite("AWS::ElasticLoadBalancingV2::Listener"), asked)

    assert asked == []
    assert not any(HEADING in str(message) for _, message in progress.calls)


# ---- the block itself, read from moto ----------------------------------------------------


class Session:
    def __init__(self) -> None:
        self._session = boto3.session.Session(region_name="us-east-1")

    def client(self, name: str) -> Any:
        return self._session.client(name)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield Session()


def test_the_block_names_the_stopped_task_and_its_reason(session: Session) -> None:
    ec2, ecs = session.client("ec2"), session.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="spotops-dev")
    td = ecs.register_task_definition(
        family="site",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "site", "image": "site:1", "memory": 512, "essential": True}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="spotops-dev", serviceName="spotops-dev-site", taskDefinition=td, desiredCount=0
    )
    arn = ecs.run_task(
        cluster="spotops-dev",
        taskDefinition=td,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}
        },
    )["tasks"][0]["taskArn"]
    ecs.stop_task(cluster="spotops-dev", task=arn, reason="Essential container in task exited")

    block = diagnosis_block(session, "spotops-dev", "spotops-dev-site")

    assert block.splitlines() == [
        f"{HEADING}:",
        f"  task {arn.rsplit('/', 1)[-1]} stopped: Essential container in task exited",
    ]


def test_without_the_site_stacks_outputs_the_block_says_what_it_could_not_read() -> None:
    block = diagnosis_block(object(), None, None)
    assert block.startswith(f"{HEADING}: not read")
    assert "ClusterName/ServiceName" in block
