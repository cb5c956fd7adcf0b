"""The strict layer (spotops.local.limits) in front of the moto server: what AWS refuses
and moto accepts is refused before it reaches moto, at exactly one unit over each limit,
and what fits still passes. Every test of the suite runs with it (tests/conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spotops.errors import LimitError
from spotops.local.limits import installed_everywhere
from tests.support.templates import TEMPLATES

pytestmark = pytest.mark.emulator

TOPIC = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}


def _padded(size: int) -> str:
    """A valid JSON template of exactly ``size`` bytes."""
    body = json.dumps({**TOPIC, "Metadata": {"Padding": ""}})
    return json.dumps({**TOPIC, "Metadata": {"Padding": "x" * (size - len(body))}})


def test_every_client_of_the_test_suite_goes_through_the_strict_layer():
    assert installed_everywhere()


def test_todays_site_template_sent_inline_is_refused_although_moto_would_take_it(aws):
    cfn = aws("cloudformation")
    body = (TEMPLATES / "site.yaml").read_text()

    with pytest.raises(LimitError, match=r"over AWS's limit of 51,200 bytes") as refused:
        cfn.create_stack(StackName="spotops-dev-site", TemplateBody=body)

    assert "spotops-dev-site" in str(refused.value)
    assert cfn.list_stacks()["StackSummaries"] == []  # nothing reached moto


@pytest.mark.parametrize("operation", ["create_stack", "create_change_set", "validate_template"])
def test_an_inline_template_of_exactly_the_limit_passes_and_one_byte_more_is_refused(
    aws, operation
):
    cfn = aws("cloudformation")
    kwargs: dict[str, Any] = {"StackName": "s"} if operation != "validate_template" else {}
    if operation == "create_change_set":
        kwargs.update(ChangeSetName="c", ChangeSetType="CREATE")

    getattr(cfn, operation)(TemplateBody=_padded(51_200), **kwargs)
    with pytest.raises(LimitError):
        getattr(cfn, operation)(TemplateBody=_padded(51_201), **{**kwargs, "StackName": "t"})


def test_a_template_by_url_is_read_from_the_emulator_and_held_to_the_url_limit(aws):
    s3, cfn = aws("s3"), aws("cloudformation")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="fits.json", Body=_padded(1_000_000).encode())
    s3.put_object(Bucket="artifacts", Key="over.json", Body=_padded(1_000_001).encode())
    url = "https://artifacts.s3.us-east-1.amazonaws.com/{}"

    cfn.create_stack(StackName="fits", TemplateURL=url.format("fits.json"))
    with pytest.raises(LimitError, match=r"1,000,001 bytes, over AWS's limit of 1,000,000"):
        cfn.create_stack(StackName="over", TemplateURL=url.format("over.json"))
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["fits"]


def test_a_template_by_url_is_checked_inside_too(aws):
    s3, cfn = aws("s3"), aws("cloudformation")
    s3.create_bucket(Bucket="artifacts")
    alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": "d" * 1_025,
            "Namespace": "AWS/ECS",
            "MetricName": "CPUUtilization",
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    }
    s3.put_object(Bucket="artifacts", Key="t.json", Body=json.dumps({"Resources": {"A": alarm}}))

    with pytest.raises(LimitError, match=r"s A: 1,025 characters, over AWS's limit of 1,024"):
        cfn.create_stack(
            StackName="s", TemplateURL="https://artifacts.s3.us-east-1.amazonaws.com/t.json"
        )


def test_alarm_descriptions_ssm_values_and_task_definitions_at_and_over_their_limits(aws):
    cloudwatch, ssm, ecs = aws("cloudwatch"), aws("ssm"), aws("ecs")
    alarm = {
        "Namespace": "AWS/ECS",
        "MetricName": "CPUUtilization",
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    cloudwatch.put_metric_alarm(AlarmName="fits", AlarmDescription="d" * 1_024, **alarm)
    with pytest.raises(LimitError, match="CloudWatch AlarmDescription"):
        cloudwatch.put_metric_alarm(AlarmName="over", AlarmDescription="d" * 1_025, **alarm)
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]] == ["fits"]

    ssm.put_parameter(Name="/fits", Value="v" * 4_096, Type="String")
    with pytest.raises(LimitError, match="SSM parameter value"):
        ssm.put_parameter(Name="/over", Value="v" * 4_097, Type="String")
    ssm.put_parameter(Name="/advanced", Value="v" * 4_097, Type="String", Tier="Advanced")

    container = {"name": "site", "image": "i", "memory": 512}
    padding = {"environment": [{"name": "E", "value": ""}]}
    shell = {"family": "f", "containerDefinitions": [{**container, **padding}]}
    room = 65_536 - len(json.dumps(shell, separators=(",", ":")))
    assert room > 0
    at_limit = [{**container, "environment": [{"name": "E", "value": "v" * room}]}]
    ecs.register_task_definition(family="f", containerDefinitions=at_limit)
    over = [{**container, "environment": [{"name": "E", "value": "v" * (room + 1)}]}]
    with pytest.raises(LimitError, match="ECS task definition"):
        ecs.register_task_definition(family="f", containerDefinitions=over)


def test_a_roles_inline_policies_are_summed_across_calls(aws):
    iam = aws("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))

    def policy(size: int) -> str:
        shell = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:x", "Resource": ""}],
        }
        room = size - len(json.dumps(shell, separators=(",", ":")))
        arn = "arn:aws:s3:::"
        shell["Statement"][0]["Resource"] = arn + "r" * (room - len(arn))  # type: ignore[index]
        return json.dumps(shell, indent=2)  # whitespace IAM does not count

    iam.put_role_policy(RoleName="r", PolicyName="a", PolicyDocument=policy(6_000))
    iam.put_role_policy(RoleName="r", PolicyName="b", PolicyDocument=policy(4_240))  # 10,240
    iam.put_role_policy(RoleName="r", PolicyName="a", PolicyDocument=policy(6_000))  # replaces
    with pytest.raises(LimitError, match=r"IAM role r: 10,241 characters"):
        iam.put_role_policy(RoleName="r", PolicyName="a", PolicyDocument=policy(6_001))
    with pytest.raises(LimitError, match="one IAM managed policy"):
        iam.create_policy(PolicyName="m", PolicyDocument=policy(6_145))
    iam.create_policy(PolicyName="m", PolicyDocument=policy(6_144))
