"""The redeploy job's pure decisions: the first deploy's count, the order of pushes, twins and
spent pushes, what a deployment event means, settling a record from ECS, and the reconcile
run. Each decision is asserted by its verdict (the action the flow takes); the reasons on-call
reads in Slack are pinned word for word once per function, in its "reason" table."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.deployments import (
    DeploymentRecord,
    DeploymentStatus,
    ImageFacts,
    ServiceDeployment,
    deployment_in_progress,
    is_bootstrap_image,
    primary_deployment_of,
)
from chalicelib.failures import FailureKind, failure_kind
from chalicelib.ledger import Freeze, Lock
from chalicelib.redeploy.decisions import (
    COMPLETED_EVENT,
    FAILED_EVENT,
    IN_PROGRESS_EVENT,
    PLANNED_FREEZE_BY,
    SETTLE_GRACE_SECONDS,
    TWIN_WINDOW_SECONDS,
    OutcomeDecision,
    OutcomeKind,
    PushFacts,
    PushVerdict,
    ReconcileAction,
    desired_count_change,
    ecs_rolled_back,
    freeze_refusal,
    outcome_decision,
    push_order,
    reconcile_decision,
    redeploy_lock_holder,
    report_foreign_failure,
    same_push,
    settle_status,
    spent_push,
    twin_owner,
)

URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/spotops-dev-site"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{URI}:bootstrap", True),
        ("localhost:4566/spotops-dev-site:bootstrap", True),  # a registry with a port
        (f"{URI}@{DIGEST}", False),
        (f"{URI}:v1.2.3", False),
        (f"{URI}:bootstrap-2", False),
        (f"{URI}:not-bootstrap", False),
        ("localhost:4566/bootstrap", False),  # the port is not a tag
        ("", False),
    ],
)
def test_bootstrap_image_is_the_placeholder_tag_only(image: str, expected: bool) -> None:
    assert is_bootstrap_image(image) is expected


def test_first_deploy_sets_the_initial_count() -> None:
    assert desired_count_change(0, f"{URI}:bootstrap", 2) == 2


@pytest.mark.parametrize(
    ("desired", "image", "initial", "why"),
    [
        (0, f"{URI}:bootstrap", 0, "INITIAL_DESIRED_COUNT unset: never change the count"),
        (0, f"{URI}@{DIGEST}", 2, "scaled to 0 on purpose while running a real image"),
        (0, f"{URI}:v1.2.3", 2, "scaled to 0 while running a tagged image"),
        (2, f"{URI}:bootstrap", 3, "already running tasks (someone set a count)"),
        (2, f"{URI}@{DIGEST}", 3, "an ordinary later push"),
        (None, f"{URI}:bootstrap", 2, "ECS did not say the count: never guess"),
    ],
)
def test_count_is_left_alone(desired: int | None, image: str, initial: int, why: str) -> None:
    assert desired_count_change(desired, image, initial) is None, why


# ---- failures, outcomes, reconcile --------------------------------------------------------


DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/site"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ThrottlingException", FailureKind.TRANSIENT),
        ("ServerException", FailureKind.TRANSIENT),
        ("AccessDeniedException", FailureKind.DENIED),
        ("ClientException", FailureKind.REFUSED),
        ("InvalidParameterException", FailureKind.REFUSED),
        ("ImageNotFoundException", FailureKind.MISSING),
        ("", FailureKind.UNKNOWN),
    ],
)
def test_failures_are_classified_by_code(code: str, kind: FailureKind) -> None:
    assert failure_kind(code) is kind


def record(status: DeploymentStatus, deployment_id: str = "ecs-svc/1") -> DeploymentRecord:
    return DeploymentRecord(deployment_id, DIGEST, "v1", status, pushed_at=100.0)


@pytest.mark.parametrize(
    ("event", "rollback", "status", "running", "kind", "new_status", "release"),
    [
        (
            COMPLETED_EVENT,
            False,
            DeploymentStatus.IN_PROGRESS,
            f"{REPO}@{DIGEST}",
            OutcomeKind.SUCCEEDED,
            DeploymentStatus.COMPLETED,
            True,
        ),
        (
            COMPLETED_EVENT,
            False,
            DeploymentStatus.IN_PROGRESS,
            None,
            OutcomeKind.SUCCEEDED,
            DeploymentStatus.COMPLETED,
            True,
        ),
        (
            COMPLETED_EVENT,
            False,
            DeploymentStatus.IN_PROGRESS,
            f"{REPO}@{OTHER}",
            OutcomeKind.ROLLED_BACK,
            DeploymentStatus.ROLLED_BACK,
            True,
        ),
        (
            COMPLETED_EVENT,
            False,
            DeploymentStatus.ROLLING_BACK,
            None,
            OutcomeKind.ROLLED_BACK,
            DeploymentStatus.ROLLED_BACK,
            True,
        ),
        (
            FAILED_EVENT,
            False,
            DeploymentStatus.IN_PROGRESS,
            None,
            OutcomeKind.FAILED,
            DeploymentStatus.FAILED,
            True,
        ),
        (
            IN_PROGRESS_EVENT,
            True,
            DeploymentStatus.IN_PROGRESS,
            None,
            OutcomeKind.ROLLING_BACK,
            DeploymentStatus.ROLLING_BACK,
            False,
        ),
        (
            IN_PROGRESS_EVENT,
            False,
            DeploymentStatus.IN_PROGRESS,
            None,
            OutcomeKind.PROGRESS,
            None,
            False,
        ),
        (FAILED_EVENT, False, DeploymentStatus.COMPLETED, None, OutcomeKind.STALE, None, False),
        (IN_PROGRESS_EVENT, True, DeploymentStatus.FAILED, None, OutcomeKind.STALE, None, False),
        (COMPLETED_EVENT, False, DeploymentStatus.FAILED, None, OutcomeKind.STALE, None, False),
    ],
)
def test_what_an_event_about_our_deployment_means(
    event, rollback, status, running, kind, new_status, release
) -> None:
    decision = outcome_decision(
        event_name=event,
        deployment_id="ecs-svc/1",
        is_rollback=rollback,
        record=record(status),
        running_image=running,
    )
    assert decision.kind is kind
    assert decision.record_status == new_status
    assert decision.release_lock is release


def test_events_about_other_deployments_or_unknown_names_change_nothing() -> None:
    ours = record(DeploymentStatus.IN_PROGRESS)
    foreign = outcome_decision(
        event_name=FAILED_EVENT,
        deployment_id="ecs-svc/2",
        is_rollback=False,
        record=ours,
        running_image=None,
    )
    unknown = outcome_decision(
        event_name="SERVICE_DEPLOYMENT_PAUSED",
        deployment_id="ecs-svc/1",
        is_rollback=False,
        record=ours,
        running_image=None,
    )
    nothing = outcome_decision(
        event_name=COMPLETED_EVENT,
        deployment_id="ecs-svc/1",
        is_rollback=False,
        record=None,
        running_image=None,
    )
    assert foreign.kind is OutcomeKind.FOREIGN
    assert unknown.kind is OutcomeKind.UNKNOWN
    assert nothing.kind is OutcomeKind.FOREIGN
    for decision in (foreign, unknown, nothing):
        assert (decision.record_status, decision.release_lock) == (None, False)


NEWEST = ImageFacts(OTHER, "v2", pushed_at=200.0)
DONE = ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "COMPLETED")


@pytest.mark.parametrize(
    ("kwargs", "action", "settle"),
    [
        ({"newest": None}, ReconcileAction.NOTHING, None),
        # Running the newest, deployed by someone else: up to date, and ours superseded.
        (
            {"running_image": f"{REPO}@{OTHER}"},
            ReconcileAction.UP_TO_DATE,
            DeploymentStatus.SUPERSEDED,
        ),
        ({"in_progress": True}, ReconcileAction.WAIT, None),
        ({"newest_handled": "deployed"}, ReconcileAction.SKIP, None),
        ({"newest_handled": "refused"}, ReconcileAction.SKIP, None),
        ({"newest": ImageFacts(OTHER, "v0", 50.0)}, ReconcileAction.SKIP, None),
        ({}, ReconcileAction.DEPLOY, None),
        # A manual rollback of our completed deployment: recorded, never undone.
        (
            {"running_image": f"{REPO}:bootstrap", "newest_handled": "deployed"},
            ReconcileAction.SKIP,
            DeploymentStatus.SUPERSEDED,
        ),
        # Our deployment is still open but ECS finished: its outcome event was lost.
        (
            {"latest": record(DeploymentStatus.IN_PROGRESS), "deployments": [DONE]},
            ReconcileAction.DEPLOY,
            DeploymentStatus.COMPLETED,
        ),
        (
            {
                "latest": record(DeploymentStatus.IN_PROGRESS),
                "running_image": f"{REPO}:old",
                "newest_handled": None,
                "record_age": 3600.0,
            },
            ReconcileAction.DEPLOY,
            DeploymentStatus.ROLLED_BACK,
        ),
        # ... but not while the record is young and ECS does not list it (issue 22, item 7).
        (
            {
                "latest": record(DeploymentStatus.IN_PROGRESS),
                "running_image": f"{REPO}:old",
                "record_age": 5.0,
            },
            ReconcileAction.WAIT,
            None,
        ),
        (
            {"latest": record(DeploymentStatus.IN_PROGRESS), "in_progress": True},
            ReconcileAction.WAIT,
            None,
        ),
    ],
)
def test_reconcile_deploys_only_a_lost_push(kwargs, action, settle) -> None:
    facts = {
        "newest": NEWEST,
        "running_image": f"{REPO}@{DIGEST}",
        "in_progress": False,
        "latest": record(DeploymentStatus.COMPLETED),
        "newest_handled": None,
        **kwargs,
    }
    decision = reconcile_decision(**facts)
    assert decision.action is action, decision.reason
    assert decision.settle == settle


def test_the_primary_deployment_tells_whether_ecs_took_our_update() -> None:
    deployments = [
        ServiceDeployment("ecs-svc/new", "PRIMARY", "td:2", "IN_PROGRESS"),
        ServiceDeployment("ecs-svc/old", "ACTIVE", "td:1", "COMPLETED"),
    ]
    assert primary_deployment_of(deployments, "td:2") == "ecs-svc/new"
    assert primary_deployment_of(deployments, "td:1") is None
    assert deployment_in_progress(deployments)
    assert not deployment_in_progress([ServiceDeployment("a", "PRIMARY", "td:1", "COMPLETED")])


# ---- pushes, ordered by their own time --------------------------------------------------------

T = 1795860000.0  # 2026-11-28 10:00:00 UTC
A = PushFacts("v1.0.0 (sha256:aaaa)", T, T)  # pushed first
B = PushFacts("v1.1.0 (sha256:bbbb)", T + 300, T + 300)  # pushed after


def test_a_late_push_older_than_the_image_running_changes_nothing() -> None:
    order = push_order(A, running=B, latest=B, handled_at=None)
    assert order.verdict is PushVerdict.OLDER
    assert order.reason == (
        "v1.0.0 (sha256:aaaa) not deployed: older than the image running, "
        "v1.1.0 (sha256:bbbb) pushed at 2026-11-28 10:05:00 UTC"
    )
    assert push_order(B, running=A, latest=A, handled_at=None).verdict is PushVerdict.NEWER


def test_an_old_digest_tagged_again_is_a_new_push() -> None:
    """ECR's imagePushedAt of a re-tagged digest is its first push; the event's time is not."""
    retagged = PushFacts("v1.1.1 (sha256:aaaa)", T, T + 600)
    assert push_order(retagged, running=B, latest=B, handled_at=T).verdict is PushVerdict.NEWER


def test_the_image_running_is_as_new_as_the_push_that_deployed_it() -> None:
    """B runs because it was tagged again at T + 900 (the ledger's record of that push): a
    push made before then is older, though ECR says B was first pushed at T + 300."""
    running = PushFacts("v1.1.1 (sha256:bbbb)", T + 300, T + 900)
    between = PushFacts("v1.0.5 (sha256:cccc)", T + 600, T + 600)
    order = push_order(between, running=running, latest=running, handled_at=None)
    assert order.verdict is PushVerdict.OLDER
    assert "pushed at 2026-11-28 10:15:00 UTC" in order.reason


def test_a_rollback_after_a_failed_deployment_stands() -> None:
    """B failed and the service went back to A: B's push delivered again was handled, and a
    push older than B (C, late) changes nothing either."""
    again = push_order(B, running=A, latest=None, handled_at=B.event_at)
    assert again.verdict is PushVerdict.HANDLED
    assert "already handled" in again.reason
    late = PushFacts("v1.0.5 (sha256:cccc)", T + 100, T + 100)
    order = push_order(late, running=A, latest=B, handled_at=None)
    assert order.verdict is PushVerdict.OLDER
    assert "older than v1.1.0 (sha256:bbbb), the last image deployed" in order.reason
    pushed_again = PushFacts("v1.1.0 (sha256:bbbb)", T + 300, T + 1200)  # a person retries
    assert push_order(pushed_again, running=A, latest=None, handled_at=T + 300).verdict is (
        PushVerdict.NEWER
    )


@pytest.mark.parametrize(
    ("running", "latest"),
    [
        (None, None),  # the first deploy: the placeholder is no image of ours
        (PushFacts("v1.0.0 (sha256:aaaa)", T + 300, None), None),  # same second: no order
    ],
)
def test_a_push_is_deployed_when_nothing_newer_is_known(
    running: PushFacts | None, latest: PushFacts | None
) -> None:
    push = PushFacts("v1.1.0 (sha256:bbbb)", T + 300, None)  # found by reconcile: no event
    assert push_order(push, running=running, latest=latest, handled_at=T + 999).verdict is (
        PushVerdict.NEWER
    )


# ---- twin pushes: one digest under two tags (issue 22, item 6) ------------------------------


def _record(tag: str, digest: str = DIGEST) -> DeploymentRecord:
    return DeploymentRecord("ecs-svc/1", digest, tag, DeploymentStatus.IN_PROGRESS)


@pytest.mark.parametrize(
    ("tag", "lock", "record", "owner"),
    [
        ("0a1b2c3", {"holder": redeploy_lock_holder(DIGEST), "tag": "v1.2.3"}, None, "v1.2.3"),
        ("v1.2.3", {"holder": redeploy_lock_holder(DIGEST), "tag": "v1.2.3"}, None, None),
        # The lock is this digest's but not yet claimed: another push of it is in flight.
        ("0a1b2c3", {"holder": redeploy_lock_holder(DIGEST)}, None, ""),
        # Another image's lock, or chaos's, says nothing about twins.
        (
            "0a1b2c3",
            {"holder": redeploy_lock_holder("sha256:" + "cd" * 32), "tag": "x"},
            None,
            None,
        ),
        ("0a1b2c3", {"holder": "chaos:run-1"}, None, None),
        # No lock (the deployment finished): the record of the same digest names the owner.
        ("0a1b2c3", None, _record("v1.2.3"), "v1.2.3"),
        ("v1.2.3", None, _record("v1.2.3"), None),
        ("0a1b2c3", None, _record("v1.2.3", "sha256:" + "cd" * 32), None),
        ("0a1b2c3", None, None, None),
    ],
)
def test_twin_owner_is_the_tag_that_claimed_the_digest(
    tag: str, lock: dict[str, str] | None, record: DeploymentRecord | None, owner: str | None
) -> None:
    assert twin_owner(DIGEST, tag, lock=Lock.from_item(lock), record=record) == owner


# ---- settling a record from ECS: only what ECS clearly says (issue 22, item 7) ---------------

OURS = DIGEST
OLD = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("status", "running", "deployments", "age", "settled", "why"),
    [
        (
            DeploymentStatus.IN_PROGRESS,
            OLD,
            [ServiceDeployment("ecs-svc/0", "PRIMARY", "td:1", "COMPLETED")],
            5.0,
            None,
            "ECS does not list ours yet (DescribeServices lags, or the push came after the read)",
        ),
        (
            DeploymentStatus.IN_PROGRESS,
            OLD,
            [ServiceDeployment("ecs-svc/0", "PRIMARY", "td:1", "COMPLETED")],
            3600.0,
            DeploymentStatus.ROLLED_BACK,
            "ours is gone for long and another image runs: rolled back",
        ),
        (
            DeploymentStatus.IN_PROGRESS,
            OURS,
            [],
            3600.0,
            DeploymentStatus.COMPLETED,
            "ours is gone for long and its image runs",
        ),
        (
            DeploymentStatus.IN_PROGRESS,
            OURS,
            [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "COMPLETED")],
            5.0,
            DeploymentStatus.COMPLETED,
            "ECS says ours completed and its image runs",
        ),
        (
            DeploymentStatus.IN_PROGRESS,
            OLD,
            [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "COMPLETED")],
            3600.0,
            None,
            "ECS says ours completed but another image runs: not clear, leave it",
        ),
        (
            DeploymentStatus.ROLLING_BACK,
            OLD,
            [ServiceDeployment("ecs-svc/1", "ACTIVE", "td:2", "FAILED")],
            5.0,
            DeploymentStatus.ROLLED_BACK,
            "ECS says ours failed and the old image runs",
        ),
        (
            DeploymentStatus.IN_PROGRESS,
            OURS,
            [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "")],
            5.0,
            None,
            "no rollout state yet: not before the grace period",
        ),
        (
            DeploymentStatus.COMPLETED,
            OLD,
            [],
            5.0,
            DeploymentStatus.SUPERSEDED,
            "our completed deployment replaced by someone",
        ),
        (DeploymentStatus.FAILED, OLD, [], 3600.0, None, "already settled"),
    ],
)
def test_a_record_is_settled_only_from_what_ecs_says_about_it(
    status: DeploymentStatus,
    running: str,
    deployments: list[ServiceDeployment],
    age: float,
    settled: DeploymentStatus | None,
    why: str,
) -> None:
    decided = settle_status(
        record(status),
        running_digest=running,
        in_progress=False,
        deployments=deployments,
        record_age=age,
    )
    assert decided == settled, why


def test_nothing_is_settled_while_ecs_deploys() -> None:
    rolling = [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "IN_PROGRESS")]
    decided = settle_status(
        record(DeploymentStatus.IN_PROGRESS),
        running_digest=OLD,
        in_progress=True,
        deployments=rolling,
        record_age=3600.0,
    )
    assert decided is None


# ---- the hold-back that never expires (issue 22, item 4) --------------------------------------


@pytest.mark.parametrize(
    ("high_water", "running_pushed_at", "action"),
    [
        (None, None, ReconcileAction.DEPLOY),
        (200.0, None, ReconcileAction.SKIP),  # the newest was deployed (and rolled back)
        (250.0, None, ReconcileAction.SKIP),  # something pushed later was deployed
        (150.0, None, ReconcileAction.DEPLOY),  # pushed after the newest ever deployed
        (None, 300.0, ReconcileAction.SKIP),  # older than the image running
    ],
)
def test_reconcile_never_deploys_what_the_hold_back_or_the_running_image_says_is_old(
    high_water: float | None, running_pushed_at: float | None, action: ReconcileAction
) -> None:
    """With every expiring record gone (no deployment record, no image record)."""
    decision = reconcile_decision(
        newest=NEWEST,
        running_image=f"{REPO}@{DIGEST}",
        in_progress=False,
        latest=None,
        newest_handled=None,
        high_water=high_water,
        running_pushed_at=running_pushed_at,
    )
    assert decision.action is action, decision.reason


@pytest.mark.parametrize(
    ("kind", "event", "deployment", "superseded", "report"),
    [
        (OutcomeKind.FOREIGN, FAILED_EVENT, "ecs-svc/9", None, True),
        (OutcomeKind.FOREIGN, FAILED_EVENT, "ecs-svc/9", "ecs-svc/8", True),
        (OutcomeKind.FOREIGN, FAILED_EVENT, "ecs-svc/9", "ecs-svc/9", False),  # ours, superseded
        (OutcomeKind.FOREIGN, IN_PROGRESS_EVENT, "ecs-svc/9", None, False),  # a rollback's own
        (OutcomeKind.FOREIGN, COMPLETED_EVENT, "ecs-svc/9", None, False),
        (OutcomeKind.FAILED, FAILED_EVENT, "ecs-svc/9", None, False),  # ours: reported as such
        (OutcomeKind.STALE, FAILED_EVENT, "ecs-svc/9", None, False),
    ],
)
def test_only_the_failure_of_a_deployment_we_did_not_start_is_reported_as_foreign(
    kind: OutcomeKind, event: str, deployment: str, superseded: str | None, report: bool
) -> None:
    decision = OutcomeDecision(kind)
    assert (
        report_foreign_failure(
            decision, event_name=event, deployment_id=deployment, superseded_id=superseded
        )
        is report
    )


# ---- a twin's or late push of a digest whose deployment failed (issue 22, item 6) -------------

PUSHED = T + 120  # ECR's imagePushedAt of the digest: its first push (v1.1.0)


def test_the_twin_window_is_a_minute() -> None:
    """Twins are seconds apart; a person pushes a digest again only after an outcome."""
    assert TWIN_WINDOW_SECONDS == 60.0


@pytest.mark.parametrize(
    ("event_at", "handled_event_at", "same"),
    [
        (PUSHED, None, True),  # the first push itself
        (PUSHED + 1, None, True),  # its twin, a second later
        (PUSHED - 1, None, True),  # whole seconds: an event's time may read before ECR's
        (PUSHED + TWIN_WINDOW_SECONDS, None, True),  # exactly the window: still that push
        (PUSHED + TWIN_WINDOW_SECONDS + 0.001, None, False),  # just after: a new push
        (PUSHED + TWIN_WINDOW_SECONDS + 1, None, False),
        (PUSHED + 600, None, False),  # a rollback or retry by push, ten minutes later
        # A digest pushed again later (its image record keeps that push's event time): the
        # twin of that push is that push, by the window around the handled event.
        (PUSHED + 3600 + 1, PUSHED + 3600, True),
        (PUSHED + 3600 + TWIN_WINDOW_SECONDS, PUSHED + 3600, True),
        (PUSHED + 3600 + TWIN_WINDOW_SECONDS + 1, PUSHED + 3600, False),
        (None, None, True),  # the reconcile run: no push of its own, only the first one
    ],
)
def test_a_push_event_is_the_same_push_within_the_twin_window(
    event_at: float | None, handled_event_at: float | None, same: bool
) -> None:
    assert same_push(event_at, first_pushed_at=PUSHED, handled_event_at=handled_event_at) is same


def test_the_window_can_be_narrowed() -> None:
    assert same_push(PUSHED + 10, first_pushed_at=PUSHED, window=10.0)
    assert not same_push(PUSHED + 11, first_pushed_at=PUSHED, window=10.0)
    assert not same_push(PUSHED, first_pushed_at=None)  # nothing known: a push of its own


def _deployed(
    status: DeploymentStatus, tag: str = "v1.1.0", digest: str = DIGEST
) -> DeploymentRecord:
    return DeploymentRecord(
        "ecs-svc/3",
        digest,
        tag,
        status,
        pushed_at=PUSHED,
        updated_at=T + 420,  # 2026-11-28 10:07:00 UTC: ECS failed it
        event_at=PUSHED,
    )


def _push(tag: str, event_at: float | None) -> PushFacts:
    return PushFacts(f"{tag} ({DIGEST[:19]})", PUSHED, event_at)


FAILED_AT = "2026-11-28 10:07:00 UTC"


def test_a_late_twin_of_a_failed_deployment_is_held_back() -> None:
    order = spent_push(
        _push("c0ffee1", PUSHED + 1),
        DIGEST,
        "c0ffee1",
        deployed=_deployed(DeploymentStatus.FAILED),
        handled_event_at=PUSHED,
    )
    assert order is not None
    assert order.verdict is PushVerdict.SPENT
    assert order.reason == (
        f"c0ffee1 ({DIGEST[:19]}) not deployed: the same image as v1.1.0, whose deployment "
        f"failed at {FAILED_AT}"
    )


@pytest.mark.parametrize(
    ("status", "ended"),
    [
        (DeploymentStatus.FAILED, f"whose deployment failed at {FAILED_AT}"),
        (DeploymentStatus.ROLLING_BACK, f"whose deployment failed at {FAILED_AT}"),
        (DeploymentStatus.ROLLED_BACK, f"whose deployment failed at {FAILED_AT}"),
        (DeploymentStatus.SUPERSEDED, f"whose deployment was replaced at {FAILED_AT}"),
        (
            DeploymentStatus.COMPLETED,
            f"whose deployment completed at {FAILED_AT} and no longer runs",
        ),
    ],
)
def test_a_push_deployed_once_is_not_deployed_again_whatever_ended_it(
    status: DeploymentStatus, ended: str
) -> None:
    order = spent_push(
        _push("c0ffee1", PUSHED + 1),
        DIGEST,
        "c0ffee1",
        deployed=_deployed(status),
        handled_event_at=PUSHED,
    )
    assert order is not None
    assert order.reason.endswith(ended), order.reason


def test_a_release_push_after_reconcile_deployed_its_twin_is_held_back() -> None:
    """The reconcile run deployed the digest as c0ffee2 (no event time, its image record has
    none); v1.2.0's event, an hour late, is still the digest's first push."""
    reconciled = dataclasses.replace(_deployed(DeploymentStatus.FAILED, "c0ffee2"), event_at=0.0)
    order = spent_push(
        _push("v1.2.0", PUSHED), DIGEST, "v1.2.0", deployed=reconciled, handled_event_at=None
    )
    assert order is not None
    assert "the same image as c0ffee2, whose deployment failed" in order.reason


def test_the_reconcile_run_never_deploys_a_failed_digest_again_under_any_tag() -> None:
    for tag in ("v1.1.0", "c0ffee1"):
        order = spent_push(
            _push(tag, None),
            DIGEST,
            tag,
            deployed=_deployed(DeploymentStatus.ROLLED_BACK),
            handled_event_at=PUSHED,
        )
        assert order is not None
        assert order.verdict is PushVerdict.SPENT
    same_tag = spent_push(
        _push("v1.1.0", None),
        DIGEST,
        "v1.1.0",
        deployed=_deployed(DeploymentStatus.ROLLED_BACK),
        handled_event_at=PUSHED,
    )
    assert same_tag is not None
    assert (
        same_tag.reason
        == f"v1.1.0 ({DIGEST[:19]}) not deployed: its deployment failed at {FAILED_AT}"
    )


@pytest.mark.parametrize(
    ("tag", "event_at", "deployed", "why"),
    [
        # A person pushes the failed digest again, past the window: a new push.
        (
            "v1.1.1",
            PUSHED + TWIN_WINDOW_SECONDS + 1,
            _deployed(DeploymentStatus.FAILED),
            "a new push, just past the window",
        ),
        ("v1.1.1", PUSHED + 600, _deployed(DeploymentStatus.FAILED), "a retry by push"),
        # The very push that deployed it, delivered again: push_order's HANDLED says so.
        ("v1.1.0", PUSHED, _deployed(DeploymentStatus.FAILED), "a repeated delivery"),
        # Still deploying: the lock (twin) or ECS's own state (wait) decides.
        ("c0ffee1", PUSHED + 1, _deployed(DeploymentStatus.IN_PROGRESS), "still open"),
        # The last deployment was of another digest: push_order decides.
        (
            "c0ffee1",
            PUSHED + 1,
            _deployed(DeploymentStatus.FAILED, digest="sha256:" + "cd" * 32),
            "another image",
        ),
        ("c0ffee1", PUSHED + 1, None, "never deployed"),
    ],
)
def test_a_new_push_or_another_image_is_not_held_back(
    tag: str, event_at: float, deployed: DeploymentRecord | None, why: str
) -> None:
    order = spent_push(
        _push(tag, event_at), DIGEST, tag, deployed=deployed, handled_event_at=PUSHED
    )
    assert order is None, why


def test_the_twin_window_is_exact_for_a_late_twin() -> None:
    failed = _deployed(DeploymentStatus.FAILED)
    at_window = spent_push(
        _push("c0ffee1", PUSHED + TWIN_WINDOW_SECONDS),
        DIGEST,
        "c0ffee1",
        deployed=failed,
        handled_event_at=PUSHED,
    )
    past = spent_push(
        _push("c0ffee1", PUSHED + TWIN_WINDOW_SECONDS + 1),
        DIGEST,
        "c0ffee1",
        deployed=failed,
        handled_event_at=PUSHED,
    )
    assert at_window is not None
    assert past is None


@pytest.mark.parametrize(
    ("status", "ended"),
    [
        (DeploymentStatus.FAILED, "which failed"),
        (DeploymentStatus.ROLLED_BACK, "which was rolled back"),
        (DeploymentStatus.SUPERSEDED, "which was replaced"),
    ],
)
def test_reconcile_never_deploys_the_digest_of_the_last_deployment_when_it_does_not_run(
    status: DeploymentStatus, ended: str
) -> None:
    """Whatever tag the run finds it under, and with its image record gone."""
    last = DeploymentRecord("ecs-svc/3", OTHER, "v2", status, pushed_at=200.0)
    decision = reconcile_decision(
        newest=ImageFacts(OTHER, "c0ffee2", pushed_at=200.0),
        running_image=f"{REPO}@{DIGEST}",
        in_progress=False,
        latest=last,
        newest_handled=None,
    )
    assert decision.action is ReconcileAction.SKIP
    assert f"c0ffee2 ({OTHER[:19]}) is the image of the last deployment, v2" in decision.reason
    assert ended in decision.reason


# ---- boundaries, the reasons on-call reads, and the policy constants (issue 28) -------------


@pytest.fixture
def not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine whose local time is not UTC (5 hours behind, no tz database needed): the
    times in a reason are UTC wherever the job runs."""
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_policy_constants_are_reviewed_decisions() -> None:
    """A changed default is a reviewed change. The settle grace: a record younger than ten
    minutes is never settled from ECS's silence about it (DescribeServices lags; a push may
    land between the reconcile run's reads). The event names are ECS's own: a typo would make
    every outcome event UNKNOWN."""
    assert SETTLE_GRACE_SECONDS == 600
    assert TWIN_WINDOW_SECONDS == 60.0
    assert (COMPLETED_EVENT, FAILED_EVENT, IN_PROGRESS_EVENT) == (
        "SERVICE_DEPLOYMENT_COMPLETED",
        "SERVICE_DEPLOYMENT_FAILED",
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
    )


@pytest.mark.parametrize(
    ("initial", "expected"),
    [
        pytest.param(1, 1, id="one-task-is-lifted"),
        pytest.param(2, 2, id="two-tasks-are-lifted"),
        pytest.param(0, None, id="zero-is-unset"),
        pytest.param(-1, None, id="negative-is-unset"),
    ],
)
def test_the_first_deploy_lifts_any_positive_initial_count(
    initial: int, expected: int | None
) -> None:
    assert desired_count_change(0, f"{URI}:bootstrap", initial) == expected


@pytest.mark.parametrize(
    ("tag", "lock", "record"),
    [
        pytest.param(None, {"holder": redeploy_lock_holder(DIGEST)}, None, id="lock"),
        pytest.param(None, None, _record(""), id="record"),
    ],
)
def test_an_untagged_push_is_the_work_of_an_untagged_claim(
    tag: str | None, lock: dict[str, str] | None, record: DeploymentRecord | None
) -> None:
    """An untagged push and a lock or record naming no tag are the same push: no twin."""
    assert twin_owner(DIGEST, tag, lock=Lock.from_item(lock), record=record) is None


def _at(label: str, at: float, event_at: float | None = None) -> PushFacts:
    return PushFacts(label, at, at if event_at is None else event_at)


@pytest.mark.parametrize(
    ("push", "running", "latest", "handled_at", "verdict"),
    [
        # The last image deployed: a push of the same second is not older (no order).
        pytest.param(_at("p", T), None, _at("l", T), None, PushVerdict.NEWER, id="latest-same"),
        pytest.param(_at("p", T - 1), None, _at("l", T), None, PushVerdict.OLDER, id="latest-1"),
        pytest.param(_at("p", T + 1), None, _at("l", T), None, PushVerdict.NEWER, id="latest+1"),
        # The image running: the same.
        pytest.param(_at("p", T), _at("r", T), None, None, PushVerdict.NEWER, id="running-same"),
        pytest.param(_at("p", T - 1), _at("r", T), None, None, PushVerdict.OLDER, id="running-1"),
        # The handled push: an event at its time is that push again; a second later is not.
        pytest.param(_at("p", T), None, None, T, PushVerdict.HANDLED, id="handled-same"),
        pytest.param(_at("p", T - 1), None, None, T, PushVerdict.HANDLED, id="handled-before"),
        pytest.param(_at("p", T + 1), None, None, T, PushVerdict.NEWER, id="handled+1"),
    ],
)
def test_a_push_is_older_only_when_pushed_strictly_before(
    push: PushFacts,
    running: PushFacts | None,
    latest: PushFacts | None,
    handled_at: float | None,
    verdict: PushVerdict,
) -> None:
    assert push_order(push, running=running, latest=latest, handled_at=handled_at).verdict is (
        verdict
    )


@pytest.mark.usefixtures("not_utc")
@pytest.mark.parametrize(
    ("running", "latest", "handled_at", "verdict", "reason"),
    [
        pytest.param(
            None,
            None,
            T + 300,
            PushVerdict.HANDLED,
            "v1.1.0 (sha256:bbbb): this push (2026-11-28 10:05:00 UTC) was already handled; "
            "a late or repeated delivery changes nothing",
            id="handled",
        ),
        pytest.param(
            _at("v1.2.0 (sha256:cccc)", T + 600),
            None,
            None,
            PushVerdict.OLDER,
            "v1.1.0 (sha256:bbbb) not deployed: older than the image running, "
            "v1.2.0 (sha256:cccc) pushed at 2026-11-28 10:10:00 UTC",
            id="older-than-running",
        ),
        pytest.param(
            None,
            _at("v1.2.0 (sha256:cccc)", T + 600),
            None,
            PushVerdict.OLDER,
            "v1.1.0 (sha256:bbbb) not deployed: older than v1.2.0 (sha256:cccc), the last "
            "image deployed (pushed at 2026-11-28 10:10:00 UTC)",
            id="older-than-latest",
        ),
        pytest.param(None, None, None, PushVerdict.NEWER, "", id="newer"),
    ],
)
def test_push_order_the_reason_on_call_reads(
    running: PushFacts | None,
    latest: PushFacts | None,
    handled_at: float | None,
    verdict: PushVerdict,
    reason: str,
) -> None:
    order = push_order(B, running=running, latest=latest, handled_at=handled_at)
    assert (order.verdict, order.reason) == (verdict, reason)


def test_a_twin_of_a_push_made_again_later_is_spent_by_the_handled_push() -> None:
    """The digest was pushed again an hour after its first push (its image record keeps that
    push's event time), deployed and failed: that push's twin, a second later, is spent,
    though it is long past the digest's first push."""
    again = PUSHED + 3600
    failed = dataclasses.replace(_deployed(DeploymentStatus.FAILED), event_at=again)
    twin = spent_push(
        _push("c0ffee1", again + 1), DIGEST, "c0ffee1", deployed=failed, handled_event_at=again
    )
    assert twin is not None
    assert twin.verdict is PushVerdict.SPENT


def test_spent_push_uses_the_window_it_is_given() -> None:
    failed = _deployed(DeploymentStatus.FAILED)

    def spent(event_at: float) -> bool:
        order = spent_push(
            _push("c0ffee1", event_at),
            DIGEST,
            "c0ffee1",
            deployed=failed,
            handled_event_at=PUSHED,
            window=10.0,
        )
        return order is not None and order.verdict is PushVerdict.SPENT

    assert spent(PUSHED + 10)
    assert not spent(PUSHED + 11)
    assert not spent(PUSHED + 30)  # inside the default minute, outside this window


def test_the_untagged_push_that_deployed_an_untagged_image_delivered_again_is_handled() -> None:
    """Left to push_order's HANDLED, as for a tagged push: no tag on either side is one tag."""
    untagged = _deployed(DeploymentStatus.FAILED, tag="")
    order = spent_push(
        PushFacts(f"untagged ({DIGEST[:19]})", PUSHED, PUSHED),
        DIGEST,
        None,
        deployed=untagged,
        handled_event_at=PUSHED,
    )
    assert order is None


@pytest.mark.usefixtures("not_utc")
@pytest.mark.parametrize(
    ("tag", "deployed_tag", "status", "reason"),
    [
        pytest.param(
            "c0ffee1",
            "v1.1.0",
            DeploymentStatus.FAILED,
            "c0ffee1 (sha256:aaaaaaaaaaaa) not deployed: the same image as v1.1.0, whose "
            "deployment failed at 2026-11-28 10:07:00 UTC",
            id="twin-failed",
        ),
        pytest.param(
            "c0ffee1",
            "v1.1.0",
            DeploymentStatus.SUPERSEDED,
            "c0ffee1 (sha256:aaaaaaaaaaaa) not deployed: the same image as v1.1.0, whose "
            "deployment was replaced at 2026-11-28 10:07:00 UTC",
            id="twin-superseded",
        ),
        pytest.param(
            "c0ffee1",
            "v1.1.0",
            DeploymentStatus.COMPLETED,
            "c0ffee1 (sha256:aaaaaaaaaaaa) not deployed: the same image as v1.1.0, whose "
            "deployment completed at 2026-11-28 10:07:00 UTC and no longer runs",
            id="twin-completed",
        ),
        pytest.param(
            "c0ffee1",
            "",
            DeploymentStatus.FAILED,
            "c0ffee1 (sha256:aaaaaaaaaaaa) not deployed: the same image as untagged, whose "
            "deployment failed at 2026-11-28 10:07:00 UTC",
            id="twin-of-untagged",
        ),
        pytest.param(
            "v1.1.0",
            "v1.1.0",
            DeploymentStatus.ROLLED_BACK,
            "v1.1.0 (sha256:aaaaaaaaaaaa) not deployed: its deployment failed at "
            "2026-11-28 10:07:00 UTC",
            id="reconcile-same-tag",
        ),
        pytest.param(
            None,
            "",
            DeploymentStatus.FAILED,
            "untagged (sha256:aaaaaaaaaaaa) not deployed: its deployment failed at "
            "2026-11-28 10:07:00 UTC",
            id="reconcile-untagged",
        ),
    ],
)
def test_spent_push_the_reason_on_call_reads(
    tag: str | None, deployed_tag: str, status: DeploymentStatus, reason: str
) -> None:
    """From the reconcile run (no event of its own), so only the tags tell twin from self."""
    order = spent_push(
        _push(tag or "untagged", None),
        DIGEST,
        tag,
        deployed=_deployed(status, tag=deployed_tag),
        handled_event_at=PUSHED,
    )
    assert order is not None
    assert (order.verdict, order.reason) == (PushVerdict.SPENT, reason)


@pytest.mark.parametrize(
    ("event", "rollback", "status", "kind", "new_status", "release"),
    [
        pytest.param(
            IN_PROGRESS_EVENT,
            True,
            DeploymentStatus.ROLLING_BACK,
            OutcomeKind.STALE,
            None,
            False,
            id="rollback-notice-again",
        ),
        pytest.param(
            FAILED_EVENT,
            False,
            DeploymentStatus.ROLLING_BACK,
            OutcomeKind.FAILED,
            DeploymentStatus.FAILED,
            True,
            id="failed-while-rolling-back",
        ),
        pytest.param(
            COMPLETED_EVENT,
            False,
            DeploymentStatus.ROLLED_BACK,
            OutcomeKind.STALE,
            None,
            False,
            id="completed-after-rolled-back",
        ),
    ],
)
def test_what_an_event_about_our_deployment_means_in_its_other_states(
    event: str,
    rollback: bool,
    status: DeploymentStatus,
    kind: OutcomeKind,
    new_status: DeploymentStatus | None,
    release: bool,
) -> None:
    decision = outcome_decision(
        event_name=event,
        deployment_id="ecs-svc/1",
        is_rollback=rollback,
        record=record(status),
        running_image=f"{REPO}@{DIGEST}",
    )
    assert (decision.kind, decision.record_status, decision.release_lock) == (
        kind,
        new_status,
        release,
    )


GRACE = SETTLE_GRACE_SECONDS


@pytest.mark.parametrize(
    ("running", "deployments", "age", "settled"),
    [
        # ECS says ours failed: FAILED while its digest still runs, ROLLED_BACK once not.
        pytest.param(
            OURS,
            [ServiceDeployment("ecs-svc/1", "ACTIVE", "td:2", "FAILED")],
            5.0,
            DeploymentStatus.FAILED,
            id="failed-still-runs",
        ),
        pytest.param(
            OLD,
            [ServiceDeployment("ecs-svc/1", "ACTIVE", "td:2", "FAILED")],
            5.0,
            DeploymentStatus.ROLLED_BACK,
            id="failed-rolled-back",
        ),
        # Listed with no rollout state: finished once the record is as old as the grace.
        pytest.param(
            OURS,
            [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "")],
            GRACE,
            DeploymentStatus.COMPLETED,
            id="no-rollout-state-at-grace",
        ),
        pytest.param(
            OURS,
            [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "")],
            GRACE - 1,
            None,
            id="no-rollout-state-a-second-before",
        ),
        pytest.param(
            OURS,
            [ServiceDeployment("ecs-svc/1", "PRIMARY", "td:2", "IN_PROGRESS")],
            3600.0,
            None,
            id="rollout-in-progress-however-old",
        ),
        pytest.param(
            OURS,
            [ServiceDeployment("ecs-svc/1", "ACTIVE", "td:2", "COMPLETED")],
            3600.0,
            None,
            id="completed-but-not-primary",
        ),
        # Not listed: settled from the running digest once as old as the grace.
        pytest.param(OURS, [], GRACE, DeploymentStatus.COMPLETED, id="unlisted-at-grace"),
        pytest.param(OLD, [], GRACE, DeploymentStatus.ROLLED_BACK, id="unlisted-gone-at-grace"),
        pytest.param(OURS, [], GRACE - 1, None, id="unlisted-a-second-before"),
    ],
)
def test_an_open_record_is_settled_at_exactly_the_grace(
    running: str, deployments: list[ServiceDeployment], age: float, settled: DeploymentStatus | None
) -> None:
    decided = settle_status(
        record(DeploymentStatus.IN_PROGRESS),
        running_digest=running,
        in_progress=False,
        deployments=deployments,
        record_age=age,
    )
    assert decided == settled


def test_the_settle_grace_can_be_given() -> None:
    def settled(age: float) -> DeploymentStatus | None:
        return settle_status(
            record(DeploymentStatus.IN_PROGRESS),
            running_digest=OURS,
            in_progress=False,
            deployments=[],
            record_age=age,
            grace_seconds=60.0,
        )

    assert settled(59.0) is None
    assert settled(60.0) is DeploymentStatus.COMPLETED


V2 = f"v2 ({OTHER[:19]})"  # NEWEST's label
V1 = f"v1 ({DIGEST[:19]})"  # the latest record's label
AWAY = f"{REPO}@{OLD}"  # the service runs neither: our COMPLETED deployment was replaced
NEWEST_AGAIN = DeploymentRecord(
    "ecs-svc/1", OTHER, "v2", DeploymentStatus.COMPLETED, pushed_at=200.0
)


@pytest.mark.usefixtures("not_utc")
@pytest.mark.parametrize(
    ("kwargs", "action", "settle", "reason"),
    [
        pytest.param(
            {"newest": None},
            ReconcileAction.NOTHING,
            DeploymentStatus.SUPERSEDED,
            "no image in the repository matches TAG_PATTERN",
            id="nothing",
        ),
        pytest.param(
            {"running_image": f"{REPO}@{OTHER}"},
            ReconcileAction.UP_TO_DATE,
            DeploymentStatus.SUPERSEDED,
            f"service already runs {V2}",
            id="up-to-date",
        ),
        pytest.param(
            {"running_image": f"{REPO}@{OTHER}", "newest": ImageFacts(OTHER, None, 200.0)},
            ReconcileAction.UP_TO_DATE,
            DeploymentStatus.SUPERSEDED,
            f"service already runs untagged ({OTHER[:19]})",
            id="up-to-date-untagged",
        ),
        # ECS deploys: nothing is settled meanwhile, however clear the ledger's lag looks.
        pytest.param(
            {"in_progress": True},
            ReconcileAction.WAIT,
            None,
            "a deployment is in progress; reconcile waits",
            id="wait",
        ),
        pytest.param(
            {"newest_handled": "deployed"},
            ReconcileAction.SKIP,
            DeploymentStatus.SUPERSEDED,
            f"{V2} was already handled (deployed); push it again to retry",
            id="handled",
        ),
        pytest.param(
            {"latest": NEWEST_AGAIN, "running_image": f"{REPO}@{DIGEST}"},
            ReconcileAction.SKIP,
            DeploymentStatus.SUPERSEDED,
            f"{V2} is the image of the last deployment, {V2}, which was replaced; reconcile "
            "never deploys it again: push it again under a new tag to retry",
            id="last-deployment-replaced",
        ),
        # The running image unreadable: nothing settled, and a completed deployment of the
        # newest digest that is not known to run "no longer runs".
        pytest.param(
            {"latest": NEWEST_AGAIN, "running_image": None},
            ReconcileAction.SKIP,
            None,
            f"{V2} is the image of the last deployment, {V2}, which no longer runs; reconcile "
            "never deploys it again: push it again under a new tag to retry",
            id="last-deployment-no-longer-runs",
        ),
        pytest.param(
            {"newest": ImageFacts(OTHER, "v0", 50.0)},
            ReconcileAction.SKIP,
            DeploymentStatus.SUPERSEDED,
            f"v0 ({OTHER[:19]}) is older than the last deployed image {V1}",
            id="older-than-last",
        ),
        pytest.param(
            {"high_water": 250.0},
            ReconcileAction.SKIP,
            DeploymentStatus.SUPERSEDED,
            f"{V2} is not newer than the newest image ever deployed (pushed at "
            "1970-01-01 00:04:10 UTC): it was deployed, rolled back or superseded; push it "
            "again to deploy it",
            id="high-water",
        ),
        pytest.param(
            {"running_pushed_at": 300.0},
            ReconcileAction.SKIP,
            DeploymentStatus.SUPERSEDED,
            f"{V2} is older than the image running (pushed at 1970-01-01 00:05:00 UTC)",
            id="older-than-running",
        ),
        pytest.param(
            {},
            ReconcileAction.DEPLOY,
            DeploymentStatus.SUPERSEDED,
            f"{V2} was pushed but never deployed",
            id="deploy",
        ),
    ],
)
def test_reconcile_the_reason_on_call_reads(
    kwargs: dict[str, Any],
    action: ReconcileAction,
    settle: DeploymentStatus | None,
    reason: str,
) -> None:
    """Our COMPLETED deployment of v1 was replaced (the service runs neither image), so every
    answer also carries the settle the run writes, whatever it decides about the newest."""
    facts: dict[str, Any] = {
        "newest": NEWEST,
        "running_image": AWAY,
        "in_progress": False,
        "latest": record(DeploymentStatus.COMPLETED),
        "newest_handled": None,
        **kwargs,
    }
    decision = reconcile_decision(**facts)
    assert (decision.action, decision.settle, decision.reason) == (action, settle, reason)


@pytest.mark.parametrize(
    ("kwargs", "action"),
    [
        # The latest deployment's image: pushed at the same time is not newer.
        pytest.param({"newest": ImageFacts(OTHER, "v2", 100.0)}, ReconcileAction.SKIP, id="last"),
        pytest.param(
            {"newest": ImageFacts(OTHER, "v2", 101.0)}, ReconcileAction.DEPLOY, id="last+1"
        ),
        # A record without its push time (0: unknown) holds nothing back by it; the high
        # water still does.
        pytest.param(
            {"latest": dataclasses.replace(record(DeploymentStatus.COMPLETED), pushed_at=0.0)},
            ReconcileAction.DEPLOY,
            id="last-unknown",
        ),
        pytest.param(
            {
                "latest": dataclasses.replace(record(DeploymentStatus.COMPLETED), pushed_at=0.0),
                "high_water": 200.0,
            },
            ReconcileAction.SKIP,
            id="last-unknown-high-water",
        ),
        # The high water: at it is not newer; a second after it is.
        pytest.param({"high_water": 200.0}, ReconcileAction.SKIP, id="high-water"),
        pytest.param({"high_water": 199.0}, ReconcileAction.DEPLOY, id="high-water+1"),
        # The image running: pushed at the same time is not older.
        pytest.param({"running_pushed_at": 200.0}, ReconcileAction.DEPLOY, id="running"),
        pytest.param({"running_pushed_at": 201.0}, ReconcileAction.SKIP, id="running-1"),
        # The digest running is what follows the last "@".
        pytest.param(
            {"running_image": f"{REPO}@mirror@{OTHER}"}, ReconcileAction.UP_TO_DATE, id="digest"
        ),
    ],
)
def test_reconcile_boundaries_at_exactly_each_push_time(
    kwargs: dict[str, Any], action: ReconcileAction
) -> None:
    facts: dict[str, Any] = {
        "newest": NEWEST,
        "running_image": f"{REPO}@{DIGEST}",
        "in_progress": False,
        "latest": record(DeploymentStatus.COMPLETED),
        "newest_handled": None,
        **kwargs,
    }
    decision = reconcile_decision(**facts)
    assert decision.action is action, decision.reason


def test_reconcile_settles_nothing_without_the_running_image() -> None:
    """Unread (None), the service's image says nothing: the open record is left open and the
    run waits, with nothing to settle (not an empty settle)."""
    decision = reconcile_decision(
        newest=NEWEST,
        running_image=None,
        in_progress=False,
        latest=record(DeploymentStatus.IN_PROGRESS),
        newest_handled=None,
        record_age=3600.0,
    )
    assert (decision.action, decision.settle) == (ReconcileAction.WAIT, None)


# ---- the freeze after a rollback ------------------------------------------------------------

FROZE_AT = 1796652120.0  # 2026-12-07 14:02:00 UTC
FROZEN = Freeze(
    True,
    since=FROZE_AT,
    reason="ECS rolled back deployment ecs-svc/1 (circuit breaker)",
    by="ecs",
    deployment_id="ecs-svc/1",
)


@pytest.mark.usefixtures("not_utc")
@pytest.mark.parametrize(
    ("freeze", "expected"),
    [
        (
            FROZEN,
            "v2 (sha256:bbbb) not deployed: pushes are frozen since 2026-12-07 14:02 UTC after "
            "a rollback (ECS rolled back deployment ecs-svc/1 (circuit breaker)); `spotops "
            "unfreeze` resumes, `spotops unfreeze --deploy-latest` deploys the newest push",
        ),
        (
            dataclasses.replace(FROZEN, by=PLANNED_FREEZE_BY, reason=""),
            "v2 (sha256:bbbb) not deployed: pushes are frozen since 2026-12-07 14:02 UTC by "
            "`spotops freeze`; `spotops unfreeze` resumes, `spotops unfreeze --deploy-latest` "
            "deploys the newest push",
        ),
        (dataclasses.replace(FROZEN, frozen=False, unfrozen_at=FROZE_AT + 60), None),
        (None, None),
    ],
)
def test_a_push_is_refused_while_frozen_with_the_reason_on_call_reads(
    freeze: Freeze | None, expected: str | None
) -> None:
    assert freeze_refusal(freeze, "v2 (sha256:bbbb)") == expected


@pytest.mark.parametrize(
    ("kind", "event", "is_rollback", "froze"),
    [
        (OutcomeKind.ROLLING_BACK, IN_PROGRESS_EVENT, True, True),  # ours, starting to roll back
        (OutcomeKind.ROLLED_BACK, COMPLETED_EVENT, False, True),  # ours, rolled back (seen late)
        (OutcomeKind.FAILED, FAILED_EVENT, False, True),  # the stack's breaker rolls back
        (OutcomeKind.FOREIGN, FAILED_EVENT, False, True),
        (OutcomeKind.FOREIGN, IN_PROGRESS_EVENT, True, True),
        (OutcomeKind.STALE, IN_PROGRESS_EVENT, True, False),  # ours, past it: frozen already
        (OutcomeKind.STALE, FAILED_EVENT, False, False),  # ... or ECS completed it
        (OutcomeKind.FOREIGN, IN_PROGRESS_EVENT, False, False),  # a deployment rolling out
        (OutcomeKind.FOREIGN, COMPLETED_EVENT, False, False),  # e.g. the rollback's own
        (OutcomeKind.FOREIGN, COMPLETED_EVENT, True, False),
        (OutcomeKind.SUCCEEDED, COMPLETED_EVENT, False, False),
        (OutcomeKind.PROGRESS, IN_PROGRESS_EVENT, False, False),
        (OutcomeKind.UNKNOWN, FAILED_EVENT, False, False),
        (OutcomeKind.UNKNOWN, IN_PROGRESS_EVENT, True, False),
    ],
)
def test_a_rollback_by_ecs_is_told_from_its_events(
    kind: OutcomeKind, event: str, is_rollback: bool, froze: bool
) -> None:
    decision = OutcomeDecision(kind)
    assert ecs_rolled_back(decision, event_name=event, is_rollback=is_rollback) is froze


@pytest.mark.usefixtures("not_utc")
def test_reconcile_deploys_no_lost_push_while_frozen() -> None:
    facts: dict[str, Any] = {
        "newest": NEWEST,
        "running_image": f"{REPO}@{DIGEST}",
        "in_progress": False,
        "latest": record(DeploymentStatus.COMPLETED),
        "newest_handled": None,
    }
    frozen = reconcile_decision(**facts, freeze=FROZEN)
    assert frozen.action is ReconcileAction.SKIP
    assert frozen.reason == (
        f"reconcile: v2 ({OTHER[:19]}) not deployed: pushes are frozen since 2026-12-07 14:02 "
        "UTC after a rollback (ECS rolled back deployment ecs-svc/1 (circuit breaker)); "
        "`spotops unfreeze` resumes, `spotops unfreeze --deploy-latest` deploys the newest push"
    )
    lifted = dataclasses.replace(FROZEN, frozen=False)
    assert reconcile_decision(**facts, freeze=lifted).action is ReconcileAction.DEPLOY
    # Frozen, the ledger is still settled: our deployment's lost outcome event.
    lost_outcome = {**facts, "latest": record(DeploymentStatus.IN_PROGRESS), "deployments": [DONE]}
    settled = reconcile_decision(**lost_outcome, freeze=FROZEN)
    assert (settled.action, settled.settle) == (ReconcileAction.SKIP, DeploymentStatus.COMPLETED)


@pytest.mark.parametrize("freeze", [FROZEN, dataclasses.replace(FROZEN, frozen=False)])
def test_reconcile_leaves_a_push_refused_while_frozen_to_a_person(freeze: Freeze) -> None:
    decision = reconcile_decision(
        newest=NEWEST,
        running_image=f"{REPO}@{DIGEST}",
        in_progress=False,
        latest=record(DeploymentStatus.COMPLETED),
        newest_handled="frozen",
        freeze=freeze,
    )
    assert decision.action is ReconcileAction.SKIP
    assert decision.reason == (
        f"v2 ({OTHER[:19]}) was pushed while pushes were frozen and not deployed; "
        "`spotops unfreeze --deploy-latest` or a new push deploys it"
    )
    settled = reconcile_decision(
        newest=NEWEST,
        running_image=f"{REPO}@{DIGEST}",
        in_progress=False,
        latest=record(DeploymentStatus.IN_PROGRESS),
        newest_handled="frozen",
        deployments=[DONE],
        freeze=freeze,
    )
    assert (settled.action, settled.settle) == (ReconcileAction.SKIP, DeploymentStatus.COMPLETED)
