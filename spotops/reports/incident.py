"""``spotops incident report``: a postmortem draft in Markdown, from the timeline alone.

The shape is the example postmortem of Google's *Site Reliability Workbook* (chapter
"Postmortem Culture"): Summary, Impact, Root Causes, Trigger, Resolution, Detection, Action
Items, Lessons Learned (what went well, what went wrong, where we got lucky), Timeline,
Supporting Information. What the data says is filled in (the impact window from the
stage's alarms, the times to detect, mitigate and recover, what automation did and
refused, the runbooks); what only people know is left empty under :data:`TO_WRITE`. No text
is invented and nothing depends on the clock: the same events give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)
from spotops.reports.timeline import LEDGER, Event, Timeline, stamp

# isort: split
from chalicelib.alarms.events import runbook_of

TO_WRITE = "_to be written by the people involved_"
# How much of what came before and after an alarm's episode ``--alarm`` shows: the push or
# deployment that caused it usually lands within the half hour before.
EPISODE_CONTEXT = timedelta(minutes=30)
# The outcomes by which the toolkit's jobs record that they did not act: a push not
# deployed (redeploy), a remediation or chaos run stopped by a guard.
REFUSALS = frozenset(
    {
        "refused",
        "older",
        "twin",
        "held-back",
        "frozen",
        "skipped",
        "kill-switch",
        "cooldown",
        "locked",
        "budget",
        "dry-run",
        "leashed",
        "no-kill",
        "foreign",
        "suppressed",
        "stale",
        "actions-disabled",
        "alarm-over",
        "not-applicable",
        "already-returned",
        "deployment-in-progress",
        "unreadable",
        "no-policy",
    }
)
# Ledger lines that are the toolkit deciding about a push, a deployment or an alarm.
AUTOMATION_KINDS = frozenset(
    {"push", "redeploy", "deploy-outcome", "remediation", "chaos", "freeze", "rollback"}
)


@dataclass(frozen=True)
class Window:
    """The impact: the first ALARM of the stage's alarms to the moment the last of them was
    back to OK (``end`` None: still in ALARM at the end of the data)."""

    start: datetime
    end: datetime | None
    alarms: tuple[str, ...]
    still_alarming: tuple[str, ...] = ()


def _transitions(events: Iterable[Event]) -> list[tuple[datetime, str, str]]:
    """``(at, alarm, state)`` of every alarm state change, from either source (CloudWatch's
    history or the alarm function's record: the same change twice changes nothing)."""
    return sorted({(e.at, e.fact("alarm"), e.fact("state")) for e in events if e.kind == "alarm"})


def impact_window(events: Sequence[Event], alarm: str | None = None) -> Window | None:
    """The impact window, or ``None`` when no alarm went to ALARM in the events.

    Without ``alarm``: from the first ALARM to the first moment after it when every alarm
    that went to ALARM is OK again and stays so. With ``alarm``: that alarm's latest
    episode, its last ALARM to the OK that followed.
    """
    changes = _transitions(events)
    if alarm is not None:
        changes = [c for c in changes if c[1] == alarm]
        starts = [i for i, c in enumerate(changes) if c[2] == "ALARM"]
        if not starts:
            return None
        first = starts[-1]
        # Repeated ALARM records of the same episode (both sources) start it at the earliest.
        while first > 0 and changes[first - 1][2] == "ALARM":
            first -= 1
        over = next((c[0] for c in changes[first:] if c[2] == "OK"), None)
        return Window(changes[first][0], over, (alarm,), () if over else (alarm,))
    in_alarm: set[str] = set()
    start: datetime | None = None
    end: datetime | None = None
    involved: set[str] = set()
    for at, name, state in changes:
        if state == "ALARM":
            start = start or at
            in_alarm.add(name)
            involved.add(name)
            end = None
        elif start is not None and name in in_alarm:
            in_alarm.discard(name)
            if not in_alarm:
                end = at
    if start is None:
        return None
    return Window(start, end, tuple(sorted(involved)), tuple(sorted(in_alarm)))


def duration(delta: timedelta) -> str:
    """``1h 02m 05s``, ``4m 12s``, ``0s``."""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def _first(events: Iterable[Event], start: datetime) -> Event | None:
    return next((e for e in events if e.at >= start), None)


def _is_refusal(event: Event) -> bool:
    return (event.fact("outcome") or event.fact("remediation")) in REFUSALS


def _is_mitigation(event: Event) -> bool:
    """A rollback, a remediation that acted, or the freeze of pushes."""
    if event.source != LEDGER:
        return False
    if event.kind in ("freeze", "rollback") or event.fact("action") == "rollback":
        return True
    if event.kind == "remediation" and not _is_refusal(event):
        return True
    return event.kind == "deployment" and event.fact("status") == "ROLLED_BACK"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _line(event: Event) -> str:
    return f"- {stamp(event.at)} ({event.source}, {event.kind}) {event.text}"


@dataclass(frozen=True)
class ReportInput:
    """What the report is made of: the timeline, each alarm's description, and where the
    rollback runbook is (the stage's runbook base URL, or the repository's path)."""

    app: str
    stage: str
    timeline: Timeline
    descriptions: Mapping[str, str]
    rollback_runbook: str
    alarm: str | None = None
    since: datetime | None = None


def report(data: ReportInput) -> str:
    """The Markdown draft."""
    events = list(data.timeline.events)
    window = impact_window(events, data.alarm)
    if window is not None and data.alarm is not None:
        shown_until = (window.end or events[-1].at) + EPISODE_CONTEXT
        events = [e for e in events if window.start - EPISODE_CONTEXT <= e.at <= shown_until]
    out: list[str] = []
    title_at = stamp(window.start) if window else "no alarm in range"
    out += [f"# Incident: {data.app}-{data.stage}, {title_at}", ""]
    out += ["Status: draft (generated by `spotops incident report` from the timeline)", ""]
    out += ["Authors: " + TO_WRITE, ""]
    out += _summary(data, window, events)
    out += _impact(window)
    out += ["## Root causes", "", TO_WRITE, "", "## Trigger", "", TO_WRITE, ""]
    out += _resolution(window, events)
    out += _detection(window, events)
    out += [
        "## Action items",
        "",
        TO_WRITE,
        "",
        "| Action item | Type | Owner | Priority | Bug |",
        "|---|---|---|---|---|",
        "",
        "## Lessons learned",
        "",
        "### What went well",
        "",
        TO_WRITE,
        "",
        "### What went wrong",
        "",
        TO_WRITE,
        "",
        "### Where we got lucky",
        "",
        TO_WRITE,
        "",
    ]
    out += _timeline(events)
    out += _supporting(data, window, events)
    return "\n".join(out).rstrip("\n") + "\n"


def _summary(data: ReportInput, window: Window | None, events: Sequence[Event]) -> list[str]:
    out = ["## Summary", ""]
    scope = f"alarm {data.alarm}" if data.alarm else f"the {data.app}-{data.stage} alarms"
    if window is None:
        since = f" since {stamp(data.since)}" if data.since else ""
        out.append(f"No state change to ALARM of {scope}{since} in the data.")
    else:
        names = ", ".join(window.alarms)
        out.append(
            f"{len(window.alarms)} alarm(s) went to ALARM from {stamp(window.start)}: {names}."
        )
    counts = _counts(events)
    if counts:
        out.append("")
        out.append("In the timeline: " + ", ".join(f"{n} {k}" for k, n in counts) + ".")
    return [*out, ""]


def _counts(events: Iterable[Event]) -> list[tuple[str, int]]:
    tally: dict[str, int] = {}
    for event in events:
        tally[event.kind] = tally.get(event.kind, 0) + 1
    return sorted(tally.items())


def _impact(window: Window | None) -> list[str]:
    out = ["## Impact", ""]
    if window is None:
        return [*out, "No impact window: no alarm went to ALARM in range.", ""]
    out.append(f"- Impact window: from {stamp(window.start)} (first ALARM)")
    if window.end is not None:
        out.append(
            f"  to {stamp(window.end)} (alarms back to OK): {duration(window.end - window.start)}"
        )
    else:
        still = ", ".join(window.still_alarming)
        out.append(f"  to no end in the data: still in ALARM: {still}")
    out.append(f"- Alarms: {', '.join(window.alarms)}")
    out += ["- Users affected, revenue impact: " + TO_WRITE, ""]
    return out


def _resolution(window: Window | None, events: Sequence[Event]) -> list[str]:
    out = ["## Resolution", ""]
    start = window.start if window else None
    mitigations = [e for e in events if _is_mitigation(e) and (start is None or e.at >= start)]
    out.append("Mitigations recorded (rollbacks, remediations that acted, freezes):")
    out.append("")
    out += [_line(e) for e in mitigations] or ["- none recorded"]
    automation = [e for e in events if e.source == LEDGER and e.kind in AUTOMATION_KINDS]
    did = [e for e in automation if not _is_refusal(e)]
    refused = [e for e in automation if _is_refusal(e)]
    alarm_refusals = [e for e in events if e.kind == "alarm" and _is_refusal(e)]
    out += ["", "### What automation did", ""]
    out += [_line(e) for e in did] or ["- nothing recorded"]
    out += ["", "### What automation refused or held back", ""]
    out += [_line(e) for e in sorted([*refused, *alarm_refusals], key=_order)] or [
        "- nothing recorded"
    ]
    return [*out, ""]


def _order(event: Event) -> tuple[datetime, str, str]:
    return (event.at, event.source, event.text)


def _detection(window: Window | None, events: Sequence[Event]) -> list[str]:
    out = ["## Detection", ""]
    if window is None:
        return [*out, "No alarm went to ALARM in range: nothing to detect from the data.", ""]
    alarms = [
        e
        for e in events
        if e.kind == "alarm" and e.fact("state") == "ALARM" and e.fact("alarm") in window.alarms
    ]
    alerted = [e for e in alarms if e.source == LEDGER]
    detected = _first(alerted, window.start) or _first(alarms, window.start)
    mitigated = _first([e for e in events if _is_mitigation(e)], window.start)
    if detected is not None:
        how = (
            "the toolkit's alert" if detected.source == LEDGER else "the alarm (no alert recorded)"
        )
        out.append(
            f"- Time to detect: {duration(detected.at - window.start)} "
            f"({how}, {stamp(detected.at)}: {detected.text})"
        )
    if mitigated is not None:
        out.append(
            f"- Time to mitigate: {duration(mitigated.at - window.start)} "
            f"({stamp(mitigated.at)}: {mitigated.text})"
        )
    else:
        out.append("- Time to mitigate: no rollback, remediation or freeze recorded")
    if window.end is not None:
        out.append(f"- Time to recover: {duration(window.end - window.start)} (alarms back to OK)")
    else:
        out.append("- Time to recover: not recovered in the data")
    return [*out, ""]


def _timeline(events: Sequence[Event]) -> list[str]:
    out = ["## Timeline", "", "All times UTC.", ""]
    if not events:
        return [*out, "No events in range.", ""]
    out += ["| Time | Source | Kind | What |", "|---|---|---|---|"]
    out += [f"| {stamp(e.at)} | {e.source} | {e.kind} | {_cell(e.text)} |" for e in events]
    return [*out, ""]


def _supporting(data: ReportInput, window: Window | None, events: Sequence[Event]) -> list[str]:
    out = ["## Supporting information", "", "### Runbooks involved", ""]
    runbooks: list[str] = []
    for name in window.alarms if window else ():
        link = runbook_of(data.descriptions.get(name))
        runbooks.append(f"- {name}: {link or 'no runbook link in its description'}")
    if any(
        e.kind == "rollback" or e.fact("action") == "rollback" or e.fact("status") == "ROLLED_BACK"
        for e in events
    ):
        runbooks.append(f"- rollback: {data.rollback_runbook}")
    out += runbooks or ["- none"]
    out += ["", "### Sources not read", ""]
    out += [f"- {gap.line}" for gap in data.timeline.gaps] or ["- none: every source was read"]
    return [*out, ""]
