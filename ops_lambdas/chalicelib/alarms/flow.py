"""Alarm to action: the entry point of the ``alarm_action`` function, routing what it is
invoked with to the module that handles it: an alarm state change to
:mod:`~chalicelib.alarms.alert`, a Spot interruption or placement failure to
:mod:`~chalicelib.alarms.spot`, the schedule to :mod:`~chalicelib.alarms.capacity`; all of
them remediate through :mod:`~chalicelib.alarms.remediate`. The rules are in
:mod:`chalicelib.alarms.rules`, the reads and records in :mod:`chalicelib.alarms.facts`, the
messages in :mod:`chalicelib.alarms.messages`.

For an alarm state change (SNS from the site's alarm topic, or EventBridge; the same change
delivered both ways, or twice, is handled once: idempotency on alarm + state + time):

1. **Record, then alert.** The change and how it is posted (as usual, a flapping summary, or
   held while the alarm flaps) go to the ledger first; the alert is claimed in the ledger,
   then posted, so a retry never posts it twice. When the ledger cannot be read the alert
   still goes out, and nothing is remediated.
2. **Remediate, within limits** (ALARM only): the policy line of the alarm, then every
   reason not to act (:func:`~chalicelib.alarms.rules.decide`), then the service lock
   shared with redeploy and chaos (holder ``remediation:<trigger>:<event id>``, released on
   every path), the hourly budget (counted once per lock) and the cooldown, then one
   ``UpdateService``. After a lost answer ECS is asked whether it took the change.
3. **Record, then follow up**: what was done, or exactly why not.

Spot interruptions (``ECS Task State Change``, ``stopCode`` ``SpotInterruption``) are
counted (metric ``SpotInterruptions``, ledger, and chaos's last-kill record), posted up to
the threshold, and at the threshold within the window shift the service to on-demand
FARGATE; so does a ``SERVICE_TASK_PLACEMENT_FAILURE`` on ``FARGATE_SPOT``. The capacity check
(every 15 minutes) puts the Spot strategy back after a quiet period.

Bad input never raises (logged with the reason, counted as ``EventsIgnored``), and a failed
remediation call is reported, not retried: the next state change or on-call decides.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.alarms.alert import handle_alarm
from chalicelib.alarms.capacity import capacity_check
from chalicelib.alarms.events import (
    AlarmStateChangeEvent,
    EcsServiceActionEvent,
    EcsTaskStateChangeEvent,
    Kind,
    alarm_of,
    classify,
    sns_messages,
)
from chalicelib.alarms.shared import (
    JOB,
    Clock,
    result,
)
from chalicelib.alarms.spot import placement_failure, spot_interruption
from chalicelib.observability import count, ignore_event, logger
from chalicelib.results import Status

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit


__all__ = ["capacity_check", "handle_alarm", "handle_event"]


# ---- entry point --------------------------------------------------------------------------


def handle_event(raw: Any, kit: Toolkit, *, clock: Clock = time.time) -> dict[str, Any]:
    """Handle whatever the alarm function was invoked with; never raises for bad input.

    Returns
    -------
    dict
        ``job``, ``status`` (``alerted``, ``held``, ``acted``, a refusal, ``failed``,
        ``ignored``, ``duplicate``...), ``reason`` and what was decided.

    Example
    -------
    >>> handle_event({"Records": []}, kit)["status"]  # doctest: +SKIP
    'ignored'
    """
    kind, why = classify(raw)
    if kind is Kind.SNS:
        return _sns(raw, kit, clock)
    if kind is Kind.ALARM_STATE_CHANGE:
        event = AlarmStateChangeEvent(raw)
        problem = event.problem()
        if problem:
            return ignore_event(JOB, problem, event_id=raw.get("id"))
        return handle_alarm(event.change(), kit, clock=clock)
    if kind is Kind.TASK_STATE_CHANGE:
        return spot_interruption(EcsTaskStateChangeEvent(raw), kit, clock)
    if kind is Kind.SERVICE_ACTION:
        return placement_failure(EcsServiceActionEvent(raw), kit, clock)
    if kind is Kind.SCHEDULE:
        return capacity_check(kit, clock=clock)
    return ignore_event(JOB, why)


def _sns(raw: Mapping[str, Any], kit: Toolkit, clock: Clock) -> dict[str, Any]:
    found, problems = sns_messages(raw)
    for problem in problems:
        ignore_event(JOB, problem)
    results = []
    for message in found:
        alarm = alarm_of(message)
        if alarm.change is None:
            results.append(ignore_event(JOB, alarm.problem, message_id=message.message_id))
            continue
        if alarm.problem:
            logger.warning(
                "alarm message unreadable; alerting from its subject",
                extra={"reason": alarm.problem, "message_id": message.message_id},
            )
            count("EventsIgnored", JOB)
        topic = kit.settings.remediation.alarm_topic_arn
        other_topic = (
            f"it came from topic {message.topic_arn}, not {topic}"
            if topic and message.topic_arn and message.topic_arn != topic
            else None
        )
        results.append(handle_alarm(alarm.change, kit, clock=clock, other_topic=other_topic))
    if not results:
        return result(Status.IGNORED, "; ".join(problems) or "no SNS message to handle")
    if len(results) == 1:
        return {**results[0], "records": 1}
    return result(Status.HANDLED, f"{len(results)} SNS messages", results=results)
