"""The ops package as `spotops package` builds it: what moto drops, asserted on the template.

The package is built once per session, offline (the names the site template would give),
with the real Chalice and aws-sam-translator. `make lint` runs cfn-lint and checkov on the
same files; the emulator tests deploy a package built the same way.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.iam_lint import lint_template, load_allowlist
from spotops.commands import run_command
from spotops.ops.package import offline_artifact_bucket, offline_site_outputs, write_package

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = {
    "RedeployOnPush": "redeploy_on_push",
    "DeploymentOutcome": "deployment_outcome",
    "ReconcileImages": "reconcile_images",
    "ChaosTick": "chaos_tick",
    "AlarmAction": "alarm_action",
    "ImageScanAlert": "image_scan_alert",
    "DeploymentHook": "deployment_hook",
}
# ECS invokes the hook synchronously: no rule, no async retries, no destinations.
EVENT_FUNCTIONS = [logical_id for logical_id in FUNCTIONS if logical_id != "DeploymentHook"]
TAGS = {"spotops:app": "spotops", "spotops:stage": "qa"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("ops-package")
    written = write_package(
        ROOT,
        app="spotops",
        stage="qa",
        region="eu-west-1",
        site_outputs=offline_site_outputs("spotops", "qa"),
        tags=TAGS,
        out_dir=out,
        runner=run_command,
        bucket=offline_artifact_bucket("spotops", "eu-west-1"),
    )
    return {path.name: path for path in written}


@pytest.fixture(scope="module")
def cfn(built: dict[str, Path]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(built["ops.json"].read_text())
    return loaded


def resources(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def statements(cfn: dict[str, Any], role: str) -> list[dict[str, Any]]:
    (policy,) = cfn["Resources"][role]["Properties"]["Policies"]
    found: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return found


# ---- the zip --------------------------------------------------------------------------------


def test_the_zip_carries_our_code_and_slack_sdk_only(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["deployment.zip"]) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"app.py", "chalicelib", "slack_sdk", "chalice"} <= tops
    for absent in (
        "boto3",
        "botocore",
        "aws_lambda_powertools",
        "aws_xray_sdk",
        "tests",
        "s3transfer",
    ):
        assert absent not in tops
    assert "chalicelib/redeploy/flow.py" in names


def test_the_rules_match_only_the_stage_packaged(cfn: dict[str, Any]) -> None:
    rules = resources(cfn, "AWS::Events::Rule")
    patterns = [
        r["Properties"]["EventPattern"] for r in rules.values() if "EventPattern" in r["Properties"]
    ]
    push = next(p for p in patterns if p["source"] == ["aws.ecr"])
    assert push["detail"]["repository-name"] == ["spotops-qa-site"]
    deployments = [p for p in patterns if p["detail-type"] == ["ECS Deployment State Change"]]
    # deployment_outcome takes every state change; image_scan_alert only completions.
    outcome = next(p for p in deployments if "detail" not in p)
    assert outcome["resources"] == [
        {"wildcard": "arn:*:ecs:*:*:service/spotops-qa/spotops-qa-site"}
    ]
    scan = next(p for p in patterns if p["detail-type"] == ["ECR Image Scan"])
    assert scan["detail"]["repository-name"] == ["spotops-qa-site"]
    completed = next(p for p in deployments if "detail" in p)
    assert completed["detail"] == {"eventName": ["SERVICE_DEPLOYMENT_COMPLETED"]}


# ---- functions: tracing, layer, failure handling ------------------------------------------


@pytest.mark.parametrize(("logical_id", "name"), FUNCTIONS.items())
def test_each_function_traces_uses_the_layer_and_its_own_role(
    cfn: dict[str, Any], logical_id: str, name: str
) -> None:
    function = cfn["Resources"][logical_id]["Properties"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Runtime"] == "python3.11"
    assert function["Handler"] == f"app.{name}"
    assert function["FunctionName"] == {"Fn::Sub": f"${{AppName}}-${{StageName}}-{name}"}
    (layer,) = function["Layers"]
    assert layer["Fn::If"][0] == "HasPowertoolsLayerArn"
    assert (
        "AWSLambdaPowertoolsPythonV3-python311-x86_64:${PowertoolsLayerVersion}"
        in (layer["Fn::If"][2]["Fn::Sub"])
    )
    assert function["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
    assert cfn["Resources"][logical_id]["DependsOn"] == [f"{logical_id}LogGroup"]
    env = function["Environment"]["Variables"]
    assert env["LEDGER_TABLE_NAME"] == {"Ref": "LedgerTable"}
    assert env["SLACK_DLQ_URL"] == {"Ref": "SlackDeadLetterQueue"}
    assert env["KILL_SWITCH_PARAMETER"] == {"Ref": "KillSwitchParameter"}
    assert env["DRY_RUN_PARAMETER"] == {"Ref": "DryRunParameter"}


@pytest.mark.parametrize("logical_id", EVENT_FUNCTIONS)
def test_failed_async_invocations_and_undeliverable_events_are_kept(
    cfn: dict[str, Any], logical_id: str
) -> None:
    invoke = cfn["Resources"][f"{logical_id}EventInvokeConfig"]["Properties"]
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]
    }
    rule = next(
        r
        for r in resources(cfn, "AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]}
    )
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    # Only this stack's rules may write to the queue.
    policy = cfn["Resources"]["EventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    sources = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    rule_id = next(k for k, v in resources(cfn, "AWS::Events::Rule").items() if v is rule)
    assert {"Fn::GetAtt": [rule_id, "Arn"]} in sources


@pytest.mark.parametrize(("logical_id", "name"), FUNCTIONS.items())
def test_each_log_group_is_the_functions_and_has_retention(
    cfn: dict[str, Any], logical_id: str, name: str
) -> None:
    group = cfn["Resources"][f"{logical_id}LogGroup"]["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AppName}}-${{StageName}}-{name}"}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ---- least privilege --------------------------------------------------------------------------


@pytest.mark.parametrize(("logical_id", "name"), FUNCTIONS.items())
def test_each_role_holds_exactly_its_policy_file(
    cfn: dict[str, Any], logical_id: str, name: str
) -> None:
    role = cfn["Resources"][f"{logical_id}Role"]["Properties"]
    assert "ManagedPolicyArns" not in role
    policy_file = ROOT / "ops_lambdas" / ".chalice" / f"policy-{name}.json"
    assert statements(cfn, f"{logical_id}Role") == json.loads(policy_file.read_text())["Statement"]


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_star_resources_only_where_aws_has_no_resource_level_permission(
    cfn: dict[str, Any], logical_id: str
) -> None:
    for statement in statements(cfn, f"{logical_id}Role"):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not any(action.endswith("*") for action in actions), statement
        if statement["Resource"] == "*":
            assert "NoResourceLevel" in statement["Sid"], statement


@pytest.mark.parametrize("logical_id", ["RedeployOnPush", "ReconcileImages"])
def test_roles_are_passed_only_to_ecs_tasks_and_tags_only_on_register(
    cfn: dict[str, Any], logical_id: str
) -> None:
    by_sid = {s["Sid"]: s for s in statements(cfn, f"{logical_id}Role")}
    passing = by_sid["PassTheSiteRolesToEcsTasks"]
    assert passing["Action"] == "iam:PassRole"
    assert passing["Resource"] == [
        {"Fn::Sub": "${TaskRoleArn}"},
        {"Fn::Sub": "${TaskExecutionRoleArn}"},
    ]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    tagging = by_sid["TagRevisionsOnRegister"]
    assert tagging["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}


def test_the_outcome_function_cannot_change_the_service(cfn: dict[str, Any]) -> None:
    actions = {
        action
        for statement in statements(cfn, "DeploymentOutcomeRole")
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert not actions & {"ecs:UpdateService", "ecs:RegisterTaskDefinition", "iam:PassRole"}


def test_the_outcome_function_reads_only_its_clusters_tasks_and_the_sites_log(
    cfn: dict[str, Any],
) -> None:
    """The diagnosis of a failed deployment: stopped tasks, target health, one task's log."""
    by_action = {
        s["Action"]: s
        for s in statements(cfn, "DeploymentOutcomeRole")
        if isinstance(s["Action"], str)
    }
    assert by_action["ecs:ListTasks"]["Condition"] == {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}
    assert json.dumps(by_action["ecs:DescribeTasks"]["Resource"]).endswith(
        ':task/${ClusterName}/*"}'
    )
    assert by_action["logs:GetLogEvents"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        "/ecs/${AppName}-${StageName}/site:log-stream:*"
    }
    assert by_action["elasticloadbalancing:DescribeTargetHealth"]["Resource"] == "*"


def test_the_deployment_hook_has_no_event_source_and_only_reads_its_service_revisions(
    cfn: dict[str, Any],
) -> None:
    assert "DeploymentHookEventInvokeConfig" not in cfn["Resources"]
    targets = [
        target["Arn"]
        for rule in resources(cfn, "AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
    ]
    assert {"Fn::GetAtt": ["DeploymentHook", "Arn"]} not in targets
    actions = {
        action
        for statement in statements(cfn, "DeploymentHookRole")
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ecs:DescribeServiceRevisions",
    }
    (revisions,) = [
        s
        for s in statements(cfn, "DeploymentHookRole")
        if s["Action"] == "ecs:DescribeServiceRevisions"
    ]
    # Both resource types AWS requires, and only this stage's service and its revisions.
    assert json.dumps(revisions["Resource"]).count("${ClusterName}/${ServiceName}") == 2
    assert ":service-revision/${ClusterName}/${ServiceName}/*" in json.dumps(revisions["Resource"])
    assert cfn["Resources"]["DeploymentHook"]["Properties"]["Timeout"] == 90


def test_the_scan_function_reads_and_reports_but_changes_nothing(cfn: dict[str, Any]) -> None:
    actions = {
        action
        for statement in statements(cfn, "ImageScanAlertRole")
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert not {a for a in actions if a.startswith(("ecs:", "ecr:"))} - {
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecr:DescribeImages",
        "ecr:DescribeImageScanFindings",
    }


def test_parliament_finds_nothing_in_the_packaged_policies(built: dict[str, Path]) -> None:
    report = lint_template(built["ops.json"], load_allowlist(), min_severity="LOW")
    assert report.policies == len(FUNCTIONS)
    assert report.findings == []
    # Accepted in infra/iam_allowlist.yaml, with the reasons: all are reads.
    assert sorted((f.label, f.issue, f.subjects) for f in report.allowed) == [
        ("AlarmActionRole/AlarmActionRolePolicy", "RESOURCE_STAR", ("cloudwatch:DescribeAlarms",)),
        ("ChaosTickRole/ChaosTickRolePolicy", "RESOURCE_STAR", ("cloudwatch:DescribeAlarms",)),
        ("ChaosTickRole/ChaosTickRolePolicy", "RESOURCE_STAR", ("ecs:ListTasks",)),
        (
            "DeploymentOutcomeRole/DeploymentOutcomeRolePolicy",
            "RESOURCE_STAR",
            ("ecs:ListTasks",),
        ),
    ]


# ---- state: tables, secret, switches ------------------------------------------------------


@pytest.mark.parametrize(
    ("logical_id", "keys", "ttl"),
    [("LedgerTable", ["pk", "sk"], "ttl"), ("IdempotencyTable", ["id"], "expiration")],
)
def test_tables_have_the_keys_the_code_uses_recovery_and_encryption(
    cfn: dict[str, Any], logical_id: str, keys: list[str], ttl: str
) -> None:
    table = cfn["Resources"][logical_id]["Properties"]
    suffix = logical_id.removesuffix("Table").lower()
    assert table["TableName"] == {"Fn::Sub": f"${{AppName}}-${{StageName}}-{suffix}"}
    assert [k["AttributeName"] for k in table["KeySchema"]] == keys
    assert table["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_the_secret_is_created_without_a_url_and_switches_start_safe(cfn: dict[str, Any]) -> None:
    secret = cfn["Resources"]["SlackWebhookSecret"]["Properties"]
    assert json.loads(secret["SecretString"]) == {"url": ""}
    assert cfn["Resources"]["KillSwitchParameter"]["Properties"]["Value"] == "off"
    assert cfn["Resources"]["DryRunParameter"]["Properties"]["Value"] == "false"


def test_dead_letters_raise_an_alarm_that_links_its_runbook(cfn: dict[str, Any]) -> None:
    alarms = resources(cfn, "AWS::CloudWatch::Alarm")
    assert set(alarms) == {"SlackDeadLettersAlarm", "EventDeadLettersAlarm"}
    for alarm in alarms.values():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]
        assert (
            "Runbook: ${RunbookBaseUrl}/ops-dead-letters.md"
            in properties["AlarmDescription"]["Fn::Sub"]
        )
    assert (ROOT / "runbooks" / "ops-dead-letters.md").is_file()


def test_the_sam_template_is_what_chalice_merged(built: dict[str, Path]) -> None:
    sam = yaml.safe_load(built["sam.yaml"].read_text())
    assert sam["Transform"] == "AWS::Serverless-2016-10-31"
    assert {r["Type"] for r in sam["Resources"].values()} >= {"AWS::Serverless::Function"}
    # Chalice's own form, beside the zip (what `aws cloudformation package` would take).
    assert sam["Resources"]["RedeployOnPush"]["Properties"]["CodeUri"] == "./deployment.zip"


# ---- chaos: the schedule, the leash, StopTask only in this cluster ------------------------


def test_chaos_runs_hourly_leashed_and_watches_recovery_within_its_timeout(
    cfn: dict[str, Any],
) -> None:
    function = cfn["Resources"]["ChaosTick"]["Properties"]
    env = function["Environment"]["Variables"]
    assert function["Timeout"] == 900
    assert env["CHAOS_LEASH_PARAMETER"] == {"Ref": "ChaosLeashParameter"}
    for variable, parameter in {
        "CHAOS_TIME_ZONE": "ChaosTimeZone",
        "CHAOS_WINDOW_DAYS": "ChaosWindowDays",
        "CHAOS_WINDOW_HOURS": "ChaosWindowHours",
        "CHAOS_FREEZE_DATES": "ChaosFreezeDates",
        "CHAOS_MTBK_HOURS": "ChaosMtbkHours",
        "CHAOS_MIN_GAP_HOURS": "ChaosMinGapHours",
        "CHAOS_RECOVERY_TIMEOUT_SECONDS": "ChaosRecoveryTimeoutSeconds",
    }.items():
        assert env[variable] == {"Ref": parameter}
    assert cfn["Parameters"]["ChaosRecoveryTimeoutSeconds"]["MaxValue"] < function["Timeout"]
    # Only the chaos function gets the chaos settings.
    for other in ("RedeployOnPush", "DeploymentOutcome", "ReconcileImages", "AlarmAction"):
        variables = cfn["Resources"][other]["Properties"]["Environment"]["Variables"]
        assert not [name for name in variables if name.startswith("CHAOS_")]
    leash = cfn["Resources"]["ChaosLeashParameter"]["Properties"]
    assert leash["Name"] == {"Fn::Sub": "/${AppName}/${StageName}/chaos-leash"}
    assert leash["Value"] == "on"  # leashed on first deploy
    (rule,) = [
        r
        for r in resources(cfn, "AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ChaosTick", "Arn"]}
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(60 minutes)"


CLUSTER_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}"
}


def test_chaos_stops_only_tasks_of_this_cluster_and_changes_nothing_else(
    cfn: dict[str, Any],
) -> None:
    by_sid = {s["Sid"]: s for s in statements(cfn, "ChaosTickRole")}
    stop = by_sid["StopOnlyTheClustersTasks"]
    assert stop["Action"] == "ecs:StopTask"
    assert stop["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
        ":task/${ClusterName}/*"
    }
    assert stop["Condition"] == {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}
    listing = by_sid["ListTheClustersServicesAndTasksNoResourceLevel"]
    assert listing["Condition"] == {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}
    actions = {
        action
        for statement in by_sid.values()
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    changes = {a for a in actions if not a.split(":")[1].startswith(("Describe", "List", "Get"))}
    assert changes == {
        "ecs:StopTask",
        "dynamodb:PutItem",  # the lock and the chaos records
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "sqs:SendMessage",  # dead letters
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    # No other role may stop a task.
    for logical_id in ("RedeployOnPush", "DeploymentOutcome", "ReconcileImages", "AlarmAction"):
        assert "ecs:StopTask" not in json.dumps(statements(cfn, f"{logical_id}Role"))


# ---- alarms: the topic's subscription, the rules, changes only to the site's service --------

SERVICE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
    ":service/${ClusterName}/${ServiceName}"
}


def rules_of(cfn: dict[str, Any], logical_id: str) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in resources(cfn, "AWS::Events::Rule").items()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]}
    }


def test_the_alarm_function_is_subscribed_to_the_sites_alarm_topic(cfn: dict[str, Any]) -> None:
    # moto drops AWS::SNS::Subscription: the subscription is asserted here, on the template.
    topic = offline_site_outputs("spotops", "qa")["AlarmTopicArn"]
    (subscription,) = resources(cfn, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "Endpoint": {"Fn::GetAtt": ["AlarmAction", "Arn"]},
        "Protocol": "lambda",
        "TopicArn": topic,
    }
    permission = cfn["Resources"]["AlarmActionAlarmActionSnsSubscriptionPermission"]["Properties"]
    assert permission["Principal"] == "sns.amazonaws.com"
    assert permission["SourceArn"] == topic
    assert permission["FunctionName"] == {"Ref": "AlarmAction"}
    function = cfn["Resources"]["AlarmAction"]["Properties"]
    env = function["Environment"]["Variables"]
    assert env["ALARM_TOPIC_ARN"] == topic  # the packager wrote it from the site's outputs
    assert env["REMEDIATION_MAX_PER_HOUR"] == {"Ref": "RemediationMaxPerHour"}
    assert env["CAPACITY_RETURN_AFTER_SECONDS"] == {"Ref": "CapacityReturnAfterSeconds"}
    assert env["SLACK_WEBHOOK_SECRETS_BY_SEVERITY"] == {"Ref": "SlackWebhookSecretsBySeverity"}
    assert function["Timeout"] == 120


def test_the_alarm_function_gets_alarm_state_changes_spot_events_and_a_capacity_check(
    cfn: dict[str, Any],
) -> None:
    rules = rules_of(cfn, "AlarmAction")
    assert set(rules) == {
        "AlarmActionAlarmStateChange",
        "AlarmActionSpotInterruption",
        "AlarmActionServiceAction",
        "AlarmActionCapacityCheck",
    }
    alarms = rules["AlarmActionAlarmStateChange"]["EventPattern"]
    assert alarms["detail-type"] == ["CloudWatch Alarm State Change"]
    assert alarms["detail"]["alarmName"] == [{"prefix": {"Fn::Sub": "${AppName}-${StageName}-"}}]
    spot = rules["AlarmActionSpotInterruption"]["EventPattern"]
    assert spot["detail-type"] == ["ECS Task State Change"]
    assert spot["detail"]["stopCode"] == ["SpotInterruption"]
    assert spot["detail"]["group"] == [{"Fn::Sub": "service:${ServiceName}"}]
    assert spot["detail"]["clusterArn"] == [CLUSTER_ARN]
    action = rules["AlarmActionServiceAction"]["EventPattern"]
    assert action["detail"]["eventName"] == ["SERVICE_TASK_PLACEMENT_FAILURE"]
    assert action["resources"] == [SERVICE_ARN]
    assert rules["AlarmActionCapacityCheck"]["ScheduleExpression"] == "rate(15 minutes)"
    policy = cfn["Resources"]["EventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    sources = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    for rule_id, rule in rules.items():
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"] == {
            "Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
        }
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
        assert {"Fn::GetAtt": [rule_id, "Arn"]} in sources


def test_the_alarm_function_changes_only_the_sites_service(cfn: dict[str, Any]) -> None:
    by_sid = {s["Sid"]: s for s in statements(cfn, "AlarmActionRole")}
    assert by_sid["RemediateTheServiceOnly"] == {
        "Sid": "RemediateTheServiceOnly",
        "Effect": "Allow",
        "Action": "ecs:UpdateService",
        "Resource": SERVICE_ARN,
    }
    actions = {
        action
        for statement in by_sid.values()
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    changes = {a for a in actions if not a.split(":")[1].startswith(("Describe", "List", "Get"))}
    assert changes == {
        "ecs:UpdateService",
        "dynamodb:PutItem",  # the ledger (lock, budget, cooldown, records) and idempotency
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert not actions & {"iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:StopTask"}
    secrets = by_sid["SlackWebhookSecretsOfEverySeverity"]["Resource"]["Fn::Sub"]
    assert secrets.endswith(":secret:${AppName}/${StageName}/slack-webhook-*")
