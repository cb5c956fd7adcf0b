"""``simulate alarm`` on the burn-rate alerts: the alert is placed and its SNS message is a
composite alarm's; a window, which notifies nobody, is refused before anything is made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spotops.errors import UsageError
from spotops.local.target import EmulatorTarget
from spotops.ops import simulate
from spotops.ops.simulate import StageFacts
from spotops.ops.site_alarms import DeployedStack
from spotops.stage.templates import load_template

ROOT = Path(__file__).resolve().parents[4]
SITE = load_template(ROOT / "infra" / "cloudformation" / "site.yaml")
TOPIC = "arn:aws:sns:us-east-1:123456789012:shop-qa-alarms"


class FakeRehearsal:
    """What ``_alarm`` uses of a Rehearsal: the stage's facts, template and CloudWatch."""

    app, stage, force_dry_run = "shop", "qa", False

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self.target = EmulatorTarget("http://127.0.0.1:4566")
        self.notes: list[str] = []

    def facts(self) -> StageFacts:
        return StageFacts("123456789012", "us-east-1", {"AlarmTopicArn": TOPIC})

    def site_stack(self) -> tuple[dict[str, Any], DeployedStack]:
        stack = DeployedStack(
            parameters={"AppName": "shop", "StageName": "qa"},
            physical={"AlarmTopic": TOPIC, "Cluster": "shop-qa"},
            region="us-east-1",
            account="123456789012",
        )
        return SITE, stack

    def client(self, service: str) -> Any:
        assert service == "cloudwatch"
        return self._cloudwatch

    def note(self, message: str | None) -> None:
        if message:
            self.notes.append(message)


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def alarm_names(cloudwatch: Any) -> list[str]:
    found = cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return [a["AlarmName"] for a in found["MetricAlarms"] + found["CompositeAlarms"]]


def test_a_burn_rate_alert_is_placed_and_sent_as_a_composite_alarm(cloudwatch: Any) -> None:
    rehearsal = FakeRehearsal(cloudwatch)

    event = simulate._alarm(rehearsal, ["slo-availability-fast-burn", "ALARM"])  # type: ignore[arg-type]

    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])
    assert sns["TopicArn"] == TOPIC
    assert message["AlarmName"] == "shop-qa-slo-availability-fast-burn"
    assert message["NewStateValue"] == "ALARM"
    assert message["AlarmRule"] == (
        'ALARM("shop-qa-slo-availability-fast-burn-long") AND '
        'ALARM("shop-qa-slo-availability-fast-burn-short")'
    )
    assert message["AlarmDescription"].endswith("/runbooks/slo-availability.md")
    assert message["AlarmActions"] == message["OKActions"] == [TOPIC]
    assert [c["Arn"] for c in message["TriggeringChildren"]] == [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-qa-slo-availability-fast-burn-short"
    ]
    assert "Trigger" not in message
    (placed,) = cloudwatch.describe_alarms(AlarmNames=["shop-qa-slo-availability-fast-burn"])[
        "MetricAlarms"
    ]
    assert placed["StateValue"] == "ALARM"
    assert placed["AlarmActions"] == [TOPIC]
    assert "moto has no composite alarms" in rehearsal.notes[0]


@pytest.mark.parametrize(
    ("window", "alert"),
    [
        ("slo-latency-fast-burn-short", "slo-latency-fast-burn"),
        ("shop-qa-slo-availability-ticket-long", "slo-availability-ticket"),
    ],
)
def test_a_window_is_refused_naming_its_alert_and_nothing_is_placed(
    cloudwatch: Any, window: str, alert: str
) -> None:
    rehearsal = FakeRehearsal(cloudwatch)

    with pytest.raises(UsageError) as refused:
        simulate._alarm(rehearsal, [window, "ALARM"])  # type: ignore[arg-type]

    assert refused.value.exit_code == 2
    assert str(refused.value) == (
        f"{window.removeprefix('shop-qa-')} is an input of the burn-rate alert {alert}; "
        "it notifies nobody: simulate the alert."
    )
    assert alarm_names(cloudwatch) == []
    assert rehearsal.notes == []


def test_an_unknown_name_lists_the_alerts_and_not_their_windows(cloudwatch: Any) -> None:
    with pytest.raises(UsageError) as refused:
        simulate._alarm(FakeRehearsal(cloudwatch), ["slo-latency", "ALARM"])  # type: ignore[arg-type]

    valid = str(refused.value).split("use one of ", 1)[1].rstrip(".").split(", ")
    assert refused.value.exit_code == 2
    assert {"slo-latency-fast-burn", "slo-latency-ticket", "cpu-high"} <= set(valid)
    assert [v for v in valid if v.endswith(("-long", "-short"))] == []
    assert alarm_names(cloudwatch) == []


def test_a_metric_alarm_is_still_sent_with_its_trigger(cloudwatch: Any) -> None:
    event = simulate._alarm(FakeRehearsal(cloudwatch), ["cpu-high", "OK"])  # type: ignore[arg-type]

    message = json.loads(event["Records"][0]["Sns"]["Message"])
    assert message["Trigger"]["MetricName"] == "CPUUtilization"
    assert "AlarmRule" not in message
