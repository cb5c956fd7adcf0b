"""The ledger's typed records are parsed in one place each, tolerant of what older writers
left out; every key is built by ``ledger.keys`` and listed in its table."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from chalicelib.ledger import keys
from chalicelib.ledger.keys import Key
from chalicelib.ledger.records import (
    DeploymentRecord,
    DeploymentStatus,
    Guest,
    HighWater,
    HistoryEntry,
    ImageRecord,
    Lock,
)

CHALICELIB = Path(__file__).resolve().parents[3] / "ops_lambdas" / "chalicelib"


@pytest.mark.parametrize(
    "item",
    [
        None,
        {},
        {"digest": "sha256:ab", "status": "IN_PROGRESS"},  # no deployment id
        {"deployment_id": "ecs-svc/1", "status": "PENDING"},  # not a status the toolkit writes
    ],
)
def test_an_item_that_is_no_deployment_record_reads_as_none(item: dict[str, object] | None) -> None:
    assert DeploymentRecord.from_item(item) is None


def test_a_deployment_record_takes_empty_values_for_what_is_missing() -> None:
    record = DeploymentRecord.from_item({"deployment_id": "ecs-svc/1", "status": "COMPLETED"})

    assert record == DeploymentRecord("ecs-svc/1", "", "", DeploymentStatus.COMPLETED)
    assert (record.announced, record.superseded_id, record.pushed_at) == (False, "", 0.0)


def test_a_deployment_record_reads_what_the_flows_decide_from() -> None:
    record = DeploymentRecord.from_item(
        {
            "pk": "DEPLOYMENT#c/s",
            "sk": "LATEST",
            "deployment_id": "ecs-svc/2",
            "digest": "sha256:" + "ab" * 32,
            "tag": "v1.2.3",
            "status": "ROLLING_BACK",
            "pushed_at": 1795851502.75,
            "event_at": 1795851503,
            "announced": True,
            "superseded_id": "ecs-svc/1",
        }
    )

    assert record is not None
    assert record.status is DeploymentStatus.ROLLING_BACK
    assert (record.pushed_at, record.event_at) == (1795851502.75, 1795851503.0)
    assert (record.announced, record.superseded_id) == (True, "ecs-svc/1")
    assert record.label == "v1.2.3 (sha256:abababababab)"


def test_a_deployment_record_keeps_its_reason_and_the_count_a_first_deploy_set() -> None:
    base = {"deployment_id": "ecs-svc/1", "status": "ROLLED_BACK"}
    first = DeploymentRecord.from_item({**base, "reason": "rolled back", "desired_count": 2})
    later = DeploymentRecord.from_item({**base, "desired_count": "two"})

    assert first is not None
    assert later is not None
    assert (first.reason, first.desired_count) == ("rolled back", 2)
    assert (later.reason, later.desired_count) == ("", None)  # text is no count


def test_a_lock_keeps_its_details_and_its_guest() -> None:
    lock = Lock.from_item(
        {
            "pk": "LOCK#c/s",
            "sk": "LOCK",
            "holder": "redeploy:sha256:ab",
            "action": "redeploy",
            "acquired_at": 100,
            "expires_at": 700,
            "ttl": 87100,
            "digest": "sha256:ab",
            "trigger": "push",
            "deployment_id": "ecs-svc/1",
            "guest": {"holder": "remediation:c/s", "until": 400, "budget_taken": True},
        }
    )

    assert lock is not None
    assert (lock.holder, lock.action, lock.expires_at) == ("redeploy:sha256:ab", "redeploy", 700)
    assert (lock.deployment_id, lock.tag, lock.budget_taken) == ("ecs-svc/1", "", False)
    assert lock.details["trigger"] == "push"
    assert "ttl" not in lock.details
    assert "guest" not in lock.details
    assert lock.guest == Guest("remediation:c/s", 400.0, True, {"budget_taken": True})


@pytest.mark.parametrize("guest", [None, {}, {"until": 5}, "odd"])
def test_a_lock_without_a_named_guest_has_none(guest: object) -> None:
    lock = Lock.from_item({"holder": "chaos:run-1", "guest": guest})

    assert lock is not None
    assert lock.guest is None


def test_no_lock_item_is_no_lock() -> None:
    assert Lock.from_item(None) is None
    assert Lock.from_item({}) is None


def test_an_image_record_without_a_push_time_has_none() -> None:
    record = ImageRecord.from_item({"sk": "sha256:ab", "outcome": "older", "event_at": "soon"})

    assert record == ImageRecord("sha256:ab", "older", event_at=None)
    assert ImageRecord.from_item(None) is None


def test_a_high_water_mark_whose_time_is_no_number_holds_nothing_back() -> None:
    assert HighWater.from_item({"at": "yesterday", "digest": "sha256:ab"}) == HighWater(
        None, "sha256:ab"
    )
    assert HighWater.from_item({"at": 12, "tag": "-"}) == HighWater(12.0, "", "-")


def test_a_history_entry_takes_its_time_from_the_sort_key() -> None:
    entry = HistoryEntry.from_item(
        {"sk": "2026-12-07T06:00:00Z#0123456789ab", "action": "redeploy", "outcome": "deploying"}
    )

    assert entry == HistoryEntry("2026-12-07T06:00:00Z", "redeploy", "deploying")


def _every_key() -> list[Key]:
    made = []
    for name, build in inspect.getmembers(keys, inspect.isfunction):
        if build.__module__ != keys.__name__:
            continue
        arguments = [f"<{p}>" if p != "at" else 0 for p in inspect.signature(build).parameters]
        made.append(
            build(*arguments) if not name.endswith("_partition") else Key(build(*arguments), "")
        )
    return made


def test_the_key_table_lists_every_prefix_the_ledger_writes() -> None:
    prefixes = {key.pk.partition("#")[0] for key in _every_key()}

    assert len(prefixes) == 15
    assert [p for p in sorted(prefixes) if f"``{p}#" not in (keys.__doc__ or "")] == []


def test_no_module_but_the_keys_module_spells_a_key_prefix() -> None:
    spelled = re.compile(r"""f?["'][A-Z_]+#""")
    offenders = [
        f"{path.relative_to(CHALICELIB)}:{number}"
        for path in sorted(CHALICELIB.rglob("*.py"))
        if path != CHALICELIB / "ledger" / "keys.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if spelled.search(line)
    ]

    assert offenders == []
