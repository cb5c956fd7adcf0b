"""The ledger's items as typed records: what every reader of the ledger gets back.

Each record is parsed from its item in one place, its ``from_item``, which tolerates what
older writers left out: a missing attribute takes its empty value, a number stored as
text is no number (``None`` where the record says so). The item schema is in
:mod:`chalicelib.ledger.keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Attributes every item has, or that only DynamoDB reads: never part of a record's details.
_BOOKKEEPING = frozenset({"pk", "sk", "ttl"})


def number_or_none(value: Any) -> float | None:
    """``value`` as a float when DynamoDB gave a number, else ``None``."""
    return float(value) if isinstance(value, int | float) else None


def _whole_or_none(value: Any) -> int | None:
    number = number_or_none(value)
    return int(number) if number is not None else None


def _number(value: Any) -> float:
    return float(value or 0)


def _text(value: Any) -> str:
    return str(value) if value is not None else ""


@dataclass(frozen=True)
class Guest:
    """Who acts beside a deployment's lock holder (``share_lock``), one at a time."""

    holder: str
    until: float = 0.0
    budget_taken: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Any) -> Guest | None:
        if not isinstance(item, Mapping) or not item.get("holder"):
            return None
        return cls(
            holder=str(item["holder"]),
            until=_number(item.get("until")),
            budget_taken=bool(item.get("budget_taken")),
            details={k: v for k, v in item.items() if k not in {"holder", "until"}},
        )


@dataclass(frozen=True)
class Lock:
    """A service's lock (``LOCK#<svc>``): who holds it, for what, until when.

    ``details`` holds every attribute the holder recorded (``digest``, ``trigger``, ...),
    the typed ones included; the typed fields are those the jobs decide from.
    """

    holder: str
    action: str = ""
    acquired_at: int = 0  # epoch seconds
    expires_at: int = 0
    deployment_id: str = ""
    digest: str = ""
    tag: str = ""
    budget_taken: bool = False
    guest: Guest | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Lock | None:
        """The lock of a plain item; ``None`` for no item (a lock without ``holder`` is
        still a lock: it is held, by nobody named)."""
        if not item:
            return None
        return cls(
            holder=_text(item.get("holder")),
            action=_text(item.get("action")),
            acquired_at=int(item.get("acquired_at") or 0),
            expires_at=int(item.get("expires_at") or 0),
            deployment_id=_text(item.get("deployment_id")),
            digest=_text(item.get("digest")),
            tag=_text(item.get("tag")),
            budget_taken=bool(item.get("budget_taken")),
            guest=Guest.from_item(item.get("guest")),
            details={
                k: v
                for k, v in item.items()
                if k not in _BOOKKEEPING | {"holder", "action", "guest"}
            },
        )


class DeploymentStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    ROLLING_BACK = "ROLLING_BACK"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"
    SUPERSEDED = "SUPERSEDED"


OPEN_STATUSES = frozenset({DeploymentStatus.IN_PROGRESS, DeploymentStatus.ROLLING_BACK})


@dataclass(frozen=True)
class DeploymentRecord:
    """The latest deployment the redeploy job started (``DEPLOYMENT#<svc>``)."""

    deployment_id: str
    digest: str
    tag: str
    status: DeploymentStatus
    task_definition: str = ""
    pushed_at: float = 0.0
    previous_task_definition: str = ""
    updated_at: float = 0.0  # when the record last changed (its COMPLETED time, once done)
    event_at: float = 0.0  # the time of the push event that started it (0: reconcile's)
    announced: bool = False  # the "deploying" notice was claimed (claim_announcement)
    superseded_id: str = ""  # the deployment this one went on from (hand_over_deployment)
    reason: str = ""  # why it ended as it did (set_deployment_status; "-": none given)
    desired_count: int | None = None  # the count it set (a first deploy); None: left alone

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> DeploymentRecord | None:
        """The record of a plain item; ``None`` without a deployment id or with a status
        outside :class:`DeploymentStatus` (nothing the toolkit wrote)."""
        if not item or not item.get("deployment_id"):
            return None
        try:
            status = DeploymentStatus(str(item.get("status", "")))
        except ValueError:
            return None
        return cls(
            deployment_id=str(item["deployment_id"]),
            digest=str(item.get("digest", "")),
            tag=str(item.get("tag", "")),
            status=status,
            task_definition=str(item.get("task_definition", "")),
            pushed_at=_number(item.get("pushed_at")),
            previous_task_definition=str(item.get("previous_task_definition", "")),
            updated_at=_number(item.get("updated_at")),
            event_at=_number(item.get("event_at")),
            announced=bool(item.get("announced")),
            superseded_id=_text(item.get("superseded_id")),
            reason=_text(item.get("reason")),
            desired_count=_whole_or_none(item.get("desired_count")),
        )

    @property
    def label(self) -> str:
        return f"{self.tag or 'untagged'} ({self.digest[:19]})"


@dataclass(frozen=True)
class ImageRecord:
    """What the redeploy job did with one image (``IMAGE#<svc>`` / ``<digest>``)."""

    digest: str
    outcome: str  # deployed, refused, older, held-back
    tag: str = ""
    detail: str = ""
    at: float = 0.0
    event_at: float | None = None  # the push event's time; None: not known

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> ImageRecord | None:
        if not item:
            return None
        return cls(
            digest=_text(item.get("sk")),
            outcome=_text(item.get("outcome")),
            tag=_text(item.get("tag")),
            detail=_text(item.get("detail")),
            at=_number(item.get("at")),
            event_at=number_or_none(item.get("event_at")),
        )


@dataclass(frozen=True)
class HighWater:
    """The newest image ever deployed to the service (``HOLD#<svc>`` / ``NEWEST``)."""

    at: float | None  # its push time; None: not a number (nothing to hold back by)
    digest: str = ""
    tag: str = ""  # "-" when it was pushed untagged

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> HighWater | None:
        if not item:
            return None
        return cls(
            at=number_or_none(item.get("at")),
            digest=_text(item.get("digest")),
            tag=_text(item.get("tag")),
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a service's history (``HISTORY#<svc>`` / ``<iso>#<id>``)."""

    at: str  # ISO time to the second
    action: str
    outcome: str
    detail: str = ""
    # The same moment to the fraction of a second (entries written before it was kept have
    # none): what orders the entries of one second, which a job often writes several of.
    moment: float | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> HistoryEntry:
        return cls(
            at=_text(item.get("sk")).partition("#")[0],
            action=_text(item.get("action")),
            outcome=_text(item.get("outcome")),
            detail=_text(item.get("detail")),
            moment=number_or_none(item.get("at")),
        )


@dataclass(frozen=True)
class Freeze:
    """Whether pushes deploy to the service (``FREEZE#<svc>`` / ``STATE``).

    A rollback (by command, by remediation, or by ECS: circuit breaker, alarm, failed hook)
    freezes push-redeploys, so the next push does not deploy again what was just undone;
    ``spotops freeze`` does it for a planned quiet period. The item is kept when lifted
    (``frozen`` False, with who lifted it and when), so a rollback event that arrives after
    the unfreeze, but happened before it, does not freeze again.
    """

    frozen: bool
    since: float = 0.0  # epoch seconds: when the freeze began (the rollback's own time)
    reason: str = ""  # what froze it, as people read it ("ECS rolled back deployment ...")
    by: str = ""  # who froze it: rollback-command, remediation, ecs, freeze-command
    deployment_id: str = ""  # the deployment whose rollback froze it, when one did
    unfrozen_at: float = 0.0
    unfrozen_by: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Freeze | None:
        if not item:
            return None
        return cls(
            frozen=bool(item.get("frozen")),
            since=_number(item.get("since")),
            reason=_text(item.get("reason")),
            by=_text(item.get("by")),
            deployment_id=_text(item.get("deployment_id")),
            unfrozen_at=_number(item.get("unfrozen_at")),
            unfrozen_by=_text(item.get("unfrozen_by")),
        )
