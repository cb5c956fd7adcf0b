"""The outcome's Slack post says why a deployment failed: stopped tasks and log lines read
from moto; what moto cannot give (stop codes, exit codes, target health) through a Stubber
with recorded-shape responses; a read that fails still posts the outcome."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.stub import Stubber

from chalicelib.diagnosis import diagnose
from chalicelib.gateway import DiagnosisReads
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.slack import SECTION_TEXT_LIMIT
from chalicelib.toolkit import Toolkit
from tests.functional.ops.test_outcome import deploy, state_event
from tests.support.aws_responses import load_response
from tests.support.ops_world import REGION, SITE_CONTAINER, World
from tests.support.slack_limits import slack_refusal
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

LOG_GROUP = "/ecs/spotops-dev/site"
CRASH = "Essential container in task exited"


def log_to_cloudwatch(world: World) -> None:
    """Run the service on a revision that logs with awslogs, as the site template does, so
    the redeploy's copy of it logs there too."""
    ecs = world.clients.ecs
    raw = ecs.describe_task_definition(taskDefinition=world.bootstrap_td)["taskDefinition"]
    containers = raw["containerDefinitions"]
    for container in containers:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": LOG_GROUP,
                "awslogs-region": REGION,
                "awslogs-stream-prefix": "site",
            },
        }
    arn = ecs.register_task_definition(
        family=raw["family"],
        networkMode=raw["networkMode"],
        requiresCompatibilities=raw["requiresCompatibilities"],
        cpu=raw["cpu"],
        memory=raw["memory"],
        executionRoleArn=raw["executionRoleArn"],
        containerDefinitions=containers,
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=world.cluster, service=world.service, taskDefinition=arn)


def run_task(world: World, task_definition: str) -> str:
    ec2 = world.clients.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="site", Description="site", VpcId=vpc)["GroupId"]
    task = world.clients.ecs.run_task(
        cluster=world.cluster,
        taskDefinition=task_definition,
        count=1,
        launchType="FARGATE",
        startedBy="ecs-svc/1234567890123456789",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}
        },
    )["tasks"][0]
    return str(task["taskArn"])


def crash_task(world: World, task_definition: str, lines: list[str]) -> str:
    """A task of ``task_definition`` that logged ``lines`` and stopped as a crash does."""
    ecs = world.clients.ecs
    arn = run_task(world, task_definition)
    ecs.stop_task(cluster=world.cluster, task=arn, reason=CRASH)
    logs = world.clients.client("logs")
    stream = f"site/{SITE_CONTAINER}/{arn.rsplit('/', 1)[-1]}"
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now_ms = int(time.time() * 1000)  # CloudWatch Logs refuses events over 14 days old
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now_ms - len(lines) + i, "message": m} for i, m in enumerate(lines)
        ],
    )
    return arn


def failed_deployment(world: World, kit: Toolkit) -> tuple[dict[str, Any], str]:
    log_to_cloudwatch(world)
    world.clients.client("logs").create_log_group(logGroupName=LOG_GROUP)
    started = deploy(world, kit)
    record = kit.ledger.read_deployment(kit.settings.service_key)
    assert record is not None
    lines = [f"request {i} ok" for i in range(30)] + ["KeyError: 'DATABASE_URL'"]
    arn = crash_task(world, record.task_definition, lines)
    # A task of the revision before it stopped too: not this deployment's, not reported.
    other = run_task(world, world.bootstrap_td)
    world.clients.ecs.stop_task(cluster=world.cluster, task=other, reason="Scaling activity")
    return started, arn


def test_a_failed_deployment_posts_its_stopped_tasks_and_the_last_log_lines(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started, arn = failed_deployment(world, kit)

    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )

    assert result["status"] == "failed"
    report = str(slack.bodies[-1])
    task = arn.rsplit("/", 1)[-1]
    assert f"task {task} stopped: {CRASH}" in report
    assert "Scaling activity" not in report
    assert f"last log lines of task {task}:" in report
    assert "KeyError: 'DATABASE_URL'" in report
    assert "request 10 ok" not in report  # only the last 20 lines
    assert "request 11 ok" in report
    assert slack_refusal(slack.bodies[-1]) is None


def test_a_rolling_back_notice_carries_no_diagnosis_but_the_rolled_back_outcome_does(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started, arn = failed_deployment(world, kit)

    handle_deployment_state(
        state_event("ecsDeploymentStateChangeRollback", started["deployment_id"], "evt-1"), kit
    )
    rolling = str(slack.bodies[-1])
    done = handle_deployment_state(
        state_event("ecsDeploymentStateChangeCompleted", started["deployment_id"], "evt-2"), kit
    )

    assert done["status"] == "rolled-back"
    assert "Why it failed" not in rolling
    assert f"task {arn.rsplit('/', 1)[-1]} stopped: {CRASH}" in str(slack.bodies[-1])


def test_a_read_that_is_refused_is_named_and_the_outcome_is_still_posted(
    world: World, kit: Toolkit, slack: SlackStub
) -> None:
    started, _ = failed_deployment(world, kit)
    assert kit.aws is not None
    logs = kit.aws.client("logs")
    stubber = Stubber(logs)
    stubber.add_client_error("get_log_events", "AccessDeniedException", http_status_code=400)
    stubber.activate()

    result = handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )

    assert result["status"] == "failed"
    report = str(slack.bodies[-1])
    assert "Deployment failed: v1.2.3" in slack.texts()[-1]
    assert "could not read the log of task" in report
    assert "get_log_events: AccessDeniedException" in report
    assert f"stopped: {CRASH}" in report  # the other reads still ran


def test_a_diagnosis_that_breaks_does_not_hold_up_the_report(
    world: World, kit: Toolkit, slack: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = deploy(world, kit)

    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("taskDefinitionArn")

    monkeypatch.setattr(DiagnosisReads, "diagnose", broken)
    handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )

    assert "Deployment failed: v1.2.3" in slack.texts()[-1]
    assert "Why it failed: could not be read (KeyError)" in str(slack.bodies[-1])


def test_a_diagnosis_of_exactly_a_sections_size_is_posted_whole_and_slack_takes_it(
    world: World, kit: Toolkit, slack: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The section limit is 3,000 characters: "Why it failed:" and the text fill it exactly."""
    started = deploy(world, kit)
    heading = "Why it failed:\n"
    line = "x" * 99
    body = "\n".join([line] * 29) + "\n" + "y" * (SECTION_TEXT_LIMIT - len(heading) - 29 * 100)
    assert len(heading + body) == SECTION_TEXT_LIMIT
    found = diagnose(unreadable=())
    monkeypatch.setattr(type(found), "text", lambda self, limit=None: body[:limit])

    handle_deployment_state(
        state_event("ecsDeploymentStateChangeFailed", started["deployment_id"]), kit
    )

    sections = [b["text"]["text"] for b in slack.bodies[-1]["blocks"] if b.get("type") == "section"]
    assert heading + body in sections
    assert slack_refusal(slack.bodies[-1]) is None


# ---- what moto cannot give: stop codes, exit codes, target health --------------------------

CLUSTER, SERVICE = "default", "servicetest"
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/site:8"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/site/0123456789abcdef"


def client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",  # never reached: every call is stubbed
        config=Config(signature_version=UNSIGNED),  # stubbed: nothing is signed or sent
    )


def test_the_reads_follow_the_service_to_its_tasks_targets_and_the_failed_containers_log() -> None:
    ecs, elbv2, logs = client("ecs"), client("elbv2"), client("logs")
    stopped = load_response("ecsDescribeTasksStopped")
    arns = [t["taskArn"] for t in stopped["tasks"]]
    newest = arns[0].rsplit("/", 1)[-1]
    with Stubber(ecs) as e, Stubber(elbv2) as b, Stubber(logs) as lg:
        e.add_response(
            "describe_services",
            {"services": [{"serviceName": SERVICE, "loadBalancers": [{"targetGroupArn": TG}]}]},
            {"cluster": CLUSTER, "services": [SERVICE]},
        )
        e.add_response(
            "list_tasks",
            {"taskArns": arns},
            {
                "cluster": CLUSTER,
                "serviceName": SERVICE,
                "desiredStatus": "STOPPED",
                "maxResults": 100,
            },
        )
        e.add_response("describe_tasks", stopped, {"cluster": CLUSTER, "tasks": arns})
        b.add_response(
            "describe_target_health",
            load_response("elbv2DescribeTargetHealth"),
            {"TargetGroupArn": TG},
        )
        e.add_response(
            "describe_task_definition",
            {
                "taskDefinition": {
                    "taskDefinitionArn": TD,
                    "containerDefinitions": [
                        {
                            "name": "site",
                            "logConfiguration": {
                                "logDriver": "awslogs",
                                "options": {
                                    "awslogs-group": LOG_GROUP,
                                    "awslogs-stream-prefix": "site",
                                },
                            },
                        }
                    ],
                }
            },
            {"taskDefinition": TD},
        )
        lg.add_response(
            "get_log_events",
            load_response("logsGetLogEvents"),
            {
                "logGroupName": LOG_GROUP,
                "logStreamName": f"site/site/{newest}",
                "limit": 20,
                "startFromHead": False,
            },
        )

        found = DiagnosisReads(ecs, elbv2, logs, cluster=CLUSTER, service=SERVICE).diagnose(TD)

    assert found.findings[0] == (
        f"2 tasks stopped (newest {newest}): Essential container in task exited; site exited 1"
    )
    assert any("site exited 137 (OutOfMemoryError" in f for f in found.findings)
    assert any("unhealthy: Target.ResponseCodeMismatch" in f for f in found.findings)
    assert found.log_task == newest
    assert found.log_lines[-1] == "KeyError: 'DATABASE_URL'"
    assert found.unreadable == ()


def test_every_read_refused_still_gives_a_diagnosis_naming_each() -> None:
    ecs, elbv2, logs = client("ecs"), client("elbv2"), client("logs")
    with Stubber(ecs) as e:
        e.add_client_error("describe_services", "AccessDeniedException", http_status_code=400)
        e.add_client_error("list_tasks", "AccessDeniedException", http_status_code=400)

        found = DiagnosisReads(ecs, elbv2, logs, cluster=CLUSTER, service=SERVICE).diagnose(TD)

    assert found.unreadable == (
        "the service (describe_services: AccessDeniedException)",
        "the stopped tasks (list_tasks: AccessDeniedException)",
    )
    assert found.text().splitlines()[0] == (
        "could not read the service (describe_services: AccessDeniedException)"
    )
