"""Unit tests of infra/iam_lint.py: extraction, intrinsics, parliament, allow-list and CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra.iam_lint import (
    ALLOWLIST,
    AllowEntry,
    AllowlistError,
    Finding,
    IamLintError,
    PolicyDocument,
    check_policy,
    extract_policies,
    lint_template,
    load_allowlist,
    load_template,
    main,
)
from tests.support.templates import TEMPLATES

HEADER = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  AppName: {Type: String, Default: spotops}
  StageName: {Type: String, Default: dev}
  ImageUri: {Type: String, Default: ""}
  TaskRoleArn: {Type: String}
  EnvFileArn: {Type: String}
Conditions:
  IsProd: !Equals [!Ref StageName, prod]
  HasImage: !Not [!Equals [!Ref ImageUri, ""]]
Resources:
"""

SAMPLE = """\
  Ledger:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AppName}-${StageName}-ledger"
  Queue:
    Type: AWS::SQS::Queue
  Topic:
    Type: AWS::SNS::Topic
  Token:
    Type: AWS::SSM::Parameter
    Properties: {Name: /spotops/dev/token, Type: String, Value: x}
  Logs:
    Type: AWS::Logs::LogGroup
  Worker:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: ledger
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: [dynamodb:GetItem, dynamodb:PutItem]
                Resource: !GetAtt Ledger.Arn
        - PolicyName: !Sub "${AppName}-messages"
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: sqs:SendMessage
                Resource: !GetAtt Queue.Arn
              - Effect: Allow
                Action: sns:Publish
                Resource: !Ref Topic
              - Effect: Allow
                Action: ssm:GetParameter
                Resource: !Join
                  - ""
                  - ["arn:", !Ref AWS::Partition, ":ssm:", !Ref AWS::Region, ":",
                     !Ref AWS::AccountId, ":parameter", !Ref Token]
              - !If
                - IsProd
                - {Effect: Allow, Action: logs:PutLogEvents, Resource: !GetAtt Logs.Arn}
                - !Ref AWS::NoValue
  Reader:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: read
      Roles: [!Ref Worker]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:GetObject
            Resource: !If
              - IsProd
              - !Sub "arn:${AWS::Partition}:s3:::${AppName}-prod/*"
              - !Sub "arn:${AWS::Partition}:s3:::${AppName}-${ImageUri}/*"
"""


def write(tmp_path: Path, body: str, name: str = "template.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def role(statement: str) -> str:
    """A template body with one role whose single inline policy has ``statement``."""
    return f"""\
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {{}}
      Policies:
        - PolicyName: only
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {statement}
"""


def policy(*statements: dict[str, Any]) -> PolicyDocument:
    return PolicyDocument("Role/only", {"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def sample(tmp_path: Path) -> dict[str, PolicyDocument]:
    found = extract_policies(load_template(write(tmp_path, SAMPLE)))
    return {p.label: p for p in found}


# ---- extraction and resolution --------------------------------------------------------


def test_extracts_inline_role_policies_and_standalone_policies_but_not_trust_policies(sample):
    assert sorted(sample) == [
        "Reader/read (when IsProd)",
        "Reader/read (when not IsProd)",
        "Worker/ledger",
        "Worker/spotops-messages (when IsProd)",
        "Worker/spotops-messages (when not IsProd)",
    ]
    assert all("Principal" not in str(p.document) for p in sample.values())


def test_resolves_getatt_to_an_arn_shaped_like_the_resource_type(sample):
    (statement,) = sample["Worker/ledger"].document["Statement"]
    assert (
        statement["Resource"] == "arn:aws:dynamodb:us-east-1:123456789012:table/spotops-dev-ledger"
    )


def test_resolves_ref_getatt_and_join_to_realistic_values(sample):
    statements = sample["Worker/spotops-messages (when IsProd)"].document["Statement"]
    assert [s["Resource"] for s in statements] == [
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "arn:aws:sns:us-east-1:123456789012:topic",
        "arn:aws:ssm:us-east-1:123456789012:parameter/spotops/dev/token",
        "arn:aws:logs:us-east-1:123456789012:log-group:logs:*",
    ]


def test_checks_both_branches_of_an_if_and_drops_no_value(sample):
    assert len(sample["Worker/spotops-messages (when not IsProd)"].document["Statement"]) == 3
    assert sample["Reader/read (when IsProd)"].document["Statement"][0]["Resource"] == (
        "arn:aws:s3:::spotops-prod/*"
    )
    # An empty Default means "not set": a token named after the parameter stands in.
    assert sample["Reader/read (when not IsProd)"].document["Statement"][0]["Resource"] == (
        "arn:aws:s3:::spotops-imageuri/*"
    )


def test_labels_each_variant_with_only_the_conditions_that_change_it(tmp_path):
    body = """\
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies:
        - PolicyName: a
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: sns:Publish, Resource: !If [IsProd, !Ref Topic, "*"]}
        - PolicyName: b
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: sqs:SendMessage, Resource: !If [HasImage, "*", "*"]}
  Topic:
    Type: AWS::SNS::Topic
"""
    assert [p.label for p in extract_policies(load_template(write(tmp_path, body)))] == [
        "Role/a (when IsProd)",
        "Role/a (when not IsProd)",
        "Role/b",
    ]


def test_resolves_the_variable_map_of_sub_and_keeps_escaped_policy_variables(tmp_path):
    body = role(
        '{Effect: Allow, Action: s3:GetObject, Resource: !Sub ["arn:${AWS::Partition}:s3:::'
        '${Bucket}/${!aws:username}/*", {Bucket: !ImportValue shared-BucketName}]}'
    )
    (found,) = extract_policies(load_template(write(tmp_path, body)))
    assert found.document["Statement"][0]["Resource"] == (
        "arn:aws:s3:::imported-shared-BucketName/${aws:username}/*"
    )


def test_a_parameter_named_like_an_arn_without_default_becomes_an_arn_of_that_kind(tmp_path):
    body = role(
        "{Effect: Allow, Action: iam:PassRole, Resource: [!Ref TaskRoleArn, !Ref EnvFileArn]}"
    )
    (found,) = extract_policies(load_template(write(tmp_path, body)))
    assert found.document["Statement"][0]["Resource"] == [
        "arn:aws:iam::123456789012:role/taskrole",
        "envfilearn",  # no hint in the name: a plain token, which parliament calls INVALID_ARN
    ]


def test_a_policy_that_only_appears_under_a_condition_keeps_its_plain_label(tmp_path):
    body = """\
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      Policies: !If
        - IsProd
        - - PolicyName: exec
            PolicyDocument:
              Version: "2012-10-17"
              Statement: [{Effect: Allow, Action: ssmmessages:OpenDataChannel, Resource: "*"}]
        - !Ref AWS::NoValue
"""
    assert [p.label for p in extract_policies(load_template(write(tmp_path, body)))] == [
        "Role/exec"
    ]


def test_error_if_a_policy_refers_to_something_undeclared(tmp_path):
    body = role("{Effect: Allow, Action: sqs:SendMessage, Resource: !GetAtt Missing.Arn}")
    with pytest.raises(IamLintError, match="Missing"):
        extract_policies(load_template(write(tmp_path, body)))


# ---- parliament ---------------------------------------------------------------------


def test_reports_a_whole_service_granted_on_every_resource():
    (finding,) = check_policy(policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    assert (finding.severity, finding.issue) == ("LOW", "RESOURCE_STAR")
    assert "s3:GetObject" in finding.subjects
    assert finding.detail.endswith("more)")  # ~150 actions are shortened to five


def test_reports_an_action_that_does_not_exist():
    (finding,) = check_policy(
        policy({"Effect": "Allow", "Action": "ecs:DescribeServicez", "Resource": "*"})
    )
    assert finding.issue == "UNKNOWN_ACTION"
    assert finding.detail == "Unknown action ecs:DescribeServicez"


def test_reports_an_action_granted_on_a_resource_type_it_does_not_take(tmp_path):
    # A log group ARN without the ":*" CloudFormation's Arn attribute carries.
    body = role(
        "{Effect: Allow, Action: [logs:CreateLogStream], Resource: !Sub "
        '"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/app"}'
    )
    report = lint_template(write(tmp_path, body))
    (finding,) = report.findings
    assert (finding.severity, finding.issue) == ("MEDIUM", "RESOURCE_MISMATCH")
    assert finding.subjects == ("logs:CreateLogStream",)
    assert "logs:CreateLogStream needs a resource like arn:*:logs:" in finding.detail


def test_passes_tight_policies(sample):
    for found in sample.values():
        assert check_policy(found) == [], found.label


def test_reports_an_imported_value_used_as_a_whole_resource(tmp_path):
    body = role("{Effect: Allow, Action: sns:Publish, Resource: !ImportValue site-AlarmTopicArn}")
    (finding,) = lint_template(write(tmp_path, body)).findings
    assert finding.issue == "INVALID_ARN"
    assert finding.detail == "Does not have 6 parts: imported-site-AlarmTopicArn"


# ---- allow-list ---------------------------------------------------------------------

MISMATCH = Finding(
    label="FlowLogRole/write-flow-logs",
    severity="MEDIUM",
    issue="RESOURCE_MISMATCH",
    title="No resources match for the given action",
    detail="",
    subjects=("logs:CreateLogStream",),
)


def allowlist(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "allow.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_allowlist_suppresses_a_matching_finding(tmp_path):
    body = role(
        "{Effect: Allow, Action: [logs:CreateLogStream], Resource: !Sub "
        '"arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/app"}'
    )
    entries = load_allowlist(
        allowlist(
            tmp_path,
            """\
            - issue: RESOURCE_MISMATCH
              label: "Role/*"
              match: logs:createlogstream
              reason: The service writes streams it names itself.
            """,
        )
    )
    report = lint_template(write(tmp_path, body), entries)
    assert (report.findings, [f.issue for f in report.allowed]) == ([], ["RESOURCE_MISMATCH"])


@pytest.mark.parametrize(
    "entry",
    [
        AllowEntry("RESOURCE_STAR", "other issue"),
        AllowEntry("RESOURCE_MISMATCH", "other label", label="TaskRole/*"),
        AllowEntry("RESOURCE_MISMATCH", "other action", match="logs:PutLogEvents"),
    ],
)
def test_allowlist_entry_does_not_suppress_a_finding_it_does_not_name(entry):
    assert not entry.allows(MISMATCH)


def test_allowlist_match_must_cover_every_action_the_finding_names():
    both = Finding(**{**MISMATCH.__dict__, "subjects": ("logs:CreateLogStream", "s3:GetObject")})
    assert not AllowEntry("RESOURCE_MISMATCH", "r", match="logs:*").allows(both)
    assert AllowEntry("RESOURCE_MISMATCH", "r", match="logs:*").allows(MISMATCH)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- {issue: RESOURCE_STAR}\n", "needs a reason"),
        ("- {issue: RESOURCE_STAR, reason: '  '}\n", "needs a reason"),
        ("- {issue: NOT_AN_ISSUE, reason: r}\n", "not a parliament issue"),
        ("- {issue: RESOURCE_STAR, reason: r, action: x}\n", "unknown key"),
        ("issue: RESOURCE_STAR\n", "expected a list"),
    ],
)
def test_error_if_an_allowlist_entry_is_malformed(tmp_path, text, problem):
    with pytest.raises(AllowlistError, match=problem):
        load_allowlist(allowlist(tmp_path, text))


def test_the_shipped_allowlist_is_valid():
    assert isinstance(load_allowlist(ALLOWLIST), list)


# ---- command line -------------------------------------------------------------------


def test_cli_exits_1_and_prints_one_line_per_finding(tmp_path, capsys):
    path = write(tmp_path, role("{Effect: Allow, Action: ecs:DescribeServicez, Resource: '*'}"))
    assert main([str(path), "--allowlist", str(allowlist(tmp_path, "[]"))]) == 1
    out, err = capsys.readouterr()
    assert out == f"{path}: Role/only: LOW UNKNOWN_ACTION Unknown action ecs:DescribeServicez\n"
    assert err == "1 policies checked, 1 findings, 0 allowed\n"


def test_cli_exits_0_when_findings_are_below_the_minimum_severity(tmp_path, capsys):
    path = write(tmp_path, role("{Effect: Allow, Action: ecs:DescribeServicez, Resource: '*'}"))
    empty = str(allowlist(tmp_path, "[]"))
    assert main(["--min-severity", "medium", str(path), "--allowlist", empty]) == 0
    assert capsys.readouterr().out == ""


def test_cli_exits_0_when_every_finding_is_allowed(tmp_path, capsys):
    path = write(tmp_path, role("{Effect: Allow, Action: ecs:DescribeServicez, Resource: '*'}"))
    entries = allowlist(tmp_path, "- {issue: UNKNOWN_ACTION, reason: new API, match: ecs:*}\n")
    assert main([str(path), "--allowlist", str(entries)]) == 0
    assert capsys.readouterr().err == "1 policies checked, 0 findings, 1 allowed\n"


def test_cli_exits_2_on_an_unreadable_template_or_allowlist(tmp_path, capsys):
    assert main([str(tmp_path / "missing.yaml")]) == 2
    bad = allowlist(tmp_path, "- {issue: RESOURCE_STAR}\n")
    assert main([str(TEMPLATES / "network.yaml"), "--allowlist", str(bad)]) == 2
    assert "needs a reason" in capsys.readouterr().err
