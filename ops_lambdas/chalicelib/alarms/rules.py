"""The alarm function's decisions: pure functions over frozen facts, each with a typed answer.

Nothing here calls AWS, reads the clock or posts to Slack: the flow
(:mod:`chalicelib.alarms.flow`) gathers the facts (:mod:`chalicelib.alarms.facts`),
asks these functions and acts on the answer, so every rule is tested alone
(``tests/unit/ops/alarms/test_rules.py``). Standard library only (and the runbook
names of :mod:`chalicelib.runbooks` and the job statuses of :mod:`chalicelib.results`).

What lives here:

* **the remediation policy, declared as data** (:data:`POLICY`): which alarm (or event)
  leads to which action, its cooldown, its severity and the action's runbook;
* **may we act** (:func:`decide`): every reason not to act, in a fixed order, and the plan
  when nothing stops it;
* **the plans** (:func:`plan_force_new_deployment`, :func:`plan_scale_out`,
  :func:`plan_rollback`, :func:`plan_capacity_shift`, :func:`plan_capacity_return`) and
  :func:`plan_took` (after a lost answer: did ECS take it?);
* **flapping** (:func:`notice_decision`, :func:`next_history`): an alarm in and out of
  ALARM several times within a window is summarised, not posted every time;
* **Spot** (:func:`interruptions_decision`, :func:`return_decision`): repeated
  interruptions shift the service to on-demand FARGATE, a quiet period brings it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib import runbooks
from chalicelib.results import Status

if TYPE_CHECKING:  # the ledger's record type only: nothing of the ledger runs here
    from chalicelib.ledger.records import Lock

# ---- the policy, as data -------------------------------------------------------------------


class Severity(StrEnum):
    """Which Slack channel a message goes to (``SLACK_WEBHOOK_SECRETS_BY_SEVERITY``)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Action(StrEnum):
    """What the toolkit may do about an alarm or event."""

    NOTIFY = "notify"  # the alert and its runbook only: a person decides
    FORCE_NEW_DEPLOYMENT = "force-new-deployment"
    SCALE_OUT = "scale-out"
    ROLLBACK = "rollback"
    CAPACITY_SHIFT = "capacity-shift"
    CAPACITY_RETURN = "capacity-return"


# Runbook of each automated action (infra/runbook_check.py checks the names in runbooks.py).
ACTION_RUNBOOKS = {
    Action.FORCE_NEW_DEPLOYMENT: runbooks.FORCE_NEW_DEPLOYMENT,
    Action.SCALE_OUT: runbooks.SCALE_OUT,
    Action.ROLLBACK: runbooks.ROLLBACK,
    Action.CAPACITY_SHIFT: runbooks.CAPACITY_SHIFT,
    Action.CAPACITY_RETURN: runbooks.CAPACITY_SHIFT,
}

# Triggers that are events, not alarms.
TRIGGER_PLACEMENT_FAILURE = "spot-placement-failure"
TRIGGER_SPOT_INTERRUPTIONS = "spot-interruptions"
TRIGGER_SPOT_QUIET = "spot-quiet"


@dataclass(frozen=True)
class Rule:
    """One line of the policy: ``trigger`` (an alarm name without ``<app>-<stage>-``, or an
    event trigger) -> ``action``, at most once per ``cooldown_seconds`` per trigger."""

    trigger: str
    action: Action
    cooldown_seconds: int
    severity: Severity
    why: str
    # Acts while a deployment is in progress too (every other rule waits for it to end).
    during_deployment: bool = False

    @property
    def acts(self) -> bool:
        return self.action is not Action.NOTIFY

    @property
    def runbook(self) -> str | None:
        """The action's runbook (``None`` for :attr:`Action.NOTIFY`: the alarm's own)."""
        return ACTION_RUNBOOKS.get(self.action)


POLICY: tuple[Rule, ...] = (
    Rule(
        "unhealthy-hosts",
        Action.FORCE_NEW_DEPLOYMENT,
        1800,
        Severity.CRITICAL,
        "a task that fails its health check is replaced by a fresh one",
    ),
    Rule(
        "cpu-high",
        Action.SCALE_OUT,
        900,
        Severity.WARNING,
        "more tasks, within the autoscaling maximum",
    ),
    Rule(
        "memory-high",
        Action.SCALE_OUT,
        900,
        Severity.WARNING,
        "more tasks, within the autoscaling maximum",
    ),
    Rule(
        "target-5xx",
        Action.ROLLBACK,
        3600,
        Severity.CRITICAL,
        "only when the toolkit's last deployment completed within the rollback window",
    ),
    Rule("alb-5xx", Action.NOTIFY, 0, Severity.CRITICAL, "no safe automatic fix"),
    Rule(
        "running-tasks-below-desired",
        Action.NOTIFY,
        0,
        Severity.CRITICAL,
        "Spot shortages are handled by the placement-failure rule",
    ),
    Rule("target-response-time-p99", Action.NOTIFY, 0, Severity.WARNING, "a person decides"),
    Rule("ephemeral-storage-high", Action.NOTIFY, 0, Severity.WARNING, "a person decides"),
    Rule("network-anomaly", Action.NOTIFY, 0, Severity.WARNING, "a person decides"),
    # The error-budget alerts (site.yaml's composite alarms; their -long/-short windows have
    # no actions and never reach the function). A burn has many causes, none with a safe
    # automatic fix; the fast burn's 5-minute window already rolls a deployment back in ECS.
    *(
        Rule(
            f"slo-{objective}-{alert}",
            Action.NOTIFY,
            0,
            Severity.WARNING if alert == "ticket" else Severity.CRITICAL,
            "a burn has no one safe fix; a person decides",
        )
        for objective in ("availability", "latency")
        for alert in ("fast-burn", "slow-burn", "ticket")
    ),
    Rule("slack-dead-letters", Action.NOTIFY, 0, Severity.WARNING, "the queue keeps them"),
    Rule("event-dead-letters", Action.NOTIFY, 0, Severity.WARNING, "the queue keeps them"),
    Rule(
        TRIGGER_PLACEMENT_FAILURE,
        Action.CAPACITY_SHIFT,
        1800,
        Severity.CRITICAL,
        "ECS Service Action SERVICE_TASK_PLACEMENT_FAILURE on FARGATE_SPOT",
        # A Spot shortage stalls a deployment: unplaced tasks never trip the circuit breaker
        # (and CANARY/LINEAR have none), so the shift is what lets the deployment finish.
        during_deployment=True,
    ),
    Rule(
        TRIGGER_SPOT_INTERRUPTIONS,
        Action.CAPACITY_SHIFT,
        1800,
        Severity.WARNING,
        "SPOT_INTERRUPTION_THRESHOLD interruptions within SPOT_INTERRUPTION_WINDOW_SECONDS",
    ),
    Rule(
        TRIGGER_SPOT_QUIET,
        Action.CAPACITY_RETURN,
        0,
        Severity.INFO,
        "no placement failure or interruption for CAPACITY_RETURN_AFTER_SECONDS",
    ),
)


def rule_for(trigger: str) -> Rule | None:
    """The policy line of ``trigger`` (an alarm suffix or an event trigger), or ``None``."""
    return next((rule for rule in POLICY if rule.trigger == trigger), None)


def rule_for_alarm(alarm_name: str, prefix: str) -> Rule | None:
    """The policy line of one of this stage's alarms (``<app>-<stage>-<trigger>``).

    Example
    -------
    >>> rule_for_alarm("spotops-dev-cpu-high", "spotops-dev-").action.value
    'scale-out'
    >>> rule_for_alarm("someone-elses-cpu-high", "spotops-dev-") is None
    True
    """
    if not alarm_name.startswith(prefix):
        return None
    return rule_for(alarm_name[len(prefix) :])


def cooldown_key(rule: Rule) -> str:
    """The ledger cooldown of one policy line (per alarm or event trigger)."""
    return f"remediation:{rule.trigger}"


# ---- plans -------------------------------------------------------------------------------


FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"


@dataclass(frozen=True)
class StrategyItem:
    """One entry of a service's capacity provider strategy."""

    provider: str
    weight: int = 0
    base: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"capacityProvider": self.provider, "weight": self.weight, "base": self.base}

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> StrategyItem:
        return cls(
            str(raw.get("capacityProvider", "")),
            int(raw.get("weight") or 0),
            int(raw.get("base") or 0),
        )


def strategy_of(raw: Sequence[Mapping[str, Any]] | None) -> tuple[StrategyItem, ...]:
    return tuple(StrategyItem.parse(item) for item in raw or ())


def describe_strategy(strategy: Sequence[StrategyItem]) -> str:
    """``FARGATE base 0 weight 1, FARGATE_SPOT weight 3``."""
    if not strategy:
        return "none (launch type)"
    parts = []
    for item in strategy:
        base = f" base {item.base}" if item.base else ""
        parts.append(f"{item.provider}{base} weight {item.weight}")
    return ", ".join(parts)


def uses_spot(strategy: Sequence[StrategyItem]) -> bool:
    return any(i.provider == FARGATE_SPOT and (i.weight > 0 or i.base > 0) for i in strategy)


@dataclass(frozen=True)
class ServiceState:
    """What the plans need of ``DescribeServices``."""

    name: str
    desired_count: int
    task_definition: str
    strategy: tuple[StrategyItem, ...] = ()
    launch_type: str = ""
    primary_deployment: str = ""


@dataclass(frozen=True)
class ScalableTarget:
    """The service's Application Auto Scaling target (``DescribeScalableTargets``)."""

    min_capacity: int
    max_capacity: int


@dataclass(frozen=True)
class Plan:
    """What the action would change: ``UpdateService`` fields and one line for humans."""

    action: Action
    summary: str
    update: Mapping[str, Any] = field(default_factory=dict)
    # For a rollback: the deployment the rollback undoes (its ledger record is settled).
    undoes_deployment: str = ""
    # For a shift: the strategy to come back to.
    original_strategy: tuple[StrategyItem, ...] = ()


class Refusal(StrEnum):
    """Why nothing was done; the follow-up says so exactly (each one a :class:`Status`)."""

    NO_POLICY = "no-policy"
    FOREIGN = "foreign"
    SUPPRESSED = "suppressed"
    KILL_SWITCH = "kill-switch"
    STALE = "stale"  # older than the last change recorded for the alarm (delivered late)
    MUTED = "actions-disabled"  # on-call disabled the alarm's actions (ActionsEnabled false)
    ALARM_OVER = "alarm-over"  # read again before acting: no longer in ALARM
    NOT_APPLICABLE = "not-applicable"
    # The return to Spot found the service on its original strategy: put back by hand.
    ALREADY_RETURNED = "already-returned"
    DEPLOYMENT = "deployment-in-progress"
    COOLDOWN = "cooldown"
    BUDGET = "budget"
    DRY_RUN = "dry-run"
    UNREADABLE = "unreadable"
    LOCKED = "locked"


# The job's status for each refusal (its JSON value is the refusal's).
REFUSAL_STATUS: Mapping[Refusal, Status] = {
    Refusal.NO_POLICY: Status.NO_POLICY,
    Refusal.FOREIGN: Status.FOREIGN,
    Refusal.SUPPRESSED: Status.SUPPRESSED,
    Refusal.KILL_SWITCH: Status.KILL_SWITCH,
    Refusal.STALE: Status.STALE,
    Refusal.MUTED: Status.ACTIONS_DISABLED,
    Refusal.ALARM_OVER: Status.ALARM_OVER,
    Refusal.NOT_APPLICABLE: Status.NOT_APPLICABLE,
    Refusal.ALREADY_RETURNED: Status.ALREADY_RETURNED,
    Refusal.DEPLOYMENT: Status.DEPLOYMENT_IN_PROGRESS,
    Refusal.COOLDOWN: Status.COOLDOWN,
    Refusal.BUDGET: Status.BUDGET,
    Refusal.DRY_RUN: Status.DRY_RUN,
    Refusal.UNREADABLE: Status.UNREADABLE,
    Refusal.LOCKED: Status.LOCKED,
}


@dataclass(frozen=True)
class NotApplicable:
    """Why the action cannot do anything useful now (at the maximum, nothing to roll back);
    ``refusal`` types the case a caller acts on (the return finding Spot already back)."""

    reason: str
    refusal: Refusal = Refusal.NOT_APPLICABLE


PlanAnswer = Plan | NotApplicable


def plan_force_new_deployment(service: ServiceState) -> PlanAnswer:
    """Replace every task (rolling, within the service's deployment configuration).

    Example
    -------
    >>> plan_force_new_deployment(ServiceState("site", 0, "td:1")).reason
    'site runs no tasks (desired count 0): nothing to replace'
    """
    if service.desired_count <= 0:
        return NotApplicable(f"{service.name} runs no tasks (desired count 0): nothing to replace")
    return Plan(
        Action.FORCE_NEW_DEPLOYMENT,
        f"force a new deployment of {service.name}: its {service.desired_count} task(s) are "
        "replaced one by one, the unhealthy one included",
        {"forceNewDeployment": True},
    )


def plan_scale_out(
    service: ServiceState, target: ScalableTarget | None, percent: int
) -> PlanAnswer:
    """Add ``percent`` % of the tasks (at least one), never past the autoscaling maximum.

    Example
    -------
    >>> plan_scale_out(ServiceState("site", 2, "td:1"), ScalableTarget(2, 6), 50).update
    {'desiredCount': 3}
    >>> plan_scale_out(ServiceState("site", 6, "td:1"), ScalableTarget(2, 6), 50).reason
    'site already runs 6 tasks, the autoscaling maximum (MaxTasks): raise MaxTasks by hand'
    """
    if target is None:
        return NotApplicable(
            f"autoscaling is off for {service.name} (no scalable target), so there is no "
            "maximum to stay within: the toolkit does not scale it"
        )
    if service.desired_count >= target.max_capacity:
        return NotApplicable(
            f"{service.name} already runs {service.desired_count} tasks, the autoscaling "
            "maximum (MaxTasks): raise MaxTasks by hand"
        )
    step = max(1, math.ceil(service.desired_count * percent / 100))
    new = min(target.max_capacity, service.desired_count + step)
    return Plan(
        Action.SCALE_OUT,
        f"scale {service.name} out from {service.desired_count} to {new} tasks (autoscaling "
        f"maximum {target.max_capacity})",
        {"desiredCount": new},
    )


@dataclass(frozen=True)
class DeploymentFacts:
    """The toolkit's latest deployment (the ledger's ``DEPLOYMENT#<svc>`` / ``LATEST``)."""

    deployment_id: str
    label: str
    status: str
    task_definition: str
    previous_task_definition: str
    updated_at: float


def plan_rollback(
    service: ServiceState,
    deployment: DeploymentFacts | None,
    *,
    alarm_at: float,
    window_seconds: int,
    previous_is_placeholder: bool,
) -> PlanAnswer:
    """Go back to the revision the toolkit's last deployment replaced, only when the 5xx
    started after that deployment completed, and at most ``window_seconds`` after
    (``0 <= alarm_at - completed <= window_seconds``). A 5xx that began before the
    deployment completed was not caused by it: rolling back would undo a good deployment.

    Example
    -------
    >>> service = ServiceState("site", 2, "td:8")
    >>> done = DeploymentFacts("ecs-svc/1", "v2 (sha256:ab)", "COMPLETED", "td:8", "td:7", 1000)
    >>> plan_rollback(service, done, alarm_at=1600, window_seconds=1800,
    ...               previous_is_placeholder=False).update
    {'taskDefinition': 'td:7'}
    """
    if deployment is None:
        return NotApplicable(
            "the toolkit has no deployment on record: a 5xx not caused by one of its "
            "deployments is for a person to diagnose"
        )
    if deployment.status != "COMPLETED":
        return NotApplicable(
            f"the last deployment ({deployment.label}) is {deployment.status}, not COMPLETED: "
            "ECS's circuit breaker and deployment alarms handle a deployment that fails"
        )
    since = alarm_at - deployment.updated_at
    minutes = window_seconds // 60
    if since < 0:
        return NotApplicable(
            f"the 5xx started {_duration(-since)} before the last deployment "
            f"({deployment.label}) completed: not caused by it, so it is not rolled back"
        )
    if since > window_seconds:
        return NotApplicable(
            f"the 5xx started {since / 60:.0f} min after the last deployment ({deployment.label})"
            f", more than the {minutes} min rollback window: probably not the deployment"
        )
    if service.task_definition != deployment.task_definition:
        return NotApplicable(
            f"{service.name} no longer runs the deployed revision "
            f"{_revision(deployment.task_definition)} (it runs "
            f"{_revision(service.task_definition)}): someone already changed it"
        )
    if not deployment.previous_task_definition:
        return NotApplicable("the deployment recorded no previous revision to go back to")
    if previous_is_placeholder:
        return NotApplicable(
            "the previous revision runs the :bootstrap placeholder (this was the first "
            "deploy): there is no earlier image to go back to"
        )
    previous = deployment.previous_task_definition
    return Plan(
        Action.ROLLBACK,
        f"roll {service.name} back from {_revision(deployment.task_definition)} "
        f"({deployment.label}, deployed {since / 60:.0f} min before the 5xx) to "
        f"{_revision(previous)}",
        {"taskDefinition": previous},
        undoes_deployment=deployment.deployment_id,
    )


def _revision(task_definition: str) -> str:
    return task_definition.rsplit("/", 1)[-1] or "?"


def plan_capacity_shift(service: ServiceState) -> PlanAnswer:
    """Move every task to on-demand FARGATE (``FARGATE_SPOT`` has no capacity), keeping the
    strategy it had so :func:`plan_capacity_return` can restore it.

    Example
    -------
    >>> spot = (StrategyItem("FARGATE", 0, 0), StrategyItem("FARGATE_SPOT", 1, 0))
    >>> plan = plan_capacity_shift(ServiceState("site", 2, "td:1", spot))
    >>> plan.update["capacityProviderStrategy"]
    [{'capacityProvider': 'FARGATE', 'weight': 1, 'base': 0}]
    """
    if not service.strategy:
        return NotApplicable(
            f"{service.name} has no capacity provider strategy (launch type "
            f"{service.launch_type or 'default'}): it does not run on Fargate Spot"
        )
    if not uses_spot(service.strategy):
        return NotApplicable(
            f"{service.name} already runs on on-demand FARGATE only "
            f"({describe_strategy(service.strategy)})"
        )
    base = max((i.base for i in service.strategy if i.provider == FARGATE), default=0)
    shifted = (StrategyItem(FARGATE, 1, base),)
    return Plan(
        Action.CAPACITY_SHIFT,
        f"shift {service.name} to on-demand FARGATE ({describe_strategy(shifted)}; it was "
        f"{describe_strategy(service.strategy)}), replacing its tasks",
        {
            "capacityProviderStrategy": [i.as_dict() for i in shifted],
            "forceNewDeployment": True,
        },
        original_strategy=service.strategy,
    )


def plan_capacity_return(service: ServiceState, original: Sequence[StrategyItem]) -> PlanAnswer:
    """Put back the strategy the shift replaced (Spot places again, or is worth trying)."""
    if not original:
        return NotApplicable("the shift recorded no strategy to return to")
    if tuple(service.strategy) == tuple(original):
        return NotApplicable(
            f"{service.name} already runs its original strategy ({describe_strategy(original)})",
            Refusal.ALREADY_RETURNED,
        )
    return Plan(
        Action.CAPACITY_RETURN,
        f"return {service.name} to its capacity provider strategy "
        f"({describe_strategy(original)}), replacing its tasks",
        {
            "capacityProviderStrategy": [i.as_dict() for i in original],
            "forceNewDeployment": True,
        },
        original_strategy=tuple(original),
    )


def plan_took(plan: Plan, before: ServiceState, after: ServiceState | None) -> bool:
    """After a lost answer on ``UpdateService``: did ECS take ``plan``?

    Example
    -------
    >>> before = ServiceState("site", 2, "td:1", primary_deployment="ecs-svc/1")
    >>> after = ServiceState("site", 3, "td:1", primary_deployment="ecs-svc/1")
    >>> plan_took(Plan(Action.SCALE_OUT, "", {"desiredCount": 3}), before, after)
    True
    """
    if after is None:
        return False
    update = plan.update
    if "taskDefinition" in update:
        return after.task_definition == update["taskDefinition"]
    if "capacityProviderStrategy" in update:
        wanted = strategy_of(update["capacityProviderStrategy"])
        return tuple(after.strategy) == wanted
    if "desiredCount" in update:
        return after.desired_count == update["desiredCount"]
    if update.get("forceNewDeployment"):
        return bool(after.primary_deployment) and (
            after.primary_deployment != before.primary_deployment
        )
    return False


# ---- may we act ------------------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    """A run-time control as read now (kill switch, dry run): on or off, and why."""

    on: bool
    reason: str


@dataclass(frozen=True)
class AlarmNow:
    """The alarm as CloudWatch holds it now (``DescribeAlarms``), read again before acting:
    the event that called for the action may be hours late."""

    state: str
    since: float | None  # when it went into that state (StateTransitionedTimestamp)
    actions_enabled: bool = True


@dataclass(frozen=True)
class RemediationFacts:
    """Everything :func:`decide` needs, gathered before anything changes.

    ``plan`` is ``None`` when the flow stopped gathering early (no policy, a foreign,
    stale or suppressed alarm, the kill switch); ``unreadable`` says a fact could not be
    read; ``stale`` says why the change is older than the alarm's last recorded one;
    ``alarm_now`` is the alarm read again (``None`` for events that are not alarms).
    """

    rule: Rule | None
    kill_switch: Switch
    dry_run: Switch
    foreign: str | None = None
    stale: str | None = None
    suppressed: str | None = None
    unreadable: str | None = None
    alarm_now: AlarmNow | None = None
    plan: PlanAnswer | None = None
    deployment: str | None = None  # why a deployment is in progress, else None
    cooldown_remaining: int = 0
    budget_used: int = 0
    budget_max: int = 3
    service: str = ""


@dataclass(frozen=True)
class Decision:
    """Act with ``plan``, or not, with the :class:`Refusal` and the exact reason."""

    act: bool
    reason: str
    refusal: Refusal | None = None
    plan: Plan | None = None

    @property
    def escalate(self) -> bool:
        """The budget is spent: a person has to take over."""
        return self.refusal is Refusal.BUDGET


def decide(facts: RemediationFacts) -> Decision:
    """Whether to act, checked in this order (the first that stops it is the answer):
    foreign alarm, a change older than the alarm's last recorded one (stale), suppressed
    composite, no policy, kill switch, unreadable facts, the alarm's actions disabled
    (muted) or the alarm no longer in ALARM when read again, nothing applicable, deployment
    in progress (unless the rule acts during one, :attr:`Rule.during_deployment`: the plan
    then says so), cooldown, hourly budget, dry run (a foreign alarm is refused before the
    policy is even looked up).

    Dry run comes last so it reports the plan that would run, within every limit.

    Example
    -------
    >>> off = Switch(False, "off")
    >>> decide(RemediationFacts(rule=None, kill_switch=off, dry_run=off)).refusal.value
    'no-policy'
    """
    rule = facts.rule
    if facts.foreign:
        return Decision(False, f"not acting: {facts.foreign}", Refusal.FOREIGN)
    if facts.stale:
        return Decision(False, f"not acting: {facts.stale}", Refusal.STALE)
    if facts.suppressed:
        return Decision(
            False,
            f"not acting: the composite alarm's actions are suppressed ({facts.suppressed})",
            Refusal.SUPPRESSED,
        )
    if rule is None or not rule.acts:
        why = f" ({rule.why})" if rule is not None else ""
        return Decision(
            False,
            f"no automatic remediation for this alarm{why}: follow the runbook",
            Refusal.NO_POLICY,
        )
    if facts.kill_switch.on:
        return Decision(False, f"not acting: {facts.kill_switch.reason}", Refusal.KILL_SWITCH)
    if facts.unreadable:
        return Decision(
            False, f"not acting: {facts.unreadable} could not be read", Refusal.UNREADABLE
        )
    now = facts.alarm_now
    if now is not None and not now.actions_enabled:
        # CloudWatch sends every state change to EventBridge, muted or not.
        return Decision(
            False,
            "not acting: the alarm's actions are disabled (ActionsEnabled is false: muted, "
            "for maintenance or by on-call), so nothing was done; enable them "
            "(aws cloudwatch enable-alarm-actions) to let the toolkit act again",
            Refusal.MUTED,
        )
    if now is not None and now.state != ALARM:
        since = f" since {when(now.since)}" if now.since is not None else ""
        return Decision(
            False,
            f"not acting: alarm already {now.state}{since} (read again from CloudWatch just "
            "now): the ALARM this was called for is over",
            Refusal.ALARM_OVER,
        )
    plan = facts.plan
    if isinstance(plan, NotApplicable):
        return Decision(False, f"nothing to do: {plan.reason}", plan.refusal)
    if plan is None:
        return Decision(False, "not acting: no plan could be made", Refusal.UNREADABLE)
    if facts.deployment and not rule.during_deployment:
        return Decision(
            False,
            f"not acting while a deployment is in progress ({facts.deployment})",
            Refusal.DEPLOYMENT,
            plan,
        )
    if facts.deployment:
        plan = replace(
            plan,
            summary=f"{plan.summary}, during the deployment in progress ({facts.deployment}): "
            "tasks Fargate Spot cannot place stall it without tripping the circuit breaker, "
            "so the deployment goes on as a new one on on-demand FARGATE",
        )
    if facts.cooldown_remaining > 0:
        return Decision(
            False,
            f"{rule.action.value} for {rule.trigger} is cooling down for another "
            f"{_duration(facts.cooldown_remaining)} (once per {_duration(rule.cooldown_seconds)})",
            Refusal.COOLDOWN,
            plan,
        )
    if facts.budget_used >= facts.budget_max:
        return Decision(
            False,
            f"the budget of {facts.budget_max} automated actions per hour on "
            f"{facts.service or 'the service'} is spent: escalating to a human. Nothing more "
            "is done automatically this hour; follow the runbook",
            Refusal.BUDGET,
            plan,
        )
    if facts.dry_run.on:
        return Decision(
            False, f"dry run ({facts.dry_run.reason}): would {plan.summary}", Refusal.DRY_RUN, plan
        )
    return Decision(True, plan.summary, None, plan)


def may_share_lock(rule: Rule, lock: Lock | None, *, rolling: str) -> bool:
    """Whether ``rule``'s action may act under the service lock someone else holds.

    Only a rule that acts during a deployment (:attr:`Rule.during_deployment`), and only
    under the lock held *for the deployment ECS is rolling out* (the lock's
    ``deployment_id`` is ``rolling``, the service's PRIMARY deployment): the redeploy job
    took that lock, made its one ``UpdateService`` and now only waits for ECS to report,
    so acting beside it races with nothing of it. A lock without a deployment (a redeploy
    between taking the lock and its ``UpdateService``, a chaos kill, another remediation)
    is never shared. The sharing itself is one conditional write in the ledger
    (:meth:`~chalicelib.ledger.SafetyLedger.share_lock`): one guest at a time.

    Example
    -------
    >>> from chalicelib.ledger import Lock
    >>> rule = rule_for(TRIGGER_PLACEMENT_FAILURE)
    >>> may_share_lock(rule, Lock("redeploy:sha256:ab", "redeploy", deployment_id="ecs-svc/2"),
    ...                rolling="ecs-svc/2")
    True
    >>> may_share_lock(rule, Lock("chaos:1", "chaos"), rolling="ecs-svc/2")
    False
    """
    if not rule.during_deployment or not rolling or lock is None:
        return False
    return lock.deployment_id == rolling


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def duration(seconds: float) -> str:
    """Public name of the human duration format (``12 min``)."""
    return _duration(seconds)


def when(epoch: float) -> str:
    """``2026-11-28 10:04:40 UTC``."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- flapping ----------------------------------------------------------------------------


ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
STATES = (ALARM, OK, INSUFFICIENT_DATA)


class Notice(StrEnum):
    """What to do with one state change's alert."""

    POST = "post"  # the alert, as usual
    SUMMARY = "summary"  # flapping: one summary instead of the alert
    HOLD = "hold"  # flapping, summary posted recently: counted, not posted


@dataclass(frozen=True)
class AlarmHistory:
    """What the ledger remembers of one alarm (``ALARM#<name>`` / ``STATE``).

    ``entries`` are the times it went into ALARM within the flapping window; ``since`` is
    when its current state began; ``held`` counts alerts not posted since the last post.
    """

    state: str = ""
    since: float | None = None
    last_at: float = 0.0
    entries: tuple[float, ...] = ()
    last_summary_at: float | None = None
    held: int = 0


@dataclass(frozen=True)
class FlapPolicy:
    """``ALARM_FLAP_WINDOW_SECONDS``, ``ALARM_FLAP_THRESHOLD``, ``ALARM_FLAP_SUMMARY_SECONDS``."""

    window_seconds: int = 3600
    threshold: int = 3
    summary_seconds: int = 900


@dataclass(frozen=True)
class NoticeDecision:
    """How one state change is posted, and the counts a summary reports."""

    notice: Notice
    entries_in_window: int
    held: int  # alerts held back before this one (reported by this post, or still held)
    lasted: float | None = None  # for a change out of ALARM: how long it was in ALARM
    stale: str | None = None  # older than the last change recorded: why it changes nothing


def stale_change(history: AlarmHistory, *, state: str, at: float) -> str | None:
    """Why a change is older than the last one recorded for the alarm (delivered late, after
    a change that happened later), or ``None``. Ordered by the change's own time, never by
    its arrival.

    Example
    -------
    >>> history = AlarmHistory("OK", since=600.0, last_at=600.0)
    >>> stale_change(history, state="ALARM", at=300.0).endswith(
    ...     "alarm already OK since 1970-01-01 00:10:00 UTC")
    True
    """
    if not history.state or at >= history.last_at:
        return None
    since = history.since if history.since is not None else history.last_at
    return (
        f"this {state} of {when(at)} arrived after the alarm's later change to "
        f"{history.state} at {when(history.last_at)}: alarm already {history.state} since "
        f"{when(since)}"
    )


def notice_decision(
    history: AlarmHistory, *, state: str, at: float, policy: FlapPolicy
) -> NoticeDecision:
    """Post, summarise or hold the alert of one state change.

    The alarm is *flapping* when it went into ALARM at least ``threshold`` times within the
    window (this change included). Flapping, one summary is posted at most every
    ``summary_seconds``; the changes in between are held (counted). A change of an alarm
    that is not flapping is posted, and reports how many were held before it.

    Example
    -------
    >>> history = AlarmHistory("OK", 0, 0, entries=(100.0, 200.0))
    >>> notice_decision(history, state="ALARM", at=300, policy=FlapPolicy()).notice.value
    'summary'

    A change older than the last one recorded (:func:`stale_change`) is posted once, marked
    late, and counts for nothing: not as flapping, not as the alarm's state.
    """
    stale = stale_change(history, state=state, at=at)
    if stale is not None:
        return NoticeDecision(Notice.POST, len(history.entries), 0, None, stale)
    window_start = at - policy.window_seconds
    entries = [t for t in history.entries if t > window_start and t != at]
    if state == ALARM:
        entries.append(at)
    lasted = None
    if state != ALARM and history.state == ALARM and history.since is not None:
        lasted = max(0.0, at - history.since)
    if len(entries) < policy.threshold:
        return NoticeDecision(Notice.POST, len(entries), history.held, lasted)
    last = history.last_summary_at
    if last is None or at - last >= policy.summary_seconds:
        return NoticeDecision(Notice.SUMMARY, len(entries), history.held, lasted)
    return NoticeDecision(Notice.HOLD, len(entries), history.held, lasted)


def next_history(
    history: AlarmHistory, *, state: str, at: float, decision: NoticeDecision, policy: FlapPolicy
) -> AlarmHistory:
    """The history after this change (what the ledger stores next); a stale change leaves
    it as it was."""
    if decision.stale is not None or stale_change(history, state=state, at=at) is not None:
        return history
    window_start = at - policy.window_seconds
    entries = tuple(
        sorted(
            {t for t in history.entries if t > window_start} | ({at} if state == ALARM else set())
        )
    )
    since = history.since if state == history.state and history.since is not None else at
    posted = decision.notice is not Notice.HOLD
    return AlarmHistory(
        state=state,
        since=since,
        last_at=at,
        entries=entries,
        last_summary_at=at if decision.notice is Notice.SUMMARY else history.last_summary_at,
        held=0 if posted else history.held + 1,
    )


@dataclass(frozen=True)
class Outcome:
    """What remediation did about one alarm or event: recorded in the ledger, then posted.

    ``acted`` with no ``failure``: the change was made. ``failure``: it was tried and AWS
    refused or failed (not retried). Neither: ``refusal`` says why nothing was tried.
    """

    acted: bool
    reason: str
    refusal: Refusal | None = None
    summary: str = ""  # the plan, when there was one
    failure: str | None = None

    @classmethod
    def of(cls, decision: Decision) -> Outcome:
        return cls(
            decision.act,
            decision.reason,
            decision.refusal,
            decision.plan.summary if decision.plan is not None else "",
        )

    @classmethod
    def refused(cls, refusal: Refusal, reason: str, summary: str = "") -> Outcome:
        return cls(False, reason, refusal, summary)

    @property
    def status(self) -> Status:
        """``acted``, ``failed`` or the refusal (``cooldown``, ``dry-run``...)."""
        if self.failure is not None:
            return Status.FAILED
        if self.acted:
            return Status.ACTED
        return REFUSAL_STATUS[self.refusal] if self.refusal is not None else Status.REFUSED

    @property
    def escalate(self) -> bool:
        """The hourly budget is spent: a person has to take over."""
        return self.refusal is Refusal.BUDGET

    def as_dict(self) -> dict[str, Any]:
        return {
            "acted": self.acted,
            "reason": self.reason,
            "refusal": self.refusal.value if self.refusal is not None else None,
            "summary": self.summary,
            "failure": self.failure,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Outcome:
        refusal = raw.get("refusal")
        return cls(
            bool(raw.get("acted")),
            str(raw.get("reason", "")),
            Refusal(refusal) if refusal in {r.value for r in Refusal} else None,
            str(raw.get("summary") or ""),
            str(raw["failure"]) if raw.get("failure") is not None else None,
        )


def follow_up_posted(notice: Notice, outcome: Outcome) -> bool:
    """Whether the follow-up of a remediation is posted.

    An action taken (or failed) is always reported; "why not" follows an alert that was
    posted as usual. A flapping alarm's refusals are counted, not posted: its summary says
    it flaps. Budget escalations are posted by the flow once per hour whatever this says.

    Example
    -------
    >>> follow_up_posted(Notice.HOLD, Outcome.refused(Refusal.COOLDOWN, "cooling down"))
    False
    """
    if outcome.acted or outcome.failure is not None:
        return True
    return notice is Notice.POST


# ---- Spot --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpotPolicy:
    """``SPOT_INTERRUPTION_THRESHOLD``, ``SPOT_INTERRUPTION_WINDOW_SECONDS``,
    ``CAPACITY_RETURN_AFTER_SECONDS``."""

    threshold: int = 3
    window_seconds: int = 1800
    return_after_seconds: int = 3600


@dataclass(frozen=True)
class InterruptionsDecision:
    """What one more Spot interruption means."""

    count: int
    notify: bool  # post the notice (up to the threshold; then it is the shift that speaks)
    shift: bool  # repeated: shift to on-demand


def interruptions_decision(
    count_in_window: int, *, shifted: bool, policy: SpotPolicy
) -> InterruptionsDecision:
    """``count_in_window`` interruptions (this one included) within the window.

    Example
    -------
    >>> interruptions_decision(3, shifted=False, policy=SpotPolicy()).shift
    True
    >>> interruptions_decision(4, shifted=False, policy=SpotPolicy()).notify
    False
    """
    notify = count_in_window <= policy.threshold and not shifted
    return InterruptionsDecision(
        count_in_window, notify, count_in_window >= policy.threshold and not shifted
    )


@dataclass(frozen=True)
class CapacityShift:
    """The ledger's ``CAPACITY#<svc>`` / ``SHIFT``: the service was moved to on-demand."""

    shifted_at: float
    original: tuple[StrategyItem, ...]
    trigger: str
    last_trouble_at: float


@dataclass(frozen=True)
class ReturnDecision:
    """Whether to put the Spot strategy back now."""

    go: bool
    reason: str


def return_decision(
    shift: CapacityShift | None, *, now: float, policy: SpotPolicy
) -> ReturnDecision:
    """Return to Spot once no placement failure or interruption was seen for
    ``return_after_seconds``. Fargate gives no signal that Spot capacity is back: returning
    *is* the test, and a new placement failure shifts again (within the cooldown and budget).

    Example
    -------
    >>> shift = CapacityShift(0, (StrategyItem("FARGATE_SPOT", 1),), "spot-interruptions", 100)
    >>> return_decision(shift, now=3800, policy=SpotPolicy()).go
    True
    """
    if shift is None:
        return ReturnDecision(False, "the service is not shifted to on-demand")
    quiet = now - max(shift.shifted_at, shift.last_trouble_at)
    if quiet < policy.return_after_seconds:
        return ReturnDecision(
            False,
            f"quiet for {_duration(quiet)} of the {_duration(policy.return_after_seconds)} "
            "before Spot is tried again",
        )
    return ReturnDecision(True, f"no Spot placement failure or interruption for {_duration(quiet)}")


# ---- issue 22, item 10: a placement failure that names no provider; a shift with no record --


@dataclass(frozen=True)
class PlacementVerdict:
    """Whether a ``SERVICE_TASK_PLACEMENT_FAILURE`` is Fargate Spot's shortage, and the
    capacity providers as the messages name them."""

    on_spot: bool
    providers: str


def placement_verdict(
    provider_arns: Sequence[str], strategy: Sequence[StrategyItem] | None
) -> PlacementVerdict:
    """The event's ``capacityProviderArns`` decide; an event without them (ECS leaves the
    field out) falls back to the service's own strategy (``DescribeServices``): Spot is
    involved when the strategy places tasks on ``FARGATE_SPOT``. ``strategy`` ``None``: the
    service could not be read; the shift is then tried, and reads the service again before
    it acts (a strategy without Spot is "not applicable" there).

    Example
    -------
    >>> placement_verdict([], (StrategyItem("FARGATE", 0), StrategyItem("FARGATE_SPOT", 1)))
    PlacementVerdict(on_spot=True, providers="not named in the event; the service's strategy: FARGATE weight 0, FARGATE_SPOT weight 1")
    >>> placement_verdict(["arn:aws:ecs:us-east-1:1:capacity-provider/FARGATE"], ()).on_spot
    False
    """  # noqa: E501
    names = [arn.rsplit("/", 1)[-1] for arn in provider_arns if arn]
    if names:
        return PlacementVerdict(FARGATE_SPOT in names, ", ".join(names))
    if strategy is None:
        return PlacementVerdict(
            True, "not named in the event, and the service could not be read: the shift reads it"
        )
    return PlacementVerdict(
        uses_spot(strategy),
        f"not named in the event; the service's strategy: {describe_strategy(strategy)}",
    )


TRIGGER_FOUND_SHIFTED = "found-shifted"  # a shift found on the service with no record


def looks_shifted(strategy: Sequence[StrategyItem]) -> bool:
    """The strategy :func:`plan_capacity_shift` leaves: on-demand ``FARGATE`` alone. A
    strategy an operator chose for on-demand (``SpotWeight`` 0 keeps ``FARGATE_SPOT`` in
    it) does not look like it."""
    return len(strategy) == 1 and strategy[0].provider == FARGATE and strategy[0].weight > 0


@dataclass(frozen=True)
class UnrecordedCheck:
    """What the capacity check does when the ledger holds no shift.

    ``remember``: a Spot strategy to keep as the service's home strategy (``CAPACITY#<svc>``
    / ``HOME``, never expiring); ``adopt``: the shift to record (the service is on on-demand
    the way a shift leaves it, and its home strategy is known: the return then follows
    within its limits); ``report``: what on-call is told; ``status``: the check's answer.
    """

    status: Status
    reason: str
    remember: tuple[StrategyItem, ...] | None = None
    adopt: CapacityShift | None = None
    report: str | None = None


def unrecorded_check(
    strategy: Sequence[StrategyItem], home: Sequence[StrategyItem] | None, *, now: float
) -> UnrecordedCheck:
    """The service with no shift on record (never shifted, or its record lost: written with a
    30-day TTL before issue 22, or deleted by hand).

    Example
    -------
    >>> spot = (StrategyItem("FARGATE", 0), StrategyItem("FARGATE_SPOT", 1))
    >>> unrecorded_check((StrategyItem("FARGATE", 1),), spot, now=100.0).status
    'adopted'
    >>> unrecorded_check(spot, None, now=100.0).remember == spot
    True
    """
    current = tuple(strategy)
    if uses_spot(current):
        remember = current if tuple(home or ()) != current else None
        return UnrecordedCheck(
            Status.NOT_SHIFTED, "the service is not shifted to on-demand", remember
        )
    if not looks_shifted(current):
        return UnrecordedCheck(
            Status.NOT_SHIFTED,
            f"the service runs its own strategy ({describe_strategy(current)}), not a shift",
        )
    if home and uses_spot(home):
        shift = CapacityShift(now, tuple(home), TRIGGER_FOUND_SHIFTED, now)
        return UnrecordedCheck(
            Status.ADOPTED,
            f"found on on-demand FARGATE ({describe_strategy(current)}) with no shift on "
            f"record: recorded now; its Spot strategy ({describe_strategy(home)}) is put back "
            "after the quiet period, within the return's limits",
            adopt=shift,
            report="adopted",
        )
    return UnrecordedCheck(
        Status.ON_DEMAND_UNKNOWN,
        f"runs on on-demand FARGATE only ({describe_strategy(current)}) the way a shift leaves "
        "it, with no shift on record and no Spot strategy known to return to: if the toolkit "
        "shifted it, put its strategy back by hand (runbook); if on-demand is intended, set it "
        "in the site's parameters",
        report="unknown",
    )
