"""The timeline's pure parts: ordering, the window, duplicates, and each source's records
turned into events (the shapes AWS documents, the ledger's own records)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spotops.reports.timeline import (
    CLOUDWATCH,
    ECS,
    LEDGER,
    SSM,
    Event,
    Gap,
    Timeline,
    alarm_history_events,
    ecs_events,
    ledger_events,
    merge,
    render_lines,
    stage_sources,
    switch_events,
)

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_merge_orders_by_time_then_source_then_text_whatever_the_input_order() -> None:
    same_time = [
        Event(at(5), SSM, "switch", "kill-switch set to on"),
        Event(at(5), LEDGER, "push", "v2 deployed"),
        Event(at(5), LEDGER, "alarm", "a ALARM"),
        Event(at(5), CLOUDWATCH, "alarm", "z OK -> ALARM"),
    ]
    earlier = Event(at(1), ECS, "service-event", "steady state")

    merged = merge([*same_time, earlier])

    assert [(e.source, e.text) for e in merged] == [
        (ECS, "steady state"),
        (CLOUDWATCH, "z OK -> ALARM"),
        (LEDGER, "a ALARM"),
        (LEDGER, "v2 deployed"),
        (SSM, "kill-switch set to on"),
    ]
    assert merge(reversed([*same_time, earlier])) == merged


def test_merge_keeps_the_window_inclusive_and_each_event_once() -> None:
    twin = Event(at(10), LEDGER, "push", "v2 deployed", (("outcome", "deployed"),))
    events = [Event(at(0), LEDGER, "push", "v1"), twin, twin, Event(at(20), LEDGER, "push", "v3")]

    merged = merge(events, since=at(0), until=at(10))

    assert [e.text for e in merged] == ["v1", "v2 deployed"]
    assert merge(events, since=at(0) + timedelta(seconds=1)) == (twin, events[-1])


def test_history_images_deployment_and_freeze_items_become_events_with_their_facts() -> None:
    items: list[dict[str, Any]] = [
        {
            "pk": "HISTORY#c/s",
            "sk": "2026-12-07T14:03:00Z#abc",
            "action": "rollback",
            "outcome": "succeeded",
            "detail": "to rev 4",
        },
        {
            "pk": "IMAGE#c/s",
            "sk": "sha256:" + "f" * 64,
            "outcome": "frozen",
            "tag": "v3",
            "detail": "frozen since 14:02",
            "at": at(4).timestamp(),
            "event_at": at(3.5).timestamp(),
        },
        {
            "pk": "FREEZE#c/s",
            "sk": "STATE",
            "frozen": False,
            "since": at(2).timestamp(),
            "reason": "ECS rolled back deployment ecs-svc/1",
            "by": "ecs",
            "deployment_id": "ecs-svc/1",
            "unfrozen_at": at(9).timestamp(),
            "unfrozen_by": "freeze-command",
        },
        {"pk": "LOCK#c/s", "sk": "LOCK", "holder": "x", "expires_at": 1},
        {"pk": "HISTORY#c/s", "sk": "not-a-time#x", "action": "redeploy"},
    ]

    events = merge(ledger_events(items))

    assert [(e.at, e.kind) for e in events] == [
        (at(2), "freeze"),
        (at(3), "rollback"),
        (at(4), "push"),
        (at(9), "unfreeze"),
    ]
    freeze, rollback, push, unfreeze = events
    assert (
        freeze.text
        == "pushes frozen by ecs (deployment ecs-svc/1): ECS rolled back deployment ecs-svc/1"
    )
    assert rollback.fact("outcome") == "succeeded"
    assert push.fact("outcome") == "frozen"
    assert "v3 (sha256:ffffffffffff) frozen (pushed 2026-12-07T14:03:30Z)" in push.text
    assert unfreeze.text == "pushes unfrozen by freeze-command"


def test_an_alarm_record_reads_its_state_time_and_remediation_outcome() -> None:
    outcome = {"acted": False, "reason": "cooldown 300s", "refusal": "cooldown", "summary": ""}
    item = {
        "pk": "ALARM#spotops-dev-cpu-high",
        "sk": f"EVENT#ALARM#{int(at(1).timestamp())}",
        "notice": "post",
        "alert_posted": True,
        "outcome": json.dumps(outcome),
    }

    (event,) = ledger_events([item, {"pk": "ALARM#spotops-dev-cpu-high", "sk": "STATE"}])

    assert event.at == at(1)
    assert (event.fact("alarm"), event.fact("state")) == ("spotops-dev-cpu-high", "ALARM")
    assert event.fact("remediation") == "cooldown"
    assert (
        event.text == "spotops-dev-cpu-high ALARM: notice post; remediation cooldown: cooldown 300s"
    )


def test_alarm_history_keeps_state_updates_of_the_stage_alarms_only() -> None:
    """HistoryData as AWS documents it (the CLI's describe-alarm-history example)."""
    data = {
        "version": "1.0",
        "oldState": {"stateValue": "OK", "stateReason": "fine"},
        "newState": {"stateValue": "ALARM", "stateReason": "Threshold Crossed: 3 datapoints"},
    }
    items: list[dict[str, Any]] = [
        {
            "AlarmName": "spotops-dev-alb-5xx",
            "Timestamp": at(1),
            "HistoryItemType": "StateUpdate",
            "HistoryData": json.dumps(data),
            "HistorySummary": "Alarm updated from OK to ALARM",
        },
        {
            "AlarmName": "spotops-prod-alb-5xx",
            "Timestamp": at(1),
            "HistoryItemType": "StateUpdate",
            "HistoryData": json.dumps(data),
            "HistorySummary": "Alarm updated from OK to ALARM",
        },
        {
            "AlarmName": "spotops-dev-alb-5xx",
            "Timestamp": at(2),
            "HistoryItemType": "StateUpdate",
            "HistoryData": "not json",
            "HistorySummary": "Alarm updated from ALARM to OK",
        },
    ]

    (event,) = alarm_history_events(items, "spotops-dev-")

    assert (event.source, event.kind, event.at) == (CLOUDWATCH, "alarm", at(1))
    assert event.text == "spotops-dev-alb-5xx OK -> ALARM: Threshold Crossed: 3 datapoints"
    assert event.fact("state") == "ALARM"


def test_service_events_and_switch_versions_become_events() -> None:
    service = {
        "events": [
            {"id": "e1", "createdAt": at(3), "message": "(service s) has reached a steady state."}
        ]
    }
    versions = [
        {
            "Name": "/spotops/dev/kill-switch",
            "Value": "off",
            "Version": 1,
            "LastModifiedDate": at(0),
            "LastModifiedUser": "N/A",
        },
        {
            "Name": "/spotops/dev/kill-switch",
            "Value": "on",
            "Version": 2,
            "LastModifiedDate": at(6),
            "LastModifiedUser": "arn:aws:iam::123456789012:user/ann",
        },
    ]

    (ecs,) = ecs_events(service)
    switched = switch_events("kill-switch", versions)

    assert (ecs.at, ecs.text) == (at(3), "(service s) has reached a steady state.")
    assert [e.text for e in switched] == [
        "kill-switch set to off (version 1)",
        "kill-switch set to on (version 2 by arn:aws:iam::123456789012:user/ann)",
    ]


def test_lines_name_their_source_and_json_carries_the_facts() -> None:
    timeline = Timeline(
        (
            Event(at(0), LEDGER, "push", "v1 deployed", (("outcome", "deployed"),)),
            Event(at(1), CLOUDWATCH, "alarm", "a OK -> ALARM"),
        ),
        (Gap(ECS, "AccessDeniedException: no"),),
    )

    assert render_lines(timeline) == [
        "2026-12-07T14:00:00Z  ledger      push   v1 deployed",
        "2026-12-07T14:01:00Z  cloudwatch  alarm  a OK -> ALARM",
    ]
    assert timeline.events[0].as_json() == {
        "at": "2026-12-07T14:00:00Z",
        "source": "ledger",
        "kind": "push",
        "text": "v1 deployed",
        "outcome": "deployed",
    }
    assert timeline.gaps[0].line == "ecs: not read: AccessDeniedException: no"


@pytest.mark.parametrize(
    ("ops", "site", "missing"),
    [
        ({"LedgerTableName": "t"}, {"ClusterName": "c", "ServiceName": "s"}, set()),
        (None, {"ClusterName": "c", "ServiceName": "s"}, {LEDGER}),
        ({"LedgerTableName": "t"}, None, {ECS}),
    ],
)
def test_a_stack_not_deployed_makes_its_source_absent(ops, site, missing) -> None:
    where = stage_sources(
        "spotops", "dev", ops=("spotops-dev-ops", ops), site=("spotops-dev-site", site)
    )

    assert set(where.missing) == missing
    assert where.alarm_prefix == "spotops-dev-"
    if LEDGER in missing:
        assert "spotops-dev-ops not deployed" in where.missing[LEDGER]


def test_history_entries_of_one_second_are_ordered_by_their_moment_when_they_have_one() -> None:
    second = at(3).timestamp()
    items: list[dict[str, Any]] = [
        {
            "pk": "HISTORY#c/s",
            "sk": "2026-12-07T14:03:00Z#b",
            "action": "rollback",
            "outcome": "succeeded",
            "at": second + 0.8,
        },
        {
            "pk": "IMAGE#c/s",
            "sk": "sha256:" + "a" * 64,
            "outcome": "frozen",
            "tag": "v3",
            "at": second + 0.9,
        },
        {
            "pk": "HISTORY#c/s",
            "sk": "2026-12-07T14:03:00Z#a",
            "action": "rollback",
            "outcome": "started",
            "at": second + 0.1,
        },
        # Written before the moment was kept: the sort key's second, so first in its second.
        {"pk": "HISTORY#c/s", "sk": "2026-12-07T14:03:00Z#c", "action": "redeploy", "outcome": "x"},
    ]

    ordered = merge(ledger_events(items))

    assert [(e.kind, e.text.split(" ")[0]) for e in ordered] == [
        ("redeploy", "x"),
        ("rollback", "started"),
        ("rollback", "succeeded"),
        ("push", "v3"),
    ]
    assert {e.at.replace(microsecond=0) for e in ordered} == {at(3)}
