"""The safety ledger's conditional writes, against moto DynamoDB."""

from __future__ import annotations

import pytest

from chalicelib.errors import LedgerError
from chalicelib.ledger import LedgerTable, SafetyLedger, keys
from tests.support.ops_world import World

SVC = "default/servicetest"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(world: World, clock: Clock) -> SafetyLedger:
    return SafetyLedger(world.clients.dynamodb, world.ledger_table, clock=clock)


def test_second_holder_cannot_take_a_live_lock(ledger: SafetyLedger) -> None:
    assert ledger.acquire_lock(SVC, holder="a", action="redeploy", ttl_seconds=600).acquired
    lost = ledger.acquire_lock(SVC, holder="b", action="chaos", ttl_seconds=600)

    assert not lost.acquired
    assert lost.lock.holder == "a"
    assert lost.lock.action == "redeploy"


def test_holder_may_retake_its_own_lock(ledger: SafetyLedger) -> None:
    assert ledger.acquire_lock(SVC, holder="a", action="redeploy", ttl_seconds=600).acquired
    assert ledger.acquire_lock(SVC, holder="a", action="redeploy", ttl_seconds=600).acquired


def test_expired_lock_of_a_crashed_lambda_can_be_taken_over(
    ledger: SafetyLedger, clock: Clock
) -> None:
    assert ledger.acquire_lock(SVC, holder="crashed", action="redeploy", ttl_seconds=60).acquired
    clock.now += 61

    assert ledger.read_lock(SVC) is None
    assert ledger.acquire_lock(SVC, holder="next", action="chaos", ttl_seconds=60).acquired
    assert ledger.read_lock(SVC).holder == "next"  # type: ignore[union-attr]


def test_release_only_by_the_holder_or_the_action(ledger: SafetyLedger) -> None:
    ledger.acquire_lock(SVC, holder="a", action="chaos", ttl_seconds=600)

    assert not ledger.release_lock(SVC, holder="b")
    assert not ledger.release_lock(SVC, action="redeploy")
    assert ledger.release_lock(SVC, action="chaos")
    assert ledger.read_lock(SVC) is None


def test_update_lock_fails_once_the_lock_is_lost(ledger: SafetyLedger) -> None:
    ledger.acquire_lock(SVC, holder="a", action="redeploy", ttl_seconds=600)
    ledger.update_lock(SVC, "a", {"deployment_id": "ecs-svc/1"})
    assert ledger.read_lock(SVC).deployment_id == "ecs-svc/1"  # type: ignore[union-attr]

    ledger.release_lock(SVC, holder="a")
    with pytest.raises(LedgerError):
        ledger.update_lock(SVC, "a", {"deployment_id": "ecs-svc/2"})


def test_hourly_budget_is_enforced_and_resets_next_hour(ledger: SafetyLedger, clock: Clock) -> None:
    assert [ledger.consume_budget("redeploy", 2) for _ in range(3)] == [True, True, False]
    clock.now += 3600
    assert ledger.consume_budget("redeploy", 2)


def test_cooldown_counts_down(ledger: SafetyLedger, clock: Clock) -> None:
    assert ledger.cooldown_remaining(SVC, "chaos") == 0
    ledger.start_cooldown(SVC, "chaos", 300)
    clock.now += 100
    assert ledger.cooldown_remaining(SVC, "chaos") == 200
    clock.now += 200
    assert ledger.cooldown_remaining(SVC, "chaos") == 0


def test_history_is_newest_first_with_ttl(ledger: SafetyLedger, clock: Clock, world: World) -> None:
    ledger.record_history(SVC, "redeploy", "deploying", "v1")
    clock.now += 5
    ledger.record_history(SVC, "redeploy", "completed", "v1")

    assert [h.outcome for h in ledger.read_history(SVC)] == ["completed", "deploying"]
    item = world.clients.dynamodb.scan(TableName=world.ledger_table)["Items"][0]
    assert int(item["ttl"]["N"]) > clock.now


def test_missing_table_is_a_ledger_error(world: World) -> None:
    ledger = SafetyLedger(world.clients.dynamodb, "no-such-table")
    with pytest.raises(LedgerError):
        ledger.read_lock(SVC)


def test_numbers_keep_their_value_through_the_ledger(ledger: SafetyLedger, world: World) -> None:
    # The hand-written conversion truncated floats (pushed_at 1795851502.75 came back whole).
    ledger.put_deployment(SVC, {"deployment_id": "d", "pushed_at": 1795851502.75, "count": 3})

    item = LedgerTable(world.clients.dynamodb, world.ledger_table).get(keys.deployment(SVC))

    assert item is not None
    assert item["pushed_at"] == 1795851502.75
    assert item["count"] == 3
    assert isinstance(item["count"], int)


def test_a_retry_of_the_same_work_retakes_the_lock_and_keeps_what_it_recorded(
    ledger: SafetyLedger,
) -> None:
    first = ledger.acquire_lock(SVC, holder="redeploy:sha256:a", action="redeploy", ttl_seconds=60)
    ledger.update_lock(SVC, "redeploy:sha256:a", {"budget_taken": True})

    retry = ledger.acquire_lock(SVC, holder="redeploy:sha256:a", action="redeploy", ttl_seconds=60)
    other = ledger.acquire_lock(SVC, holder="redeploy:sha256:b", action="redeploy", ttl_seconds=60)

    assert first.acquired
    assert not first.retaken
    assert retry.acquired
    assert retry.retaken
    assert retry.lock.budget_taken is True
    assert not other.acquired


def test_an_outcome_frees_the_lock_only_for_its_deployment(ledger: SafetyLedger) -> None:
    ledger.acquire_lock(SVC, holder="redeploy:sha256:a", action="redeploy", ttl_seconds=60)
    ledger.update_lock(SVC, "redeploy:sha256:a", {"deployment_id": "ecs-svc/1"})

    assert not ledger.release_lock(SVC, deployment_id="ecs-svc/2")
    assert ledger.release_lock(SVC, deployment_id="ecs-svc/1")


def test_a_table_update_answers_whether_its_condition_held(world: World) -> None:
    table = LedgerTable(world.clients.dynamodb, world.ledger_table)
    key = keys.capacity_shift(SVC)
    assert table.put(key, {"last_trouble_at": 10})

    later = {":at": {"N": "20"}}
    assert table.update(
        key, "SET last_trouble_at = :at", "last_trouble_at < :at", ExpressionAttributeValues=later
    )
    assert not table.update(
        key, "SET last_trouble_at = :at", "last_trouble_at < :at", ExpressionAttributeValues=later
    )
    assert table.get(key) == {**key.fields(), "last_trouble_at": 20}


# ---- the freeze ------------------------------------------------------------------------------


def test_freeze_holds_until_lifted_and_keeps_the_first_reason(
    ledger: SafetyLedger, clock: Clock
) -> None:
    assert ledger.read_freeze(SVC) is None

    assert ledger.freeze(
        SVC, at=clock.now, reason="ECS rolled back d1", by="ecs", deployment_id="d1"
    )
    assert not ledger.freeze(SVC, at=clock.now + 5, reason="second", by="freeze-command")

    held = ledger.read_freeze(SVC)
    assert held is not None
    assert held.frozen
    assert (held.since, held.reason, held.by, held.deployment_id) == (
        clock.now,
        "ECS rolled back d1",
        "ecs",
        "d1",
    )


def test_unfreeze_lifts_once_and_returns_what_it_lifted(ledger: SafetyLedger, clock: Clock) -> None:
    ledger.freeze(SVC, at=clock.now, reason="planned", by="freeze-command")
    clock.now += 60

    lifted = ledger.unfreeze(SVC, by="alice")
    again = ledger.unfreeze(SVC, by="bob")

    assert lifted is not None
    assert lifted.frozen
    assert lifted.reason == "planned"
    assert again is None
    state = ledger.read_freeze(SVC)
    assert state is not None
    assert not state.frozen
    assert (state.unfrozen_at, state.unfrozen_by) == (clock.now, "alice")


def test_unfreeze_without_a_freeze_changes_nothing(ledger: SafetyLedger) -> None:
    assert ledger.unfreeze(SVC, by="alice") is None
    assert ledger.read_freeze(SVC) is None


def test_a_late_rollback_event_does_not_refreeze_after_an_unfreeze(
    ledger: SafetyLedger, clock: Clock
) -> None:
    rolled_back_at = clock.now
    ledger.freeze(SVC, at=rolled_back_at, reason="first", by="ecs")
    clock.now += 600
    ledger.unfreeze(SVC, by="alice")

    # The same rollback (or an older one) delivered hours late: the unfreeze came after it.
    assert not ledger.freeze(SVC, at=rolled_back_at + 1, reason="late", by="ecs")
    assert not ledger.read_freeze(SVC).frozen  # type: ignore[union-attr]
    # A rollback that happened after the unfreeze freezes again.
    assert ledger.freeze(SVC, at=clock.now + 1, reason="new", by="ecs")
    assert ledger.read_freeze(SVC).reason == "new"  # type: ignore[union-attr]


def test_the_freeze_never_expires(ledger: SafetyLedger, world: World) -> None:
    ledger.freeze(SVC, at=1.0, reason="r", by="ecs")
    item = world.clients.dynamodb.get_item(
        TableName=world.ledger_table, Key={"pk": {"S": f"FREEZE#{SVC}"}, "sk": {"S": "STATE"}}
    )["Item"]
    assert "ttl" not in item


def test_history_keeps_the_fraction_of_a_second_its_sort_key_drops(
    ledger: SafetyLedger, clock: Clock
) -> None:
    clock.now = 1_800_000_000.25
    ledger.record_history(SVC, "rollback", "started", "a")
    clock.now = 1_800_000_000.75
    ledger.record_history(SVC, "rollback", "succeeded", "b")

    newest_first = ledger.read_history(SVC)

    assert {entry.at for entry in newest_first} == {"2027-01-15T08:00:00Z"}
    assert sorted((e.moment, e.outcome) for e in newest_first) == [
        (1_800_000_000.25, "started"),
        (1_800_000_000.75, "succeeded"),
    ]


def test_read_images_returns_every_record_of_the_service_across_pages(
    ledger: SafetyLedger, world: World
) -> None:
    for n in range(3):
        ledger.record_image(SVC, f"sha256:{n}", "frozen", tag=f"v{n}")
    ledger.record_image("other/service", "sha256:9", "deployed")
    pages: list[int] = []
    real_query = world.clients.dynamodb.query

    def two_at_a_time(**kwargs: object) -> dict[str, object]:
        page = real_query(**kwargs, Limit=2)  # type: ignore[arg-type]
        pages.append(len(page["Items"]))
        return page  # type: ignore[return-value]

    paged = SafetyLedger(
        type("Client", (), {"query": staticmethod(two_at_a_time)})(),  # type: ignore[arg-type]
        world.ledger_table,
    )

    found = paged.read_images(SVC)

    assert sorted((r.digest, r.outcome, r.tag) for r in found) == [
        ("sha256:0", "frozen", "v0"),
        ("sha256:1", "frozen", "v1"),
        ("sha256:2", "frozen", "v2"),
    ]
    assert pages[0] == 2
    assert len(pages) >= 2
