"""The alarm function's events, read from the fixtures in tests/events/ (shaped as AWS
documents them): every field the toolkit uses, checked against the raw event."""

from __future__ import annotations

import json

import pytest

from chalicelib.alarms.events import (
    AlarmNotification,
    AlarmStateChangeEvent,
    EcsServiceActionEvent,
    EcsTaskStateChangeEvent,
    Kind,
    SnsMessage,
    alarm_of,
    classify,
    parse_time,
    runbook_of,
    sns_messages,
)
from tests.support.events import load_event


def only_message(name: str) -> SnsMessage:
    messages, problems = sns_messages(load_event(name))
    assert problems == []
    (message,) = messages
    return message


def test_an_sns_wrapped_metric_alarm_becomes_one_change() -> None:
    raw = load_event("snsAlarmStateChange")
    sns = raw["Records"][0]["Sns"]
    body = json.loads(sns["Message"])
    message = only_message("snsAlarmStateChange")
    assert (message.message_id, message.topic_arn, message.subject) == (
        sns["MessageId"],
        sns["TopicArn"],
        sns["Subject"],
    )

    change = alarm_of(message).change

    assert change is not None
    assert change.name == body["AlarmName"] == "spotops-dev-unhealthy-hosts"
    assert (change.old_state, change.state) == ("OK", "ALARM")
    assert change.reason == body["NewStateReason"]
    assert change.at == parse_time(body["StateChangeTime"])
    assert (change.account, change.region) == ("123456789012", "us-east-1")  # from AlarmArn
    assert change.region_name == "US East (N. Virginia)"  # SNS's Region is a display name
    assert change.source == "sns"
    assert change.event_id == sns["MessageId"]
    assert change.metric.startswith("AWS/ApplicationELB UnHealthyHostCount (LoadBalancer=")
    assert change.metric.endswith("MAXIMUM over 60 s")
    assert change.threshold == ">= 1.0 for 3 period(s)"
    assert change.runbook == (
        "https://github.com/spotops/spotops/blob/main/runbooks/unhealthy-hosts.md"
    )
    assert not change.composite
    assert not change.degraded


def test_a_metric_math_alarm_names_its_expression_and_metrics() -> None:
    change = alarm_of(only_message("snsAlarmStateChangeMetricMath")).change
    assert change is not None
    assert "missing = desired - running" in change.metric
    assert "running = ECS/ContainerInsights RunningTaskCount" in change.metric
    assert change.threshold == "> 0.0 for 5 period(s)"


def test_a_composite_alarm_over_sns_carries_its_rule_and_no_metric() -> None:
    change = alarm_of(only_message("snsCompositeAlarmStateChange")).change
    assert change is not None
    assert change.composite
    assert change.alarm_rule.startswith('ALARM("spotops-dev-target-5xx")')
    assert change.metric == ""
    assert change.threshold == ""


def test_an_eventbridge_alarm_state_change_becomes_the_same_kind_of_change() -> None:
    raw = load_event("eventBridgeAlarmStateChange")
    assert classify(raw) == (Kind.ALARM_STATE_CHANGE, "")
    event = AlarmStateChangeEvent(raw)
    assert event.problem() is None

    change = event.change()

    assert change.name == raw["detail"]["alarmName"]
    assert change.state == raw["detail"]["state"]["value"]
    assert change.old_state == raw["detail"]["previousState"]["value"]
    assert change.at == parse_time(raw["detail"]["state"]["timestamp"])
    assert change.previous_since == parse_time(raw["detail"]["previousState"]["timestamp"])
    assert (change.account, change.region, change.event_id) == (
        raw["account"],
        raw["region"],
        raw["id"],
    )
    assert change.metric.startswith("30b6c6b2-a864-43a2-4877-c09a1afc3b87 = AWS/ECS CPUUtilization")
    assert change.threshold == "threshold 85.0"  # from reasonData: no configuration here
    assert change.runbook
    assert change.runbook.endswith("/cpu-high.md")


def test_an_anomaly_alarm_reports_its_band() -> None:
    change = AlarmStateChangeEvent(load_event("eventBridgeAnomalyAlarmStateChange")).change()
    assert "band = ANOMALY_DETECTION_BAND(bytes, 3)" in change.metric
    assert change.threshold == "expected band [1.2e+07, 2.6e+08]"


def test_a_composite_alarm_with_suppressed_actions_says_so() -> None:
    raw = load_event("eventBridgeCompositeAlarmStateChange")
    change = AlarmStateChangeEvent(raw).change()
    assert change.composite
    assert change.suppressed == "WaitPeriod: Actions suppressed by WaitPeriod"
    assert change.description is None  # EventBridge carries no composite description


def test_the_sns_and_eventbridge_forms_of_one_change_share_name_state_and_second() -> None:
    sns = alarm_of(only_message("snsAlarmStateChange")).change
    assert sns is not None
    raw = load_event("eventBridgeAlarmStateChange")
    raw["detail"]["alarmName"] = sns.name
    raw["detail"]["state"]["timestamp"] = json.loads(
        load_event("snsAlarmStateChange")["Records"][0]["Sns"]["Message"]
    )["StateChangeTime"]
    eventbridge = AlarmStateChangeEvent(raw).change()
    assert (sns.name, sns.state, int(sns.at)) == (
        eventbridge.name,
        eventbridge.state,
        int(eventbridge.at),
    )


def test_a_spot_interruption_is_read_from_its_task_state_change() -> None:
    raw = load_event("ecsTaskStateChangeSpotInterruption")
    assert classify(raw)[0] is Kind.TASK_STATE_CHANGE
    event = EcsTaskStateChangeEvent(raw)
    assert event.problem("spotops-dev", "spotops-dev-site") is None
    assert event.task_arn == raw["detail"]["taskArn"]
    assert event.stop_code == "SpotInterruption"
    assert event.capacity_provider == "FARGATE_SPOT"
    assert event.at == parse_time(raw["detail"]["stoppingAt"])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"stopCode": "EssentialContainerExited"}, "not SpotInterruption"),
        ({"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/other"}, "cluster other"),
        ({"group": "family:batch"}, "task group family:batch"),
        ({"taskArn": None}, "taskArn is missing"),
    ],
)
def test_a_task_state_change_that_is_not_our_spot_interruption_says_why(
    change: dict[str, object], words: str
) -> None:
    raw = load_event("ecsTaskStateChangeSpotInterruption")
    raw["detail"].update(change)
    problem = EcsTaskStateChangeEvent(raw).problem("spotops-dev", "spotops-dev-site")
    assert problem is not None
    assert words in problem


def test_a_placement_failure_on_spot_is_read_from_its_service_action() -> None:
    raw = load_event("ecsServiceActionPlacementFailure")
    assert classify(raw)[0] is Kind.SERVICE_ACTION
    event = EcsServiceActionEvent(raw)
    assert event.problem("spotops-dev", "spotops-dev-site") is None
    assert event.on_spot
    assert event.reason == "RESOURCE:FARGATE"
    raw["detail"]["capacityProviderArns"] = [
        "arn:aws:ecs:us-east-1:123456789012:capacity-provider/FARGATE"
    ]
    assert not EcsServiceActionEvent(raw).on_spot
    raw["detail"]["eventName"] = "SERVICE_STEADY_STATE"
    assert "not SERVICE_TASK_PLACEMENT_FAILURE" in str(
        EcsServiceActionEvent(raw).problem("spotops-dev", "spotops-dev-site")
    )


# ---- bad input: every problem is a reason, never an exception --------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"Records": []}, "Records is empty"),
        ({"Records": "nope"}, "not a list"),
        ({"Records": [{"EventSource": "aws:sns"}]}, "no Sns object"),
        ({"Records": [{"Sns": {"Message": 7}}]}, "not a string"),
    ],
)
def test_an_unusable_sns_envelope_is_a_reason(raw: dict[str, object], words: str) -> None:
    messages, problems = sns_messages(raw)
    assert messages == []
    assert words in problems[0]


def test_a_truncated_message_still_names_its_alarm_from_the_subject() -> None:
    message = only_message("snsAlarmStateChange")
    cut = SnsMessage(message.message_id, message.topic_arn, message.subject, message.body[:90], 1.0)

    alarm = alarm_of(cut)

    assert alarm.change is not None
    assert alarm.change.name == "spotops-dev-unhealthy-hosts"
    assert alarm.change.state == "ALARM"
    assert "not valid JSON" in alarm.change.degraded
    assert alarm.change.runbook is None


@pytest.mark.parametrize(
    ("body", "subject", "words"),
    [
        ("{not json", "", "not valid JSON"),
        ('{"hello": "world"}', "Hello", "not an alarm notification"),
        ("[1, 2]", "", "JSON but not an object"),
    ],
)
def test_a_message_that_is_not_an_alarm_is_a_reason(body: str, subject: str, words: str) -> None:
    alarm = alarm_of(SnsMessage("m", "arn:aws:sns:us-east-1:123456789012:t", subject, body, None))
    assert alarm.change is None
    assert words in alarm.problem


def test_an_alarm_notification_with_a_bad_state_is_refused() -> None:
    body = json.loads(load_event("snsAlarmStateChange")["Records"][0]["Sns"]["Message"])
    body["NewStateValue"] = "PANIC"
    assert "not an alarm state" in str(AlarmNotification(body).problem())


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("a string", Kind.UNKNOWN),
        (None, Kind.UNKNOWN),
        ({"source": "aws.ecr", "detail-type": "ECR Image Action"}, Kind.UNKNOWN),
        (load_event("scheduledEvent"), Kind.SCHEDULE),
    ],
)
def test_classify_names_what_it_does_not_handle(raw: object, kind: Kind) -> None:
    found, why = classify(raw)
    assert found is kind
    assert (why != "") is (kind is Kind.UNKNOWN)


@pytest.mark.parametrize(
    ("description", "url"),
    [
        ("X. Runbook: https://e.com/runbooks/a.md", "https://e.com/runbooks/a.md"),
        ("Runbook: <https://e.com/runbooks/a.md>.", "https://e.com/runbooks/a.md"),
        ("Runbook: javascript:alert(1)", None),
        ("Runbook: https://e.com/a.md|<!channel>", "https://e.com/a.md"),
        (None, None),
    ],
)
def test_only_an_http_runbook_link_is_taken(description: str | None, url: str | None) -> None:
    assert runbook_of(description) == url


def test_cloudwatch_timestamps_parse_and_nonsense_does_not() -> None:
    assert parse_time("2019-10-02T17:04:40.989+0000") == pytest.approx(1570035880.989)
    assert parse_time("2019-10-02T17:04:40Z") == 1570035880.0
    assert parse_time("yesterday") is None
    assert parse_time("2019-10-02T17:04:40") is None  # no zone: refused, never guessed
