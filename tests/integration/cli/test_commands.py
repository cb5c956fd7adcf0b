"""``spotops logs``, ``status`` (tasks, health, ops toolkit), ``init`` and ``deploy --image``
against the moto server."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from spotops.cli import main as cli_module
from spotops.cli.main import cli
from spotops.factory import CLIFactory
from spotops.local.images import put_image
from spotops.reports.logs import LogReader
from spotops.stage.config import STACKS
from tests.integration.cli.conftest import SiteOnlyFactory
from tests.support.templates import TEMPLATES

pytestmark = pytest.mark.emulator

SITE = "spotops-dev-site"
FUNCTIONS = ("redeploy_on_push", "deployment_outcome", "reconcile_images", "chaos_tick")
# The ops stack as status reads it: its dead-letter queues, by output name.
OPS_STAND_IN = """
Resources:
  SlackDeadLetterQueue: {Type: AWS::SQS::Queue, Properties: {QueueName: spotops-dev-slack-dlq}}
  EventsDeadLetterQueue: {Type: AWS::SQS::Queue, Properties: {QueueName: spotops-dev-events-dlq}}
Outputs:
  SlackDeadLetterQueueUrl: {Value: !Ref SlackDeadLetterQueue}
  EventsDeadLetterQueueUrl: {Value: !Ref EventsDeadLetterQueue}
"""


class StatusFactory(CLIFactory):
    """Every stack's name (status reads the ops stack), fast log polling, ops functions from
    the test project (which has no ops_lambdas/)."""

    def __init__(self, *args: Any, sleeps: list[float] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleeps = sleeps

    def stack_specs(self):
        return STACKS

    def log_reader(self, session):
        def sleep(seconds: float) -> None:
            if self.sleeps is None:
                return
            self.sleeps.append(seconds)
            if len(self.sleeps) >= 2:
                raise KeyboardInterrupt  # what Ctrl-C does while following

        return LogReader(session.client("logs"), sleep=sleep, poll_seconds=0.01)


@pytest.fixture
def deployed(spotops: Callable[..., Result]) -> None:
    assert spotops("deploy", "--yes").exit_code == 0


@pytest.fixture
def run(emulator: str, project: Path) -> Callable[..., Result]:
    def invoke(*args: str, factory: CLIFactory | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            ["--project-dir", str(project), *args],
            input=input,
            obj=factory or StatusFactory(project_dir=project),
        )

    return invoke


def _log(aws, group: str, *messages: str, stream: str = "site/site/abc") -> None:
    logs = aws("logs")
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def _json_line(level: str, message: str, **extra: Any) -> str:
    return json.dumps(
        {"level": level, "timestamp": "2026-11-28T10:00:00Z", "message": message, **extra}
    )


# ---- logs ------------------------------------------------------------------------------


def test_logs_shows_the_sites_json_lines_readably(run, aws, deployed):
    _log(aws, "/ecs/spotops-dev/site", _json_line("INFO", "GET /healthz", status=200), "plain text")

    result = run("logs", "--since", "1h")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert " ".join(lines[0].split()[1:]) == "site INFO GET /healthz status=200"
    assert lines[1].endswith("site plain text")


def test_logs_json_prints_each_event_exactly_as_logged(run, aws, deployed):
    raw = _json_line("ERROR", "boom", request_id="r-1")
    _log(aws, "/ecs/spotops-dev/site", raw)

    result = run("logs", "--json")

    assert result.exit_code == 0, result.output
    assert result.stdout == raw + "\n"


def test_logs_of_the_ops_functions_merged_by_time_and_filtered(run, aws, deployed):
    _log(aws, "/aws/lambda/spotops-dev-chaos_tick", _json_line("ERROR", "chaos failed"))
    _log(aws, "/aws/lambda/spotops-dev-redeploy_on_push", _json_line("INFO", "deploying"))

    everything = run("logs", "--source", "ops")
    errors = run("logs", "--source", "ops", "--filter", "ERROR")

    assert everything.exit_code == 0, everything.output
    assert "chaos_tick" in everything.stdout
    assert "redeploy_on_push" in everything.stdout
    assert "No log group /aws/lambda/spotops-dev-reconcile_images yet" in everything.stderr
    assert "chaos failed" in errors.stdout
    assert "deploying" not in errors.stdout


def test_logs_follow_prints_new_events_until_ctrl_c(run, aws, project, deployed):
    _log(aws, "/ecs/spotops-dev/site", _json_line("INFO", "first"))
    sleeps: list[float] = []

    result = run("logs", "--follow", factory=StatusFactory(project_dir=project, sleeps=sleeps))

    assert result.exit_code == 0, result.output
    assert result.stdout.count("first") == 1  # read twice, printed once
    assert len(sleeps) == 2


def test_error_if_the_log_source_is_unknown(run, deployed):
    result = run("logs", "--source", "nginx")

    assert result.exit_code == 2
    assert "Unknown log source 'nginx'. Known: site, ops, all, redeploy_on_push" in result.stderr


# ---- status ----------------------------------------------------------------------------


@pytest.fixture
def tasks_stay_running(emulator: str) -> Iterator[None]:
    def state(path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{emulator}/moto-api/state-manager/{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    state(
        "set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
    yield
    state("unset-transition", {"model_name": "ecs::task"})


def test_status_shows_each_task_its_capacity_and_its_health_and_the_ops_toolkit(
    run, aws, deployed, tasks_stay_running
):
    ecs, ec2, elbv2, cfn = aws("ecs"), aws("ec2"), aws("elbv2"), aws("cloudformation")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"][0]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ][0]["SubnetId"]
    # moto drops EnableDnsHostnames from CloudFormation; its Fargate run_task needs it.
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    sg = ec2.create_security_group(GroupName="tasks", Description="t", VpcId=vpc["VpcId"])[
        "GroupId"
    ]
    group = elbv2.create_target_group(
        Name="site", Protocol="HTTP", Port=8080, VpcId=vpc["VpcId"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    # What the fixture site leaves out (the real one has it): the load balancer.
    ecs.update_service(
        cluster="spotops-dev",
        service=SITE,
        loadBalancers=[{"targetGroupArn": group, "containerName": "site", "containerPort": 8080}],
    )
    # moto's CloudFormation drops the task definition's network mode: register one in awsvpc.
    definition = ecs.register_task_definition(
        family=SITE,
        containerDefinitions=[{"name": "site", "image": "x", "memory": 512, "essential": True}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    started = ecs.run_task(
        cluster="spotops-dev",
        taskDefinition=definition,
        count=2,
        group=f"service:{SITE}",
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}},
    )["tasks"]
    described = ecs.describe_tasks(cluster="spotops-dev", tasks=[t["taskArn"] for t in started])
    addresses = [
        next(
            d["value"] for d in t["attachments"][0]["details"] if d["name"] == "privateIPv4Address"
        )
        for t in described["tasks"]
    ]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": addresses[0], "Port": 8080}])
    cfn.create_stack(StackName="spotops-dev-ops", TemplateBody=OPS_STAND_IN)
    sqs = aws("sqs")
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName="spotops-dev-slack-dlq")["QueueUrl"], MessageBody="{}"
    )
    _log(aws, "/aws/lambda/spotops-dev-chaos_tick", _json_line("ERROR", "AccessDenied on StopTask"))
    _log(aws, "/aws/lambda/spotops-dev-redeploy_on_push", _json_line("INFO", "fine"))

    result = run("status")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "tasks on FARGATE_SPOT: running 2" in out
    rows = [line.split() for line in out.splitlines() if "Spot" in line.split()]
    assert len(rows) == 2
    by_address = {row[4]: row for row in rows}
    assert by_address[addresses[0]][6] != "-"  # registered: the load balancer's state
    assert by_address[addresses[1]][6] == "-"  # not registered with the target group
    assert "cpu -  memory -" in out
    assert "spotops-dev-chaos_tick: last error" in out
    assert "AccessDenied on StopTask" in out
    assert "spotops-dev-redeploy_on_push: no error in the last 24 h" in out
    assert "spotops-dev-reconcile_images: no logs yet" in out
    assert "dead letters (Slack messages): 1" in out
    assert "dead letters (events and invocations): 0" in out
    assert out.strip().splitlines()[-1].startswith("SiteUrl")


# ---- init ------------------------------------------------------------------------------


@pytest.fixture
def real_templates(project: Path) -> Path:
    """The profiles set parameters only the real templates declare."""
    for name in ("network", "site", "ops"):
        shutil.copy(TEMPLATES / f"{name}.yaml", project / "infra" / "cloudformation")
    return project


def test_init_writes_a_stage_file_from_a_profile_that_deploys(run, real_templates):
    project = real_templates
    result = run("init", "qa", "--from-profile", "dev", "--param", "DesiredCount=2")

    assert result.exit_code == 0, result.output
    written = json.loads((project / "config" / "qa.json").read_text())
    assert written["parameters"]["DesiredCount"] == 2
    assert written["parameters"]["NatMode"] == "none"
    assert result.stdout.strip() == str(project / "config" / "qa.json")
    # Dollars a month, from the cost model: the dev profile (about 44) with a second task.
    estimate = re.search(r"about (\d+) USD/month", result.stderr)
    assert estimate is not None, result.stderr
    assert 44 < int(estimate.group(1)) < 60


def test_init_refuses_to_overwrite_without_force(run, real_templates):
    project = real_templates
    assert run("init", "qa", "--from-profile", "dev").exit_code == 0

    again = run("init", "qa", "--from-profile", "prod")
    forced = run("init", "qa", "--from-profile", "prod", "--force")

    assert again.exit_code == 2
    assert "Pass --force" in again.stderr
    assert forced.exit_code == 0
    assert (
        json.loads((project / "config" / "qa.json").read_text())["parameters"]["NatMode"]
        == "per-az"
    )


def test_init_refuses_what_the_templates_would_refuse_and_writes_nothing(run, real_templates):
    project = real_templates
    result = run("init", "qa", "--from-profile", "dev", "--param", "TaskMemory=4096")

    assert result.exit_code == 2
    assert "TaskMemory must be 512, 1024, 2048" in " ".join(result.stderr.split())
    assert not (project / "config" / "qa.json").exists()


def test_init_asks_on_a_terminal(run, real_templates, monkeypatch):
    project = real_templates
    monkeypatch.setattr(cli_module, "_interactive", lambda no_input: True)

    result = run("init", "qa", input="seed\n3\nops@example.com\n\n")  # runbook URL: default

    assert result.exit_code == 0, result.output
    written = json.loads((project / "config" / "qa.json").read_text())["parameters"]
    assert (written["NatMode"], written["DesiredCount"], written["AlarmEmail"]) == (
        "per-az",
        3,
        "ops@example.com",
    )


# ---- deploy --image --------------------------------------------------------------------


def test_deploy_image_pins_a_tag_by_digest_and_refuses_latest_or_missing(spotops, aws, deployed):
    ecr = aws("ecr")
    uri = ecr.describe_repositories(repositoryNames=[SITE])["repositories"][0]["repositoryUri"]
    digest = put_image(ecr, SITE, "abc1234", seed="v")

    tagged = spotops("deploy", "--yes", "--image", f"{uri}:abc1234")
    latest = spotops("deploy", "--yes", "--image", f"{uri}:latest")
    missing = spotops("deploy", "--yes", "--image", f"{uri}@sha256:{'0' * 64}")

    assert tagged.exit_code == 0, tagged.output
    parameters = aws("cloudformation").describe_stacks(StackName=SITE)["Stacks"][0]["Parameters"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in parameters}["ImageUri"] == (
        f"{uri}@{digest}"
    )
    assert latest.exit_code == 2
    assert "mutable tag" in latest.stderr
    assert missing.exit_code == 2
    assert "does not exist in spotops-dev-site" in missing.stderr


def test_site_only_factory_is_what_the_other_tests_deploy_with():
    assert not any(spec.packaged for spec in SiteOnlyFactory().stack_specs())
