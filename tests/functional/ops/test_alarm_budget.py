"""The alarm alert says how much error budget is left, read at alert time; a budget that
cannot be read says so and never holds up the alert (moto for everything but the metrics:
moto has no PR() statistic, so a known budget comes from GetMetricData stubbed as AWS
documents it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.alarms.flow import handle_event
from chalicelib.ledger import SafetyLedger
from chalicelib.toolkit import Toolkit
from tests.support.alarms import put_alarm, sns_alarm
from tests.support.ops_world import ACCOUNT, REGION, World, make_kit
from tests.support.slack_stub import SlackStub

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:spotops-test-alarms"
ALARM = "spotops-test-slo-availability-fast-burn"
LB = "app/spotops-test/0123456789abcdef"


def kit_for(world: World, **overrides: str) -> Toolkit:
    kit = make_kit(world, ALARM_TOPIC_ARN=TOPIC, **overrides)
    return replace(kit, ledger=SafetyLedger(kit.dynamodb, world.ledger_table, 30, clock=clock))


def clock() -> float:
    return NOW.timestamp()


def alert_text(slack: SlackStub) -> str:
    body = slack.bodies[0]
    return "\n".join(
        [body.get("text", "")]
        + [block["text"]["text"] for block in body["blocks"] if "text" in block]
    )


def stubbed_metrics(availability_bad: float, latency_within: float) -> Any:
    """A CloudWatch client answering the budget's three GetMetricData calls (1 h, 6 h, 30 d)."""
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client("cloudwatch", endpoint_url="http://127.0.0.1:1")
    stubber = Stubber(client)
    end = NOW.replace(second=0, microsecond=0)
    for hours in (1, 6, 720):
        at = end - timedelta(hours=hours)

        def result(query_id: str, value: float, at: datetime = at) -> dict[str, Any]:
            return {"Id": query_id, "Timestamps": [at], "Values": [value], "StatusCode": "Complete"}

        stubber.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    result("requests", 1_000_000),
                    result("elb5xx", 0),
                    result("target5xx", availability_bad),
                    result("answered", 1_000_000),
                    result("within0_3", latency_within),
                ]
            },
            {"MetricDataQueries": ANY, "StartTime": at, "EndTime": end, "ScanBy": ANY},
        )
    stubber.activate()
    return client


class WithMetrics:
    """The toolkit's clients, with CloudWatch's GetMetricData answered by ``metrics``."""

    def __init__(self, clients: Any, metrics: Any) -> None:
        self._clients = clients
        self._metrics = metrics
        self.cloudwatch = _Split(clients.cloudwatch, metrics)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients, name)


class _Split:
    def __init__(self, moto: Any, metrics: Any) -> None:
        self._moto = moto
        self._metrics = metrics

    def get_paginator(self, operation: str) -> Any:
        source = self._metrics if operation == "get_metric_data" else self._moto
        return source.get_paginator(operation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)


def test_the_alert_says_how_much_budget_is_left_per_objective(
    world: World, slack: SlackStub
) -> None:
    kit = kit_for(world, SLO_LOAD_BALANCER=LB)
    kit = replace(kit, aws=WithMetrics(kit.aws, stubbed_metrics(380, 99.988)))  # type: ignore[arg-type]
    put_alarm(kit.cloudwatch, ALARM, "ALARM")

    handle_event(sns_alarm(ALARM, at=clock()), kit, clock=clock)

    assert "Error budget left (30 d): availability 62%, latency 88%" in alert_text(slack)


def test_a_budget_that_cannot_be_read_says_unknown_and_the_alert_still_goes_out(
    world: World, slack: SlackStub
) -> None:
    kit = kit_for(world, SLO_LOAD_BALANCER=LB)  # moto holds no load balancer metrics
    put_alarm(kit.cloudwatch, ALARM, "ALARM")

    result = handle_event(sns_alarm(ALARM, at=clock()), kit, clock=clock)

    assert result["state"] == "ALARM"
    (title, *_) = [str(b["blocks"][0]["text"]["text"]) for b in slack.bodies]
    assert title == f":rotating_light: ALARM: {ALARM}"
    assert "Error budget left: budget unknown (no RequestCount data over 30 d)" in alert_text(slack)


def test_a_budget_read_that_raises_never_holds_up_the_alert(
    world: World, slack: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug in the reader")

    monkeypatch.setattr("chalicelib.alarms.alert.BudgetReader.read", broken)
    kit = kit_for(world, SLO_LOAD_BALANCER=LB)
    put_alarm(kit.cloudwatch, ALARM, "OK")

    handle_event(sns_alarm(ALARM, "OK", old="ALARM", at=clock()), kit, clock=clock)

    assert len(slack.bodies) == 1
    assert "Error budget left: budget unknown (not read)" in alert_text(slack)
