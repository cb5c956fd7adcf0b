"""``run_verify`` against a stage ``spotops deploy --yes`` put in the moto server: it passes on
a fresh deploy (every row ok, emulator or skip), and each flow broken on it fails, naming the
flow and its runbook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spotops.factory import CLIFactory
from spotops.ops.switches import set_webhook, webhook_secret_name
from spotops.proof.rows import ProofReport, State
from spotops.proof.verify import run_verify
from tests.support.net import LOOPBACK
from tests.support.ops_stage import APP, STAGE, Stage, deployed_stage
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator

# What the emulator can prove itself, and what only a stand-in answered there.
EMULATOR_STATES = {
    "event-rules": State.OK,
    "alarm-topic": State.EMULATOR,  # moto drops the subscription and the alarms
    "functions": State.EMULATOR,  # run here from the deployed zip
    "deployment-hook": State.SKIP,  # the stage's strategy is ROLLING
    "slack": State.EMULATOR,  # a receiver on 127.0.0.1, not Slack
    "site": State.EMULATOR,  # moto's load balancer serves nothing
}


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


def use_webhook(stage: Stage, url: str) -> None:
    set_webhook(
        stage.client("secretsmanager"), webhook_secret_name(APP, STAGE), url, create_missing=True
    )


def verify(stage: Stage, *, slack: bool = True) -> ProofReport:
    return run_verify(CLIFactory(project_dir=stage.project), stage=STAGE, region=None, slack=slack)


def states(report: ProofReport) -> dict[str, State]:
    return {row.name: row.state for row in report.rows}


@pytest.fixture
def gone_webhook() -> Iterator[str]:
    """A webhook on 127.0.0.1 answering as Slack does for a revoked one: 404 no_service."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(404)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"no_service")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/services/T0/B0/gone"
    finally:
        server.shutdown()
        server.server_close()


def test_a_fresh_emulator_deploy_verifies(stage: Stage, slack: SlackStub) -> None:
    use_webhook(stage, slack.url)

    report = verify(stage)

    failure = report.first_failure
    assert report.exit_code == 0, failure and (failure.name, failure.detail)
    assert states(report) == EMULATOR_STATES
    assert all(row.seconds > 0 for row in report.rows)
    # The one verification message, and no function posted: the marker keeps them quiet.
    assert len(slack.bodies) == 1
    assert "spotops verify" in slack.bodies[0]["text"]


def test_each_flow_broken_on_the_emulator_fails_naming_it(
    stage: Stage, slack: SlackStub, gone_webhook: str
) -> None:
    use_webhook(stage, slack.url)
    events, lam = stage.client("events"), stage.client("lambda")
    chaos = next(r for r in events.list_rules()["Rules"] if "ChaosTick" in r["Name"])

    events.disable_rule(Name=chaos["Name"])
    disabled = verify(stage, slack=False)
    events.enable_rule(Name=chaos["Name"])

    policy = lam.get_policy(FunctionName=f"{APP}-{STAGE}-chaos_tick")["Policy"]
    sid = json.loads(policy)["Statement"][0]["Sid"]
    lam.remove_permission(FunctionName=f"{APP}-{STAGE}-chaos_tick", StatementId=sid)
    unpermitted = verify(stage, slack=False)

    use_webhook(stage, gone_webhook)
    gone = verify(stage)

    for report in (disabled, unpermitted):
        assert report.exit_code == 1
        failure = report.first_failure
        assert failure is not None
        assert failure.name == "event-rules"
        assert failure.runbook == "runbooks/ops-dead-letters.md"
    assert disabled.first_failure is not None
    assert "is DISABLED" in disabled.first_failure.detail
    assert f"enable-rule --name {chaos['Name']}" in disabled.first_failure.advice
    assert unpermitted.first_failure is not None
    assert "resource policy does not let EventBridge" in unpermitted.first_failure.detail
    assert "add-permission --function-name spotops-dev-chaos_tick" in (
        unpermitted.first_failure.advice
    )
    # The rule row broken, the webhook's own row still fails on its own.
    assert gone.exit_code == 1
    slack_row = next(row for row in gone.rows if row.name == "slack")
    assert slack_row.state is State.FAIL
    assert "answers 404" in slack_row.detail
    assert slack_row.runbook == "runbooks/slack-webhook-missing.md"


def test_a_subscription_the_emulator_holds_is_checked_but_not_called_proven(stage: Stage) -> None:
    """moto cannot leave a subscription pending (the pending case is a unit test); one it
    holds makes the row say emulator, and an alarm it holds is checked for real."""
    function_arn = stage.function("alarm_action")["FunctionArn"]
    topic = stage.site["AlarmTopicArn"]
    stage.client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)
    stage.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{APP}-{STAGE}-cpu-high",
        MetricName="CPUUtilization",
        Namespace="AWS/ECS",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=85,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[topic],
        ActionsEnabled=False,
    )

    report = verify(stage, slack=False)

    row = next(row for row in report.rows if row.name == "alarm-topic")
    assert row.state is State.FAIL
    assert "actions disabled" in row.detail
    assert "enable-alarm-actions --alarm-names spotops-dev-cpu-high" in row.advice
