"""One family of errors for the ops toolkit, all named ``...Error`` with a shared base."""

from __future__ import annotations


class OpsError(Exception):
    """Base class of every error the ops toolkit raises on purpose."""


class SettingsError(OpsError):
    """A setting (environment variable) is missing or has a bad value; the message names it."""


class LedgerError(OpsError):
    """The safety ledger could not be read or written (DynamoDB failed unexpectedly)."""


class ControlsError(OpsError):
    """The kill switch or the Slack secret could not be read."""


class DeferredError(OpsError):
    """An action was not taken now but may be taken later (lock held, kill switch, dry run,
    throttling). Raised inside the idempotent section so Powertools forgets the attempt and a
    later delivery (or the reconcile schedule) can act on the same image."""

    def __init__(self, outcome: str, reason: str, **facts: object) -> None:
        super().__init__(f"{outcome}: {reason}")
        self.outcome = outcome
        self.reason = reason
        self.facts = facts
