"""The ledger table itself: items to and from DynamoDB's typed form, and one way to call
it that gives every failure one error.

Items go through boto3's ``TypeSerializer``/``TypeDeserializer``: numbers come back as
``int`` when whole, else ``float`` (never truncated).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import LedgerError
from chalicelib.ledger.keys import Key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONDITION_FAILED = "ConditionalCheckFailedException"

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed form; floats become ``Decimal`` (exact), ``None`` is left out."""
    return {
        key: _SERIALIZER.serialize(Decimal(str(value)) if isinstance(value, float) else value)
        for key, value in values.items()
        if value is not None
    }


def typed_key(key: Key) -> dict[str, Any]:
    """The ``Key`` argument of a DynamoDB call."""
    return to_item(key.fields())


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The plain form of a typed item (see the module docstring for numbers)."""
    return {key: _plain(_DESERIALIZER.deserialize(typed)) for key, typed in item.items()}


def call_table(dynamodb: DynamoDBClient, table: str, operation: str, **kwargs: Any) -> Any:
    """``dynamodb.<operation>`` on the ledger ``table``. A lost condition raises the
    ``ClientError`` (the caller's answer: "no"); every other failure raises
    :class:`LedgerError`."""
    try:
        return getattr(dynamodb, operation)(TableName=table, **kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == CONDITION_FAILED:
            raise
        raise LedgerError(f"ledger {operation} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise LedgerError(f"ledger {operation} failed: {exc}") from exc


class LedgerTable:
    """The ledger table for the record classes of the jobs (alarm, chaos): one call path,
    one error (:class:`LedgerError`), keys from :mod:`chalicelib.ledger.keys`.

    Parameters
    ----------
    dynamodb:
        A boto3 DynamoDB client.
    table_name:
        The ledger table (``LEDGER_TABLE_NAME``).
    """

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._ddb = dynamodb
        self._table = table_name

    def call(self, operation: str, **kwargs: Any) -> Any:
        """See :func:`call_table`."""
        return call_table(self._ddb, self._table, operation, **kwargs)

    def get(self, key: Key) -> dict[str, Any] | None:
        """The item in its plain form (consistent read), or ``None``."""
        item = self.call("get_item", Key=typed_key(key), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def put(
        self, key: Key, values: Mapping[str, Any], condition: str | None = None, **extra: Any
    ) -> bool:
        """Write the item ``key`` + ``values``; False when ``condition`` did not hold."""
        if condition is not None:
            extra["ConditionExpression"] = condition
        try:
            self.call("put_item", Item=to_item({**key.fields(), **values}), **extra)
        except ClientError:
            return False
        return True

    def update(self, key: Key, expression: str, condition: str | None = None, **extra: Any) -> bool:
        """Update the item ``key`` with ``expression``; False when ``condition`` did not
        hold."""
        if condition is not None:
            extra["ConditionExpression"] = condition
        try:
            self.call("update_item", Key=typed_key(key), UpdateExpression=expression, **extra)
        except ClientError:
            return False
        return True

    def delete(self, key: Key, condition: str, **extra: Any) -> bool:
        """Delete the item if ``condition`` holds; False when it did not."""
        try:
            self.call("delete_item", Key=typed_key(key), ConditionExpression=condition, **extra)
        except ClientError:
            return False
        return True
