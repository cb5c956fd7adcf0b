"""``spotops status`` says whether the Slack webhook is set, not only the dead letters it
causes (issue 25, item 9): against moto's Secrets Manager and SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spotops.cli.render import print_status
from spotops.reports.status import StatusReader, webhook_state
from spotops.stage.stacks import StackInfo

REGION = "us-east-1"
OPS = "spotops-dev-ops"
SECRET = "spotops/dev/slack-webhook"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/not-a-real-token"


class OpsOnly:
    """The ops stack exists, nothing else: status reads only the toolkit's part."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe(self, name: str) -> StackInfo | None:
        return StackInfo(name, "CREATE_COMPLETE", self.outputs, {}) if name == OPS else None


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield {
            "secretsmanager": boto3.client("secretsmanager", region_name=REGION),
            "queue": sqs.create_queue(QueueName="slack-dlq")["QueueUrl"],
        }


def status_lines(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> list[str]:
    outputs = {"SlackWebhookSecretName": SECRET, "SlackDeadLetterQueueUrl": aws["queue"]}
    reader = StatusReader(
        OpsOnly(outputs),  # type: ignore[arg-type]
        lambda service: boto3.client(service, region_name=REGION),
    )
    report = reader.read(REGION, [OPS], "spotops-dev-site", "spotops-dev", ops_stack=OPS)
    print_status(report)
    return capsys.readouterr().out.splitlines()


def test_status_says_the_webhook_is_not_set_as_the_stack_creates_it(aws, capsys):
    aws["secretsmanager"].create_secret(Name=SECRET, SecretString='{"url": ""}')

    lines = status_lines(aws, capsys)

    (line,) = [x for x in lines if "slack webhook" in x]
    assert line.startswith("  slack webhook: NOT SET (no message reaches Slack;")
    assert "spotops slack-webhook set" in line
    assert "  dead letters (Slack messages): 0" in lines


def test_status_says_set_and_never_prints_the_url(aws, capsys):
    aws["secretsmanager"].create_secret(Name=SECRET, SecretString=json.dumps({"url": WEBHOOK}))

    lines = status_lines(aws, capsys)

    assert "  slack webhook: set" in lines
    assert not [x for x in lines if "hooks.slack.com" in x]


def test_status_says_when_the_secret_is_gone(aws, capsys):
    lines = status_lines(aws, capsys)
    assert f"  slack webhook: NOT SET: secret {SECRET} does not exist" in " ".join(lines)


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (json.dumps({"url": WEBHOOK}), "set"),
        (json.dumps({"webhook_url": WEBHOOK}), "set"),
        (WEBHOOK, "set"),
        ('{"url": ""}', "NOT SET"),
        ("", "NOT SET"),
        (
            json.dumps({"url": "http://hooks.slack.com/x"}),
            "NOT SET: the secret holds no https webhook URL",
        ),
        ('{"url": ', "unreadable: the secret is not a JSON object"),
    ],
)
def test_the_webhook_state_reads_the_secret_as_the_functions_do(value, state):
    assert webhook_state(value) == state
