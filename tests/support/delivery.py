"""The delivery model's machinery: a simulated clock, a simulated ECS, Slack's rate limit,
and a timeline that delivers events late, twice and out of order to the real handlers.

Plain helpers (no fixtures), built on the ops world (``tests/support/ops_world.py``): one
moto world per stream, the handlers called in-process as Lambda would call them.

* :class:`SimClock` is the one clock of a stream: the ledger, the alarm and chaos flows,
  the Slack notifier's waits and the Slack stand-in all read it; nothing really waits.
* :class:`RateLimitedSlack` answers as Slack does past one message per second per webhook
  (429, ``Retry-After: 1``), and can be told to fail for a while (5xx, long 429s).
* :class:`Simulation` keeps a timeline of what *happens* (a push, an alarm change, ECS
  finishing a deployment) and what is *delivered* (the events about it, each at its own
  delay, maybe twice), runs them in time order, and records every production action
  (``UpdateService``, ``StopTask``) with the time, the job and the delivery that caused it.
* :class:`EcsEngine` is what moto lacks: every ``UpdateService`` that changes the task
  definition (or forces a new deployment) starts a new deployment with its own id, which
  rolls out for a while, then completes, or fails and is rolled back by the circuit breaker,
  and ECS emits the ``ECS Deployment State Change`` events a real service would.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.ledger import SafetyLedger
from chalicelib.slack import DeliveryResult, SlackMessage, SlackNotifier
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.ops_world import ACCOUNT, REGION, SITE_CONTAINER, World, make_kit
from tests.support.slack_stub import SlackStub

# Wednesday 2026-12-02 10:00 UTC: inside chaos's default window (mon-fri, 9-17).
START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC).timestamp()
HOUR = 3600
SIX_HOURS = 6 * HOUR


def iso(epoch: float) -> str:
    """EventBridge's ``time`` (whole seconds)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clock_time(epoch: float) -> str:
    """``+2h05m10s`` after :data:`START`, for readable failure messages."""
    seconds = round(epoch - START)
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"


class SimClock:
    """Epoch seconds that move only when the stream (or a wait inside a handler) says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)

    def reach(self, moment: float) -> None:
        """Move to ``moment`` unless the clock is already past it (time never goes back)."""
        with self._lock:
            self.now = max(self.now, moment)


# ---- Slack: one message per second per webhook --------------------------------------------


@dataclass(frozen=True)
class SlackTrouble:
    """Slack answers ``answer`` ("500", or ("429", "<seconds>")) from ``start`` to ``end``."""

    start: float
    end: float
    answer: Any


class RateLimitedSlack(SlackStub):
    """The webhook stand-in with Slack's limit: past one message per second it answers
    ``429`` with ``Retry-After: 1`` (Slack allows short bursts; this one does not, the
    strictest reading). Times are the stream's :class:`SimClock`.

    ``accepted`` holds the time of every message Slack took, ``limited`` every 429 it gave,
    ``requests`` every request's time and answer.
    """

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self.accepted: list[float] = []
        self.delivered: list[dict[str, Any]] = []
        self.limited: list[float] = []
        self.requests: list[tuple[float, str]] = []
        self.trouble: list[SlackTrouble] = []
        super().__init__()

    @property
    def default(self) -> Any:
        """The answer to the request being handled (the stub asks under its lock, once)."""
        now = self._clock()
        for trouble in self.trouble:
            if trouble.start <= now < trouble.end:
                self.requests.append((now, str(trouble.answer)))
                if isinstance(trouble.answer, tuple):
                    self.limited.append(now)
                return trouble.answer
        if self.accepted and now - self.accepted[-1] < 1.0:
            self.limited.append(now)
            self.requests.append((now, "429"))
            return ("429", str(max(1, math.ceil(1.0 - (now - self.accepted[-1])))))
        self.accepted.append(now)
        self.delivered.append(self.bodies[-1])
        self.requests.append((now, "200"))
        return "200"

    @default.setter
    def default(self, value: Any) -> None:  # SlackStub sets "200"; the limit decides instead
        return

    def titles(self) -> list[str]:
        return [_title(body) for body in self.delivered]


def _title(body: dict[str, Any]) -> str:
    blocks = body.get("blocks") or []
    if blocks and isinstance(blocks[0].get("text"), dict):
        return str(blocks[0]["text"].get("text", ""))
    return str(body.get("text", ""))


class RecordingNotifier:
    """The real notifier; every post's :class:`DeliveryResult` is kept (nothing may be lost:
    each message is delivered or dead-lettered)."""

    def __init__(self, real: SlackNotifier, log: list[tuple[str, str, DeliveryResult]]) -> None:
        self._real = real
        self._log = log

    def post(self, message: SlackMessage, *, job: str) -> DeliveryResult:
        result = self._real.post(message, job=job)
        self._log.append((job, _title({"blocks": message.blocks, "text": message.text}), result))
        return result


# ---- production actions -------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One event delivered to one function at ``at`` (the event itself happened at
    ``happened``): what the stream runs, and what an action is blamed on."""

    kind: str  # push, outcome, alarm, spot, placement, reconcile, capacity, chaos
    subject: str  # the tag, alarm name, task, deployment id...
    happened: float
    at: float
    run: Callable[[], dict[str, Any]] = field(compare=False, repr=False)

    def __str__(self) -> str:
        late = self.at - self.happened
        return (
            f"{self.kind} {self.subject} (happened {clock_time(self.happened)}, "
            f"delivered {clock_time(self.at)}, {late:.0f}s late)"
        )


@dataclass(frozen=True)
class Action:
    """One call that changed production."""

    at: float
    job: str
    operation: str  # update_service, stop_task
    request: dict[str, Any]
    cause: Delivery | None
    seen: Any = None  # what the simulation's witness saw at that moment (an alarm's state)

    def __str__(self) -> str:
        keys = {k: v for k, v in self.request.items() if k not in ("cluster", "service")}
        return f"{clock_time(self.at)} {self.job} {self.operation} {keys} <- {self.cause}"


class RecordingEcs:
    """The moto ECS client of one job: every change goes through the :class:`EcsEngine`
    and is recorded."""

    def __init__(self, real: Any, sim: Simulation, job: str) -> None:
        self._real = real
        self._sim = sim
        self._job = job

    def update_service(self, **request: Any) -> Any:
        before = self._sim.engine.service()
        response = self._real.update_service(**request)
        self._sim.record(self._job, "update_service", request)
        self._sim.engine.updated(request, before)
        return {**response, "service": self._sim.engine.described()}

    def stop_task(self, **request: Any) -> Any:
        response = self._real.stop_task(**request)
        self._sim.record(self._job, "stop_task", request)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# ---- ECS: deployments that roll out, complete or fail, and say so --------------------------


@dataclass(frozen=True)
class Fate:
    """What ECS does with a deployment of an image: completes it after ``rollout`` seconds,
    or fails it (the circuit breaker) and rolls back; its events are delivered after each
    of ``delays`` (two delays: delivered twice). ``notice_id``: whether ECS's rollback
    notice carries the failed deployment's id (``ours``) or the rollback's own."""

    ok: bool = True
    rollout: int = 300
    delays: tuple[int, ...] = (0,)
    notice_id: str = "rollback"


@dataclass
class Deployment:
    deployment_id: str
    task_definition: str
    previous: str
    digest: str | None
    job: str
    started: float
    fate: Fate
    status: str = "IN_PROGRESS"  # COMPLETED, FAILED, SUPERSEDED
    rolled_back_to: str | None = None
    ended: float | None = None


class EcsEngine:
    """Deployments as ECS runs them, on top of moto's service (which keeps one deployment
    for ever): ids, rollout, completion or failure and rollback, and the events."""

    def __init__(self, sim: Simulation, world: World, service: str) -> None:
        self.sim = sim
        self.world = world
        self.service_name = service
        self.deployments: list[Deployment] = []
        self._ids = itertools.count(1)
        self.fates: dict[str, Fate] = {}  # digest -> fate; anything else completes

    def _moto(self) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][REGION].services[f"{self.world.cluster}:{self.service_name}"]

    def service(self) -> dict[str, Any]:
        moto = self._moto()
        return {"taskDefinition": moto.task_definition, "deployments": list(moto.deployments)}

    def described(self) -> dict[str, Any]:
        response = self.world.clients.ecs.describe_services(
            cluster=self.world.cluster, services=[self.service_name]
        )
        return dict(response["services"][0])

    def image_of(self, task_definition: str) -> str:
        found = self.world.clients.ecs.describe_task_definition(taskDefinition=task_definition)
        for container in found["taskDefinition"]["containerDefinitions"]:
            if container["name"] == SITE_CONTAINER:
                return str(container["image"])
        return ""

    def digest_of(self, task_definition: str) -> str | None:
        image = self.image_of(task_definition)
        return image.rsplit("@", 1)[1] if "@" in image else None

    def running_digest(self) -> str | None:
        return self.digest_of(self._moto().task_definition)

    def updated(self, request: dict[str, Any], before: dict[str, Any]) -> None:
        """After moto's ``UpdateService``: a new deployment when the task definition changed
        or one was forced (a desired count or strategy alone starts none here)."""
        moto = self._moto()
        changed = moto.task_definition != before["taskDefinition"]
        if not (changed or request.get("forceNewDeployment")):
            return
        for running in self.deployments:
            if running.status == "IN_PROGRESS":
                running.status = "SUPERSEDED"
        digest = self.digest_of(moto.task_definition)
        deployment = Deployment(
            deployment_id=f"ecs-svc/{next(self._ids):04d}",
            task_definition=moto.task_definition,
            previous=before["taskDefinition"],
            digest=digest,
            job=self.sim.current_job,
            started=self.sim.clock(),
            fate=self.fates.get(digest or "", Fate()),
        )
        self.deployments.append(deployment)
        primary = dict(moto.deployments[0])
        moto.deployments = [
            {
                **primary,
                "id": deployment.deployment_id,
                "status": "PRIMARY",
                "taskDefinition": deployment.task_definition,
                "rolloutState": "IN_PROGRESS",
            },
            {**primary, "status": "ACTIVE"},
        ]
        self.sim.happen(
            self.sim.clock() + deployment.fate.rollout,
            f"ECS finishes {deployment.deployment_id}",
            lambda: self._finish(deployment),
        )

    def _finish(self, deployment: Deployment) -> None:
        if deployment.status != "IN_PROGRESS":
            return  # replaced by a later UpdateService
        moto = self._moto()
        now = self.sim.clock()
        deployment.ended = now
        primary = dict(moto.deployments[0])
        if deployment.fate.ok:
            deployment.status = "COMPLETED"
            moto.deployments = [{**primary, "rolloutState": "COMPLETED"}]
            self._emit("Completed", deployment.deployment_id, deployment.fate)
            return
        # The circuit breaker: FAILED, then a rollback deployment of the previous revision.
        deployment.status = "FAILED"
        deployment.rolled_back_to = deployment.previous
        rollback = f"ecs-svc/{next(self._ids):04d}-rollback"
        moto.task_definition = deployment.previous
        moto.deployments = [
            {
                **primary,
                "id": rollback,
                "taskDefinition": deployment.previous,
                "rolloutState": "IN_PROGRESS",
            },
            {**primary, "status": "ACTIVE", "rolloutState": "FAILED"},
        ]
        notice = deployment.deployment_id if deployment.fate.notice_id == "ours" else rollback
        self._emit("Failed", deployment.deployment_id, deployment.fate)
        self._emit("Rollback", notice, deployment.fate)

        def rolled_back() -> None:
            if self._moto().deployments[0]["id"] != rollback:
                return
            self._moto().deployments = [
                {**self._moto().deployments[0], "rolloutState": "COMPLETED"}
            ]
            self._emit("Completed", rollback, deployment.fate)

        self.sim.happen(now + 120, f"ECS rolled back to {deployment.previous}", rolled_back)

    def _emit(self, kind: str, deployment_id: str, fate: Fate) -> None:
        from chalicelib.events import EcsDeploymentStateChangeEvent
        from chalicelib.redeploy.outcome import handle_deployment_state

        now = self.sim.clock()
        event = load_event(f"ecsDeploymentStateChange{kind}")
        event["id"] = f"ecs-{kind.lower()}-{deployment_id}"
        event["time"] = iso(now)
        event["resources"] = [self.described()["serviceArn"]]
        event["detail"]["deploymentId"] = deployment_id
        event["detail"]["updatedAt"] = iso(now)
        kit = self.sim.kit("outcome")
        for delay in fate.delays:
            self.sim.deliver(
                "outcome",
                f"{kind} {deployment_id}",
                now,
                now + delay,
                functools.partial(
                    handle_deployment_state, EcsDeploymentStateChangeEvent(event), kit
                ),
            )

    def failed(self) -> list[Deployment]:
        return [d for d in self.deployments if d.status == "FAILED"]


# ---- the timeline -------------------------------------------------------------------------


# The function each kind of delivery goes to.
FUNCTIONS = {
    "push": "redeploy",
    "reconcile": "redeploy",
    "outcome": "outcome",
    "alarm": "remediation",
    "spot": "remediation",
    "placement": "remediation",
    "capacity": "remediation",
    "chaos": "chaos",
}


class Simulation:
    """One stream against one world: happenings and deliveries in time order.

    Handlers that raise are retried as Lambda retries an asynchronous event (twice, one and
    two minutes later); every result is kept in ``results``.
    """

    def __init__(
        self,
        world: World,
        slack: RateLimitedSlack,
        clock: SimClock,
        *,
        service: str | None = None,
        env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.world = world
        self.slack = slack
        self.clock = clock
        self.engine = EcsEngine(self, world, service or world.service)
        self.actions: list[Action] = []
        self.posts: list[tuple[str, str, DeliveryResult]] = []
        self.results: list[tuple[Delivery, dict[str, Any] | str]] = []
        self.current: Delivery | None = None
        self.current_job = ""
        self._queue: list[tuple[float, int, str, Callable[[], Any]]] = []
        self._seq = itertools.count()
        self._env = env or {}
        self._kits: dict[str, Toolkit] = {}
        # Called at each action with its cause: what the world looked like then.
        self.witness: Callable[[Delivery | None], Any] | None = None

    # -- kits: one warm container per function --

    def kit(self, job: str) -> Toolkit:
        """The toolkit of ``job``'s container: the stream's clock in the ledger and Slack,
        ECS recorded, every post kept."""
        if job not in self._kits:
            overrides = {**self._env.get("all", {}), **self._env.get(job, {})}
            kit = make_kit(self.world, **overrides)
            notifier = SlackNotifier(
                webhook_url=kit.controls.webhook_url,  # type: ignore[attr-defined]
                sqs=self.world.clients.sqs,
                dlq_url=self.world.dlq_url,
                timeout=kit.settings.slack_timeout_seconds,
                max_attempts=kit.settings.slack_max_attempts,
                max_total_seconds=kit.settings.slack_max_total_seconds,
                backoff_base_seconds=kit.settings.slack_backoff_base_seconds,
                sleep=self.clock.sleep,
                clock=self.clock,
            )
            self._kits[job] = dataclasses.replace(
                kit,
                ecs=RecordingEcs(kit.ecs, self, job),
                ledger=SafetyLedger(
                    kit.dynamodb,
                    self.world.ledger_table,
                    kit.settings.history_ttl_days,
                    clock=self.clock,
                ),
                notifier=RecordingNotifier(notifier, self.posts),
            )
        return self._kits[job]

    def use_context(self, job: str, context: Any) -> Toolkit:
        """Give ``job``'s kit another Lambda context (the chaos function has 900 s, and its
        time-left check reads them); returns the kit."""
        self._kits[job] = self.kit(job).with_context(context)
        return self._kits[job]

    # -- the timeline --

    def happen(self, at: float, label: str, change: Callable[[], Any]) -> None:
        """Something happens in the world at ``at`` (before deliveries at the same time)."""
        heapq.heappush(self._queue, (at, next(self._seq), label, change))

    def deliver(
        self,
        kind: str,
        subject: str,
        happened: float,
        at: float,
        run: Callable[[], dict[str, Any]],
        *,
        job: str | None = None,
    ) -> None:
        """Deliver an event that happened at ``happened`` to its function at ``at``."""
        delivery = Delivery(kind, subject, happened, at, run)
        function = job or FUNCTIONS[kind]
        heapq.heappush(
            self._queue,
            (at, next(self._seq), "deliver", lambda: self._invoke(delivery, function)),
        )

    def _invoke(self, delivery: Delivery, job: str, attempt: int = 1) -> None:
        self.current, self.current_job = delivery, job
        try:
            result: dict[str, Any] | str = delivery.run()
        except Exception as exc:  # Lambda retries a failed async invocation twice
            result = f"{type(exc).__name__}: {exc}"
            if attempt < 3:
                retry = self.clock() + 60 * attempt
                heapq.heappush(
                    self._queue,
                    (
                        retry,
                        next(self._seq),
                        "retry",
                        lambda: self._invoke(delivery, job, attempt + 1),
                    ),
                )
        finally:
            self.current, self.current_job = None, ""
        self.results.append((delivery, result))

    def record(self, job: str, operation: str, request: dict[str, Any]) -> None:
        seen = self.witness(self.current) if self.witness is not None else None
        self.actions.append(Action(self.clock(), job, operation, dict(request), self.current, seen))

    def run(self, until: float | None = None) -> None:
        """Run everything scheduled (up to ``until``), in time order."""
        while self._queue and (until is None or self._queue[0][0] <= until):
            at, _, _, step = heapq.heappop(self._queue)
            self.clock.reach(at)
            step()
        if until is not None:
            self.clock.reach(until)

    def idle(self) -> bool:
        return not self._queue

    def last_delivery(self) -> float:
        """When the last delivery scheduled so far is due."""
        return max((at for at, _, label, _ in self._queue if label == "deliver"), default=0.0)

    # -- what happened --

    def actions_of(self, job: str, operation: str = "update_service") -> list[Action]:
        return [a for a in self.actions if a.job == job and a.operation == operation]

    def lost_posts(self) -> list[tuple[str, str, DeliveryResult]]:
        return [p for p in self.posts if not p[2].delivered and not p[2].dead_lettered]

    def story(self, limit: int = 80) -> str:
        """The deliveries and their results, then the actions: for a failure message."""
        lines = [f"{d} -> {_short(r)}" for d, r in self.results[-limit:]]
        lines += ["actions:"] + [str(a) for a in self.actions]
        return "\n".join(lines)


def _short(result: dict[str, Any] | str) -> str:
    if isinstance(result, str):
        return result
    return f"{result.get('status')}: {str(result.get('reason', ''))[:140]}"


def hourly_counts(moments: Iterable[float]) -> dict[str, int]:
    """How many of ``moments`` fall in each UTC hour (budgets are per UTC hour)."""
    counts: dict[str, int] = {}
    for moment in moments:
        hour = datetime.fromtimestamp(moment, tz=UTC).strftime("%Y%m%d%H")
        counts[hour] = counts.get(hour, 0) + 1
    return counts


def gaps(moments: list[float]) -> list[float]:
    """Seconds between consecutive ``moments`` (sorted)."""
    ordered = sorted(moments)
    return [b - a for a, b in itertools.pairwise(ordered)]
