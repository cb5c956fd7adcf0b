"""The alarm function's Slack messages: what they say, Block Kit's limits whatever the input,
and nothing from AWS formatted or linked by Slack."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.alarms import messages
from chalicelib.alarms.events import AlarmChange
from chalicelib.alarms.rules import (
    FlapPolicy,
    Notice,
    NoticeDecision,
    Outcome,
    Refusal,
    Severity,
    rule_for,
)
from chalicelib.slack import (
    FALLBACK_TEXT_LIMIT,
    HEADER_TEXT_LIMIT,
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    SlackMessage,
)

CHANGE = AlarmChange(
    name="spotops-dev-cpu-high",
    state="ALARM",
    old_state="OK",
    reason="Threshold Crossed: 5 datapoints were greater than the threshold (85.0).",
    at=1795860280.0,
    source="eventbridge",
    event_id="c4c1c1c9",
    description="CPU. Runbook: https://runbooks.example.com/cpu-high.md",
    alarm_arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:spotops-dev-cpu-high",
    account="123456789012",
    region="us-east-1",
    metric="AWS/ECS CPUUtilization (ClusterName=spotops-dev), Average over 60 s",
    threshold="threshold 85.0",
)
CONTEXT = messages.AlertContext(
    severity=Severity.WARNING,
    runbook="https://runbooks.example.com/cpu-high.md",
    runbook_found=True,
    footer="spotops-dev · alarm_action · eventbridge c4c1c1c9",
)
POSTED = NoticeDecision(Notice.POST, 1, 0)


def texts(message: SlackMessage) -> list[str]:
    found = []
    for block in message.blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            found.append(element["text"])
    return found


def assert_within_limits(message: SlackMessage) -> None:
    assert len(message.blocks) <= MAX_BLOCKS
    assert len(message.text) <= FALLBACK_TEXT_LIMIT
    for block in message.blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= HEADER_TEXT_LIMIT
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= SECTION_TEXT_LIMIT
        for element in block.get("elements", []):
            assert len(element["text"]) <= SECTION_TEXT_LIMIT


def test_the_alert_says_what_where_and_links_console_and_runbook() -> None:
    message = messages.alert(CHANGE, POSTED, CONTEXT)
    header, *_rest = message.blocks
    body = "\n".join(texts(message))
    assert header["text"]["text"] == ":rotating_light: ALARM: spotops-dev-cpu-high"
    assert "OK → ALARM at 2026-11-28 10:04:40 UTC" in body
    assert "*Metric:* AWS/ECS CPUUtilization (ClusterName=spotops-dev), Average over 60 s" in body
    assert "*Threshold:* threshold 85.0" in body
    assert "*Region:* us-east-1" in body
    assert "*Account:* 123456789012" in body
    assert (
        "<https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#alarmsV2:alarm/spotops-dev-cpu-high|Open the alarm in CloudWatch>"
    ) in body
    assert ":book: Runbook: <https://runbooks.example.com/cpu-high.md>" in body
    assert "Reason: Threshold Crossed" in body
    assert_within_limits(message)


def test_ok_says_how_long_the_alarm_lasted() -> None:
    ok = replace(CHANGE, state="OK", old_state="ALARM")
    message = messages.alert(ok, NoticeDecision(Notice.POST, 1, 0, lasted=754), CONTEXT)
    assert message.blocks[0]["text"]["text"] == ":white_check_mark: OK: spotops-dev-cpu-high"
    assert "It was in ALARM for *12 min*." in "\n".join(texts(message))
    unknown = messages.alert(ok, POSTED, CONTEXT)
    assert "How long it was in ALARM is unknown" in "\n".join(texts(unknown))


def test_no_runbook_links_the_index_with_a_warning() -> None:
    context = replace(
        CONTEXT, runbook="https://runbooks.example.com/README.md", runbook_found=False
    )
    body = "\n".join(texts(messages.alert(replace(CHANGE, description=None), POSTED, context)))
    assert ":warning: The alarm's description has no `Runbook: &lt;url&gt;` link" in body
    assert "Runbook: <https://runbooks.example.com/README.md>" in body


def test_what_aws_sent_is_never_formatted_linked_or_mentioned() -> None:
    hostile = replace(
        CHANGE,
        reason="<!channel> *click* <https://evil.example|here> & `rm -rf`",
        metric="<@U123> _x_",
        alarm_rule='ALARM("a") > <!here>',
    )
    message = messages.alert(hostile, POSTED, CONTEXT)
    reason_blocks = [
        b for b in message.blocks if b["type"] == "section" and "Reason:" in b["text"]["text"]
    ]
    (reason,) = reason_blocks
    assert reason["text"]["type"] == "plain_text"  # shown as sent, never parsed
    mrkdwn = "\n".join(
        b["text"]["text"] for b in message.blocks if b.get("text", {}).get("type") == "mrkdwn"
    )
    assert "<!channel>" not in mrkdwn
    assert "<@U123>" not in mrkdwn
    assert "<!here>" not in mrkdwn
    assert "&lt;@U123&gt;" in mrkdwn
    assert "<!channel>" not in message.text
    assert "<https://evil" not in message.text
    assert "&lt;!channel&gt;" in message.text


@pytest.mark.parametrize("size", [0, 2_000, 3_001, 40_000, 400_000])
def test_every_alert_fits_block_kit_whatever_the_input_length(size: int) -> None:
    huge = replace(
        CHANGE,
        name="spotops-dev-" + "n" * size,
        reason="r" * size,
        metric="m" * size,
        threshold="t" * size,
        alarm_rule="a" * size,
        description="d" * size,
        degraded="g" * size,
        suppressed_by="s" * size,
    )
    assert_within_limits(messages.alert(huge, NoticeDecision(Notice.POST, 1, size), CONTEXT))
    assert_within_limits(
        messages.flapping_summary(
            huge, NoticeDecision(Notice.SUMMARY, 50, size), CONTEXT, FlapPolicy()
        )
    )


def test_the_flapping_summary_counts() -> None:
    message = messages.flapping_summary(
        CHANGE, NoticeDecision(Notice.SUMMARY, 13, 24), CONTEXT, FlapPolicy()
    )
    body = "\n".join(texts(message))
    assert message.blocks[0]["text"]["text"] == ":repeat: Flapping: spotops-dev-cpu-high"
    assert "went into ALARM *13 times* in the last 1 h" in body
    assert "24 alert(s) were held back" in body
    assert "at most once every 15 min" in body


def follow_up(outcome: Outcome, trigger: str = "unhealthy-hosts") -> tuple[str, str]:
    message = messages.follow_up(
        messages.FollowUp(
            subject="spotops-dev-unhealthy-hosts",
            rule=rule_for(trigger),
            outcome=outcome,
            service="spotops-dev/spotops-dev-site",
            limits="once per 30 min per trigger, 3 actions per hour",
            runbook="https://runbooks.example.com/remediation-force-new-deployment.md",
            footer="f",
        )
    )
    assert_within_limits(message)
    return message.blocks[0]["text"]["text"], "\n".join(texts(message))


@pytest.mark.parametrize(
    ("outcome", "title", "words"),
    [
        (
            Outcome(True, "force a new deployment", None, "force a new deployment"),
            ":wrench: Remediation: force-new-deployment for spotops-dev-unhealthy-hosts",
            "Done: force a new deployment",
        ),
        (
            Outcome(True, "x", None, "force a new deployment", "access denied: update_service"),
            ":x: Remediation failed: force-new-deployment",
            "It is not retried automatically",
        ),
        (
            Outcome.refused(Refusal.BUDGET, "the budget ... is spent: escalating to a human"),
            ":sos: Escalating to a human: spotops-dev-unhealthy-hosts",
            "escalating to a human",
        ),
        (
            Outcome.refused(Refusal.DRY_RUN, "dry run (DRY_RUN is true): would force"),
            ":test_tube: [dry run] force-new-deployment",
            "Nothing was changed.",
        ),
        (
            Outcome.refused(Refusal.COOLDOWN, "cooling down for another 12 min"),
            ":hand: No remediation for spotops-dev-unhealthy-hosts: cooldown",
            "*Why not:* cooldown",
        ),
    ],
)
def test_the_follow_up_says_what_was_done_or_exactly_why_not(
    outcome: Outcome, title: str, words: str
) -> None:
    found_title, body = follow_up(outcome)
    assert found_title.startswith(title)
    assert words in body
    assert "*Limits:* once per 30 min per trigger" in body


def test_spot_notices_say_what_comes_next() -> None:
    notice = messages.spot_notice(
        service="spotops-dev-site",
        task="b99d40b3",
        where="FARGATE_SPOT, us-east-1b",
        count=3,
        threshold=3,
        window_seconds=1800,
        runbook="https://runbooks.example.com/spot-interruption.md",
        footer="f",
    )
    body: Any = "\n".join(texts(notice))
    assert notice.blocks[0]["text"]["text"] == ":zap: Spot interruption: spotops-dev-site"
    assert "Interruption *3* within 30 min" in body
    assert "shifted to on-demand FARGATE now" in body
