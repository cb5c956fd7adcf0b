"""The composite alarm message a rehearsal sends has the recorded event's shape, field for
field, with the alarm's own values."""

from __future__ import annotations

import json
import re
from typing import Any

from spotops.ops import aws_events
from tests.support.events import load_event

# The recorded event (the package's copy is the one every reader loads).
RECORDED = load_event("snsCompositeAlarmStateChange")
TOPIC = "arn:aws:sns:eu-west-1:123456789012:shop-qa-alarms"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def shape(value: Any) -> Any:
    """Keys and value types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def built(state: str = "ALARM") -> dict[str, Any]:
    return aws_events.composite_alarm_sns(
        account="123456789012",
        region="eu-west-1",
        topic_arn=TOPIC,
        name="shop-qa-slo-latency-fast-burn",
        state=state,
        description="Page: ... Runbook: https://example.com/runbooks/slo-latency.md",
        reason="Rehearsal.",
        rule='ALARM("shop-qa-slo-latency-fast-burn-long") AND ALARM("x-short")',
        actions={"AlarmActions": [TOPIC], "OKActions": [TOPIC], "InsufficientDataActions": []},
        triggering=["x-short"],
    )


def test_the_message_has_the_recorded_composite_events_fields_and_types() -> None:
    event = built()
    recorded_message = json.loads(RECORDED["Records"][0]["Sns"]["Message"])
    message = json.loads(event["Records"][0]["Sns"]["Message"])

    assert list(message) == list(recorded_message)  # same fields, same order
    recorded_shape = shape(recorded_message)
    recorded_shape["OKActions"] = ["str"]  # the recorded alarm had no OK actions
    assert shape(message) == recorded_shape
    assert shape({**event, "Records": []}) == shape({**RECORDED, "Records": []})
    assert shape(event["Records"][0]) == shape(RECORDED["Records"][0])


def test_the_message_carries_the_alarm_its_rule_and_the_child_that_set_it_off() -> None:
    event = built("OK")
    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])

    assert sns["TopicArn"] == TOPIC
    assert sns["Subject"] == 'OK: "shop-qa-slo-latency-fast-burn" in eu-west-1'
    assert event["Records"][0]["EventSubscriptionArn"].startswith(TOPIC + ":")
    assert message["AlarmArn"] == (
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-qa-slo-latency-fast-burn"
    )
    assert (message["NewStateValue"], message["OldStateValue"]) == ("OK", "ALARM")
    assert message["AlarmRule"].startswith('ALARM("shop-qa-slo-latency-fast-burn-long")')
    assert message["OKActions"] == [TOPIC]
    (child,) = message["TriggeringChildren"]
    assert child["Arn"] == "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:x-short"
    assert child["State"]["Value"] == "OK"
    assert STAMP.match(child["State"]["Timestamp"])
    assert child["State"]["Timestamp"] == message["StateChangeTime"]
    assert "Trigger" not in message
