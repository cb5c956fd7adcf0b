"""The safety ledger: one DynamoDB table shared by redeploy, remediation and chaos.

One persistence layer, shaped like Powertools' idempotency persistence: :mod:`.keys` builds
every key (and lists every item), :mod:`.records` holds the typed records the read methods
return, :mod:`.table` translates items and gives every DynamoDB failure one error
(:class:`~chalicelib.errors.LedgerError`), and :mod:`.safety` holds the operations on
locks, cooldowns, budgets, deployments, images and history.
"""

from chalicelib.ledger.keys import Key
from chalicelib.ledger.records import (
    OPEN_STATUSES,
    DeploymentRecord,
    DeploymentStatus,
    Freeze,
    Guest,
    HighWater,
    HistoryEntry,
    ImageRecord,
    Lock,
)
from chalicelib.ledger.safety import LockResult, SafetyLedger
from chalicelib.ledger.table import LedgerTable

__all__ = [
    "OPEN_STATUSES",
    "DeploymentRecord",
    "DeploymentStatus",
    "Freeze",
    "Guest",
    "HighWater",
    "HistoryEntry",
    "ImageRecord",
    "Key",
    "LedgerTable",
    "Lock",
    "LockResult",
    "SafetyLedger",
]
