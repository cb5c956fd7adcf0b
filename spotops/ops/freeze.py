"""``spotops freeze`` and ``spotops unfreeze [--deploy-latest]``: whether pushes deploy.

A freeze is the ledger's ``FREEZE#<svc>`` item, the one the redeploy function reads: while
it is in force a push is recorded (an ``IMAGE#`` item with outcome ``frozen``) and not
deployed. A rollback freezes by itself; ``spotops freeze`` does it for a planned quiet
period. ``unfreeze --deploy-latest`` then delivers the newest push refused while frozen to
the redeploy function, as EventBridge would have: the function refused it with a deferred
error, which its idempotency does not remember, so the same ``ECR Image Action`` deploys it
now, through every guard of the function (kill switch, lock, hold-back).

:func:`newest_frozen` is the decision (pure); :class:`Freezer` is the edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)
from spotops.ops import aws_events
from spotops.ops.rollback import PLANNED_FREEZE_BY, StageNames, clock_time, stage_names

# isort: split
from chalicelib.errors import LedgerError
from chalicelib.ledger import Freeze, ImageRecord, SafetyLedger

if TYPE_CHECKING:
    from spotops.aws import ClientFactory
    from spotops.ops.simulate import Rehearsal

UNFROZEN_BY = "unfreeze-command"
FROZEN_OUTCOME = "frozen"
REDEPLOY_FUNCTION = "redeploy_on_push"


def newest_frozen(records: Iterable[ImageRecord]) -> ImageRecord | None:
    """The push refused while frozen that was pushed last (its event's time; when unknown,
    when it was recorded), or ``None`` when no push was refused while frozen."""
    frozen = [r for r in records if r.outcome == FROZEN_OUTCOME]
    if not frozen:
        return None
    return max(frozen, key=lambda r: (r.event_at if r.event_at is not None else r.at, r.at))


def describe_freeze(freeze: Freeze) -> str:
    """``since 14:02 UTC (rolled back to ... by spotops rollback; by rollback-command)``."""
    return (
        f"since {clock_time(freeze.since)} ({freeze.reason or 'no reason given'}; by {freeze.by})"
    )


@dataclass(frozen=True)
class Unfrozen:
    """What ``unfreeze`` did: the freeze lifted (None: none was in force) and, with
    ``--deploy-latest``, the push delivered and the function's answer."""

    lifted: Freeze | None
    push: ImageRecord | None = None
    result: Mapping[str, Any] | None = None


class Freezer:
    """Freeze and unfreeze one stage's service in the ledger."""

    def __init__(
        self, client: ClientFactory, *, app: str, stage: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self.app = app
        self.stage = stage
        self._clock = clock
        self._names: StageNames | None = None

    @property
    def names(self) -> StageNames:
        if self._names is None:
            self._names = stage_names(self._client, self.app, self.stage)
        return self._names

    def ledger(self) -> SafetyLedger:
        return SafetyLedger(self._client("dynamodb"), self.names.ledger_table, clock=self._clock)

    def read(self) -> Freeze | None:
        return self.ledger().read_freeze(self.names.service_key)

    def freeze(self, reason: str) -> tuple[bool, Freeze | None]:
        """Freeze now; ``(True, the freeze)`` when this call froze it, ``(False, the freeze in
        force)`` when it was frozen already (its first reason stays)."""
        ledger = self.ledger()
        key = self.names.service_key
        froze = ledger.freeze(key, at=self._clock(), reason=reason, by=PLANNED_FREEZE_BY)
        if froze:
            ledger.record_history(key, "freeze", "frozen", f"{reason} (spotops freeze)")
        return froze, ledger.read_freeze(key)

    def unfreeze(self) -> Freeze | None:
        """Lift the freeze; the one lifted, or ``None`` when none was in force."""
        ledger = self.ledger()
        key = self.names.service_key
        lifted = ledger.unfreeze(key, by=UNFROZEN_BY)
        if lifted is not None:
            ledger.record_history(
                key, "unfreeze", "unfrozen", f"lifted the freeze {describe_freeze(lifted)}"
            )
        return lifted

    def hold_back_frozen(self) -> ImageRecord | None:
        """Keep the pushes refused while frozen out for good (a plain ``unfreeze``): the
        hold-back mark, which never expires, moves to the newest of them, so the reconcile
        run does not deploy one on its own once its ``frozen`` record expires (30 days). A
        push after it, or the same image pushed again, still deploys. The push held back,
        or ``None`` when no push was refused while frozen."""
        push = newest_frozen(self.frozen_pushes())
        if push is None:
            return None
        ledger = self.ledger()
        key = self.names.service_key
        pushed_at = push.event_at if push.event_at is not None else push.at
        if ledger.raise_high_water(key, pushed_at, digest=push.digest, tag=push.tag):
            ledger.record_history(
                key,
                "unfreeze",
                "held-back",
                f"{push.tag or 'untagged'} ({push.digest[:19]}) and the pushes before it, "
                "refused while frozen, stay undeployed",
            )
        return push

    def frozen_pushes(self) -> list[ImageRecord]:
        """Every image record of the service (the redeploy job's ``IMAGE#`` items)."""
        return self.ledger().read_images(self.names.service_key)

    def deploy_latest(self, rehearsal: Rehearsal) -> tuple[ImageRecord | None, Mapping[str, Any]]:
        """Deliver the newest frozen push to the redeploy function; the push and the
        function's result (``None`` and ``{}`` when no push was refused while frozen)."""
        push = newest_frozen(self.frozen_pushes())
        if push is None:
            return None, {}
        facts = rehearsal.facts()
        event = aws_events.ecr_push(
            account=facts.account,
            region=facts.region,
            repository=self.names.repository,
            digest=push.digest,
            tag=push.tag if push.tag not in ("", "-") else "",
        )
        result = rehearsal.target.invoke_function(rehearsal, REDEPLOY_FUNCTION, event)
        return push, result


def pushes_line(freeze: Freeze | None) -> str:
    """Whether pushes deploy, as ``status`` shows it: ``frozen since 14:02 UTC after a
    rollback (...); `spotops unfreeze``` or ``deploy``."""
    if freeze is None or not freeze.frozen:
        return "deploy"
    why = "for a planned quiet period" if freeze.by == PLANNED_FREEZE_BY else "after a rollback"
    return (
        f"frozen since {clock_time(freeze.since)} {why} ({freeze.reason or 'no reason given'}; "
        f"by {freeze.by}); a push is recorded, not deployed: `spotops unfreeze`"
    )


def read_freeze_or_error(dynamodb: Any, table: str, service_key: str) -> tuple[Freeze | None, str]:
    """The service's freeze, read as the redeploy function reads it, or why it could not be
    (``(None, "")``: never frozen)."""
    try:
        return SafetyLedger(dynamodb, table).read_freeze(service_key), ""
    except LedgerError as exc:
        return None, str(exc) or type(exc).__name__


def read_pushes(dynamodb: Any, table: str, service_key: str) -> str:
    """:func:`pushes_line` of the service's freeze; ``unknown (...)`` when the ledger cannot
    be read."""
    freeze, error = read_freeze_or_error(dynamodb, table, service_key)
    if error:
        return f"unknown (the ledger {table} is unreadable: {error})"
    return pushes_line(freeze)
