"""Scheduled chaos as plain functions against moto (ECS, ELBv2, CloudWatch, DynamoDB, SSM),
Slack on 127.0.0.1, and a fake clock: the recovery watch "sleeps" by moving the clock.

The service is tagged with a tiny mean time between kills (``spotops:chaos-mtbk-hours``),
so the probability guard passes whatever the seed, unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from chalicelib.chaos.facts import ChaosRecords
from chalicelib.chaos.flow import handle_tick
from chalicelib.chaos.guards import KIND_CHAOS, KIND_SPOT, KillRecord
from chalicelib.events import ScheduledEvent
from chalicelib.observability import metrics
from chalicelib.slo import Budget
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import (
    ChaosWorld,
    LogLines,
    World,
    add_alternate_target_group,
    add_chaos_service,
    build_chaos_world,
)
from tests.support.slack_stub import SlackStub

WEDNESDAY_10AM = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
ALWAYS = "0.001"  # mean hours between kills: p = 1 - exp(-1000), the draw always passes


class FakeTime:
    """Epoch seconds that move only when the code under test sleeps."""

    def __init__(self, start: datetime) -> None:
        self.start = start.timestamp()
        self.now = self.start
        self.slept: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(self.now - self.start)

    def at(self, moment: datetime) -> FakeTime:
        self.start = self.now = moment.timestamp()
        return self


@pytest.fixture
def chaos(world: World) -> Iterator[ChaosWorld]:
    from moto.moto_api import state_manager

    built = build_chaos_world(world)
    built.tag(chaos="on", mtbk_hours=ALWAYS)
    try:
        yield built
    finally:
        state_manager.unset_transition("ecs::task")


@pytest.fixture
def time() -> FakeTime:
    return FakeTime(WEDNESDAY_10AM)


def tick(kit: Toolkit, time: FakeTime, run_id: str = "chaos-run-1") -> dict[str, Any]:
    event = load_event("scheduledEvent")
    event["id"] = run_id
    return handle_tick(ScheduledEvent(event), kit, clock=time.clock, sleep=time.sleep)


def only(result: dict[str, Any], service: str = "site-chaos") -> dict[str, Any]:
    (found,) = [s for s in result["services"] if s["service"].endswith(f"/{service}")]
    return found


def refusals(service_result: dict[str, Any]) -> list[str]:
    return [
        line.split(":", 1)[0].removeprefix("FAIL ")
        for line in service_result["verdicts"]
        if line.startswith("FAIL")
    ]


def records(chaos: ChaosWorld, kit: Toolkit) -> ChaosRecords:
    return ChaosRecords(kit.dynamodb, kit.settings.ledger_table_name)


def recover_after(chaos: ChaosWorld, seconds: float) -> Callable[[float], None]:
    """ECS replaces the stopped task and its target turns healthy ``seconds`` after the kill."""
    done: list[str] = []

    def hook(elapsed: float) -> None:
        if elapsed >= seconds and not done:
            done.append(chaos.replace_stopped())

    return hook


# ---- all guards pass: kill, recovery measured -----------------------------------------------


def test_all_guards_pass_one_task_is_stopped_and_recovery_is_measured(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub, logs: LogLines
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()
    before = chaos.running_tasks()
    time.on_sleep = recover_after(chaos, 30)

    result = tick(kit, time)

    service = only(result)
    assert result["status"] == "killed"
    assert result["leashed"] is False
    assert service["status"] == "recovered", service
    assert service["recovery_seconds"] == 30
    assert time.slept == [10, 10, 10]  # CHAOS_POLL_SECONDS, never a real wait
    # One task, of the opted-in service, stopped with a reason that names the run.
    ((stopped, reason),) = chaos.stopped().items()
    assert stopped == service["task"]
    assert stopped in before
    assert reason.startswith("spotops chaos run chaos-run-1 (spotops-test)")
    assert len(chaos.running_tasks()) == 2  # the replacement
    # Not opted in: the redeploy world's own service is left alone.
    assert only(result, "servicetest")["status"] == "not-opted-in"
    # Slack: the kill, then the recovery, both linking the runbook.
    assert [t.split(" ", 1)[0] for t in slack.texts()] == [":boom:", ":white_check_mark:"]
    assert "recovered in 30 s" in slack.texts()[1]
    for body in slack.bodies:
        assert "https://runbooks.example.com/spotops/chaos-kill.md" in json.dumps(body)
    # The time to recover is a metric, in seconds; the kill counts as an action.
    assert metrics.metric_set["ChaosTimeToRecover"]["Value"] == [30.0]
    assert metrics.metric_set["ChaosTimeToRecover"]["Unit"] == "Seconds"
    assert metrics.metric_set["ActionsTaken"]["Value"] == [1.0]
    # The ledger: the kill (for the minimum gap), the history, the lock released.
    last = records(chaos, kit).last_kill(chaos.service_key)
    assert last == KillRecord(WEDNESDAY_10AM, KIND_CHAOS, stopped, "chaos-run-1")
    history = [h.outcome for h in kit.ledger.read_history(chaos.service_key)]
    assert sorted(history) == ["killed", "recovered"]
    assert kit.ledger.read_lock(chaos.service_key) is None
    # Every guard's verdict and the seed are logged.
    decision = next(json.loads(line) for line in logs.lines if '"chaos decision"' in line)
    assert decision["seed"] == "chaos-run-1/default/site-chaos"
    assert len(decision["verdicts"]) == 14  # the thirteen guards, then time-left
    assert decision["verdicts"][-1].startswith("PASS time-left: 900 s of the function's time")
    assert all(line.startswith("PASS") for line in decision["verdicts"])


def test_recovery_that_exceeds_the_threshold_is_a_failed_experiment(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit(CHAOS_RECOVERY_TIMEOUT_SECONDS="120")

    result = tick(kit, time)  # nothing replaces the stopped task

    service = only(result)
    assert service["status"] == "not-recovered"
    assert "not recovered within 120 s" in service["reason"]
    assert "1 task(s) RUNNING" in service["reason"]  # the last check says what was wrong
    assert sum(time.slept) == 120
    assert slack.texts()[-1].startswith(":x: Chaos experiment failed: site-chaos")
    assert metrics.metric_set["ChaosExperimentsFailed"]["Value"] == [1.0]
    assert "ChaosTimeToRecover" not in metrics.metric_set
    assert kit.ledger.read_lock(chaos.service_key) is None


def test_no_kill_without_time_left_to_watch_the_whole_recovery(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    # A watch cut short by Lambda's limit would post "experiment failed" and free the lock
    # halfway through a recovery: with 90 s left and a 600 s watch, nothing is stopped.
    chaos.set_leash("off")
    kit = chaos.kit()
    kit = kit.with_context(dataclasses.replace(kit.lambda_context, remaining_millis=90_000))

    result = tick(kit, time)

    service = only(result)
    assert result["status"] == "no-kill"
    assert service["status"] == "no-kill", service
    assert refusals(service) == ["time-left"], service["verdicts"]
    assert service["reason"].startswith(
        "time-left: 90 s of the function's time left; the recovery watch needs 600 s and 30 s"
    )
    assert "not killing" in service["reason"]
    assert chaos.stopped() == {}
    assert time.slept == []
    assert slack.bodies == []  # no "experiment failed"
    assert records(chaos, kit).last_kill(chaos.service_key) is None  # no minimum gap used
    assert kit.ledger.read_lock(chaos.service_key) is None
    assert "ChaosExperimentsFailed" not in metrics.metric_set


def test_a_kill_with_just_enough_time_left_is_watched_to_the_end(
    chaos: ChaosWorld, time: FakeTime
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit(CHAOS_RECOVERY_TIMEOUT_SECONDS="120")
    kit = kit.with_context(dataclasses.replace(kit.lambda_context, remaining_millis=150_000))

    service = only(tick(kit, time))  # nothing replaces the stopped task

    assert service["status"] == "not-recovered"
    assert "not recovered within 120 s" in service["reason"]  # the whole watch, not cut short
    assert sum(time.slept) == 120
    assert "PASS time-left: 150 s of the function's time left" in service["verdicts"][-1]


# ---- several opted-in services in one run: each decided on the present -----------------------


def _second(chaos: ChaosWorld) -> ChaosWorld:
    other = add_chaos_service(chaos, "site-chaos-b")
    other.tag(chaos="on", mtbk_hours=ALWAYS)
    return other


def _during_first_watch(
    chaos: ChaosWorld, recover_at: float, change: Callable[[], Any]
) -> Callable[[float], None]:
    """The first service recovers ``recover_at`` s after its kill; meanwhile ``change``."""
    recover = recover_after(chaos, recover_at)
    changed: list[bool] = []

    def hook(elapsed: float) -> None:
        if not changed:
            changed.append(True)
            change()
        recover(elapsed)

    return hook


SWITCHED_DURING_THE_FIRST_WATCH: dict[str, Callable[[ChaosWorld], Any]] = {
    "kill-switch": lambda c: c.base.set_kill_switch("on"),
    "alarms": lambda c: c.set_alarm("spotops-test-target-5xx"),
    "leash": lambda c: c.set_leash("on"),
}


@pytest.mark.parametrize("switch", sorted(SWITCHED_DURING_THE_FIRST_WATCH))
def test_the_switches_and_alarms_are_read_again_before_the_next_services_kill(
    switch: str, chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    other = _second(chaos)
    kit = chaos.kit()
    first_tasks, other_tasks = set(chaos.targets), set(other.targets)
    change = SWITCHED_DURING_THE_FIRST_WATCH[switch]
    time.on_sleep = _during_first_watch(chaos, 30, lambda: change(chaos))

    result = tick(kit, time)

    first, second = only(result), only(result, "site-chaos-b")
    assert first["status"] == "recovered", first
    assert set(chaos.stopped()) == {first["task"]} <= first_tasks
    # The second service was decided on the present: nothing of it was stopped.
    assert not set(chaos.stopped()) & other_tasks
    if switch == "leash":
        assert second["status"] == "leashed", second
        assert "chaos leash /ops/chaos-leash is 'on'" in second["reason"]
        assert result["leashed"] is True
    else:
        assert second["status"] == "no-kill", second
        assert refusals(second) == [switch], second["verdicts"]
    assert records(chaos, kit).last_kill(other.service_key) is None
    assert kit.ledger.read_lock(other.service_key) is None
    titles = [t.split(" ", 1)[0] for t in slack.texts()]
    assert titles == [":boom:", ":white_check_mark:"] + ([":dog2:"] if switch == "leash" else [])


def test_the_next_service_is_not_killed_when_the_first_watch_used_up_the_time(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    # 900 s, a 600 s watch: the first service took 300 s to recover, 600 s are left, fewer
    # than the 630 s a second kill needs.
    chaos.set_leash("off")
    other = _second(chaos)
    kit = chaos.kit()
    time.on_sleep = recover_after(chaos, 300)

    result = tick(kit, time)

    first, second = only(result), only(result, "site-chaos-b")
    assert first["status"] == "recovered"
    assert first["recovery_seconds"] == 300
    assert second["status"] == "no-kill", second
    assert refusals(second) == ["time-left"]
    assert "600 s of the function's time left" in second["reason"]
    assert set(chaos.stopped()) == {first["task"]}
    assert len(other.running_tasks()) == 4  # both services' tasks, none of b's stopped
    assert [t.split(" ", 1)[0] for t in slack.texts()] == [":boom:", ":white_check_mark:"]


# ---- CANARY / LINEAR: the alternate target group ---------------------------------------------


def test_a_service_serving_from_its_alternate_target_group_is_killed_and_its_recovery_measured(
    chaos: ChaosWorld, time: FakeTime
) -> None:
    # After an odd number of CANARY/LINEAR deployments the tasks sit in the alternate group.
    chaos.set_leash("off")
    add_alternate_target_group(chaos, move_tasks=True)
    time.on_sleep = recover_after(chaos, 40)

    service = only(tick(chaos.kit(), time))

    assert service["status"] == "recovered", service
    assert service["recovery_seconds"] == 40
    assert "PASS targets: all 2 target(s) healthy" in service["verdicts"]
    assert set(chaos.stopped()) == {service["task"]}


def test_an_unhealthy_target_in_the_alternate_target_group_refuses(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    chaos.set_leash("off")
    alternate = add_alternate_target_group(chaos, move_tasks=False)
    chaos.clients.elbv2.register_targets(
        TargetGroupArn=alternate, Targets=[{"Id": "10.0.1.250", "Port": 8080}]
    )
    _unhealthy(monkeypatch, "10.0.1.250")

    service = only(tick(chaos.kit(), time))

    assert service["status"] == "no-kill", service
    assert refusals(service) == ["targets"]
    assert "1 target(s) not healthy: 10.0.1.250 unhealthy" in service["reason"]
    assert chaos.stopped() == {}
    assert slack.bodies == []


# ---- leashed ---------------------------------------------------------------------------------


def test_leashed_by_default_the_decision_is_posted_and_nothing_is_stopped(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    kit = chaos.kit()  # the leash parameter is "on", as the ops stack creates it

    result = tick(kit, time)

    service = only(result)
    assert result["status"] == "leashed"
    assert service["status"] == "leashed"
    assert "/ops/chaos-leash is 'on'" in service["reason"]
    assert chaos.stopped() == {}
    assert len(chaos.running_tasks()) == 2
    (text,) = slack.texts()
    assert text.startswith(":dog2: [leashed] Chaos would stop a task of site-chaos")
    assert service["task"].rsplit("/", 1)[-1] in text
    assert "spotops chaos-leash off --stage test" in text
    # A leashed decision uses up no minimum gap and takes no lock.
    assert records(chaos, kit).last_kill(chaos.service_key) is None
    assert kit.ledger.read_lock(chaos.service_key) is None
    assert metrics.metric_set["ActionsSuppressed"]["Value"] == [1.0]


def test_the_global_dry_run_leashes_chaos_too(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    chaos.base.set_dry_run("true")

    service = only(tick(chaos.kit(), time))

    assert service["status"] == "leashed"
    assert "dry run: dry-run parameter /ops/dry-run is 'true'" in service["reason"]
    assert chaos.stopped() == {}


# ---- each guard refusing alone, against moto ---------------------------------------------------


def _unhealthy_target(chaos: ChaosWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    _unhealthy(monkeypatch, next(iter(chaos.targets.values())))


def _unhealthy(monkeypatch: pytest.MonkeyPatch, sick: str) -> None:
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original = FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        found = original(self, target, ec2_backend)
        if target["Id"] == sick:
            return FakeHealthStatus(target["Id"], target["Port"], "traffic-port", "unhealthy")
        return found

    monkeypatch.setattr(FakeTargetGroup, "health_for", health_for)


def _hold_lock(chaos: ChaosWorld, kit: Toolkit) -> None:
    taken = kit.ledger.acquire_lock(
        chaos.service_key, holder="redeploy:sha256:abc", action="redeploy", ttl_seconds=600
    )
    assert taken.acquired


REFUSE_ALONE: dict[str, Callable[[ChaosWorld, Toolkit, FakeTime, pytest.MonkeyPatch], Any]] = {
    "opt-in": lambda c, k, t, m: c.tag(chaos="off"),
    "window": lambda c, k, t, m: t.at(datetime(2026, 12, 5, 10, tzinfo=UTC)),  # Saturday
    "freeze": lambda c, k, t, m: None,  # the kit for this case sets CHAOS_FREEZE_DATES
    "min-gap": lambda c, k, t, m: records(c, k).record_kill(
        c.service_key, KillRecord(WEDNESDAY_10AM - timedelta(hours=1), KIND_CHAOS, "arn:t/0")
    ),
    "probability": lambda c, k, t, m: c.tag(mtbk_hours="8760"),
    "kill-switch": lambda c, k, t, m: c.base.set_kill_switch("on"),
    "lock": lambda c, k, t, m: _hold_lock(c, k),
    "running": lambda c, k, t, m: c.set_running_count(1),
    "deployment": lambda c, k, t, m: c.start_deployment(),
    "targets": lambda c, k, t, m: _unhealthy_target(c, m),
    "alarms": lambda c, k, t, m: c.set_alarm("spotops-test-target-5xx"),
    "headroom": lambda c, k, t, m: c.clients.ecs.update_service(
        cluster=c.base.cluster,
        service=c.service,
        deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200},
    ),
}


@pytest.mark.parametrize("guard", sorted(REFUSE_ALONE))
def test_each_guard_refusing_alone_stops_nothing(
    guard: str,
    chaos: ChaosWorld,
    time: FakeTime,
    slack: SlackStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit(CHAOS_FREEZE_DATES="2026-12-02" if guard == "freeze" else "")
    REFUSE_ALONE[guard](chaos, kit, time, monkeypatch)

    result = tick(kit, time)

    service = only(result)
    if guard == "opt-in":
        assert service["status"] == "not-opted-in"
    else:
        assert service["status"] == "no-kill", service
        assert refusals(service) == [guard], service["verdicts"]
    assert chaos.stopped() == {}
    assert slack.bodies == []


def test_an_alarm_of_the_stage_that_is_ok_again_does_not_refuse(
    chaos: ChaosWorld, time: FakeTime
) -> None:
    # moto (5.2.5) ignores StateValue when AlarmNamePrefix is given: the guard checks the
    # state itself, as it must with any CloudWatch answer.
    chaos.set_leash("off")
    chaos.set_alarm("spotops-test-target-5xx", state="ALARM")
    chaos.set_alarm("spotops-test-target-5xx", state="OK")
    time.on_sleep = recover_after(chaos, 30)

    result = tick(chaos.kit(), time)

    assert result["status"] == "killed"
    service = only(result)
    assert not refusals(service), service["verdicts"]
    assert len(chaos.stopped()) == 1


# ---- the minimum gap, and Spot ------------------------------------------------------------------


def test_the_minimum_gap_holds_until_it_has_passed(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()  # CHAOS_MIN_GAP_HOURS defaults to 4
    time.on_sleep = recover_after(chaos, 10)
    assert only(tick(kit, time, "run-1"))["status"] == "recovered"

    time.on_sleep = None
    time.at(WEDNESDAY_10AM + timedelta(hours=1))
    refused = only(tick(kit, time, "run-2"))
    time.at(WEDNESDAY_10AM + timedelta(hours=4, minutes=1))
    time.on_sleep = recover_after(chaos, 10)
    again = only(tick(kit, time, "run-3"))

    assert refused["status"] == "no-kill"
    assert refusals(refused) == ["min-gap"]
    assert "last chaos kill" in refused["reason"]
    assert "1.0 h ago" in refused["reason"]
    assert again["status"] == "recovered"
    assert len(chaos.stopped()) == 2


def test_a_twin_run_cannot_record_a_second_kill_inside_the_gap(chaos: ChaosWorld) -> None:
    kept = records(chaos, chaos.kit())
    gap = timedelta(hours=4)
    first = KillRecord(WEDNESDAY_10AM, KIND_CHAOS, "arn:t/1", "run-a")
    twin = KillRecord(WEDNESDAY_10AM + timedelta(seconds=2), KIND_CHAOS, "arn:t/2", "run-a")
    later = KillRecord(WEDNESDAY_10AM + timedelta(hours=5), KIND_CHAOS, "arn:t/3", "run-b")

    assert kept.record_kill(chaos.service_key, first, unless_since=first.at - gap)
    assert not kept.record_kill(chaos.service_key, twin, unless_since=twin.at - gap)
    assert kept.record_kill(chaos.service_key, later, unless_since=later.at - gap)
    assert kept.last_kill(chaos.service_key) == later


def test_a_spot_interruption_counts_as_a_kill(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()
    reclaimed = chaos.running_tasks()[0]
    chaos.interrupt_by_spot(reclaimed, WEDNESDAY_10AM - timedelta(hours=1))
    chaos.replace_stopped()  # ECS brings the service back to 2 tasks

    service = only(tick(kit, time))

    assert service["status"] == "no-kill"
    assert refusals(service) == ["min-gap"]
    assert "Spot interruption" in service["reason"]
    assert set(chaos.stopped()) == {reclaimed}  # chaos stopped nothing more
    # Recorded, so the gap still holds once ECS no longer lists the stopped task.
    last = records(chaos, kit).last_kill(chaos.service_key)
    assert last is not None
    assert (last.kind, last.task_arn) == (KIND_SPOT, reclaimed)
    assert [h.outcome for h in kit.ledger.read_history(chaos.service_key)] == ["spot-interruption"]


# ---- bad input and faults: logged, no kill, no crash ---------------------------------------------


def test_a_malformed_tag_is_logged_and_the_service_left_alone(
    chaos: ChaosWorld, time: FakeTime, logs: LogLines
) -> None:
    chaos.set_leash("off")
    chaos.tag(chaos="sometimes")

    service = only(tick(chaos.kit(), time))

    assert service["status"] == "ignored"
    assert service["reason"] == "tag spotops:chaos='sometimes' is neither on nor off"
    assert "chaos tag malformed" in logs.text
    assert chaos.stopped() == {}


def test_a_service_without_a_load_balancer_is_not_killed(chaos: ChaosWorld, time: FakeTime) -> None:
    chaos.set_leash("off")
    c = chaos.clients
    c.ecs.create_service(
        cluster=chaos.base.cluster,
        serviceName="worker",
        taskDefinition=chaos.base.bootstrap_td,
        desiredCount=0,
        tags=[{"key": "spotops:chaos", "value": "on"}],
    )

    result = tick(chaos.kit(), time)

    worker = only(result, "worker")
    assert worker["status"] == "no-kill"
    assert "no load balancer" in worker["reason"]


class _Ecs:
    """The moto ECS client with one call changed."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_task_that_already_stopped_is_not_killed(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()
    real = kit.ecs

    def describe_tasks(**kwargs: Any) -> Any:
        if len(kwargs["tasks"]) == 1:  # the check of the chosen task, just before the kill
            real.stop_task(cluster=kwargs["cluster"], task=kwargs["tasks"][0], reason="Scaled in")
        return real.describe_tasks(**kwargs)

    kit = dataclasses.replace(kit, ecs=_Ecs(real, describe_tasks=describe_tasks))

    service = only(tick(kit, time))

    assert service["status"] == "skipped"
    assert "is no longer running (STOPPED/STOPPED)" in service["reason"]
    assert list(chaos.stopped().values()) == ["Scaled in"]
    assert records(chaos, kit).last_kill(chaos.service_key) is None
    assert kit.ledger.read_lock(chaos.service_key) is None
    assert slack.bodies == []


def test_stop_task_denied_is_reported_and_forgotten(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()

    def stop_task(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "StopTask"
        )

    kit = dataclasses.replace(kit, ecs=_Ecs(kit.ecs, stop_task=stop_task))

    result = tick(kit, time)

    service = only(result)
    assert result["status"] == "failed"
    assert service["status"] == "failed"
    assert "ECS refused to stop task" in service["reason"]
    assert "AccessDeniedException" in service["reason"]
    assert chaos.stopped() == {}
    # No kill happened, so none is remembered for the minimum gap; the lock is free.
    assert records(chaos, kit).last_kill(chaos.service_key) is None
    assert kit.ledger.read_lock(chaos.service_key) is None
    (text,) = slack.texts()
    assert text.startswith(":x: Chaos kill failed: site-chaos")
    assert metrics.metric_set["ActionsFailed"]["Value"] == [1.0]


def test_a_stop_task_without_an_answer_asks_ecs_before_deciding(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()
    real = kit.ecs

    def stop_task(**kwargs: Any) -> Any:
        real.stop_task(**kwargs)  # ECS did it, but the answer was lost
        raise ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com")

    kit = dataclasses.replace(kit, ecs=_Ecs(real, stop_task=stop_task))
    time.on_sleep = recover_after(chaos, 20)

    service = only(tick(kit, time))

    assert service["status"] == "recovered"
    assert service["recovery_seconds"] == 20
    assert list(chaos.stopped()) == [service["task"]]


def test_a_stop_task_without_an_answer_that_did_nothing_is_a_failed_kill(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")
    kit = chaos.kit()

    def stop_task(**_: Any) -> Any:
        raise ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com")

    kit = dataclasses.replace(kit, ecs=_Ecs(kit.ecs, stop_task=stop_task))

    service = only(tick(kit, time))

    assert service["status"] == "failed"
    assert "got no answer (ReadTimeoutError) and the task still runs" in service["reason"]
    assert chaos.stopped() == {}
    assert records(chaos, kit).last_kill(chaos.service_key) is None


def test_a_target_group_lookup_that_fails_refuses(chaos: ChaosWorld, time: FakeTime) -> None:
    chaos.set_leash("off")
    chaos.clients.elbv2.delete_target_group(TargetGroupArn=chaos.target_group)

    service = only(tick(chaos.kit(), time))

    assert service["status"] == "no-kill"
    assert refusals(service) == ["targets"]
    assert "cannot evaluate (target health of targetgroup/site-chaos/" in service["reason"]
    assert "TargetGroupNotFound" in service["reason"]


def test_a_service_list_that_cannot_be_read_fails_the_run_without_raising(
    chaos: ChaosWorld, time: FakeTime
) -> None:
    kit = chaos.kit(CLUSTER_NAME="no-such-cluster")

    result = tick(kit, time)

    assert result["status"] == "failed"
    assert (
        "cannot list the services of no-such-cluster (ClusterNotFoundException)" in result["reason"]
    )


# ---- the error budget --------------------------------------------------------------------

BUDGET_ON = {"CHAOS_MIN_BUDGET_PERCENT": "25", "SLO_LOAD_BALANCER": "app/site/0123456789abcdef"}


class FixedBudgets:
    """Stands in for :class:`chalicelib.slo.BudgetReader` (moto has no PR() statistic):
    answers with fixed shares left, and records what it was asked."""

    left: ClassVar[dict[str, float]] = {}
    asked: ClassVar[list[tuple[str, tuple[str, ...], datetime]]] = []

    def __init__(self, cloudwatch: Any, load_balancer: str) -> None:
        self.load_balancer = load_balancer

    def read(self, objectives: Any, now: datetime) -> tuple[Budget, ...]:
        FixedBudgets.asked.append(
            (self.load_balancer, tuple(o.describe() for o in objectives), now)
        )
        return tuple(Budget(o, left=FixedBudgets.left[o.name]) for o in objectives)


@pytest.fixture
def fixed_budgets(monkeypatch: pytest.MonkeyPatch) -> type[FixedBudgets]:
    monkeypatch.setattr("chalicelib.chaos.flow.BudgetReader", FixedBudgets)
    monkeypatch.setattr(FixedBudgets, "asked", [])
    monkeypatch.setattr(FixedBudgets, "left", {"availability": 0.62, "latency": 0.88})
    return FixedBudgets


def test_a_budget_cloudwatch_cannot_give_refuses_and_nothing_is_stopped(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub
) -> None:
    chaos.set_leash("off")

    service = only(tick(chaos.kit(**BUDGET_ON), time))  # moto holds no load balancer data

    assert service["status"] == "no-kill", service
    assert refusals(service) == ["budget"]
    assert (
        "FAIL budget: cannot evaluate (availability budget unknown: no RequestCount data over "
        "30 d); not killing"
    ) in service["verdicts"]
    assert chaos.stopped() == {}
    assert slack.bodies == []


def test_less_budget_left_than_the_minimum_refuses(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub, fixed_budgets: type[FixedBudgets]
) -> None:
    chaos.set_leash("off")
    fixed_budgets.left = {"availability": 0.62, "latency": 0.24}

    service = only(tick(chaos.kit(**BUDGET_ON, SLO_WINDOW_DAYS="28"), time))

    assert service["status"] == "no-kill", service
    assert refusals(service) == ["budget"]
    assert service["reason"] == (
        "budget: latency has 24.0% of its 28 d error budget left (99.9% target); chaos needs 25%"
    )
    assert chaos.stopped() == {}
    (asked,) = fixed_budgets.asked
    assert asked == (
        "app/site/0123456789abcdef",
        ("availability 99.9% over 28 d", "latency 99.9% within 0.3 s over 28 d"),
        WEDNESDAY_10AM,
    )


def test_exactly_the_minimum_left_lets_chaos_decide_to_kill(
    chaos: ChaosWorld, time: FakeTime, slack: SlackStub, fixed_budgets: type[FixedBudgets]
) -> None:
    fixed_budgets.left = {"availability": 0.25, "latency": 0.88}

    service = only(tick(chaos.kit(**BUDGET_ON), time))  # leashed: it only reports the kill

    assert service["status"] == "leashed", service
    assert (
        "PASS budget: error budget left: availability 25.0%, latency 88.0% (chaos needs 25%)"
        in service["verdicts"]
    )


def test_a_burn_rate_alert_in_alarm_refuses_by_name(
    chaos: ChaosWorld, time: FakeTime, fixed_budgets: type[FixedBudgets]
) -> None:
    chaos.set_leash("off")
    cloudwatch = chaos.clients.cloudwatch
    name = "spotops-test-slo-availability-fast-burn"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="RequestCount",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="burning")

    service = only(tick(chaos.kit(**BUDGET_ON), time))

    assert refusals(service) == ["alarms", "budget"]
    assert f"FAIL budget: burn-rate alert in ALARM: {name}" in service["verdicts"]
    assert chaos.stopped() == {}
