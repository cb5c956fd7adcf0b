"""The delivery model, pushes: pushes (some twins), ECS's outcome events and the reconcile
runs, delivered late, twice and out of order, against the redeploy and outcome functions.

After each stream, and a final settle (ECS finishes, the reconcile schedule runs until
nothing changes, as it would):

1. the service ends on the newest pushed image, unless its deployment failed and ECS rolled
   it back (then on what ECS rolled back to);
3. at most one redeploy per ``REDEPLOY_COOLDOWN_SECONDS``, never more than
   ``REDEPLOY_MAX_PER_HOUR`` in a UTC hour, and one per image (twins are one image);
4. no lock held;
5. every failed deployment alerted exactly once, nothing else alerted as a failure, and no
   message lost (each delivered or dead-lettered).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from moto import mock_aws

from chalicelib.observability import metrics
from tests.functional.delivery.streams import (
    Push,
    Twin,
    push_streams,
    schedule_pushes,
    schedule_reconcile,
)
from tests.support.delivery import (
    HOUR,
    START,
    Fate,
    RateLimitedSlack,
    SimClock,
    Simulation,
    gaps,
    hourly_counts,
)
from tests.support.ops_world import build_world

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

COOLDOWN = 300
MAX_PER_HOUR = 3
ENV = {
    # Production's caches (a warm container reads the secret and the switches once).
    "all": {
        "SECRET_CACHE_SECONDS": "300",
        "KILL_SWITCH_CACHE_SECONDS": "30",
        "SLACK_TIMEOUT_SECONDS": "3",
        "SLACK_MAX_ATTEMPTS": "4",
        "SLACK_MAX_TOTAL_SECONDS": "15",
        "SLACK_BACKOFF_BASE_SECONDS": "0.5",
    },
    "redeploy": {
        "REDEPLOY_COOLDOWN_SECONDS": str(COOLDOWN),
        "REDEPLOY_MAX_PER_HOUR": str(MAX_PER_HOUR),
    },
}
FAILURE_TITLES = (":x: Deployment failed:", ":rewind: Rolled back:")


@contextmanager
def stream_world() -> Iterator[Simulation]:
    """A fresh moto world, Slack with its rate limit, and the stream's clock."""
    clock = SimClock()
    slack = RateLimitedSlack(clock)
    try:
        with mock_aws():
            world = build_world(webhook_url=slack.url)
            yield Simulation(world, slack, clock, env=ENV)
    finally:
        slack.close()
        metrics.clear_metrics()


def settle(sim: Simulation, *, rounds: int = 12) -> None:
    """Everything delivered; then the reconcile schedule (every 15 minutes) runs until ECS
    is idle and two runs in a row changed nothing."""
    sim.run()
    quiet = 0
    for n in range(rounds):
        before = len(sim.actions)
        schedule_reconcile(sim, sim.clock() + 900, f"settle-{n}")
        sim.run()
        quiet = quiet + 1 if len(sim.actions) == before and sim.idle() else 0
        if quiet >= 2:
            return


def run_stream(sim: Simulation, pushes: list[Push], lost: list[int]) -> dict[str, str]:
    """The pushes, and the reconcile schedule every 15 minutes (but the ``lost`` runs) until
    the last delivery; then the settle."""
    digests = schedule_pushes(sim, pushes)
    last = max(sim.last_delivery(), START)
    for n in range(int((last - START) // 900) + 1):
        if n not in lost:
            schedule_reconcile(sim, START + 900 * n, f"r{n}")
    settle(sim)
    return digests


def check_invariants(sim: Simulation, pushes: list[Push], digests: dict[str, str]) -> None:
    story = sim.story()

    engine = sim.engine
    redeploys = sim.actions_of("redeploy")

    # 1. the newest pushed image runs, unless a rollback came after it, or a rollback froze
    # pushes (issue 26): then a push is recorded, not deployed, until on-call unfreezes
    newest = max(pushes, key=lambda p: p.at)
    digest = digests[newest.tag]
    failures = [d for d in engine.failed() if d.digest == digest]
    running = engine.running_digest()
    freeze = sim.world.clients.dynamodb.get_item(
        TableName=sim.world.ledger_table,
        Key={"pk": {"S": f"FREEZE#{sim.world.cluster}/{sim.world.service}"}, "sk": {"S": "STATE"}},
    ).get("Item")
    frozen = freeze is not None and freeze["frozen"]["BOOL"]
    if failures:
        expected = engine.digest_of(failures[-1].rolled_back_to or "")
        assert running == expected, f"after the rollback of {newest.tag}:\n{story}"
    elif frozen:
        assert engine.failed(), f"pushes frozen with no rollback:\n{story}"
    else:
        assert running == digest, (
            f"the newest image {newest.tag} ({digest[:19]}) is not running:\n{story}"
        )

    # 3. cooldown, budget, one deployment per image
    moments = [a.at for a in redeploys]
    assert all(gap >= COOLDOWN for gap in gaps(moments)), f"cooldown broken:\n{story}"
    assert max(hourly_counts(moments).values(), default=0) <= MAX_PER_HOUR, f"budget:\n{story}"
    deployed = [engine.digest_of(a.request["taskDefinition"]) for a in redeploys]
    again = [d for d in set(deployed) if deployed.count(d) > 1]
    assert again == [], f"an image deployed twice:\n{story}"

    # 4. no lock left (an expired one is a leak too: nothing released it)
    lock = sim.world.clients.dynamodb.get_item(
        TableName=sim.world.ledger_table,
        Key={"pk": {"S": f"LOCK#{sim.world.cluster}/{sim.world.service}"}, "sk": {"S": "LOCK"}},
    )
    assert "Item" not in lock, f"lock left: {lock.get('Item')}\n{story}"

    # 5. every failure alerted exactly once; nothing lost
    failure_posts = [title for _, title, _ in sim.posts if title.startswith(FAILURE_TITLES)]
    ours = [d for d in engine.failed() if d.job == "redeploy"]
    for short in {(d.digest or "")[:19] for d in ours}:
        failed = [d for d in ours if (d.digest or "")[:19] == short]
        alerts = [t for t in failure_posts if short in t]
        assert len(alerts) == len(failed), (
            f"{len(failed)} failed deployment(s) of {short} alerted {len(alerts)} times:\n{story}"
        )
    failed_digests = {(d.digest or "")[:19] for d in ours}
    extra = [t for t in failure_posts if not any(s in t for s in failed_digests)]
    assert extra == [], f"failures alerted that did not happen: {extra}\n{story}"
    assert sim.lost_posts() == [], f"messages lost: {sim.lost_posts()}\n{story}"


@given(push_streams())
def test_push_streams_keep_the_newest_image_within_the_limits(
    stream: tuple[list[Push], list[int]],
) -> None:
    pushes, lost = stream
    with stream_world() as sim:
        digests = run_stream(sim, pushes, lost)
        check_invariants(sim, pushes, digests)


# ---- the examples Hypothesis found, kept as regular tests ------------------------------------

ON_TIME = (0,)
OK = Fate(ok=True, rollout=300, delays=ON_TIME)


def replay(pushes: list[Push], lost: list[int] | None = None) -> None:
    """One stream, checked."""
    with stream_world() as sim:
        digests = run_stream(sim, pushes, lost or [])
        check_invariants(sim, pushes, digests)


def test_two_pushes_on_time_deploy_the_newest() -> None:
    replay(
        [
            Push("v1.0.0", START + 60, OK, ON_TIME),
            Push("v1.1.0", START + 3660, OK, ON_TIME),
        ]
    )


def test_a_twin_is_one_image() -> None:
    replay([Push("v1.0.0", START + 60, OK, ON_TIME, Twin("c0ffee0", 0, ON_TIME))])


def test_a_late_older_push_changes_nothing() -> None:
    replay(
        [
            Push("v1.0.0", START + 60, OK, (HOUR,)),
            Push("v1.1.0", START + 1260, OK, ON_TIME),
        ]
    )


TWIN_FAILS = Fate(ok=False, rollout=60, delays=ON_TIME)


def test_a_late_release_push_does_not_redeploy_what_reconcile_deployed_as_its_twin() -> None:
    """Found by Hypothesis (shrunk): three pushes a minute apart, every deployment fails;
    v1.2.0 and its twin c0ffee2 are one digest; v1.2.0's event is delivered an hour late.
    The twin's event meets ECS rolling back (deferred), the reconcile run deploys the digest
    as c0ffee2, it fails and is rolled back; at +1h03m v1.2.0's push deploys it again."""
    replay(
        [
            Push("v1.0.0", START + 60, TWIN_FAILS, ON_TIME),
            Push("v1.1.0", START + 120, TWIN_FAILS, ON_TIME),
            Push("v1.2.0", START + 180, TWIN_FAILS, (HOUR,), Twin("c0ffee2", 0, ON_TIME)),
        ]
    )


def test_a_late_twin_does_not_redeploy_a_digest_that_failed() -> None:
    """Found by Hypothesis (shrunk): v1.1.0 and its twin c0ffee1 (one second later) are
    one digest; v1.1.0's event is delivered 4 minutes late and deploys it; it fails and ECS
    rolls back; c0ffee1's event, 9 minutes late, deploys the failed digest again."""
    replay(
        [
            Push("v1.0.0", START + 60, TWIN_FAILS, ON_TIME),
            Push("v1.1.0", START + 120, TWIN_FAILS, (240,), Twin("c0ffee1", 1, (539,))),
        ]
    )
