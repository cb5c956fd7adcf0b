"""The delivery model, chaos: hourly chaos ticks (EventBridge scheduled events, delivered
late up to 6 h, twice, out of order) interleaved with alarms going ALARM and OK (some
muted), Spot interruptions of the service's tasks, kill-switch and leash flips, and
deployments rolling out, against the real chaos function (``handle_tick``) on the stream's
clock. A stopped task is replaced by ECS (its target healthy again) at the recovery
watch's first poll, or, after a Spot interruption, a minute or five later.

After each stream:

1. no task is stopped while, at the moment of the kill (the simulated present), an alarm
   of the stage is in ALARM (muted or not), a deployment of the service is in progress,
   the kill switch is on, or the leash is on;
2. kills are at least ``CHAOS_MIN_GAP_HOURS`` apart, Spot interruptions counted as kills;
3. no lock is left;
4. every kill is reported (its ``:boom:`` message posted or dead-lettered), nothing lost.

The kill switch is read without a cache here (``KILL_SWITCH_CACHE_SECONDS=0``): the
Powertools cache runs on real time, which in the model would hold a value for hours of the
stream's time.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from chalicelib.chaos.flow import handle_tick
from chalicelib.events import ScheduledEvent
from chalicelib.observability import metrics
from tests.functional.delivery.streams import (
    ALARMS,
    DELIVERIES,
    PREFIX,
    AlarmChange,
    Mute,
    alarm_histories,
    schedule_alarms,
)
from tests.support.delivery import (
    HOUR,
    START,
    RateLimitedSlack,
    SimClock,
    Simulation,
    clock_time,
    iso,
)
from tests.support.events import load_event
from tests.support.ops_world import (
    CHAOS_LEASH,
    ChaosLambdaContext,
    ChaosWorld,
    build_chaos_world,
    build_world,
)

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

MIN_GAP_HOURS = 2
HOURS = 6  # ticks at +0h .. +5h
ENV = {
    "all": {
        "SECRET_CACHE_SECONDS": "300",
        "SLACK_TIMEOUT_SECONDS": "3",
        "SLACK_MAX_ATTEMPTS": "4",
        "SLACK_MAX_TOTAL_SECONDS": "15",
        "SLACK_BACKOFF_BASE_SECONDS": "0.5",
    },
    "chaos": {
        "CHAOS_LEASH_PARAMETER": CHAOS_LEASH,
        "CHAOS_MIN_GAP_HOURS": str(MIN_GAP_HOURS),
        "KILL_SWITCH_CACHE_SECONDS": "0",
        # moto has no PR() statistic, so no budget to read: the budget guard is off here.
        "CHAOS_MIN_BUDGET_PERCENT": "0",
    },
}
ALWAYS = "0.001"  # mean hours between kills: the probability guard always passes


# ---- the stream -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """The schedule's run of hour ``hour`` (at ``START + hour``), delivered after each delay."""

    hour: int
    deliveries: tuple[int, ...]


@dataclass(frozen=True)
class Flip:
    """On-call sets ``control`` (``kill-switch`` or ``leash``) to ``value`` at ``at``."""

    control: str
    at: float
    value: str


@dataclass(frozen=True)
class Rollout:
    """A deployment of the service rolls out from ``at`` for ``seconds``."""

    at: float
    seconds: int


@dataclass(frozen=True)
class Interruption:
    """Fargate Spot reclaims a task at ``at``; ECS replaces it ``replaced_after`` later."""

    at: float
    replaced_after: int


@dataclass(frozen=True)
class ChaosStream:
    ticks: list[Tick]
    changes: list[AlarmChange]
    mutes: list[Mute]
    spot: list[Interruption]
    flips: list[Flip]
    rollouts: list[Rollout]


WITHIN = st.integers(0, HOURS * HOUR)


@st.composite
def chaos_streams(draw: st.DrawFn) -> ChaosStream:
    ticks = [Tick(hour, draw(DELIVERIES)) for hour in range(HOURS)]
    alarms = draw(st.lists(st.sampled_from(ALARMS), max_size=2, unique=True))
    changes: list[AlarmChange] = []
    mutes = []
    for alarm in alarms:
        changes += draw(alarm_histories(alarm, START + draw(WITHIN)))
        if draw(st.booleans()):
            at = START + draw(WITHIN)
            mutes.append(Mute(f"{PREFIX}{alarm}", at, at + draw(st.integers(60, 2 * HOUR))))
    spot = [
        Interruption(START + at, after)
        for at, after in draw(st.lists(st.tuples(WITHIN, st.sampled_from([60, 300])), max_size=2))
    ]
    flips = [
        Flip(control, START + at, value)
        for control, at, value in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["kill-switch", "leash"]),
                    WITHIN,
                    st.sampled_from(["on", "off"]),
                ),
                max_size=3,
            )
        )
    ]
    rollouts = [
        Rollout(START + at, seconds)
        for at, seconds in draw(
            st.lists(st.tuples(WITHIN, st.sampled_from([300, 1800, HOUR])), max_size=2)
        )
    ]
    return ChaosStream(ticks, changes, mutes, spot, flips, rollouts)


# ---- the world as the stream makes it -----------------------------------------------------


@dataclass
class ChaosState:
    """What the invariants are judged against, kept by the stream's happenings."""

    kill_switch: bool = False
    leash: bool = False
    rollouts: int = 0  # deployments in progress
    interruptions: list[float] = field(default_factory=list)


@dataclass
class ChaosSim:
    sim: Simulation
    chaos: ChaosWorld
    state: ChaosState


@contextmanager
def chaos_world() -> Iterator[ChaosSim]:
    """A fresh moto world with the chaos service (2 tasks on Fargate Spot, healthy targets,
    opted in with a tiny mean time between kills), the leash and kill switch off, Slack with
    its rate limit, and the stream's clock."""
    from moto.moto_api import state_manager

    clock = SimClock()
    slack = RateLimitedSlack(clock)
    try:
        with mock_aws():
            world = build_world(webhook_url=slack.url)
            chaos = build_chaos_world(world)
            chaos.tag(chaos="on", mtbk_hours=ALWAYS)
            chaos.set_leash("off")
            sim = Simulation(world, slack, clock, service=chaos.service, env=ENV)
            state = ChaosState()
            sim.witness = functools.partial(witness, sim, state)
            sim.use_context("chaos", ChaosLambdaContext())
            yield ChaosSim(sim, chaos, state)
    finally:
        state_manager.unset_transition("ecs::task")
        slack.close()
        metrics.clear_metrics()


def witness(sim: Simulation, state: ChaosState, cause: Any) -> dict[str, Any]:
    """At an action: the stage's alarms in ALARM (CloudWatch now), and the controls and
    rollouts as the stream set them."""
    found = sim.world.clients.cloudwatch.describe_alarms(AlarmNamePrefix=PREFIX)
    in_alarm = sorted(a["AlarmName"] for a in found["MetricAlarms"] if a["StateValue"] == "ALARM")
    return {
        "alarms": in_alarm,
        "kill_switch": state.kill_switch,
        "leash": state.leash,
        "rollouts": state.rollouts,
    }


def replace_stopped(chaos: ChaosWorld) -> None:
    """ECS replaces every stopped task whose target is still registered."""
    for arn in chaos.stopped():
        ip = chaos.targets.pop(arn, None)
        if ip is not None:
            chaos.clients.elbv2.deregister_targets(
                TargetGroupArn=chaos.target_group, Targets=[{"Id": ip, "Port": 8080}]
            )
            chaos.start_task()


def set_rollout(chaos: ChaosWorld, state: ChaosState, delta: int) -> None:
    """The service's deployments as ECS shows them: a second one rolling out, or settled."""
    from moto.ecs.models import ecs_backends

    from tests.support.ops_world import ACCOUNT, REGION

    state.rollouts += delta
    service = ecs_backends[ACCOUNT][REGION].services[f"{chaos.base.cluster}:{chaos.service}"]
    primary = dict(service.deployments[0])
    if state.rollouts > 0:
        service.deployments = [
            {
                **primary,
                "id": "ecs-svc/rolling",
                "status": "PRIMARY",
                "rolloutState": "IN_PROGRESS",
            },
            {**primary, "id": "ecs-svc/old", "status": "ACTIVE"},
        ]
    else:
        service.deployments = [{**primary, "status": "PRIMARY", "rolloutState": "COMPLETED"}]


def interrupt(cs: ChaosSim, at: float) -> None:
    running = cs.chaos.running_tasks()
    if not running:
        return
    cs.chaos.interrupt_by_spot(running[0], datetime.fromtimestamp(at, tz=UTC))
    cs.state.interruptions.append(at)


def flip(cs: ChaosSim, change: Flip) -> None:
    if change.control == "kill-switch":
        cs.sim.world.set_kill_switch(change.value)
        cs.state.kill_switch = change.value == "on"
    else:
        cs.chaos.set_leash(change.value)
        cs.state.leash = change.value == "on"


def schedule_chaos(cs: ChaosSim, stream: ChaosStream) -> None:
    sim, chaos, state = cs.sim, cs.chaos, cs.state
    # CloudWatch only: the alarm function is not this stream's (it would act on another
    # service); chaos reads the alarms' states itself.
    quiet = [dataclasses.replace(c, sns=(), eventbridge=()) for c in stream.changes]
    schedule_alarms(sim, quiet, stream.mutes)
    for stop in stream.spot:
        sim.happen(stop.at, "spot interruption", functools.partial(interrupt, cs, stop.at))
        sim.happen(
            stop.at + stop.replaced_after, "ECS replaces", functools.partial(replace_stopped, chaos)
        )
    for change in stream.flips:
        sim.happen(
            change.at, f"{change.control} {change.value}", functools.partial(flip, cs, change)
        )
    for rollout in stream.rollouts:
        sim.happen(rollout.at, "rollout starts", functools.partial(set_rollout, chaos, state, 1))
        sim.happen(
            rollout.at + rollout.seconds,
            "rollout ends",
            functools.partial(set_rollout, chaos, state, -1),
        )
    kit = sim.kit("chaos")

    def sleep(seconds: float) -> None:  # the recovery watch: ECS replaces at the first poll
        sim.clock.sleep(seconds)
        replace_stopped(chaos)

    for tick in stream.ticks:
        at = START + tick.hour * HOUR
        event = load_event("scheduledEvent")
        event["id"] = f"chaos-tick-{tick.hour}"
        event["time"] = iso(at)
        run = functools.partial(
            handle_tick, ScheduledEvent(event), kit, clock=sim.clock, sleep=sleep
        )
        for delay in tick.deliveries:
            sim.deliver("chaos", f"tick {tick.hour}", at, at + delay, run)


def run_stream(cs: ChaosSim, stream: ChaosStream) -> None:
    schedule_chaos(cs, stream)
    cs.sim.run()


def check_invariants(cs: ChaosSim) -> None:
    sim = cs.sim
    story = sim.story()
    kills = sim.actions_of("chaos", "stop_task")

    # 1. nothing stopped in the present's alarm, rollout, kill switch or leash
    for kill in kills:
        seen = kill.seen
        assert seen["alarms"] == [], f"killed during ALARM {seen}: {kill}\n{story}"
        assert seen["rollouts"] == 0, f"killed during a deployment: {kill}\n{story}"
        assert not seen["kill_switch"], f"killed with the kill switch on: {kill}\n{story}"
        assert not seen["leash"], f"killed on the leash: {kill}\n{story}"

    # 2. the minimum gap, Spot interruptions counted
    gap = MIN_GAP_HOURS * HOUR
    moments = [(k.at, "kill") for k in kills] + [(t, "spot") for t in cs.state.interruptions]
    for kill in kills:
        close = [
            (clock_time(t), what)
            for t, what in moments
            if t < kill.at + 1e-6 and kill.at - t < gap and (t, what) != (kill.at, "kill")
        ]
        assert not close, (
            f"kill at {clock_time(kill.at)} within {MIN_GAP_HOURS} h of {close}\n{story}"
        )
    assert len({k.at for k in kills}) == len(kills), f"two kills at once:\n{story}"

    # 3. no lock left
    lock = sim.world.clients.dynamodb.get_item(
        TableName=sim.world.ledger_table,
        Key={"pk": {"S": f"LOCK#{cs.chaos.service_key}"}, "sk": {"S": "LOCK"}},
    )
    assert "Item" not in lock, f"lock left: {lock.get('Item')}\n{story}"

    # 4. every kill reported; nothing lost
    booms = [title for job, title, _ in sim.posts if job == "chaos" and title.startswith(":boom:")]
    for kill in kills:
        short = str(kill.request["task"]).rsplit("/", 1)[-1]
        assert any(short in title for title in booms), f"kill not reported: {kill}\n{story}"
    assert sim.lost_posts() == [], f"messages lost: {sim.lost_posts()}\n{story}"


@settings(max_examples=12)
@given(chaos_streams())
def test_chaos_ticks_kill_only_when_every_guard_holds_in_the_present(stream: ChaosStream) -> None:
    with chaos_world() as cs:
        run_stream(cs, stream)
        check_invariants(cs)


def test_a_quiet_stream_kills_and_keeps_the_gap() -> None:
    """The model itself: on-time and twice-delivered ticks over six quiet hours kill, once
    per minimum gap at most, and each kill recovers and is reported."""
    stream = ChaosStream([Tick(h, (0, 900)) for h in range(HOURS)], [], [], [], [], [])
    with chaos_world() as cs:
        run_stream(cs, stream)
        check_invariants(cs)
        kills = cs.sim.actions_of("chaos", "stop_task")
        assert len(kills) == 3, cs.sim.story()
        titles = [t for job, t, _ in cs.sim.posts if job == "chaos"]
        assert sum(t.startswith(":white_check_mark:") for t in titles) == 3, titles
