"""AWS's limits (spotops.stage.limits): each measured as AWS counts it, refused just over the
limit and accepted at it, with the limit, the size and the fix in the message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotops.errors import LimitError
from spotops.stage import limits
from spotops.stage.config import load_stage_config
from spotops.stage.templates import load_template
from tests.support.templates import TEMPLATES

ROOT = Path(__file__).resolve().parents[4]


def _sized_template(kind: str, properties: dict[str, object]) -> dict[str, object]:
    return {"Resources": {"Thing": {"Type": kind, "Properties": properties}}}


def _keys(breaches: list[limits.Breach]) -> list[str]:
    return [breach.limit.key for breach in breaches]


@pytest.mark.parametrize(
    ("limit", "over"),
    [(limits.TEMPLATE_BODY, False), (limits.TEMPLATE_URL, True)],
)
def test_a_template_at_its_source_limit_passes_and_one_byte_more_is_refused(limit, over):
    at_limit = "x" * limit.maximum
    assert limits.template_source_breaches(at_limit, by_url=over, subject="t") == []
    (breach,) = limits.template_source_breaches(at_limit + "x", by_url=over, subject="t")
    assert breach.limit is limit
    assert breach.measured == limit.maximum + 1


def test_template_size_is_counted_in_bytes_not_characters():
    # 25,600 two-byte characters are 51,200 bytes: one more is over the inline limit.
    assert limits.template_source_breaches("é" * 25_600, by_url=False, subject="t") == []
    assert _keys(limits.template_source_breaches("é" * 25_601, by_url=False, subject="t")) == [
        "template-body"
    ]


def test_todays_site_template_is_over_the_inline_limit():
    body = (TEMPLATES / "site.yaml").read_text()
    (breach,) = limits.template_source_breaches(body, by_url=False, subject="site")
    assert "over AWS's limit of 51,200 bytes" in str(breach)
    assert "TemplateURL" in str(breach)  # the fix


def test_counts_of_resources_outputs_and_parameters_at_and_over_their_limits():
    def template(resources: int, outputs: int, parameters: int) -> dict[str, object]:
        return {
            "Resources": {f"R{i}": {"Type": "AWS::SNS::Topic"} for i in range(resources)},
            "Outputs": {f"O{i}": {"Value": "v"} for i in range(outputs)},
            "Parameters": {f"P{i}": {"Type": "String", "Default": ""} for i in range(parameters)},
        }

    assert limits.template_breaches(template(500, 200, 200), {}, subject="t") == []
    assert _keys(limits.template_breaches(template(501, 201, 201), {}, subject="t")) == [
        "resources",
        "outputs",
        "parameters",
    ]


def test_a_roles_inline_policies_count_together_without_whitespace():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    one = limits.policy_size(document)
    assert one == len(json.dumps(document, separators=(",", ":")))  # spaces do not count
    policies = 10_240 // one
    role = {
        "Policies": [{"PolicyName": f"p{i}", "PolicyDocument": document} for i in range(policies)]
    }
    fits = _sized_template("AWS::IAM::Role", role)
    assert limits.template_breaches(fits, {}, subject="t") == []
    role["Policies"].append({"PolicyName": "one-more", "PolicyDocument": document})
    (breach,) = limits.template_breaches(fits, {}, subject="t")
    assert breach.limit is limits.ROLE_INLINE_POLICIES
    assert breach.subject == "t Thing"


def test_an_alarm_description_is_measured_with_the_stages_parameters():
    template = {
        "Parameters": {"RunbookBaseUrl": {"Type": "String", "Default": "https://x"}},
        "Resources": {
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"AlarmDescription": {"Fn::Sub": "Runbook: ${RunbookBaseUrl}/a.md"}},
            }
        },
    }
    fixed = len("Runbook: ") + len("/a.md")
    at_limit = {"RunbookBaseUrl": "u" * (1_024 - fixed)}
    assert limits.template_breaches(template, at_limit, subject="t") == []
    over = {"RunbookBaseUrl": "u" * (1_025 - fixed)}
    (breach,) = limits.template_breaches(template, over, subject="t")
    assert (breach.limit, breach.measured) == (limits.ALARM_DESCRIPTION, 1_025)


def test_a_functions_environment_counts_keys_and_values():
    variables = {"K": "v" * (4_096 - 1)}
    fits = _sized_template("AWS::Lambda::Function", {"Environment": {"Variables": variables}})
    assert limits.template_breaches(fits, {}, subject="t") == []
    variables["K2"] = ""
    (breach,) = limits.template_breaches(fits, {}, subject="t")
    assert (breach.limit, breach.measured) == (limits.LAMBDA_ENVIRONMENT, 4_098)


def test_resources_whose_condition_is_false_are_not_measured():
    template = {
        "Parameters": {"Make": {"Type": "String", "Default": "no"}},
        "Conditions": {"Making": {"Fn::Equals": [{"Ref": "Make"}, "yes"]}},
        "Resources": {
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Condition": "Making",
                "Properties": {"AlarmDescription": "d" * 2_000},
            }
        },
    }
    assert limits.template_breaches(template, {}, subject="t") == []
    assert _keys(limits.template_breaches(template, {"Make": "yes"}, subject="t")) == [
        "alarm-description"
    ]


def test_refuse_names_every_breach_the_limit_the_size_and_the_fix():
    breaches = [
        limits.SSM_VALUE.breach(4_097, "SSM parameter /x"),
        limits.TASK_DEFINITION.breach(70_000, "Task definition site"),
    ]
    with pytest.raises(LimitError) as refused:
        limits.refuse([b for b in breaches if b], before="the change set of s")
    message = str(refused.value)
    assert message.startswith("Refused before the change set of s, nothing was changed:")
    assert "SSM parameter /x: 4,097 characters, over AWS's limit of 4,096 characters" in message
    assert "Task definition site: 70,000 bytes, over AWS's limit of 65,536 bytes" in message
    assert "Store less" in message
    assert "Move large settings" in message
    limits.refuse([], before="anything")  # nothing over: no error


@pytest.mark.parametrize("stage", ["dev", "seed", "prod"])
def test_every_template_fits_every_limit_for_every_profile(stage):
    config = load_stage_config(ROOT, stage)
    for name in ("bootstrap", "network", "site", "ci-role"):
        template = load_template(TEMPLATES / f"{name}.yaml")
        assert limits.template_breaches(template, config.parameters, subject=name) == []
