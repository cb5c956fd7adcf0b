"""The alarm function's Slack messages: the alert, the flapping summary, the follow-up, the
Spot notices. Built with :func:`chalicelib.slack.build_message`, so every message fits Block
Kit's limits whatever the input; what came from AWS is escaped (mrkdwn) or shown as plain
text (the alarm's reason), never formatted by Slack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from chalicelib.alarms.events import AlarmChange
from chalicelib.alarms.rules import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    FlapPolicy,
    NoticeDecision,
    Outcome,
    Refusal,
    Rule,
    Severity,
    duration,
    when,
)
from chalicelib.slack import SlackMessage, build_message, escape

_ICONS = {ALARM: ":rotating_light:", OK: ":white_check_mark:", INSUFFICIENT_DATA: ":grey_question:"}
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def console_url(change: AlarmChange) -> str | None:
    """The alarm in the CloudWatch console (``None`` when its region is unknown).

    Example
    -------
    >>> from chalicelib.alarms.events import AlarmChange
    >>> console_url(AlarmChange("a b", "ALARM", "OK", "", 0.0, "sns", "1", region="us-east-1"))
    'https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/a%20b'
    """
    if not _REGION_RE.match(change.region):
        return None
    region = change.region
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#alarmsV2:alarm/{quote(change.name, safe='')}"
    )


@dataclass(frozen=True)
class AlertContext:
    """What an alert shows besides the change itself."""

    severity: Severity
    runbook: str  # the URL linked
    runbook_found: bool  # False: the index, with a warning
    footer: str
    foreign: str | None = None
    late: str | None = None  # the change is older than the last one recorded: why
    # "Error budget left (30 d): availability 62%, latency 88%", read at alert time
    # (chalicelib.slo.budget_line); None: not read (the alert says nothing of it).
    budget: str | None = None


def _facts(change: AlarmChange, context: AlertContext) -> list[tuple[str, str]]:
    facts = [
        ("State", f"{change.old_state or '?'} → {change.state} at {when(change.at)}"),
        ("Severity", context.severity.value),
    ]
    if change.metric:
        facts.append(("Metric", escape(change.metric)))
    if change.threshold:
        facts.append(("Threshold", escape(change.threshold)))
    if change.alarm_rule:
        facts.append(("Composite rule", escape(change.alarm_rule)))
    if change.suppressed:
        facts.append(("Actions suppressed", escape(change.suppressed)))
    facts.append(("Region", escape(change.region or change.region_name or "unknown")))
    facts.append(("Account", escape(change.account or "unknown")))
    url = console_url(change)
    if url:
        facts.append(("Console", f"<{url}|Open the alarm in CloudWatch>"))
    return facts


def _warnings(change: AlarmChange, context: AlertContext) -> list[str]:
    lines = []
    if not context.runbook_found:
        lines.append(
            ":warning: The alarm's description has no `Runbook: &lt;url&gt;` link, so this links "
            "the runbook index: find the alarm there, and add the link to the alarm."
        )
    if change.degraded:
        lines.append(
            f":warning: The alarm's message could not be read whole ({escape(change.degraded)})"
            ": nothing is remediated for it. Check the alarm in the console."
        )
    if context.foreign:
        lines.append(f":warning: {escape(context.foreign)}: nothing is remediated for it.")
    if context.late:
        lines.append(
            f":hourglass: Delivered late: {escape(context.late)}. It changes nothing and "
            "nothing is remediated for it."
        )
    if change.suppressed:
        lines.append(
            f":mute: The composite alarm's actions are suppressed ({escape(change.suppressed)})."
        )
    return lines


def alert(change: AlarmChange, decision: NoticeDecision, context: AlertContext) -> SlackMessage:
    """The alert of one state change: name, change, reason, metric and threshold, where,
    the console and the runbook. Out of ALARM, it says how long the alarm lasted."""
    kind = "composite alarm" if change.composite else "alarm"
    lines = [f"The {kind} `{escape(change.name)}` is *{change.state}*."]
    if change.state != ALARM and change.old_state == ALARM:
        if decision.lasted is not None:
            lines.append(f"It was in ALARM for *{duration(decision.lasted)}*.")
        else:
            lines.append("How long it was in ALARM is unknown (the toolkit did not see it start).")
    if decision.held:
        lines.append(f"{decision.held} alert(s) of this alarm were held back while it flapped.")
    if context.budget:
        lines.append(escape(context.budget))
    lines += _warnings(change, context)
    return build_message(
        f"{_ICONS.get(change.state, ':bell:')} {change.state}: {change.name}",
        "\n".join(lines),
        facts=_facts(change, context),
        runbook=context.runbook,
        footer=context.footer,
        details=f"Reason: {change.reason}" if change.reason else None,
    )


def flapping_summary(
    change: AlarmChange, decision: NoticeDecision, context: AlertContext, policy: FlapPolicy
) -> SlackMessage:
    """Instead of the alert, while the alarm flaps (:attr:`Notice.SUMMARY`)."""
    lines = [
        f"`{escape(change.name)}` went into ALARM *{decision.entries_in_window} times* in the "
        f"last {duration(policy.window_seconds)} and is now *{change.state}*. "
        f"{decision.held} alert(s) were held back since the last message.",
        f"While it flaps, its alerts are summarised at most once every "
        f"{duration(policy.summary_seconds)}. Remediation still runs within its limits, "
        "and every action taken is posted.",
        *([escape(context.budget)] if context.budget else []),
        *_warnings(change, context),
    ]
    return build_message(
        f":repeat: Flapping: {change.name}",
        "\n".join(lines),
        facts=_facts(change, context),
        runbook=context.runbook,
        footer=context.footer,
        details=f"Latest reason: {change.reason}" if change.reason else None,
    )


@dataclass(frozen=True)
class FollowUp:
    """What the follow-up reports."""

    subject: str  # the alarm's name, or the event ("Spot interruptions")
    rule: Rule | None
    outcome: Outcome
    service: str
    limits: str
    runbook: str
    footer: str


def follow_up(report: FollowUp) -> SlackMessage:
    """What was done about an alarm or event, or exactly why nothing was."""
    outcome, rule = report.outcome, report.rule
    action = rule.action.value if rule is not None else "none"
    subject = escape(report.subject)
    if outcome.failure is not None:
        title = f":x: Remediation failed: {action} for {report.subject}"
        body = (
            f"Tried to {escape(outcome.summary or action)}, but it failed: "
            f"{escape(outcome.failure)}. It is not retried automatically: follow the runbook."
        )
    elif outcome.acted:
        title = f":wrench: Remediation: {action} for {report.subject}"
        body = (
            f"Done: {escape(outcome.summary or outcome.reason)}. Watch `{subject}`; if it does "
            "not clear, follow the runbook."
        )
    elif outcome.refusal is Refusal.BUDGET:
        title = f":sos: Escalating to a human: {report.subject}"
        body = escape(outcome.reason) + "."
    elif outcome.refusal is Refusal.DRY_RUN:
        title = f":test_tube: [dry run] {action} for {report.subject}"
        body = escape(outcome.reason) + ". Nothing was changed."
    else:
        title = f":hand: No remediation for {report.subject}: {outcome.status.value}"
        body = escape(outcome.reason) + "."
    facts = [("Action", action), ("Service", escape(report.service)), ("Limits", report.limits)]
    if outcome.refusal is not None:
        facts.insert(1, ("Why not", outcome.refusal.value))
    return build_message(title, body, facts=facts, runbook=report.runbook, footer=report.footer)


def spot_notice(
    *,
    service: str,
    task: str,
    where: str,
    count: int,
    threshold: int,
    window_seconds: int,
    runbook: str,
    footer: str,
) -> SlackMessage:
    """One Fargate Spot interruption (the two-minute warning)."""
    then = (
        "the service is shifted to on-demand FARGATE now (see the next message)"
        if count >= threshold
        else f"at {threshold} within {duration(window_seconds)} the service is shifted to "
        "on-demand FARGATE"
    )
    return build_message(
        f":zap: Spot interruption: {service}",
        f"Fargate reclaimed Spot capacity: task `{escape(task)}` ({escape(where)}) of "
        f"`{escape(service)}` is stopping; ECS starts a replacement. Interruption *{count}* "
        f"within {duration(window_seconds)}; {then}.",
        facts=[("Service", escape(service)), ("Task", escape(task)), ("Capacity", escape(where))],
        runbook=runbook,
        footer=footer,
    )


def placement_notice(
    *, service: str, providers: str, reason: str, on_spot: bool, runbook: str, footer: str
) -> SlackMessage:
    """ECS could not place a task of the service (``SERVICE_TASK_PLACEMENT_FAILURE``)."""
    if on_spot:
        body = (
            f"ECS could not place tasks of `{escape(service)}` on Fargate Spot: there is no "
            "Spot capacity. Fargate does not fall back to on-demand by itself; the toolkit "
            "shifts the service to on-demand FARGATE within its limits (next message)."
        )
    else:
        body = (
            f"ECS could not place tasks of `{escape(service)}` on {escape(providers)}: not a "
            "Spot shortage, so the toolkit does not shift capacity. Follow the runbook."
        )
    return build_message(
        f":no_entry_sign: Task placement failed: {service}",
        body,
        facts=[("Capacity providers", escape(providers)), ("Reason", escape(reason or "-"))],
        runbook=runbook,
        footer=footer,
    )


def unrecorded_shift_notice(
    *, service: str, reason: str, adopted: bool, runbook: str, footer: str
) -> SlackMessage:
    """The capacity check found the service on on-demand FARGATE with no shift on record."""
    title = (
        f":mag: On-demand with no shift on record: {service}"
        if adopted
        else f":grey_question: On-demand, no Spot strategy known: {service}"
    )
    return build_message(
        title,
        f"`{escape(service)}` {escape(reason)}.",
        facts=[("Service", escape(service))],
        runbook=runbook,
        footer=footer,
    )
