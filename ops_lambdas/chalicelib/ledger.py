"""The safety ledger: one DynamoDB table shared by redeploy, remediation and chaos.

Item schema (string key ``pk`` + string sort key ``sk``; DynamoDB TTL on number ``ttl``):

=====================  ==============  =====================================================
pk                     sk              attributes
=====================  ==============  =====================================================
``LOCK#<svc>``         ``LOCK``        holder, action, acquired_at, expires_at, ttl, and the
                                       action's details (digest, tag, deployment_id, ...)
``COOLDOWN#<svc>``     ``<action>``    until (epoch s), ttl
``BUDGET#<action>``    ``<YYYYmmddHH>`` count (actions started in that UTC hour), ttl
``DEPLOYMENT#<svc>``   ``LATEST``      deployment_id, digest, tag, task_definition, status,
                                       reason, updated_at, ttl
``HISTORY#<svc>``      ``<iso>#<id>``  action, outcome, detail, ttl
=====================  ==============  =====================================================

``<svc>`` is ``<cluster>/<service>``. Every write that guards production is conditional, so
two concurrent Lambdas cannot both win: the lock is taken with ``attribute_not_exists(pk) OR
expires_at < :now`` (an expired lock left by a crashed Lambda can be taken over), and the
hourly budget is an ``ADD`` guarded by ``count < :max``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import LedgerError

_CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class LockResult:
    """Outcome of :meth:`SafetyLedger.acquire_lock`: ``acquired``, else who holds the lock."""

    acquired: bool
    holder: Mapping[str, str]


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            item[key] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[key] = {"N": str(int(value))}
        else:
            item[key] = {"S": str(value)}
    return item


def _from_item(item: Mapping[str, Any]) -> dict[str, str]:
    plain: dict[str, str] = {}
    for key, typed in item.items():
        ((kind, value),) = typed.items()
        plain[key] = str(value) if kind != "BOOL" else str(value).lower()
    return plain


class SafetyLedger:
    """Locks, cooldowns, budgets and history in one DynamoDB table.

    Parameters
    ----------
    dynamodb:
        A boto3 DynamoDB *client*.
    table_name:
        The ledger table (``LEDGER_TABLE_NAME``).
    history_ttl_days:
        How long history and finished records are kept before DynamoDB TTL removes them.
    clock:
        Returns epoch seconds; tests pass a fake.

    Raises
    ------
    LedgerError
        From every method when DynamoDB fails for a reason other than a lost condition.

    Example
    -------
    >>> ledger = SafetyLedger(clients.dynamodb, "spotops-dev-ledger")  # doctest: +SKIP
    >>> ledger.acquire_lock("c/s", holder="evt-1", action="redeploy", ttl_seconds=600)
    LockResult(acquired=True, holder={})
    """

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        history_ttl_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = dynamodb
        self._table = table_name
        self._history_ttl = history_ttl_days * 86400
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._ddb, operation)(TableName=self._table, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                raise
            raise LedgerError(f"ledger {operation} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise LedgerError(f"ledger {operation} failed: {exc}") from exc

    # ---- locks ---------------------------------------------------------------------------

    def acquire_lock(
        self,
        service_key: str,
        *,
        holder: str,
        action: str,
        ttl_seconds: int,
        details: Mapping[str, Any] | None = None,
    ) -> LockResult:
        """Take the service's lock unless a live lock is held by someone else.

        Re-taking a lock one already holds (same ``holder``) succeeds, so a retried Lambda
        can continue.
        """
        now = self._now()
        item = _to_item(
            {
                "pk": f"LOCK#{service_key}",
                "sk": "LOCK",
                "holder": holder,
                "action": action,
                "acquired_at": now,
                "expires_at": now + ttl_seconds,
                "ttl": now + ttl_seconds + 86400,
                **(details or {}),
            }
        )
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at < :now OR holder = :holder"
                ),
                ExpressionAttributeValues={":now": {"N": str(now)}, ":holder": {"S": holder}},
            )
        except ClientError:
            return LockResult(False, self.get_lock(service_key) or {})
        return LockResult(True, {})

    def get_lock(self, service_key: str) -> dict[str, str] | None:
        """The lock item as plain strings, or ``None`` when no live lock exists."""
        response = self._call(
            "get_item",
            Key=_to_item({"pk": f"LOCK#{service_key}", "sk": "LOCK"}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        lock = _from_item(item)
        if int(lock.get("expires_at", "0")) < self._now():
            return None
        return lock

    def update_lock(self, service_key: str, holder: str, fields: Mapping[str, Any]) -> None:
        """Add ``fields`` (e.g. the deployment id) to a lock ``holder`` still holds."""
        names = {f"#f{i}": key for i, key in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(_to_item(fields).values())}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        try:
            self._call(
                "update_item",
                Key=_to_item({"pk": f"LOCK#{service_key}", "sk": "LOCK"}),
                UpdateExpression=f"SET {sets}",
                ConditionExpression="holder = :holder",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":holder": {"S": holder}},
            )
        except ClientError as exc:
            raise LedgerError(f"lock on {service_key} is no longer held by {holder}") from exc

    def release_lock(
        self, service_key: str, *, holder: str | None = None, action: str | None = None
    ) -> bool:
        """Delete the lock if ``holder`` (or, for outcome events, ``action``) still owns it.

        Returns
        -------
        bool
            True when a lock was deleted.
        """
        if holder is None and action is None:
            raise ValueError("release_lock needs holder or action")
        condition, values = (
            ("holder = :v", {":v": {"S": holder}})
            if holder is not None
            else ("#a = :v", {":v": {"S": str(action)}})
        )
        kwargs: dict[str, Any] = {
            "Key": _to_item({"pk": f"LOCK#{service_key}", "sk": "LOCK"}),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if holder is None:
            kwargs["ExpressionAttributeNames"] = {"#a": "action"}
        try:
            self._call("delete_item", **kwargs)
        except ClientError:
            return False
        return True

    # ---- cooldowns and budgets -----------------------------------------------------------

    def cooldown_remaining(self, service_key: str, action: str) -> int:
        """Seconds left before ``action`` may run again on the service (0: may run)."""
        response = self._call(
            "get_item",
            Key=_to_item({"pk": f"COOLDOWN#{service_key}", "sk": action}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return 0
        return max(0, int(item["until"]["N"]) - self._now())

    def start_cooldown(self, service_key: str, action: str, seconds: int) -> None:
        """Forbid ``action`` on the service for ``seconds``."""
        if seconds <= 0:
            return
        until = self._now() + seconds
        self._call(
            "put_item",
            Item=_to_item(
                {
                    "pk": f"COOLDOWN#{service_key}",
                    "sk": action,
                    "until": until,
                    "ttl": until + 86400,
                }
            ),
        )

    def consume_budget(self, action: str, max_per_hour: int) -> bool:
        """Count one ``action`` against this UTC hour's budget; False when it is spent."""
        hour = datetime.fromtimestamp(self._now(), tz=UTC).strftime("%Y%m%d%H")
        try:
            self._call(
                "update_item",
                Key=_to_item({"pk": f"BUDGET#{action}", "sk": hour}),
                UpdateExpression="ADD #c :one SET #t = :ttl",
                ConditionExpression="attribute_not_exists(#c) OR #c < :max",
                ExpressionAttributeNames={"#c": "count", "#t": "ttl"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":max": {"N": str(max_per_hour)},
                    ":ttl": {"N": str(self._now() + 2 * 86400)},
                },
            )
        except ClientError:
            return False
        return True

    # ---- deployments and history ---------------------------------------------------------

    def put_deployment(self, service_key: str, record: Mapping[str, Any]) -> None:
        """Store the latest deployment the redeploy job started on the service."""
        self._call(
            "put_item",
            Item=_to_item(
                {
                    "pk": f"DEPLOYMENT#{service_key}",
                    "sk": "LATEST",
                    "updated_at": self._now(),
                    "ttl": self._now() + self._history_ttl,
                    **record,
                }
            ),
        )

    def get_deployment(self, service_key: str) -> dict[str, str] | None:
        """The latest deployment record, or ``None``."""
        response = self._call(
            "get_item",
            Key=_to_item({"pk": f"DEPLOYMENT#{service_key}", "sk": "LATEST"}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _from_item(item) if item else None

    def set_deployment_status(
        self, service_key: str, deployment_id: str, status: str, reason: str = ""
    ) -> bool:
        """Move the latest deployment to ``status`` if it is still ``deployment_id``."""
        try:
            self._call(
                "update_item",
                Key=_to_item({"pk": f"DEPLOYMENT#{service_key}", "sk": "LATEST"}),
                UpdateExpression="SET #s = :s, #r = :r, updated_at = :now",
                ConditionExpression="deployment_id = :d",
                ExpressionAttributeNames={"#s": "status", "#r": "reason"},
                ExpressionAttributeValues={
                    ":s": {"S": status},
                    ":r": {"S": reason or "-"},
                    ":d": {"S": deployment_id},
                    ":now": {"N": str(self._now())},
                },
            )
        except ClientError:
            return False
        return True

    def record_history(self, service_key: str, action: str, outcome: str, detail: str) -> None:
        """Append one history item (kept ``history_ttl_days``)."""
        now = self._now()
        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._call(
            "put_item",
            Item=_to_item(
                {
                    "pk": f"HISTORY#{service_key}",
                    "sk": f"{stamp}#{uuid.uuid4().hex[:12]}",
                    "action": action,
                    "outcome": outcome,
                    "detail": detail[:1000],
                    "ttl": now + self._history_ttl,
                }
            ),
        )

    def history(self, service_key: str, limit: int = 50) -> list[dict[str, str]]:
        """Newest-first history of the service."""
        response = self._call(
            "query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"HISTORY#{service_key}"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_from_item(item) for item in response.get("Items", [])]
