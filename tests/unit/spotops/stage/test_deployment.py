"""The deploy loop (:class:`StageDeployment`) with fakes: order, confirmation, the emulator's
quirks, the ECS service-linked role, fixed parameters."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotops.errors import LimitError, ParameterError, StackStateError
from spotops.local.target import EmulatorTarget
from spotops.stage.config import STACKS, StageConfig
from spotops.stage.deploy import StageDeployment
from spotops.stage.images import ImageChoice
from spotops.stage.stacks import ChangeSetReview, ResourceChange, StackEvent, StackInfo
from spotops.target import AWS
from tests.support.templates import TEMPLATES

SITE_STACKS = tuple(spec for spec in STACKS if not spec.packaged)
NETWORK, SITE = "spotops-dev-network", "spotops-dev-site"


class Progress:
    def __init__(self, answer: bool = False) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any]] = []

    def note(self, message: str) -> None:
        self.calls.append(("note", message))

    def image(self, choice: ImageChoice) -> None:
        self.calls.append(("image", choice.uri))

    def working(self, label: str) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def up_to_date(self, stack_name: str) -> None:
        self.calls.append(("up_to_date", stack_name))

    def review(self, review, descriptions, hidden) -> None:
        self.calls.append(
            ("review", (review.stack_name, [c.logical_id for c in review.changes], hidden))
        )
        self.descriptions = descriptions

    def confirm(self, review) -> bool:
        self.calls.append(("confirm", review.stack_name))
        return self.answer

    def follow(self, label, events: Iterator[StackEvent], descriptions) -> None:
        self.calls.append(("follow", [e.logical_id for e in events]))

    def done(self, stack_name: str) -> None:
        self.calls.append(("done", stack_name))


class FakeCfnClient:
    def __init__(self, exports: list[str]) -> None:
        self.exports = exports

    def list_exports(self, **_: Any) -> dict[str, Any]:
        return {"Exports": [{"Name": n, "Value": "x"} for n in self.exports]}


class FakeStacks:
    def __init__(
        self,
        changes: dict[str, list[ResourceChange]],
        existing: dict[str, StackInfo] | None = None,
        exports: list[str] | None = None,
    ) -> None:
        self.changes = changes
        self.existing = existing or {}
        self.client = FakeCfnClient(exports or [])
        self.executed: list[str] = []
        self.discarded: list[str] = []
        self.parameters: dict[str, dict[str, str]] = {}
        self.sources: dict[str, str] = {}

    def describe(self, name: str) -> StackInfo | None:
        return self.existing.get(name)

    def prepare(self, name, body, parameters, tags, *, template_url="") -> ChangeSetReview:
        self.parameters[name] = dict(parameters)
        self.sources[name] = template_url or f"inline:{len(body.encode())}"
        changes = self.changes.get(name, [])
        return ChangeSetReview(name, "CREATE", "cs", list(changes), up_to_date=not changes)

    def discard(self, review) -> None:
        self.discarded.append(review.stack_name)

    def execute(self, review, body, parameters, tags, *, template_url="") -> Iterator[StackEvent]:
        from datetime import UTC, datetime

        self.executed.append(review.stack_name)
        self.existing[review.stack_name] = (
            DEPLOYED_BOOTSTRAP
            if review.stack_name == BOOTSTRAP
            else StackInfo(review.stack_name, "CREATE_COMPLETE", {"Out": "1"}, dict(parameters))
        )
        yield StackEvent(
            datetime.now(UTC), review.stack_name, "Vpc", "AWS::EC2::VPC", "CREATE_COMPLETE"
        )


class FakeImages:
    def resolve(self, explicit, site) -> ImageChoice:
        return ImageChoice("", "no image yet")


class FakeIam:
    def __init__(self, roles: list[str] | None = None, denied: bool = False) -> None:
        self.roles = roles or []
        self.denied = denied
        self.created: list[str] = []

    def list_roles(self, PathPrefix: str) -> dict[str, Any]:
        if self.denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListRoles")
        return {"Roles": [{"RoleName": r} for r in self.roles]}

    def create_service_linked_role(self, AWSServiceName: str) -> None:
        self.created.append(AWSServiceName)


class FakeS3:
    """The artifact bucket: what was uploaded, by key."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        assert Bucket == BUCKET
        self.objects[Key] = Body


BOOTSTRAP, BUCKET = "spotops-bootstrap", "spotops-artifacts-123456789012-us-east-1"
DEPLOYED_BOOTSTRAP = StackInfo(
    BOOTSTRAP, "CREATE_COMPLETE", {"ArtifactBucketName": BUCKET, "BootstrapVersion": "1"}, {}
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    infra = tmp_path / "infra" / "cloudformation"
    infra.mkdir(parents=True)
    for name in ("bootstrap", "network", "site"):
        shutil.copy(TEMPLATES / f"{name}.yaml", infra)
    return tmp_path


def _run(
    project: Path,
    stacks: FakeStacks,
    *,
    iam: FakeIam | None = None,
    emulator: str | None = None,
    answer: bool = False,
    yes: bool = False,
    s3: FakeS3 | None = None,
    **parameters: str,
):
    progress = Progress(answer)
    stacks.existing.setdefault(BOOTSTRAP, DEPLOYED_BOOTSTRAP)
    result = StageDeployment(
        project,
        SITE_STACKS,
        stacks=stacks,  # type: ignore[arg-type]
        images=FakeImages(),  # type: ignore[arg-type]
        ops_builder=lambda: None,
        iam=iam or FakeIam(),
        s3=s3 or FakeS3(),
        region="us-east-1",
        target=EmulatorTarget(emulator) if emulator else AWS,
        progress=progress,
    ).run(
        StageConfig("dev", {"AppName": "spotops", "StageName": "dev", **parameters}),
        image=None,
        yes=yes,
    )
    return result, progress


def test_stacks_deploy_in_order_and_every_one_reports(project):
    stacks = FakeStacks(
        {
            NETWORK: [ResourceChange("Add", "Vpc", "AWS::EC2::VPC")],
            SITE: [ResourceChange("Add", "Cluster", "AWS::ECS::Cluster")],
        }
    )

    result, progress = _run(project, stacks)

    assert stacks.executed == [NETWORK, SITE]
    assert list(result.outputs) == [NETWORK, SITE]
    assert ("done", SITE) in progress.calls
    assert progress.descriptions["Cluster"].startswith("ECS cluster")  # Metadata.Description
    assert stacks.parameters[SITE]["NetworkStackName"] == NETWORK


def test_declining_a_destructive_change_set_deletes_it_and_stops(project):
    stacks = FakeStacks(
        {
            NETWORK: [ResourceChange("Remove", "NatGateway1", "AWS::EC2::NatGateway")],
            SITE: [ResourceChange("Add", "Cluster", "AWS::ECS::Cluster")],
        }
    )

    result, progress = _run(project, stacks, answer=False)

    assert result.declined == NETWORK
    assert stacks.executed == []
    assert stacks.discarded == [NETWORK]
    assert ("confirm", NETWORK) in progress.calls


def test_on_the_emulator_rows_whose_condition_is_false_are_left_out(project):
    # NatMode none: no NAT gateway exists, yet moto lists one in the change set.
    listed = [
        ResourceChange("Add", "Vpc", "AWS::EC2::VPC"),
        ResourceChange("Add", "NatGateway1", "AWS::EC2::NatGateway"),
        ResourceChange("Add", "PublicSubnet3", "AWS::EC2::Subnet"),
    ]

    _, on_emulator = _run(
        project,
        FakeStacks({NETWORK: list(listed)}),
        emulator="http://127.0.0.1:4566",
        ZoneCount="2",
    )
    _, on_aws = _run(project, FakeStacks({NETWORK: list(listed)}), ZoneCount="2")

    assert ("review", (NETWORK, ["Vpc"], 2)) in on_emulator.calls
    assert ("review", (NETWORK, ["Vpc", "NatGateway1", "PublicSubnet3"], 0)) in on_aws.calls


def test_on_the_emulator_a_deleted_stacks_exports_stop_the_deploy_with_the_fix(project):
    stacks = FakeStacks(
        {NETWORK: [ResourceChange("Add", "Vpc", "AWS::EC2::VPC")]}, exports=[f"{NETWORK}-VpcId"]
    )

    with pytest.raises(StackStateError, match=r"curl -X POST http://127.0.0.1:4566/moto-api/reset"):
        _run(project, stacks, emulator="http://127.0.0.1:4566")
    assert stacks.executed == []


def test_the_ecs_service_linked_role_is_made_once_before_the_site_stack(project):
    iam = FakeIam()
    _, progress = _run(project, FakeStacks({}), iam=iam)
    assert iam.created == ["ecs.amazonaws.com"]
    assert ("note", "Created the ECS service-linked role (once per account).") in progress.calls

    existing = FakeIam(roles=["AWSServiceRoleForECS"])
    _run(project, FakeStacks({}), iam=existing)
    assert existing.created == []


def test_without_iam_permission_the_deploy_goes_on_and_names_the_command(project):
    _, progress = _run(project, FakeStacks({}), iam=FakeIam(denied=True))

    notes = " ".join(m for kind, m in progress.calls if kind == "note")
    assert "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com" in notes


def test_a_fixed_parameter_of_a_live_stack_is_refused_before_its_change_set(project):
    live = {NETWORK: StackInfo(NETWORK, "UPDATE_COMPLETE", {"VpcId": "vpc-1"}, {"ZoneCount": "3"})}
    stacks = FakeStacks(
        {NETWORK: [ResourceChange("Modify", "Vpc", "AWS::EC2::VPC")]}, existing=live
    )

    with pytest.raises(ParameterError, match="ZoneCount of spotops-dev-network is '3'"):
        _run(project, stacks, ZoneCount="2")
    assert stacks.parameters == {}


def test_canary_back_to_rolling_on_a_live_site_is_refused_before_its_change_set(project):
    live = {
        NETWORK: StackInfo(NETWORK, "UPDATE_COMPLETE", {"VpcId": "vpc-1"}, {"NatMode": "none"}),
        SITE: StackInfo(SITE, "UPDATE_COMPLETE", {}, {"DeploymentStrategy": "CANARY"}),
    }
    stacks = FakeStacks({}, existing=live)

    with pytest.raises(ParameterError, match="DeploymentStrategy 'CANARY' -> 'ROLLING'"):
        _run(project, stacks, DeploymentStrategy="ROLLING")
    # The network went through (up to date); the site got no change set at all.
    assert set(stacks.parameters) == {NETWORK}
    assert stacks.executed == []


def test_a_new_container_port_on_a_live_canary_site_is_refused_before_its_change_set(project):
    live = {
        NETWORK: StackInfo(NETWORK, "UPDATE_COMPLETE", {"VpcId": "vpc-1"}, {"NatMode": "none"}),
        SITE: StackInfo(
            SITE, "UPDATE_COMPLETE", {}, {"DeploymentStrategy": "CANARY", "ContainerPort": "8080"}
        ),
    }
    stacks = FakeStacks({}, existing=live)

    with pytest.raises(ParameterError, match="ContainerPort '8080' -> '8081'"):
        _run(project, stacks, DeploymentStrategy="CANARY", ContainerPort="8081")
    assert set(stacks.parameters) == {NETWORK}
    assert stacks.executed == []

    # The same change on a ROLLING site reaches its change set.
    live[SITE] = StackInfo(SITE, "UPDATE_COMPLETE", {}, {"ContainerPort": "8080"})
    rolling = FakeStacks({}, existing=live)
    _run(project, rolling, ContainerPort="8081")
    assert rolling.parameters[SITE]["ContainerPort"] == "8081"


# ---- AWS's limits and the artifact bucket ----------------------------------------------


def test_the_site_template_over_the_inline_limit_is_sent_from_the_artifact_bucket(project):
    site_body = (project / "infra" / "cloudformation" / "site.yaml").read_bytes()
    assert len(site_body) > 51_200  # the reason this path exists
    s3 = FakeS3()

    _run(project, FakeStacks({}), s3=s3)

    stacks = FakeStacks({})
    _run(project, stacks, s3=s3)
    key = f"spotops/dev/templates/site-{hashlib.sha256(site_body).hexdigest()}.yaml"
    assert s3.objects == {key: site_body}
    assert stacks.sources[SITE] == f"https://{BUCKET}.s3.us-east-1.amazonaws.com/{key}"
    assert stacks.sources[NETWORK].startswith("inline:")


@pytest.mark.parametrize(("size", "inline"), [(51_200, True), (51_201, False)])
def test_a_template_of_exactly_the_inline_limit_is_still_sent_inline(project, size, inline):
    network = project / "infra" / "cloudformation" / "network.yaml"
    body = network.read_text()
    padding = size - len(body.encode()) - 2
    network.write_text(body + "#" + "x" * padding + "\n")
    assert len(network.read_bytes()) == size
    s3, stacks = FakeS3(), FakeStacks({})

    _run(project, stacks, s3=s3)

    assert (
        stacks.sources[NETWORK] == f"inline:{size}"
        if inline
        else stacks.sources[NETWORK].startswith(
            f"https://{BUCKET}.s3.us-east-1.amazonaws.com/spotops/dev/templates/network-"
        )
    )
    assert any(key.startswith("spotops/dev/templates/network-") for key in s3.objects) != inline


def test_the_first_deploy_in_a_region_creates_the_artifact_bucket_first(project):
    stacks = FakeStacks({BOOTSTRAP: [ResourceChange("Add", "ArtifactBucket", "AWS::S3::Bucket")]})
    stacks.existing[BOOTSTRAP] = None  # type: ignore[assignment]  # no bootstrap stack yet
    stacks.changes[NETWORK] = [ResourceChange("Add", "Vpc", "AWS::EC2::VPC")]

    _, progress = _run(project, stacks)

    assert stacks.executed == [BOOTSTRAP, NETWORK]
    assert stacks.parameters[BOOTSTRAP] == {"AppName": "spotops"}
    assert any(kind == "note" and "Creating spotops-bootstrap" in m for kind, m in progress.calls)


def test_an_older_bootstrap_stack_is_updated_and_a_current_one_left_alone(project):
    old = StackInfo(BOOTSTRAP, "UPDATE_COMPLETE", {"ArtifactBucketName": BUCKET}, {})
    stacks = FakeStacks({BOOTSTRAP: [ResourceChange("Modify", "ArtifactBucket", "x", "False")]})
    stacks.existing[BOOTSTRAP] = old
    _run(project, stacks)
    assert BOOTSTRAP in stacks.executed

    current = FakeStacks({BOOTSTRAP: [ResourceChange("Modify", "ArtifactBucket", "x", "False")]})
    _run(project, current)
    assert BOOTSTRAP not in current.parameters  # no change set at all


def test_a_template_over_a_limit_is_refused_before_any_change_set_naming_the_fix(project):
    # Every alarm's description links <RunbookBaseUrl>/<alarm>.md: a long base URL makes
    # them longer than CloudWatch's 1,024 characters (the emulator would take it).
    stacks = FakeStacks({})
    long_url = "https://runbooks.example.com/" + "r" * 1_000

    with pytest.raises(LimitError) as refused:
        _run(project, stacks, RunbookBaseUrl=long_url)

    message = str(refused.value)
    assert "1,024 characters for a CloudWatch AlarmDescription" in message
    assert "Shorten it" in message
    assert SITE not in stacks.parameters  # the network went through; the site never started
