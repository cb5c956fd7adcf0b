"""Hypothesis strategies for the delivery model's streams, and the helpers that turn a
generated stream into happenings and deliveries on a :class:`~tests.support.delivery.Simulation`.

A stream is what *happened* (pushes, alarm changes, Spot interruptions, placement failures,
chaos ticks), each with its own time, and, for each event, when it is *delivered*: a list
of delays after the event's time (0 to 6 hours; two or more delays: delivered twice).
Sorting deliveries by time gives the reordering.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from chalicelib.alarms.flow import handle_event
from chalicelib.events import EcrImageActionEvent, ScheduledEvent
from chalicelib.redeploy.flow import handle_push, reconcile
from tests.support.alarms import eventbridge_alarm, placement_failure, sns_alarm, spot_interruption
from tests.support.delivery import HOUR, SIX_HOURS, START, Fate, Simulation, iso
from tests.support.events import load_event

# ---- delays: on time, a little late, a Lambda retry, hours late (up to 6 h) ---------------

DELAY = st.one_of(
    st.sampled_from([0, 1, 30, 60, 180, 900, HOUR, 2 * HOUR, SIX_HOURS]),
    st.integers(0, SIX_HOURS),
)
# The first delay is the delivery; more are duplicates (at least once).
DELIVERIES = st.lists(DELAY, min_size=1, max_size=3).map(tuple)


def fates() -> st.SearchStrategy[Fate]:
    """What ECS does with a deployment: completes, or fails and rolls back."""
    return st.builds(
        Fate,
        ok=st.booleans(),
        rollout=st.sampled_from([60, 300, 900]),
        delays=DELIVERIES,
        notice_id=st.sampled_from(["rollback", "ours"]),
    )


# ---- pushes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """The same digest pushed under a commit tag, milliseconds after the release tag: the
    event's ``time`` (whole seconds) is the same second or the next."""

    tag: str
    lag: int
    deliveries: tuple[int, ...]


@dataclass(frozen=True)
class Push:
    tag: str
    at: float
    fate: Fate
    deliveries: tuple[int, ...]
    twin: Twin | None = None

    @property
    def tags(self) -> list[str]:
        return [self.tag] + ([self.twin.tag] if self.twin else [])


@st.composite
def push_streams(draw: st.DrawFn) -> tuple[list[Push], list[int]]:
    """2-4 pushes a minute to an hour apart, some with a twin; each push's deployment has a
    fate; and which of the reconcile schedule's runs (every 15 minutes) were lost."""
    count = draw(st.integers(2, 4))
    pushes = []
    at = START
    for index in range(count):
        at += draw(st.sampled_from([60, 300, 1200, HOUR]))
        twin = None
        if draw(st.booleans()):
            twin = Twin(f"c0ffee{index}", draw(st.sampled_from([0, 1])), draw(DELIVERIES))
        pushes.append(Push(f"v1.{index}.0", at, draw(fates()), draw(DELIVERIES), twin))
    # The reconcile schedule fires every 15 minutes; these runs were lost (throttled, failed).
    lost = draw(st.lists(st.integers(0, 40), max_size=8, unique=True))
    return pushes, sorted(lost)


def schedule_pushes(sim: Simulation, pushes: list[Push]) -> dict[str, str]:
    """Each push happens at its time (the image reaches ECR then: a reconcile run before it
    cannot see it) and its event, and its twin's, are delivered after each of their delays.
    Returns tag -> digest, filled in as the pushes happen."""
    digests: dict[str, str] = {}
    for push in pushes:
        sim.happen(push.at, f"push {push.tag}", _push(sim, push.tag, push.tag, push, digests))
        _deliver_push(sim, push.tag, push.at, push.deliveries, digests)
        if push.twin is not None:
            twin = push.twin
            at = push.at + twin.lag
            # The same manifest under another tag: the same digest, ECR's first push time.
            sim.happen(at, f"push {twin.tag}", _push(sim, twin.tag, push.tag, None, digests))
            _deliver_push(sim, twin.tag, at, twin.deliveries, digests)
    return digests


def _push(sim: Simulation, tag: str, seed: str, first: Push | None, digests: dict[str, str]) -> Any:
    def change() -> None:
        from moto.backends import get_backend

        from tests.support.ops_world import ACCOUNT, REGION

        digest = sim.world.push_image(tag, seed=seed)
        digests[tag] = digest
        if first is None:
            return
        sim.engine.fates[digest] = first.fate
        backend = get_backend("ecr")[ACCOUNT][REGION]
        for image in backend.repositories[sim.world.repository].images:
            if image.get_image_digest() == digest:
                image.image_pushed_at = int(first.at)

    return change


def _deliver_push(
    sim: Simulation, tag: str, at: float, deliveries: tuple[int, ...], digests: dict[str, str]
) -> None:
    kit = sim.kit("redeploy")

    def run() -> dict[str, Any]:
        event = sim.world.push_event(load_event("ecrImageActionPush"), digests[tag], tag)
        event["id"] = f"push-{tag}"
        event["time"] = iso(at)
        return handle_push(EcrImageActionEvent(event), kit)

    for delay in deliveries:
        sim.deliver("push", tag, at, at + delay, run)


def schedule_reconcile(sim: Simulation, at: float, name: str) -> None:
    event = load_event("scheduledEvent")
    event["id"] = f"reconcile-{name}"
    event["time"] = iso(at)
    kit = sim.kit("redeploy")
    sim.deliver("reconcile", name, at, at, lambda: reconcile(ScheduledEvent(event), kit))


# ---- alarms, Spot and placement failures ---------------------------------------------------

PREFIX = "spotops-test-"
# An alarm of each kind: force a new deployment, scale out, no automatic fix.
ALARMS = ("unhealthy-hosts", "cpu-high", "alb-5xx")


@dataclass(frozen=True)
class AlarmChange:
    """One alarm going to ``state`` at ``at``, delivered by SNS and/or EventBridge."""

    alarm: str
    state: str
    at: float
    sns: tuple[int, ...]
    eventbridge: tuple[int, ...]


@dataclass(frozen=True)
class Mute:
    """On-call disables the alarm's actions at ``at`` (and enables them at ``until``)."""

    alarm: str
    at: float
    until: float | None


@st.composite
def alarm_histories(draw: st.DrawFn, alarm: str, start: float) -> list[AlarmChange]:
    """The alarm's changes: ALARM, OK, ALARM... one to forty minutes apart."""
    changes = []
    at = start
    state = "ALARM"
    for _ in range(draw(st.integers(1, 4))):
        at += draw(st.sampled_from([60, 300, 600, 1200, 2400]))
        forms = draw(st.sampled_from(["sns", "eventbridge", "both"]))
        sns = draw(DELIVERIES) if forms in ("sns", "both") else ()
        eventbridge = draw(DELIVERIES) if forms in ("eventbridge", "both") else ()
        changes.append(AlarmChange(f"{PREFIX}{alarm}", state, at, sns, eventbridge))
        state = "OK" if state == "ALARM" else "ALARM"
    return changes


@dataclass(frozen=True)
class SpotStop:
    task: str
    at: float
    deliveries: tuple[int, ...]


@dataclass(frozen=True)
class Placement:
    event_id: str
    at: float
    provider: str
    deliveries: tuple[int, ...]


@dataclass(frozen=True)
class RemediationStream:
    changes: list[AlarmChange]
    mutes: list[Mute]
    spot: list[SpotStop]
    placements: list[Placement]


@st.composite
def remediation_streams(draw: st.DrawFn) -> RemediationStream:
    """Alarm changes of 1-3 alarms (some muted for a while), Spot interruptions and
    placement failures, all within two hours of the start."""
    alarms = draw(st.lists(st.sampled_from(ALARMS), min_size=1, max_size=3, unique=True))
    changes = []
    mutes = []
    for alarm in alarms:
        changes += draw(alarm_histories(alarm, START))
        if draw(st.booleans()):
            at = START + draw(st.integers(0, 2 * HOUR))
            until = draw(st.one_of(st.none(), st.integers(60, 2 * HOUR)))
            mutes.append(Mute(f"{PREFIX}{alarm}", at, None if until is None else at + until))
    spot = [
        SpotStop(f"task{n}", START + at, deliveries)
        for n, (at, deliveries) in enumerate(
            draw(st.lists(st.tuples(st.integers(0, 2 * HOUR), DELIVERIES), max_size=4))
        )
    ]
    placements = [
        Placement(f"placement-{n}", START + at, provider, deliveries)
        for n, (at, provider, deliveries) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(0, 2 * HOUR),
                        st.sampled_from(["FARGATE_SPOT", "FARGATE"]),
                        DELIVERIES,
                    ),
                    max_size=2,
                )
            )
        )
    ]
    return RemediationStream(changes, mutes, spot, placements)


class AlarmBook:
    """CloudWatch as the stream makes it: each alarm in the state of its newest change so
    far, its actions enabled unless muted."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.muted: set[str] = set()

    def change(self, change: AlarmChange) -> None:
        from tests.support.alarms import put_alarm

        put_alarm(
            self.sim.world.clients.cloudwatch,
            change.alarm,
            change.state,
            actions_enabled=change.alarm not in self.muted,
            since=change.at,
        )

    def mute(self, alarm: str, muted: bool) -> None:
        cloudwatch = self.sim.world.clients.cloudwatch
        if muted:
            self.muted.add(alarm)
            cloudwatch.disable_alarm_actions(AlarmNames=[alarm])
        else:
            self.muted.discard(alarm)
            cloudwatch.enable_alarm_actions(AlarmNames=[alarm])


def schedule_alarms(sim: Simulation, changes: list[AlarmChange], mutes: list[Mute]) -> AlarmBook:
    """Each alarm exists in CloudWatch (OK) from the start; each change happens at its time
    and is delivered by each of its forms after each of its delays."""
    from tests.support.alarms import put_alarm

    book = AlarmBook(sim)
    for name in sorted({c.alarm for c in changes}):
        put_alarm(sim.world.clients.cloudwatch, name, "OK", since=START - HOUR)
    for mute in mutes:
        sim.happen(mute.at, f"mute {mute.alarm}", functools.partial(book.mute, mute.alarm, True))
        if mute.until is not None:
            sim.happen(
                mute.until, f"unmute {mute.alarm}", functools.partial(book.mute, mute.alarm, False)
            )
    kit = sim.kit("remediation")
    for change in changes:
        sim.happen(
            change.at, f"{change.alarm} {change.state}", functools.partial(book.change, change)
        )
        for form, delays in ((sns_alarm, change.sns), (eventbridge_alarm, change.eventbridge)):
            event = form(change.alarm, change.state, at=change.at)
            for delay in delays:
                sim.deliver(
                    "alarm",
                    f"{change.alarm} {change.state} ({form.__name__})",
                    change.at,
                    change.at + delay,
                    functools.partial(handle_event, event, kit, clock=sim.clock),
                )
    return book


def schedule_spot(sim: Simulation, spot: list[SpotStop], placements: list[Placement]) -> None:
    world = sim.world
    kit = sim.kit("remediation")
    for stop in spot:
        event = spot_interruption(world.cluster, world.service, stop.task, at=stop.at)
        for delay in stop.deliveries:
            sim.deliver(
                "spot",
                stop.task,
                stop.at,
                stop.at + delay,
                functools.partial(handle_event, event, kit, clock=sim.clock),
            )
    for failure in placements:
        event = placement_failure(
            world.cluster,
            world.service,
            at=failure.at,
            event_id=failure.event_id,
            provider=failure.provider,
        )
        for delay in failure.deliveries:
            sim.deliver(
                "placement",
                f"{failure.event_id} on {failure.provider}",
                failure.at,
                failure.at + delay,
                functools.partial(handle_event, event, kit, clock=sim.clock),
            )


def schedule_capacity_checks(sim: Simulation, start: float, end: float) -> None:
    """The alarm function's schedule: a capacity check every 15 minutes."""
    kit = sim.kit("remediation")
    at = start
    while at <= end:
        event = load_event("scheduledEvent")
        event["id"] = f"capacity-check-{int(at)}"
        event["time"] = iso(at)
        sim.deliver(
            "capacity",
            iso(at),
            at,
            at,
            functools.partial(handle_event, event, kit, clock=sim.clock),
        )
        at += 900
