"""Building the ops stack: names from the site, the Chalice stage config, SAM translation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotops.errors import LimitError, NotDeployedError, PackageError
from spotops.ops.package import (
    OpsStackBuilder,
    build_package,
    offline_site_outputs,
    package_breaches,
    package_environment,
    pinned_powertools,
    stage_config,
    template_body,
    translate,
    with_code_location,
)
from spotops.stage.config import STACKS
from spotops.stage.deploy import PENDING_OUTPUT, plan_stacks, stack_parameters
from spotops.target import AWS
from tests.support.fakes import FakeRunner

ROOT = Path(__file__).resolve().parents[4]
SITE = {
    "ClusterName": "c",
    "ServiceName": "s",
    "RepositoryName": "r",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:t",
}
TAGS = {"spotops:app": "spotops", "spotops:stage": "dev"}


def test_the_packaged_environment_names_the_site_the_rules_match():
    assert package_environment("spotops", "dev", SITE) == {
        "APP_NAME": "spotops",
        "STAGE": "dev",
        "CLUSTER_NAME": "c",
        "SERVICE_NAME": "s",
        "REPOSITORY_NAME": "r",
        "ALARM_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
    }


def test_error_names_the_deploy_order_when_the_site_stack_is_missing():
    with pytest.raises(NotDeployedError, match="network -> site -> ops") as caught:
        package_environment("spotops", "dev", {})
    assert "ClusterName, ServiceName, RepositoryName, AlarmTopicArn are missing" in str(
        caught.value
    )


def test_stage_config_adds_the_stage_and_keeps_the_checkout_config():
    base = json.loads((ROOT / "ops_lambdas" / ".chalice" / "config.json").read_text())

    config = stage_config(base, "qa", {"STAGE": "qa"}, TAGS)

    assert config["stages"]["qa"] == {"environment_variables": {"STAGE": "qa"}, "tags": TAGS}
    assert config["autogen_policy"] is False  # every role is its policy file
    assert config["xray"] is True
    assert base["stages"] == {}  # the checkout's config is never changed


def test_every_function_has_its_own_policy_file():
    config = json.loads((ROOT / "ops_lambdas" / ".chalice" / "config.json").read_text())
    for name, settings in config["lambda_functions"].items():
        policy = ROOT / "ops_lambdas" / ".chalice" / settings["iam_policy_file"]
        assert policy.name == f"policy-{name}.json"
        assert json.loads(policy.read_text())["Statement"]


def test_error_carries_chalices_message_when_packaging_fails(tmp_path):
    runner = FakeRunner({("chalice",): (2, "", "Traceback...\nKeyError: 'dict'\n")})
    runner_args: list[list[str]] = []
    runner.on_call = runner_args.append

    with pytest.raises(PackageError, match="KeyError: 'dict'") as caught:
        build_package(
            ROOT,
            app="spotops",
            stage="dev",
            region="eu-west-1",
            site_outputs=SITE,
            tags=TAGS,
            build_dir=tmp_path / "build",
            runner=_as_chalice(runner),
        )
    assert "ops_lambdas" in str(caught.value)
    assert "infra/cloudformation/ops.yaml" in str(caught.value)
    assert "--merge-template" in runner_args[0]
    written = json.loads((tmp_path / "build" / "app" / ".chalice" / "config.json").read_text())
    assert written["stages"]["dev"]["environment_variables"]["CLUSTER_NAME"] == "c"


def _as_chalice(runner: FakeRunner) -> FakeRunner:
    """Answer as if the command were ``chalice`` whatever path it was found at."""

    def call(args, **kwargs):
        return FakeRunner.__call__(runner, ["chalice", *args[1:]], **kwargs)

    return call  # type: ignore[return-value]


def test_code_uri_points_every_function_at_the_uploaded_zip():
    sam = {
        "Resources": {
            "F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./d.zip"}},
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {}},
        }
    }

    located = with_code_location(sam, "bucket", "k.zip")

    assert located["Resources"]["F"]["Properties"]["CodeUri"] == {
        "Bucket": "bucket",
        "Key": "k.zip",
    }
    assert sam["Resources"]["F"]["Properties"]["CodeUri"] == "./d.zip"


def test_translation_makes_plain_cloudformation_and_tags_the_rules():
    sam = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {"AppName": {"Type": "String"}, "StageName": {"Type": "String"}},
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Runtime": "python3.11",
                    "Handler": "app.fn",
                    "CodeUri": {"Bucket": "b", "Key": "k"},
                    "Role": "arn:aws:iam::123456789012:role/r",
                    "Events": {
                        "Tick": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}
                    },
                },
            }
        },
    }

    cfn = translate(sam, region="eu-west-1")

    assert "Transform" not in cfn
    assert cfn["Resources"]["Fn"]["Type"] == "AWS::Lambda::Function"
    assert cfn["Resources"]["Fn"]["Properties"]["Code"] == {"S3Bucket": "b", "S3Key": "k"}
    rule = cfn["Resources"]["FnTick"]
    assert rule["Type"] == "AWS::Events::Rule"
    assert {"Key": "spotops:app", "Value": {"Ref": "AppName"}} in rule["Properties"]["Tags"]


def test_error_if_sam_refuses_the_template():
    broken = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {}}},
    }
    with pytest.raises(PackageError, match="SAM refused"):
        translate(broken, region="us-east-1")


def test_error_if_the_template_is_over_what_cloudformation_reads_from_s3():
    assert len(template_body({"Description": "x" * 52_000})) > 51_200  # fine from S3
    with pytest.raises(LimitError, match=r"1,000,\d{3} bytes, over AWS's limit of 1,000,000"):
        template_body({"Description": "x" * 1_000_001})


def _zip_of(size: int) -> bytes:
    """A deployment zip holding one file of ``size`` zero bytes (compresses to little)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("big.bin", "w") as member,
    ):
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
        member.write(bytes(size % len(chunk)))
    return buffer.getvalue()


def test_a_package_over_lambdas_unzipped_limit_is_refused_and_one_at_it_is_not():
    at_limit = 250 * 1024 * 1024
    assert package_breaches(_zip_of(at_limit), "p") == []
    (breach,) = package_breaches(_zip_of(at_limit + 1), "The ops package of spotops-dev")
    assert breach.limit.key == "lambda-unzipped"
    assert breach.measured == at_limit + 1
    assert "262,144,001 bytes, over AWS's limit of 262,144,000 bytes" in str(breach)


def test_the_ops_stack_is_deployed_last_and_fed_by_the_site():
    assert [spec.part for spec in STACKS] == ["network", "site", "ops"]
    ops = STACKS[-1]
    assert ops.packaged
    assert ops.fed_by == ("site",)


def test_site_outputs_become_the_ops_stacks_parameters_and_win_over_the_config():
    from spotops.stage.config import load_stage_config

    config = load_stage_config(ROOT, "dev")
    plans = plan_stacks(ROOT, STACKS, config)
    ops = plans[-1]
    site_outputs = offline_site_outputs("spotops", "dev")

    planned = stack_parameters(ops, plans, config.parameters, image_uri="", fed_outputs=None)
    deployed = stack_parameters(
        ops,
        plans,
        {**config.parameters, "ClusterName": "stale"},
        image_uri="",
        fed_outputs=site_outputs,
    )

    assert planned["ClusterName"] == PENDING_OUTPUT
    assert deployed["ClusterName"] == "spotops-dev"
    assert deployed["TaskRoleArn"] == site_outputs["TaskRoleArn"]
    assert deployed["DesiredCount"] == config.parameters["DesiredCount"]
    assert "ImageUri" not in deployed


# ---- the Powertools layer of the pinned version --------------------------------------------


class FakeSsm:
    def __init__(self, parameters: dict[str, str]) -> None:
        self.parameters = parameters
        self.asked: list[str] = []

    def get_parameter(self, Name: str) -> dict[str, Any]:
        self.asked.append(Name)
        if Name not in self.parameters:
            raise ClientError({"Error": {"Code": "ParameterNotFound", "Message": "x"}}, "Get")
        return {"Parameter": {"Name": Name, "Value": self.parameters[Name]}}


def _builder(ssm: FakeSsm, tmp_path: Path) -> OpsStackBuilder:
    return OpsStackBuilder(
        tmp_path,
        s3=None,
        lambda_client=None,
        ssm=ssm,
        runner=FakeRunner(),
        region="eu-west-1",
        target=AWS,
    )


def test_the_pin_is_read_from_the_runtime_requirements(tmp_path):
    pins = tmp_path / "ops_lambdas" / "requirements-runtime.txt"
    pins.parent.mkdir()
    pins.write_text("# comment\naws-lambda-powertools==3.40.1\naws-xray-sdk==2.15.0\n")
    assert pinned_powertools(tmp_path) == "3.40.1"
    pins.write_text("aws-lambda-powertools>=3.0\n")
    with pytest.raises(PackageError, match="exactly once"):
        pinned_powertools(tmp_path)


def test_the_layer_of_the_pinned_version_comes_from_awss_public_parameter(tmp_path):
    arn = "arn:aws:lambda:eu-west-1:017000801446:layer:powertools-under-test:41"
    name = "/aws/service/powertools/python/x86_64/python3.11/3.37.0"
    ssm = FakeSsm({name: arn})

    found, note = _builder(ssm, tmp_path)._public_layer("3.37.0")

    assert (found, ssm.asked) == (arn, [name])
    assert "aws-lambda-powertools 3.37.0" in note


def test_without_the_public_parameter_the_stack_falls_back_and_says_so(tmp_path):
    found, note = _builder(FakeSsm({}), tmp_path)._public_layer("3.37.0")

    assert found == ""
    assert "ParameterNotFound" in note
    assert "PowertoolsLayerVersion" in note
    assert "--param PowertoolsLayerArn=" in note
