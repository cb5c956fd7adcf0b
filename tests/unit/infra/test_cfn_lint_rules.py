"""Unit tests of our cfn-lint rules (infra/cfn_lint_rules): each catches what it should."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from cfnlint.template import Template

from infra.cfn_lint_rules.alarm_runbook import AlarmRunbook
from infra.cfn_lint_rules.spotops_tags import SpotopsTags
from tests.support.templates import TEMPLATES, run_cfn_lint

HEADER = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  AppName: {Type: String, Default: spotops}
  StageName: {Type: String, Default: dev}
  RunbookBaseUrl: {Type: String, Default: "https://example.com/runbooks"}
Resources:
"""
TAGS = """\
      Tags:
        - {Key: "spotops:app", Value: !Ref AppName}
        - {Key: "spotops:stage", Value: !Ref StageName}
"""


def alarm(name: str, description: str) -> str:
    return (
        textwrap.dedent(
            f"""\
          {name}:
            Type: AWS::CloudWatch::Alarm
            Properties:
              AlarmDescription: {description}
              Namespace: AWS/ECS
              MetricName: CPUUtilization
              Statistic: Average
              Period: 60
              EvaluationPeriods: 1
              Threshold: 1
              ComparisonOperator: GreaterThanThreshold
        """
        )
        .replace("\n", "\n  ")
        .join(["  ", ""])
        .rstrip(" ")
        + TAGS
    )


def template(tmp_path: Path, body: str) -> Template:
    path = tmp_path / "stack" / "template.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(HEADER + body)
    decoded, errors = decode(str(path))
    assert not errors, errors
    return Template(str(path), decoded, ["us-east-1"])


def messages(matches: list[Any]) -> list[str]:
    return [m.message for m in matches]


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "cpu-high.md").write_text("# cpu-high\n")
    return folder


# ---- E9001 alarm runbook ------------------------------------------------------------


def test_alarm_linking_an_existing_runbook_passes(tmp_path, runbooks):
    cfn = template(
        tmp_path, alarm("Cpu", '!Sub "CPU high. Runbook: ${RunbookBaseUrl}/cpu-high.md"')
    )
    assert AlarmRunbook().match(cfn) == []


def test_alarm_without_a_runbook_link_is_reported(tmp_path, runbooks):
    cfn = template(tmp_path, alarm("Cpu", '"CPU is high"'))
    assert messages(AlarmRunbook().match(cfn)) == [
        "Alarm Cpu: AlarmDescription must be an Fn::Sub containing "
        "'Runbook: ${RunbookBaseUrl}/<file>.md'"
    ]


def test_alarm_with_a_hard_coded_base_url_is_reported(tmp_path, runbooks):
    cfn = template(tmp_path, alarm("Cpu", '!Sub "Runbook: https://example.com/cpu-high.md"'))
    assert len(AlarmRunbook().match(cfn)) == 1


def test_alarm_linking_a_missing_runbook_is_reported(tmp_path, runbooks):
    cfn = template(tmp_path, alarm("Disk", '!Sub "Runbook: ${RunbookBaseUrl}/disk-full.md"'))
    matches = AlarmRunbook().match(cfn)
    assert messages(matches) == ["Alarm Disk: runbook runbooks/disk-full.md does not exist"]
    assert matches[0].path == ["Resources", "Disk", "Properties", "AlarmDescription"]


# ---- E9002 spotops tags -------------------------------------------------------------

TOPIC = """\
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: t
"""


def test_taggable_resource_with_both_tags_passes(tmp_path):
    assert SpotopsTags().match(template(tmp_path, TOPIC + TAGS)) == []


def test_taggable_resource_without_tags_is_reported(tmp_path):
    assert messages(SpotopsTags().match(template(tmp_path, TOPIC))) == [
        "Topic: missing tag spotops:app",
        "Topic: missing tag spotops:stage",
    ]


def test_tag_with_a_literal_value_is_reported(tmp_path):
    body = TOPIC + TAGS.replace("!Ref StageName", "prod")
    assert messages(SpotopsTags().match(template(tmp_path, body))) == [
        "Topic: tag spotops:stage must be !Ref StageName"
    ]


def test_a_template_shared_by_every_stage_needs_only_the_app_tag(tmp_path):
    # The bootstrap bucket's template declares no StageName: no stage tag can be right.
    app_only = TAGS.replace('        - {Key: "spotops:stage", Value: !Ref StageName}\n', "")
    shared = HEADER.replace("  StageName: {Type: String, Default: dev}\n", "")
    path = tmp_path / "stack" / "template.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(shared + TOPIC + app_only)
    decoded, errors = decode(str(path))
    assert not errors
    assert SpotopsTags().match(Template(str(path), decoded, ["us-east-1"])) == []
    path.write_text(shared + TOPIC)
    decoded, _ = decode(str(path))
    assert messages(SpotopsTags().match(Template(str(path), decoded, ["us-east-1"]))) == [
        "Topic: missing tag spotops:app"
    ]


def test_resource_types_without_tags_are_not_checked(tmp_path):
    body = """\
  Route:
    Type: AWS::EC2::Route
    Properties:
      RouteTableId: rtb-123
      DestinationCidrBlock: 0.0.0.0/0
      GatewayId: igw-123
"""
    assert SpotopsTags().match(template(tmp_path, body)) == []


def test_an_untagged_resource_may_say_why_in_metadata(tmp_path):
    body = TOPIC.replace(
        "    Properties:",
        "    Metadata:\n      spotops:\n        untagged: emulator bug\n    Properties:",
    )
    assert SpotopsTags().match(template(tmp_path, body)) == []


# ---- wiring ---------------------------------------------------------------------------


def test_cfn_lint_loads_our_rules_and_reports_violations(tmp_path, runbooks):
    template(tmp_path, TOPIC + alarm("Disk", '!Sub "Runbook: ${RunbookBaseUrl}/disk-full.md"'))
    found = run_cfn_lint(tmp_path / "stack" / "template.yaml")
    assert sorted(m["Rule"]["Id"] for m in found) == ["E9001", "E9002", "E9002"]


def test_our_templates_are_clean_under_every_rule():
    # ops.yaml is a merge template; the ops package built from it is linted in its own tests.
    whole = [path for path in sorted(TEMPLATES.glob("*.yaml")) if path.name != "ops.yaml"]
    assert run_cfn_lint(*whole) == []
