"""Each timeline reader against moto (the ledger written by the functions' own writers, the
switches' parameter history), and with botocore's Stubber where moto has no API (CloudWatch
DescribeAlarmHistory; ECS records no service events). A source that fails is one gap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

import spotops.lambda_code  # noqa: F401
from spotops.reports.timeline import (
    CLOUDWATCH,
    ECS,
    LEDGER,
    SSM,
    StageSources,
    TimelineReader,
)

# isort: split
from chalicelib.alarms.events import AlarmChange
from chalicelib.alarms.facts import RemediationRecords
from chalicelib.alarms.rules import CapacityShift, Notice, NoticeDecision, Outcome
from chalicelib.chaos.facts import ChaosRecords
from chalicelib.ledger import SafetyLedger

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
SVC = "spotops-dev/spotops-dev-site"
TABLE = "spotops-dev-ledger"


def epoch(minutes: float) -> float:
    return (T0 + timedelta(minutes=minutes)).timestamp()


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("dynamodb", "ssm", "cloudwatch", "ecs")
        }
        clients["dynamodb"].create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield clients


def where(**missing: str) -> StageSources:
    return StageSources("spotops", "dev", TABLE, "spotops-dev", "spotops-dev-site", dict(missing))


def test_the_ledger_reader_reads_what_every_job_wrote(aws: dict[str, Any]) -> None:
    now = {"t": epoch(1)}
    ledger = SafetyLedger(aws["dynamodb"], TABLE, clock=lambda: now["t"])
    ledger.record_image(SVC, "sha256:" + "a" * 64, "deployed", tag="v1", event_at=epoch(0.5))
    ledger.put_deployment(
        SVC,
        {
            "deployment_id": "ecs-svc/1",
            "digest": "sha256:" + "a" * 64,
            "tag": "v1",
            "status": "COMPLETED",
        },
    )
    now["t"] = epoch(2)
    ledger.record_history(SVC, "rollback", "succeeded", "back to revision 3")
    assert ledger.freeze(SVC, at=epoch(2), reason="rolled back by command", by="rollback-command")
    now["t"] = epoch(8)
    assert ledger.unfreeze(SVC, by="freeze-command") is not None
    records = RemediationRecords(aws["dynamodb"], TABLE, clock=lambda: now["t"])
    change = AlarmChange(
        name="spotops-dev-cpu-high",
        state="ALARM",
        old_state="OK",
        reason="r",
        at=epoch(3),
        source="sns",
        event_id="e1",
    )
    records.begin_event(change, NoticeDecision(Notice.POST, 1, 0))
    records.set_outcome(change, Outcome(True, "scaled", None, "scale out to 3").as_dict())
    records.add_interruption(SVC, "arn:aws:ecs:us-east-1:123456789012:task/c/abc123", epoch(4))
    records.put_shift(SVC, CapacityShift(epoch(5), (), "spot-interruptions", epoch(5)))
    ChaosRecords(aws["dynamodb"], TABLE).put_run(
        SVC,
        "run-1",
        T0 + timedelta(minutes=6),
        {
            "status": "recovered",
            "task_arn": "arn:aws:ecs:us-east-1:123456789012:task/c/def456",
            "killed_at": int(epoch(6)),
            "recovery_seconds": 42,
        },
    )

    timeline = TimelineReader(lambda name: aws[name]).read(
        where(ecs="-", cloudwatch="-", ssm="-"), T0
    )

    lines = [(e.at, e.source, e.kind, e.text) for e in timeline.events]
    assert all(source == LEDGER for _, source, _, _ in lines)
    # Within one second, by text: "COMPLETED ..." before "v1 ...", "pushes frozen" before
    # "succeeded".
    assert [kind for _, _, kind, _ in lines] == [
        "deployment",
        "push",
        "freeze",
        "rollback",
        "alarm",
        "spot-interruption",
        "capacity-shift",
        "chaos",
        "chaos-recovered",
        "unfreeze",
    ]
    alarm = timeline.events[4]
    assert (
        alarm.text == "spotops-dev-cpu-high ALARM: notice post; remediation acted: scale out to 3"
    )
    assert timeline.events[8].text == "run run-1 recovered in 42s"
    assert [g.source for g in timeline.gaps] == [ECS, CLOUDWATCH, SSM]


def test_the_switch_reader_reads_each_version_of_every_switch(aws: dict[str, Any]) -> None:
    ssm = aws["ssm"]
    ssm.put_parameter(Name="/spotops/dev/kill-switch", Value="off", Type="String")
    ssm.put_parameter(Name="/spotops/dev/kill-switch", Value="on", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/spotops/dev/dry-run", Value="false", Type="String")

    timeline = TimelineReader(lambda name: aws[name]).read(
        where(ledger="-", ecs="-", cloudwatch="-"), datetime(2000, 1, 1, tzinfo=UTC)
    )

    texts = sorted(e.text for e in timeline.events)
    assert texts == [
        "dry-run set to off (version 1)",
        "kill-switch set to off (version 1)",
        "kill-switch set to on (version 2)",
    ]
    assert {e.source for e in timeline.events} == {SSM}


ALARM_HISTORY = {
    "AlarmHistoryItems": [
        {
            "AlarmName": "spotops-dev-unhealthy-hosts",
            "AlarmType": "MetricAlarm",
            "Timestamp": T0 + timedelta(minutes=3),
            "HistoryItemType": "StateUpdate",
            "HistorySummary": "Alarm updated from OK to ALARM",
            "HistoryData": json.dumps(
                {
                    "version": "1.0",
                    "oldState": {"stateValue": "OK", "stateReason": "ok"},
                    "newState": {"stateValue": "ALARM", "stateReason": "Threshold Crossed"},
                }
            ),
        }
    ]
}


def test_alarm_history_and_service_events_are_read_as_aws_documents_them(
    aws: dict[str, Any],
) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    ecs = boto3.client("ecs", region_name="us-east-1")
    with Stubber(cloudwatch) as cw_stub, Stubber(ecs) as ecs_stub:
        cw_stub.add_response(
            "describe_alarm_history",
            ALARM_HISTORY,
            {"HistoryItemType": "StateUpdate", "StartDate": T0},
        )
        ecs_stub.add_response(
            "describe_services",
            {
                "services": [
                    {
                        "serviceName": "spotops-dev-site",
                        "events": [
                            {
                                "id": "1",
                                "createdAt": T0 + timedelta(minutes=2),
                                "message": "(service spotops-dev-site) has started 1 tasks.",
                            }
                        ],
                    }
                ],
                "failures": [],
            },
            {"cluster": "spotops-dev", "services": ["spotops-dev-site"]},
        )
        clients = {**aws, "cloudwatch": cloudwatch, "ecs": ecs}
        timeline = TimelineReader(lambda name: clients[name]).read(where(ledger="-", ssm="-"), T0)

    assert [(e.source, e.kind, e.text) for e in timeline.events] == [
        (ECS, "service-event", "(service spotops-dev-site) has started 1 tasks."),
        (CLOUDWATCH, "alarm", "spotops-dev-unhealthy-hosts OK -> ALARM: Threshold Crossed"),
    ]


def test_a_source_that_fails_is_one_gap_and_the_others_are_still_read(aws: dict[str, Any]) -> None:
    aws["ssm"].put_parameter(Name="/spotops/dev/chaos-leash", Value="on", Type="String")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("describe_alarm_history", "AccessDenied", "not allowed", 403)
        clients = {**aws, "cloudwatch": cloudwatch}
        missing_table = StageSources("spotops", "dev", "no-such-table", missing={"ecs": "-"})
        timeline = TimelineReader(lambda name: clients[name]).read(
            missing_table, datetime(2000, 1, 1, tzinfo=UTC)
        )

    assert [g.source for g in timeline.gaps] == [LEDGER, ECS, CLOUDWATCH]
    assert (
        "ResourceNotFoundException" in timeline.gaps[0].reason
        or "no-such-table" in timeline.gaps[0].reason
    )
    assert timeline.gaps[2].line.startswith("cloudwatch: not read: AccessDenied")
    assert [e.text for e in timeline.events] == ["chaos-leash set to on (version 1)"]


def test_a_gap_keeps_the_error_sentence_not_the_page_an_emulator_sent(aws: dict[str, Any]) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    page = "<!doctype html> <html lang=en> <title>500 Internal Server Error</title>"
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("describe_alarm_history", "500", page, 500)
        clients = {**aws, "cloudwatch": cloudwatch}
        sources = StageSources("spotops", "dev", "no-such-table", missing={"ecs": "-"})
        timeline = TimelineReader(lambda name: clients[name]).read(
            sources, datetime(2000, 1, 1, tzinfo=UTC)
        )

    (gap,) = [g for g in timeline.gaps if g.source == CLOUDWATCH]
    assert gap.line.startswith("cloudwatch: not read: 500: An error occurred (500)")
    assert "DescribeAlarmHistory" in gap.line
    assert "<" not in gap.line
