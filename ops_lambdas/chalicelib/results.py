"""What a job did with an event: one vocabulary for every job's answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """What a job did with an event; the ``status`` of its JSON result."""

    DEPLOYING = "deploying"
    ALREADY_RUNNING = "already-running"
    OLDER = "older"  # a push older than the image running (delivered late): changes nothing
    TWIN = "twin"  # the same digest pushed under another tag: deployed once, by the other push
    HELD_BACK = "held-back"  # a twin's or late push of a digest whose deployment failed
    DRY_RUN = "dry-run"
    KILLED = "killed"
    COOLDOWN = "cooldown"
    LOCKED = "locked"
    BUDGET = "budget"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    UP_TO_DATE = "up-to-date"
    IN_PROGRESS = "in-progress"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    ALERTED = "alerted"


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
