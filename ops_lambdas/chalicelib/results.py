"""What a job did with an event: one vocabulary for every job's answer.

Every job (redeploy, outcome, scan, remediation, chaos) answers with a :class:`JobResult`
whose ``status`` is a :class:`Status` member. A value means one thing in every job: the
dashboards, the idempotency records and on-call read the same word the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum, unique
from typing import Any


@unique  # a value is one word with one meaning: two members may not share it
class Status(StrEnum):
    """What a job did with an event; the ``status`` of its JSON result."""

    # -- shared by every job --
    DRY_RUN = "dry-run"
    KILL_SWITCH = "kill-switch"  # the kill switch stopped the job (never a stopped task)
    COOLDOWN = "cooldown"
    LOCKED = "locked"  # another automation holds the service lock
    BUDGET = "budget"  # the hourly budget of automated actions is spent
    FAILED = "failed"
    SKIPPED = "skipped"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    ALERTED = "alerted"

    # -- redeploy, its outcome, the image scan --
    DEPLOYING = "deploying"
    ALREADY_RUNNING = "already-running"
    OLDER = "older"  # a push older than the image running (delivered late): changes nothing
    TWIN = "twin"  # the same digest pushed under another tag: deployed once, by the other push
    HELD_BACK = "held-back"  # a twin's or late push of a digest whose deployment failed
    FROZEN = "frozen"  # a push while pushes are frozen (after a rollback): not deployed
    DEFERRED = "deferred"
    UP_TO_DATE = "up-to-date"
    IN_PROGRESS = "in-progress"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"

    # -- remediation (alarm_action): what was done --
    ACTED = "acted"
    HELD = "held"  # the alert was held: the alarm flaps
    HANDLED = "handled"  # several SNS messages, each with its own result
    NOTICED = "noticed"  # a Spot interruption below the threshold: posted, nothing changed
    ALREADY_SHIFTED = "already-shifted"
    WAITING = "waiting"  # shifted to on-demand, the quiet period not over yet
    RETURNED_BY_HAND = "returned-by-hand"
    NOT_SHIFTED = "not-shifted"
    ADOPTED = "adopted"  # a shift found with no record: recorded now
    ON_DEMAND_UNKNOWN = "on-demand-unknown"  # on-demand, with no Spot strategy to return to

    # -- remediation: why nothing was done (one per alarms.rules.Refusal) --
    NO_POLICY = "no-policy"
    FOREIGN = "foreign"
    SUPPRESSED = "suppressed"
    STALE = "stale"
    ACTIONS_DISABLED = "actions-disabled"
    ALARM_OVER = "alarm-over"
    NOT_APPLICABLE = "not-applicable"
    ALREADY_RETURNED = "already-returned"
    DEPLOYMENT_IN_PROGRESS = "deployment-in-progress"
    UNREADABLE = "unreadable"
    REFUSED = "refused"  # an outcome recorded with no refusal the toolkit knows

    # -- chaos: a run, one service, and the run's ledger record --
    KILLED = "killed"  # chaos stopped a task (the run's status)
    NO_KILL = "no-kill"
    LEASHED = "leashed"  # every guard passed; the leash kept it from stopping anything
    NOT_OPTED_IN = "not-opted-in"
    RECOVERING = "recovering"  # the run record between the stop and the recovery verdict
    RECOVERED = "recovered"
    NOT_RECOVERED = "not-recovered"


@dataclass(frozen=True)
class JobResult:
    """A job's answer: its status, why, and facts for the log (digest, deployment id...)."""

    job: str
    status: Status
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The handler's JSON result (Lambda's return value and the idempotency record)."""
        return {"job": self.job, "status": self.status.value, "reason": self.reason, **self.facts}
