"""The safety ledger: one DynamoDB table shared by redeploy, remediation and chaos.

Every key and item is listed in :mod:`chalicelib.ledger.keys`; what the read methods return
is in :mod:`chalicelib.ledger.records`.

``<svc>`` is ``<cluster>/<service>``. Every write that guards production is conditional, so
two concurrent Lambdas cannot both win: the lock is taken with ``attribute_not_exists(pk) OR
expires_at < :now`` (an expired lock left by a crashed Lambda can be taken over), re-taken by
its own holder with ``holder = :holder`` (a retry of the same work keeps what the first
attempt recorded in it), and released only by its holder or, for a deployment, only for that
deployment id. The hourly budget is an ``ADD`` guarded by ``count < :max``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

import chalicelib.ledger.keys as keys  # the module alone: the package imports this one
from chalicelib.errors import LedgerError
from chalicelib.ledger.keys import Key
from chalicelib.ledger.records import (
    DeploymentRecord,
    Freeze,
    HighWater,
    HistoryEntry,
    ImageRecord,
    Lock,
)
from chalicelib.ledger.table import call_table, from_item, to_item, typed_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class LockResult:
    """Outcome of :meth:`SafetyLedger.acquire_lock` and :meth:`SafetyLedger.share_lock`.

    ``acquired`` tells whether we hold the lock; ``lock`` is the lock as it is now (ours
    when acquired, else the other holder's; ``None`` when it vanished between the write and
    the read); ``retaken`` is True when the same holder already held it (a retry of the same
    work), so what the earlier attempt recorded in the lock is still there.
    """

    acquired: bool
    lock: Lock | None = None
    retaken: bool = False


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
    >>> ledger.acquire_lock("c/s", holder="redeploy:sha256:ab", action="redeploy",
    ...                     ttl_seconds=600).acquired
    True
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        history_ttl_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = dynamodb
        self._table = table_name
        self._history_ttl = history_ttl_days * 86400
        self._clock = clock

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client the ledger calls."""
        return self._ddb

    def on_client(self, dynamodb: DynamoDBClient) -> SafetyLedger:
        """The same ledger (table, history TTL, clock) through another client: a
        verification run's, which writes nothing (:mod:`chalicelib.verification`)."""
        return SafetyLedger(dynamodb, self._table, self._history_ttl // 86400, self._clock)

    def _now(self) -> int:
        return int(self._clock())

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return call_table(self._ddb, self._table, operation, **kwargs)

    def _get(self, key: Key) -> dict[str, Any] | None:
        """The item in its plain form (consistent read), or ``None``: what the record
        readers parse."""
        item = self._call("get_item", Key=typed_key(key), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

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

        ``holder`` names the *work*, not the attempt (``redeploy:<digest>``), so a retry of
        the same work re-takes its own live lock: the expiry is renewed and whatever the
        earlier attempt recorded in the lock is kept (:attr:`LockResult.retaken`). A free or
        expired lock is written afresh, so nothing of a previous holder survives.
        """
        now = self._now()
        key = keys.lock(service_key).fields()
        fields = {
            "holder": holder,
            "action": action,
            "expires_at": now + ttl_seconds,
            "ttl": now + ttl_seconds + 86400,
            **{k: v for k, v in (details or {}).items() if v is not None},
        }
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": typed for i, typed in enumerate(to_item(fields).values())}
        try:
            renewed = self._call(
                "update_item",
                Key=to_item(key),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ConditionExpression="holder = :holder AND expires_at >= :now",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    **values,
                    ":holder": {"S": holder},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
            )
            return LockResult(True, Lock.from_item(from_item(renewed["Attributes"])), retaken=True)
        except ClientError:
            pass  # not ours, or not live: try to take it afresh
        item = {**key, "acquired_at": now, **fields}
        try:
            self._call(
                "put_item",
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError:
            return LockResult(False, self.read_lock(service_key))
        return LockResult(True, Lock.from_item(item))

    def read_lock(self, service_key: str) -> Lock | None:
        """The live lock, or ``None`` when no live lock exists."""
        item = self._get(keys.lock(service_key))
        if not item or int(item.get("expires_at", 0)) < self._now():
            return None
        return Lock.from_item(item)

    def claim_in_lock(self, service_key: str, holder: str, name: str, value: Any) -> Any:
        """Set ``name`` in the live lock ``holder`` holds unless it is set already, in one
        conditional write; return the value the lock holds now (``value`` when this call
        set it). Two invocations sharing one holder (one digest pushed under two tags) learn
        which of them claimed the work. ``None`` when ``holder`` holds no live lock."""
        now = self._now()
        try:
            response = self._call(
                "update_item",
                Key=typed_key(keys.lock(service_key)),
                UpdateExpression="SET #n = if_not_exists(#n, :v)",
                ConditionExpression="holder = :holder AND expires_at >= :now",
                ExpressionAttributeNames={"#n": name},
                ExpressionAttributeValues={
                    ":v": to_item({"v": value})["v"],
                    ":holder": {"S": holder},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError:
            return None
        return from_item(response["Attributes"]).get(name)

    def update_lock(self, service_key: str, holder: str, fields: Mapping[str, Any]) -> None:
        """Add ``fields`` (e.g. the deployment id) to a lock ``holder`` still holds."""
        fields = {k: v for k, v in fields.items() if v is not None}
        names = {f"#f{i}": key for i, key in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(to_item(fields).values())}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.lock(service_key)),
                UpdateExpression=f"SET {sets}",
                ConditionExpression="holder = :holder",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":holder": {"S": holder}},
            )
        except ClientError as exc:
            raise LedgerError(f"lock on {service_key} is no longer held by {holder}") from exc

    def release_lock(
        self,
        service_key: str,
        *,
        holder: str | None = None,
        action: str | None = None,
        deployment_id: str | None = None,
    ) -> bool:
        """Delete the lock if it is still ``holder``'s, ``action``'s, or held for the
        deployment ``deployment_id`` (an outcome event frees only the deployment it is about).

        Returns
        -------
        bool
            True when a lock was deleted.
        """
        given = [
            (name, value)
            for name, value in (
                ("holder", holder),
                ("action", action),
                ("deployment_id", deployment_id),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError("release_lock needs exactly one of holder, action, deployment_id")
        ((attribute, value),) = given
        try:
            self._call(
                "delete_item",
                Key=typed_key(keys.lock(service_key)),
                ConditionExpression="#a = :v",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": {"S": value}},
            )
        except ClientError:
            return False
        return True

    def share_lock(
        self,
        service_key: str,
        *,
        guest: str,
        deployment_id: str,
        ttl_seconds: int,
        details: Mapping[str, Any] | None = None,
    ) -> LockResult:
        """Act beside the holder of the live lock held *for* ``deployment_id`` (a deployment
        ECS is rolling out), without taking it from its holder.

        The guest is written into the lock as the map ``guest`` (``holder``, ``until``, and
        ``details``), one live guest at a time; the same guest re-shares it (a retry:
        :attr:`LockResult.retaken`, its details kept). The holder keeps the lock and its
        expiry; every other caller of :meth:`acquire_lock` is refused as before. A lock
        without ``deployment_id`` (a change not made yet) is never shared.
        """
        now = self._now()
        key = typed_key(keys.lock(service_key))
        live = "deployment_id = :d AND expires_at >= :now"
        common = {":d": {"S": deployment_id}, ":now": {"N": str(now)}}
        until = {"N": str(now + ttl_seconds)}
        try:
            renewed = self._call(
                "update_item",
                Key=key,
                UpdateExpression="SET guest.#u = :until",
                ConditionExpression=f"{live} AND guest.holder = :g",
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues={**common, ":g": {"S": guest}, ":until": until},
                ReturnValues="ALL_NEW",
            )
            return LockResult(True, Lock.from_item(from_item(renewed["Attributes"])), retaken=True)
        except ClientError:
            pass  # no guest, another guest, or no live lock for that deployment
        visit = {"holder": guest, "until": now + ttl_seconds, **(details or {})}
        try:
            shared = self._call(
                "update_item",
                Key=key,
                UpdateExpression="SET guest = :visit",
                ConditionExpression=(
                    f"{live} AND (attribute_not_exists(guest) OR guest.#u < :now)"
                ),
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues={**common, ":visit": to_item({"v": visit})["v"]},
                ReturnValues="ALL_NEW",
            )
        except ClientError:
            return LockResult(False, self.read_lock(service_key))
        return LockResult(True, Lock.from_item(from_item(shared["Attributes"])))

    def update_share(self, service_key: str, guest: str, fields: Mapping[str, Any]) -> None:
        """Add ``fields`` to the guest's part of the lock while ``guest`` still shares it."""
        names = {"#g": "guest", **{f"#f{i}": name for i, name in enumerate(fields)}}
        values = {f":v{i}": typed for i, typed in enumerate(to_item(fields).values())}
        sets = ", ".join(f"#g.#f{i} = :v{i}" for i in range(len(fields)))
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.lock(service_key)),
                UpdateExpression=f"SET {sets}",
                ConditionExpression="#g.holder = :guest",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":guest": {"S": guest}},
            )
        except ClientError as exc:
            raise LedgerError(f"lock on {service_key} is no longer shared by {guest}") from exc

    def end_share(self, service_key: str, *, guest: str, deployment_id: str | None = None) -> bool:
        """The guest leaves the lock; with ``deployment_id``, the lock is now held for that
        deployment (the guest's change superseded the one the lock was held for, so the
        outcome event of the new deployment frees it). True when the guest was there."""
        sets = " SET deployment_id = :d" if deployment_id else ""
        values: dict[str, Any] = {":guest": {"S": guest}}
        if deployment_id:
            values[":d"] = {"S": deployment_id}
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.lock(service_key)),
                UpdateExpression=f"REMOVE guest{sets}",
                ConditionExpression="guest.holder = :guest",
                ExpressionAttributeValues=values,
            )
        except ClientError:
            return False
        return True

    # ---- cooldowns and budgets -----------------------------------------------------------

    def cooldown_remaining(self, service_key: str, action: str) -> int:
        """Seconds left before ``action`` may run again on the service (0: may run)."""
        response = self._call(
            "get_item",
            Key=typed_key(keys.cooldown(service_key, action)),
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
            Item=to_item(
                {
                    **keys.cooldown(service_key, action).fields(),
                    "until": until,
                    "ttl": until + 86400,
                }
            ),
        )

    def budget_used(self, action: str) -> int:
        """How many ``action`` were counted against this UTC hour's budget so far."""
        hour = datetime.fromtimestamp(self._now(), tz=UTC).strftime("%Y%m%d%H")
        response = self._call(
            "get_item",
            Key=typed_key(keys.budget(action, hour)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return int(from_item(item).get("count", 0)) if item else 0

    def consume_budget(self, action: str, max_per_hour: int) -> bool:
        """Count one ``action`` against this UTC hour's budget; False when it is spent."""
        hour = datetime.fromtimestamp(self._now(), tz=UTC).strftime("%Y%m%d%H")
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.budget(action, hour)),
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
            Item=to_item(
                {
                    **keys.deployment(service_key).fields(),
                    "updated_at": self._now(),
                    "ttl": self._now() + self._history_ttl,
                    **record,
                }
            ),
        )

    def read_deployment(self, service_key: str) -> DeploymentRecord | None:
        """The latest deployment the redeploy job started, or ``None`` (also for an item
        that is no deployment record: see :meth:`DeploymentRecord.from_item`)."""
        return DeploymentRecord.from_item(self._get(keys.deployment(service_key)))

    def set_deployment_status(
        self, service_key: str, deployment_id: str, status: str, reason: str = ""
    ) -> bool:
        """Move the latest deployment to ``status`` if it is still ``deployment_id``."""
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.deployment(service_key)),
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

    def hand_over_deployment(
        self, service_key: str, deployment_id: str, successor: str, reason: str
    ) -> bool:
        """The open deployment ``deployment_id`` goes on as ``successor`` (an ``UpdateService``
        of the toolkit, the capacity shift, superseded it with the same task definition):
        the record follows it, so the successor's outcome event settles it. True when the
        record was still that deployment, open."""
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.deployment(service_key)),
                UpdateExpression="SET deployment_id = :n, superseded_id = :d, #r = :r",
                ConditionExpression="deployment_id = :d AND #s IN (:open, :back)",
                ExpressionAttributeNames={"#s": "status", "#r": "reason"},
                ExpressionAttributeValues={
                    ":n": {"S": successor},
                    ":d": {"S": deployment_id},
                    ":r": {"S": reason or "-"},
                    ":open": {"S": "IN_PROGRESS"},
                    ":back": {"S": "ROLLING_BACK"},
                },
            )
        except ClientError:
            return False
        return True

    def claim_once(self, key: Key, *, expires: bool, **fields: Any) -> bool:
        """Mark the item ``key`` done; True only for the first caller (who then acts, e.g. posts).
        Claimed before the act, so a crash between the two loses it rather than doubling it.
        ``expires``: kept ``history_ttl_days`` (a repeated message is all it stops), else
        never (once per stage for good).

        Raises
        ------
        LedgerError
            DynamoDB failed for a reason other than the item being there already.
        """
        item = {**key.fields(), **fields}
        if expires:
            item["ttl"] = self._now() + self._history_ttl
        try:
            self._call(
                "put_item", Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError:
            return False
        return True

    def claim_foreign_failure(self, service_key: str, deployment_id: str) -> bool:
        """Mark a failed deployment we did not start as reported; True only for the first
        caller (who then posts). Keyed by ECS's deployment id, so a second event about the
        same failure (or a redelivery outside the idempotency window) posts nothing."""
        return self.claim_once(keys.foreign_failure(service_key, deployment_id), expires=True)

    def claim_enhanced_scanning_notice(self, service_key: str, **fields: Any) -> bool:
        """Mark the "scanning is enhanced" notice posted; True only for the first caller.
        Never expires: once per stage, not once per expiry (delete the item to hear it
        again)."""
        return self.claim_once(keys.enhanced_scanning(service_key), expires=False, **fields)

    def claim_announcement(self, service_key: str, deployment_id: str, digest: str) -> bool:
        """Mark the deployment announced; True only for the first caller (who then posts).

        Marking before posting makes the "deploying" notice at most once: a crash between
        the two loses the notice rather than doubling it (the outcome is still posted)."""
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.deployment(service_key)),
                UpdateExpression="SET announced = :t",
                ConditionExpression=(
                    "deployment_id = :d AND digest = :g AND attribute_not_exists(announced)"
                ),
                ExpressionAttributeValues={
                    ":t": {"BOOL": True},
                    ":d": {"S": deployment_id},
                    ":g": {"S": digest},
                },
            )
        except ClientError:
            return False
        return True

    def record_history(self, service_key: str, action: str, outcome: str, detail: str) -> None:
        """Append one history item (kept ``history_ttl_days``); ``at`` keeps the moment to the
        fraction of a second, which the sort key (to the second) does not."""
        moment = self._clock()
        now = int(moment)
        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._call(
            "put_item",
            Item=to_item(
                {
                    **keys.history(service_key, stamp, uuid.uuid4().hex[:12]).fields(),
                    "action": action,
                    "outcome": outcome,
                    "detail": detail[:1000],
                    "at": float(moment),
                    "ttl": now + self._history_ttl,
                }
            ),
        )

    def read_history(self, service_key: str, limit: int = 50) -> list[HistoryEntry]:
        """Newest-first history of the service."""
        response = self._call(
            "query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.history_partition(service_key)}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [HistoryEntry.from_item(from_item(item)) for item in response.get("Items", [])]

    # ---- images the redeploy job handled ---------------------------------------------

    def record_image(
        self,
        service_key: str,
        digest: str,
        outcome: str,
        *,
        tag: str = "",
        detail: str = "",
        event_at: float | None = None,
    ) -> None:
        """Remember what was done with an image (``deployed``, ``refused``, ``older``,
        ``held-back``: a twin's or late push of a digest whose deployment failed), for
        ``history_ttl_days``: the reconcile run never deploys an image twice on its own, and
        ``event_at`` (the push event's time) tells a later delivery of that push from a new
        push of the same digest."""
        self._call(
            "put_item",
            Item=to_item(
                {
                    **keys.image(service_key, digest).fields(),
                    "outcome": outcome,
                    "tag": tag,
                    "detail": detail[:1000],
                    "event_at": event_at,
                    "at": float(self._clock()),  # to the fraction: orders a job's writes
                    "ttl": self._now() + self._history_ttl,
                }
            ),
        )

    def read_images(self, service_key: str) -> list[ImageRecord]:
        """Every image record of the service (consistent read, all pages)."""
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.image_partition(service_key)}},
            "ConsistentRead": True,
        }
        found: list[ImageRecord] = []
        while True:
            page = self._call("query", **query)
            for item in page.get("Items", []):
                record = ImageRecord.from_item(from_item(item))
                if record is not None:
                    found.append(record)
            if not page.get("LastEvaluatedKey"):
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_image(self, service_key: str, digest: str) -> ImageRecord | None:
        """What was done with the image, or ``None`` when it was never handled."""
        return ImageRecord.from_item(self._get(keys.image(service_key, digest)))

    # ---- the newest image ever deployed: a hold-back that never expires ------------------

    def raise_high_water(self, service_key: str, at: float, *, digest: str, tag: str = "") -> bool:
        """Record that an image pushed at ``at`` (the push's own time) was deployed, unless a
        newer one already was: the mark only moves forward. The item has **no** ``ttl``: it is
        what keeps the reconcile run from deploying a rolled-back or superseded image after
        the deployment and image records expired (DynamoDB deletes expired items at no exact
        time). One small item per service. True when the mark moved."""
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.high_water(service_key)),
                UpdateExpression="SET #at = :at, digest = :d, tag = :t, updated_at = :now",
                ConditionExpression="attribute_not_exists(#at) OR #at < :at",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={
                    ":at": to_item({"v": float(at)})["v"],
                    ":d": {"S": digest},
                    ":t": {"S": tag or "-"},
                    ":now": {"N": str(self._now())},
                },
            )
        except ClientError:
            return False
        return True

    def read_high_water(self, service_key: str) -> HighWater | None:
        """The newest image ever deployed to the service, or ``None``."""
        return HighWater.from_item(self._get(keys.high_water(service_key)))

    # ---- the freeze: whether pushes deploy (no ttl) -----------------------------------------

    def freeze(
        self, service_key: str, *, at: float, reason: str, by: str, deployment_id: str = ""
    ) -> bool:
        """Freeze push-redeploys of the service from ``at`` (the rollback's own time, or now
        for a planned freeze). True when this call froze it; False when it was frozen already
        (the first freeze and its reason stay) or was lifted *after* ``at``: a rollback event
        delivered late must not undo on-call's ``spotops unfreeze``. No ``ttl``: a freeze that
        protects production must not vanish at an unknown time."""
        try:
            self._call(
                "update_item",
                Key=typed_key(keys.freeze(service_key)),
                UpdateExpression=(
                    "SET frozen = :t, since = :at, reason = :r, #by = :by, "
                    "deployment_id = :d, updated_at = :now"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR "
                    "(frozen = :f AND (attribute_not_exists(unfrozen_at) OR unfrozen_at < :at))"
                ),
                ExpressionAttributeNames={"#by": "by"},
                ExpressionAttributeValues={
                    ":t": {"BOOL": True},
                    ":f": {"BOOL": False},
                    ":at": to_item({"v": float(at)})["v"],
                    ":r": {"S": reason[:1000]},
                    ":by": {"S": by or "-"},
                    ":d": {"S": deployment_id},
                    ":now": {"N": str(self._now())},
                },
            )
        except ClientError:
            return False
        return True

    def unfreeze(self, service_key: str, *, by: str) -> Freeze | None:
        """Lift the freeze; the freeze that was lifted, or ``None`` when none was in force
        (two people unfreezing at once: one lifts it, the other is told it was not frozen)."""
        try:
            response = self._call(
                "update_item",
                Key=typed_key(keys.freeze(service_key)),
                UpdateExpression="SET frozen = :f, unfrozen_at = :now, unfrozen_by = :by",
                ConditionExpression="frozen = :t",
                ExpressionAttributeValues={
                    ":t": {"BOOL": True},
                    ":f": {"BOOL": False},
                    ":now": to_item({"v": float(self._clock())})["v"],
                    ":by": {"S": by or "-"},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError:
            return None
        return Freeze.from_item(from_item(response.get("Attributes") or {}))

    def read_freeze(self, service_key: str) -> Freeze | None:
        """The service's freeze item (``frozen`` says whether it is in force), or ``None``
        when the service was never frozen."""
        return Freeze.from_item(self._get(keys.freeze(service_key)))
