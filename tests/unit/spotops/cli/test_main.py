"""The commands, driven through CliRunner with a fake factory (no AWS)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from spotops.cli.main import cli
from spotops.errors import CredentialsError
from spotops.factory import CLIFactory
from spotops.image.push import PushResult
from spotops.local.target import EmulatorTarget
from spotops.reports.cost import load_price_table
from spotops.stage.config import STACKS, load_stage_config
from spotops.stage.images import ImageChoice
from spotops.stage.stacks import ChangeSetReview, ResourceChange, StackEvent, StackInfo
from spotops.target import AWS
from tests.support.fakes import FakeRunner
from tests.support.templates import CLI_FIXTURE_TEMPLATES
from tests.support.templates import TEMPLATES as REAL_TEMPLATES

# The fixture templates are the network and site stacks; the ops stack is tested on its own.
SITE_STACKS = tuple(spec for spec in STACKS if not spec.packaged)
FIXTURES = CLI_FIXTURE_TEMPLATES
NETWORK, SITE = "spotops-dev-network", "spotops-dev-site"
BOOTSTRAP = "spotops-bootstrap"
OUTPUTS = {
    BOOTSTRAP: {
        "ArtifactBucketName": "spotops-artifacts-123456789012-us-east-1",
        "BootstrapVersion": "1",
    },
    NETWORK: {"VpcId": "vpc-1"},
    SITE: {
        "SiteUrl": "http://site.example.test",
        "RepositoryUri": "r/site",
        "RepositoryName": "site",
    },
}


class FakeDeployer:
    def __init__(self, reviews: dict[str, ChangeSetReview], interrupt: bool = False) -> None:
        self.reviews = reviews
        self.interrupt = interrupt
        self.executed: list[str] = []
        self.discarded: list[str] = []
        self.deleted: list[str] = []

    def describe(self, name: str) -> StackInfo:
        return StackInfo(name, "UPDATE_COMPLETE", OUTPUTS[name], {})

    def prepare(self, name, body, parameters, tags, *, template_url="") -> ChangeSetReview:
        self.reviews[name].parameters = parameters  # type: ignore[attr-defined]
        return self.reviews[name]

    def discard(self, review: ChangeSetReview) -> None:
        self.discarded.append(review.stack_name)

    def execute(self, review, body, parameters, tags, *, template_url="") -> Iterator[StackEvent]:
        self.executed.append(review.stack_name)
        yield StackEvent(
            datetime.now(UTC),
            review.stack_name,
            review.stack_name,
            "AWS::CloudFormation::Stack",
            "UPDATE_IN_PROGRESS",
        )
        if self.interrupt:
            raise KeyboardInterrupt

    def delete(self, name: str) -> Iterator[StackEvent]:
        self.deleted.append(name)
        yield from ()


def _review(name: str, *changes: ResourceChange, up_to_date: bool = False) -> ChangeSetReview:
    return ChangeSetReview(name, "UPDATE", "arn:cs", list(changes), up_to_date)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    infra = tmp_path / "infra" / "cloudformation"
    infra.mkdir(parents=True)
    for template in FIXTURES.glob("*.yaml"):
        shutil.copy(template, infra / template.name)
    # The artifact bucket's stack is the real one: every deploy reads it first.
    shutil.copy(REAL_TEMPLATES / "bootstrap.yaml", infra / "bootstrap.yaml")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dev.json").write_text(json.dumps({"parameters": {"DesiredCount": 2}}))
    return tmp_path


@pytest.fixture
def factory(project: Path) -> mock.Mock:
    fake = mock.Mock(spec=CLIFactory)
    fake.project_dir = project
    fake.load_config.side_effect = lambda stage: load_stage_config(project, stage)
    fake.stack_specs.return_value = SITE_STACKS
    fake.price_table.return_value = load_price_table()
    fake.aws.return_value = mock.Mock(region="us-east-1", target=AWS)
    fake.image_resolver.return_value.resolve.return_value = ImageChoice(
        "r/site@sha256:run", "running now"
    )
    fake.runner = FakeRunner({("git", "rev-parse"): (0, "abc123\n", "")})
    fake.which = lambda name: "/usr/bin/docker" if name == "docker" else None
    return fake


def invoke(factory: mock.Mock, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), obj=factory, input=input)


def test_deploy_executes_each_stack_and_prints_the_site_url_last(factory):
    deployer = FakeDeployer(
        {
            NETWORK: _review(NETWORK, up_to_date=True),
            SITE: _review(SITE, ResourceChange("Modify", "Service", "AWS::ECS::Service", "False")),
        }
    )
    factory.deployer.return_value = deployer

    result = invoke(factory, "deploy")

    assert result.exit_code == 0, result.output
    assert deployer.executed == [SITE]
    assert f"{NETWORK}: up to date" in result.stderr
    assert deployer.reviews[SITE].parameters["ImageUri"] == "r/site@sha256:run"
    assert result.stdout.splitlines()[-1].split() == ["SiteUrl", "http://site.example.test"]
    assert "Estimated monthly cost" in result.stderr
    recorded = json.loads((factory.project_dir / ".spotops" / "deployed-dev.json").read_text())
    assert recorded["image"] == "r/site@sha256:run"


def test_deploy_asks_before_a_replacement_and_declining_changes_nothing(factory):
    replace = ResourceChange(
        "Modify", "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer", "True"
    )
    deployer = FakeDeployer(
        {NETWORK: _review(NETWORK, up_to_date=True), SITE: _review(SITE, replace)}
    )
    factory.deployer.return_value = deployer

    result = invoke(factory, "deploy", input="n\n")

    assert result.exit_code == 0
    message = " ".join(result.stderr.split())
    assert "replaces or deletes resources" in message
    assert "Execute it on region us-east-1?" in message
    assert f"Nothing changed in {SITE}" in message
    assert deployer.executed == []
    assert deployer.discarded == [SITE]
    assert result.stdout == ""


def test_prompts_name_the_emulator_when_deploying_to_it(factory):
    factory.aws.return_value = mock.Mock(
        region="us-east-1", target=EmulatorTarget("http://127.0.0.1:4566")
    )
    replace = ResourceChange("Remove", "Dashboard", "AWS::CloudWatch::Dashboard")
    factory.deployer.return_value = FakeDeployer(
        {NETWORK: _review(NETWORK, up_to_date=True), SITE: _review(SITE, replace)}
    )

    result = invoke(factory, "deploy", input="n\n")

    assert result.exit_code == 0
    assert "Execute it on the local emulator at http://127.0.0.1:4566?" in " ".join(
        result.stderr.split()
    )


def test_deploy_with_yes_executes_a_removal_without_asking(factory):
    remove = ResourceChange("Remove", "Dashboard", "AWS::CloudWatch::Dashboard")
    deployer = FakeDeployer(
        {NETWORK: _review(NETWORK, up_to_date=True), SITE: _review(SITE, remove)}
    )
    factory.deployer.return_value = deployer

    result = invoke(factory, "deploy", "--yes")

    assert result.exit_code == 0, result.output
    assert "Execute it?" not in result.stderr
    assert deployer.executed == [SITE]


def test_ctrl_c_while_waiting_leaves_the_stack_and_says_how_to_follow_it(factory):
    deployer = FakeDeployer(
        {
            NETWORK: _review(NETWORK, ResourceChange("Add", "Vpc", "AWS::EC2::VPC")),
            SITE: _review(SITE),
        },
        interrupt=True,
    )
    factory.deployer.return_value = deployer

    result = invoke(factory, "deploy", "--stage", "dev")

    assert result.exit_code == 130
    assert "spotops status --stage dev" in result.stderr
    assert deployer.discarded == []


def test_the_image_named_with_param_counts_as_named_on_the_command_line(factory):
    factory.deployer.return_value = FakeDeployer(
        {NETWORK: _review(NETWORK, up_to_date=True), SITE: _review(SITE, up_to_date=True)}
    )

    result = invoke(factory, "deploy", "--param", "ImageUri=r/site:v9")

    assert result.exit_code == 0, result.output
    factory.image_resolver.return_value.resolve.assert_called_once()
    assert factory.image_resolver.return_value.resolve.call_args.args[0] == "r/site:v9"


def test_error_if_a_param_is_malformed_exits_2(factory):
    result = invoke(factory, "deploy", "--param", "DesiredCount")

    assert result.exit_code == 2
    assert "Key=Value" in result.stderr
    factory.aws.assert_not_called()


def test_aws_errors_become_one_message_and_exit_1(factory):
    factory.aws.side_effect = CredentialsError("No AWS credentials found. Configure them.")

    result = invoke(factory, "status")

    assert result.exit_code == 1
    assert result.stderr == "Error: No AWS credentials found. Configure them.\n"


def test_unknown_options_are_usage_errors(factory):
    assert invoke(factory, "deploy", "--colour").exit_code == 2


def _real_templates(factory: mock.Mock) -> None:
    infra = factory.project_dir / "infra" / "cloudformation"
    for name in ("network", "site", "ops"):
        shutil.copy(REAL_TEMPLATES / f"{name}.yaml", infra / f"{name}.yaml")
    factory.stack_specs.return_value = STACKS


def test_cost_prints_line_items_and_total_on_stdout(factory):
    _real_templates(factory)

    result = invoke(factory, "cost", "--param", "NatMode=single")

    assert result.exit_code == 0, result.output
    assert "NAT gateways" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("Total: ")
    assert "taken 2026-11-28" in result.stderr


def test_push_prints_only_the_digest_on_stdout(factory):
    factory.deployer.return_value = FakeDeployer({})
    factory.pusher.return_value.push.return_value = PushResult(
        "r/site:abc123", "abc123", "sha256:feed"
    )

    result = invoke(factory, "push")

    assert result.exit_code == 0, result.output
    assert result.stdout == "sha256:feed\n"
    assert "Building with docker" in result.stderr
    kwargs = factory.pusher.return_value.push.call_args.kwargs
    assert kwargs["tag"] == "abc123"
    assert kwargs["context"] == factory.project_dir / "site"


def test_push_refuses_a_dirty_tree(factory):
    factory.deployer.return_value = FakeDeployer({})
    factory.runner = FakeRunner(
        {("git", "rev-parse"): (0, "abc123\n", ""), ("git", "status"): (0, " M x\n", "")}
    )

    result = invoke(factory, "push")

    assert result.exit_code == 2
    assert "--allow-dirty" in result.stderr
    factory.pusher.assert_not_called()


def test_destroy_deletes_in_reverse_order_after_confirmation(factory):
    deployer = FakeDeployer({})
    factory.deployer.return_value = deployer
    client = factory.aws.return_value.client.return_value
    client.list_images.return_value = {"imageIds": []}
    versions = [{"Key": "spotops/dev/ops/abc.zip", "VersionId": "v1"}]
    client.get_paginator.return_value.paginate.return_value = [{"Versions": versions}]

    refused = invoke(factory, "destroy", input="n\n")
    assert refused.exit_code == 0
    assert "Nothing changed" in refused.stderr
    assert deployer.deleted == []
    client.delete_objects.assert_not_called()

    result = invoke(factory, "destroy", input="y\n")

    assert result.exit_code == 0, result.output
    assert deployer.deleted == [SITE, NETWORK]
    # The stage's artifacts go; the app's bucket stays for its other stages.
    bucket = OUTPUTS[BOOTSTRAP]["ArtifactBucketName"]
    client.get_paginator.return_value.paginate.assert_called_with(
        Bucket=bucket, Prefix="spotops/dev/"
    )
    client.delete_objects.assert_called_once_with(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "spotops/dev/ops/abc.zip", "VersionId": "v1"}], "Quiet": True},
    )
    assert "spotops-bootstrap" not in deployer.deleted


def test_an_untranslated_aws_error_still_becomes_one_message(factory):
    from botocore.exceptions import ClientError

    deployer = FakeDeployer({})
    deployer.describe = mock.Mock(  # type: ignore[method-assign]
        side_effect=ClientError(
            {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeStacks"
        )
    )
    factory.deployer.return_value = deployer

    result = invoke(factory, "push")

    assert result.exit_code == 1
    assert "DescribeStacks failed" in result.stderr
    assert "Throttling: Rate exceeded" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("SpotWeight=0", "OnDemandWeight and SpotWeight must not both be 0"),
        ("DesiredCount=abc", "DesiredCount must be a number, not 'abc'"),
        ("DesiredCount=-1", "DesiredCount must be at least 0"),
        ("TaskMemory=4096", "with 256 CPU units TaskMemory must be 512, 1024, 2048"),
        ("MinTasks=5", "MinTasks 5 is more than MaxTasks 4"),
    ],
)
def test_cost_refuses_bad_input_with_the_valid_values_and_no_traceback(factory, param, says):
    _real_templates(factory)

    result = invoke(factory, "cost", "--param", param, "--param", "MaxTasks=4")

    assert result.exit_code == 2, result.output
    assert says in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_deploy_refuses_bad_input_before_any_aws_call(factory):
    _real_templates(factory)

    result = invoke(factory, "deploy", "--param", "TaskCpu=512", "--param", "TaskMemory=512")

    assert result.exit_code == 2
    assert "TaskMemory must be 1024, 2048, 3072, 4096" in " ".join(result.stderr.split())
    factory.aws.assert_not_called()
