"""Why a deployment failed, in a few lines on-call can act on: pure, facts in, text out.

The facts are what AWS answers, unchanged: the stopped tasks as ``ecs.describe_tasks``
returns them, the target health descriptions as ``elbv2.describe_target_health`` returns
them, and the events of one failed task's log stream as ``logs.get_log_events`` returns them
(the reads are :class:`chalicelib.gateway.DiagnosisReads`). A read that failed is named in
``unreadable`` and said, so a diagnosis is never silently partial, and never blocks the report
it goes into.

Identical reasons are counted, not repeated (a crash loop stops the same way ten times), and
the newest come first (what failed last is what the rollback answered). :meth:`Diagnosis.text`
keeps whole lines within a budget (a Slack section holds 3,000 characters), the stopped tasks
first, then the targets, then what could not be read, then the log lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Target states that say nothing about why new tasks failed: healthy ones, and old targets
# leaving during the rollback.
_QUIET_TARGET_STATES = frozenset({"healthy", "draining"})
LOG_LINE_CHARS = 300  # one log line kept at most this long: a stack trace's line, not a dump
_CUT = "…"


@dataclass(frozen=True)
class Diagnosis:
    """The lines, grouped and in the order they are shown.

    Attributes
    ----------
    findings:
        One line per distinct stop reason (tasks) or health reason (targets), newest first.
    log_task:
        The id of the task whose log lines these are (``""``: none read).
    log_lines:
        Its last log lines, oldest first (as a terminal shows a tail).
    unreadable:
        What could not be read and why, one phrase each ("the stopped tasks (ListTasks:
        AccessDeniedException)").
    """

    findings: tuple[str, ...] = ()
    log_task: str = ""
    log_lines: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """Every line, in the order they are shown, before any trimming."""
        shown = list(self.findings)
        if not shown and not self.unreadable:
            shown.append(
                "no stopped task of this deployment and no unhealthy target found (ECS keeps "
                "stopped tasks about an hour)"
            )
        shown.extend(f"could not read {what}" for what in self.unreadable)
        if self.log_task:
            if self.log_lines:
                shown.append(f"last log lines of task {self.log_task}:")
                shown.extend(f"  {line}" for line in self.log_lines)
            else:
                shown.append(f"task {self.log_task} wrote no log lines")
        return shown

    def text(self, limit_chars: int | None = None) -> str:
        """The lines joined, at most ``limit_chars`` characters: whole lines while they fit,
        then a line saying how many were left out.

        Example
        -------
        >>> Diagnosis(findings=("a" * 10, "b" * 30)).text(35)
        'aaaaaaaaaa\\n… 1 more line left out'
        """
        lines = self.lines()
        full = "\n".join(lines)
        if limit_chars is None or len(full) <= limit_chars:
            return full
        for keep in range(len(lines) - 1, 0, -1):
            left = len(lines) - keep
            marker = f"… {left} more line{'s' if left != 1 else ''} left out"
            candidate = "\n".join([*lines[:keep], marker])
            if len(candidate) <= limit_chars:
                return candidate
        # Not even the first line fits with the marker: cut inside it.
        return _cut_to(full, limit_chars)


def _cut_to(text: str, limit: int) -> str:
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + _CUT


def diagnose(
    stopped_tasks: Iterable[Mapping[str, Any]] = (),
    target_health: Iterable[Mapping[str, Any]] = (),
    log_events: Sequence[Mapping[str, Any]] = (),
    *,
    log_task: str = "",
    unreadable: Iterable[str] = (),
) -> Diagnosis:
    """The diagnosis of these facts.

    Parameters
    ----------
    stopped_tasks:
        ``tasks`` of ``DescribeTasks`` (only those of the failed deployment).
    target_health:
        ``TargetHealthDescriptions`` of ``DescribeTargetHealth``, of every target group.
    log_events:
        ``events`` of ``GetLogEvents`` of ``log_task``'s stream.
    log_task:
        The task id (or ARN) those events are of.
    unreadable:
        What could not be read, with why.

    Example
    -------
    >>> task = {"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/0a1b",
    ...         "stoppedReason": "Essential container in task exited",
    ...         "containers": [{"name": "site", "exitCode": 1}]}
    >>> diagnose([task]).findings
    ('task 0a1b stopped: Essential container in task exited; site exited 1',)
    """
    return Diagnosis(
        findings=(*_task_findings(stopped_tasks), *_target_findings(target_health)),
        log_task=task_id(log_task) if log_task else "",
        log_lines=tuple(_log_line(e) for e in log_events if str(e.get("message", "")).strip()),
        unreadable=tuple(unreadable),
    )


def task_id(task_arn: str) -> str:
    """The id at the end of a task ARN (``arn:...:task/<cluster>/<id>``)."""
    return task_arn.rsplit("/", 1)[-1]


def stop_reason(task: Mapping[str, Any]) -> str:
    """Why one task stopped, with its containers' exit codes and reasons."""
    reason = str(task.get("stoppedReason") or task.get("stopCode") or "no reason given")
    parts = [reason]
    for container in task.get("containers") or []:
        name = str(container.get("name", "?"))
        code = container.get("exitCode")
        why = str(container.get("reason") or "")
        if why and why in reason:  # a start failure repeats the container's reason
            why = ""
        if code is not None and code != 0:
            parts.append(f"{name} exited {code}" + (f" ({why})" if why else ""))
        elif why:
            parts.append(f"{name}: {why}")
    return "; ".join(parts)


def _task_findings(tasks: Iterable[Mapping[str, Any]]) -> list[str]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        groups.setdefault(stop_reason(task), []).append(task)
    ordered = sorted(
        groups.items(), key=lambda item: max(_stopped_at(t) for t in item[1]), reverse=True
    )
    lines = []
    for reason, members in ordered:
        newest = max(members, key=_stopped_at)
        newest_id = task_id(str(newest.get("taskArn", "?")))
        if len(members) == 1:
            lines.append(f"task {newest_id} stopped: {reason}")
        else:
            lines.append(f"{len(members)} tasks stopped (newest {newest_id}): {reason}")
    return lines


def _stopped_at(task: Mapping[str, Any]) -> float:
    # boto3 parses stoppedAt into a datetime; a recorded JSON response has epoch seconds.
    value = next(
        (task[k] for k in ("stoppedAt", "stoppingAt", "createdAt") if task.get(k) is not None),
        None,
    )
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def _target_findings(descriptions: Iterable[Mapping[str, Any]]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for description in descriptions:
        health = description.get("TargetHealth") or {}
        state = str(health.get("State", "unknown"))
        if state in _QUIET_TARGET_STATES:
            continue
        reason = str(health.get("Reason") or "no reason given")
        detail = str(health.get("Description") or "")
        key = f"{state}: {reason}" + (f" ({detail})" if detail else "")
        target = description.get("Target") or {}
        where = str(target.get("Id", "?"))
        if target.get("Port") is not None:
            where += f":{target['Port']}"
        groups.setdefault(key, []).append(where)
    lines = []
    for key, targets in sorted(groups.items(), key=lambda item: -len(item[1])):
        if len(targets) == 1:
            lines.append(f"target {targets[0]} {key}")
        else:
            lines.append(f"{len(targets)} targets (e.g. {targets[0]}) {key}")
    return lines


def _log_line(event: Mapping[str, Any]) -> str:
    return _cut_to(str(event.get("message", "")).rstrip(), LOG_LINE_CHARS)
