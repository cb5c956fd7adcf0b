"""The redeploy job's decisions, as plain functions over facts.

The facts every job shares (deployments, images, results, failure kinds) live at the top of
``chalicelib``. Nothing here calls AWS or reads the clock: the flows (``redeploy/flow.py``,
``redeploy/outcome.py``) gather the facts through the gateway and the ledger, ask these
functions, and act on the typed answer. That is what makes each rule testable alone
(``tests/unit/ops/redeploy/test_decisions.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from chalicelib.deployments import (
    OPEN_STATUSES,
    DeploymentRecord,
    DeploymentStatus,
    ImageFacts,
    ServiceDeployment,
    is_bootstrap_image,
)
from chalicelib.ledger import Freeze, Lock

if TYPE_CHECKING:
    from collections.abc import Sequence


def redeploy_lock_holder(digest: str) -> str:
    """The lock's holder names the work, not the attempt: a retry of the same image (Lambda's
    retry, a duplicate delivery, the reconcile run) re-takes the lock it left."""
    return f"redeploy:{digest}"


def twin_owner(
    digest: str,
    tag: str | None,
    *,
    lock: Lock | None,
    record: DeploymentRecord | None = None,
) -> str | None:
    """The tag of the push that owns the deployment of ``digest`` when it is not ``tag``:
    this push is then its *twin* (one image pushed under two tags, a release and its
    commit, gives two events milliseconds apart) and changes nothing; ``None`` when this
    push is the work itself (or a retry of it).

    The work is the digest: the lock held by ``redeploy:<digest>`` names the tag that
    claimed it (``""`` while not yet claimed: another push of this image is in flight).
    Without that lock, the latest deployment record of the same digest under another tag
    (the service already runs it) names the owner.

    Example
    -------
    >>> lock = Lock(holder=redeploy_lock_holder("sha256:ab"), tag="v1.2.3")
    >>> twin_owner("sha256:ab", "0123abc", lock=lock)
    'v1.2.3'
    >>> twin_owner("sha256:ab", "v1.2.3", lock=lock) is None  # a retry of the same push
    True
    """
    mine = tag or ""
    if lock is not None and lock.holder == redeploy_lock_holder(digest):
        owner = lock.tag
        return owner if owner != mine else None
    if record is not None and record.digest == digest and record.tag != mine:
        return record.tag
    return None


# ---- images and the first deploy ----------------------------------------------------------


def desired_count_change(
    service_desired: int | None, current_image: str, initial: int
) -> int | None:
    """The desired count a deployment sets with its ``UpdateService``, or ``None`` to leave it.

    The site stack creates the service with 0 tasks on the ``:bootstrap`` placeholder, so
    without this the first push would deploy an image nobody runs. Only that never-deployed
    state is lifted: a service at 0 that runs a real image was scaled down on purpose (that
    is how on-call takes the site down) and a push must not bring it back.

    Example
    -------
    >>> desired_count_change(0, "123.dkr.ecr.us-east-1.amazonaws.com/site:bootstrap", 2)
    2
    >>> desired_count_change(0, "123.dkr.ecr.us-east-1.amazonaws.com/site@sha256:ab", 2) is None
    True
    """
    if initial <= 0 or service_desired != 0 or not is_bootstrap_image(current_image):
        return None
    return initial


# ---- pushes, ordered by their own time -----------------------------------------------------


@dataclass(frozen=True)
class PushFacts:
    """When an image was pushed: ECR's ``imagePushedAt`` (a digest's *first* push, even when
    it is tagged again later) and, when known, the time of the push event that asked for it
    (the ECR event's ``time``; a re-tag is a new push with a new time)."""

    label: str
    pushed_at: float
    event_at: float | None = None

    @property
    def at(self) -> float:
        """The push's own time: the later of the two."""
        return max(self.pushed_at, self.event_at or 0.0)


class PushVerdict(StrEnum):
    NEWER = "newer"  # deploy it
    OLDER = "older"  # older than the image running or the last deployed: changes nothing
    HANDLED = "handled"  # this very push was already handled: a late or repeated delivery
    SPENT = "spent"  # this push's digest was deployed for it already, and failed or was undone


@dataclass(frozen=True)
class PushOrder:
    verdict: PushVerdict
    reason: str = ""


def _moment(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def push_order(
    push: PushFacts,
    *,
    running: PushFacts | None,
    latest: PushFacts | None,
    handled_at: float | None,
) -> PushOrder:
    """Whether a push is newer than what it would replace, by the pushes' own times, never
    by the events' arrival (EventBridge and Lambda deliver late, twice, out of order).

    * ``handled_at``: the event time of the push of this digest the job already handled
      (the ledger's image record); an event not after it is that push delivered again.
    * ``running``: the image the service runs now (read again before deciding); a push
      older than it changes nothing.
    * ``latest``: the last image the job deployed (another digest); a push older than it
      changes nothing either, so a rollback ECS (or on-call) made after that deployment
      failed stands: only a push made after it (a new image, or an old digest tagged again
      by a person) is deployed.

    Example
    -------
    >>> old, new = PushFacts("v1.0.0", 100.0, 100.0), PushFacts("v1.1.0", 200.0, 200.0)
    >>> push_order(old, running=new, latest=new, handled_at=None).reason
    'v1.0.0 not deployed: older than the image running, v1.1.0 pushed at 1970-01-01 00:03:20 UTC'
    >>> retagged = PushFacts("v1.0.1", 100.0, 300.0)  # ECR keeps the first push's time
    >>> push_order(retagged, running=new, latest=new, handled_at=None).verdict.value
    'newer'
    """
    if handled_at is not None and push.event_at is not None and push.event_at <= handled_at:
        return PushOrder(
            PushVerdict.HANDLED,
            f"{push.label}: this push ({_moment(push.event_at)}) was already handled; "
            "a late or repeated delivery changes nothing",
        )
    if running is not None and push.at < running.at:
        return PushOrder(
            PushVerdict.OLDER,
            f"{push.label} not deployed: older than the image running, {running.label} "
            f"pushed at {_moment(running.at)}",
        )
    if latest is not None and push.at < latest.at:
        return PushOrder(
            PushVerdict.OLDER,
            f"{push.label} not deployed: older than {latest.label}, the last image deployed "
            f"(pushed at {_moment(latest.at)})",
        )
    return PushOrder(PushVerdict.NEWER)


# ---- the freeze after a rollback -----------------------------------------------------------

# Who froze pushes for a reason other than a rollback (``spotops freeze``: a quiet period).
PLANNED_FREEZE_BY = "freeze-command"
# The image record's outcome of a push refused while frozen: handled, so the reconcile run
# leaves it alone, but not a push already deployed (its event delivered again deploys it).
FROZEN_OUTCOME = "frozen"


def freeze_refusal(freeze: Freeze | None, label: str) -> str | None:
    """Why a push (``label``) is not deployed while pushes are frozen; ``None`` when they
    are not. A rollback (by ECS, by remediation, by ``spotops rollback``) freezes pushes so
    the next push does not deploy again what was just undone; the freeze is the *present*
    state (read again before acting), never the state when the push happened.

    Example
    -------
    >>> frozen = Freeze(True, since=1796652120.0, reason="ECS rolled back deployment ecs-svc/1",
    ...                 by="ecs")
    >>> print(freeze_refusal(frozen, "v2 (sha256:ab)"))  # doctest: +NORMALIZE_WHITESPACE
    v2 (sha256:ab) not deployed: pushes are frozen since 2026-12-07 14:02 UTC after a
    rollback (ECS rolled back deployment ecs-svc/1); `spotops unfreeze` resumes,
    `spotops unfreeze --deploy-latest` deploys the newest push
    >>> freeze_refusal(Freeze(False, since=1796652120.0, by="ecs"), "v2") is None  # lifted
    True
    """
    if freeze is None or not freeze.frozen:
        return None
    since = datetime.fromtimestamp(freeze.since, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    cause = "by `spotops freeze`" if freeze.by == PLANNED_FREEZE_BY else "after a rollback"
    why = f" ({freeze.reason})" if freeze.reason else ""
    return (
        f"{label} not deployed: pushes are frozen since {since} {cause}{why}; "
        "`spotops unfreeze` resumes, `spotops unfreeze --deploy-latest` deploys the newest push"
    )


# ---- twins and late pushes of a digest already deployed ------------------------------------

# How long after a push of a digest another push event of it is still *that* push (a twin tag
# or a late delivery), not a new one. Twins are one manifest pushed again by the same CI job,
# seconds apart (the event's ``time`` has whole seconds; ECR's ``imagePushedAt`` is the
# digest's first push); a person pushes a digest again (a rollback or a retry by push) only
# after a deployment's outcome, which ECS cannot give within a minute of the push (the circuit
# breaker waits for tasks to fail, the health checks for their thresholds). A minute leaves a
# slow CI job room for several tags and stays far below any person's reaction.
TWIN_WINDOW_SECONDS = 60.0


def same_push(
    event_at: float | None,
    *,
    first_pushed_at: float | None,
    handled_event_at: float | None = None,
    window: float = TWIN_WINDOW_SECONDS,
) -> bool:
    """Whether a push event of a digest belongs to a push of it already made: no more than
    ``window`` seconds after the digest's first push (ECR's ``imagePushedAt``) or after the
    push event the job handled for it (its image record's ``event_at``). Such an event is a
    twin tag or a late delivery; a later one is a new push by someone (a rollback or a retry
    by push). The reconcile run (``event_at`` ``None``) has no push of its own: what it
    finds is always the digest's first push.

    Example
    -------
    >>> same_push(1060.0, first_pushed_at=1000.0)  # exactly the window: the same push
    True
    >>> same_push(1061.0, first_pushed_at=1000.0)  # a second more: a new push
    False
    """
    if event_at is None:
        return True
    references = [r for r in (first_pushed_at, handled_event_at) if r is not None]
    return any(event_at <= reference + window for reference in references)


def spent_push(
    push: PushFacts,
    digest: str,
    tag: str | None,
    *,
    deployed: DeploymentRecord | None,
    handled_event_at: float | None,
    window: float = TWIN_WINDOW_SECONDS,
) -> PushOrder | None:
    """A push whose digest the job already deployed *for that same push* (see
    :func:`same_push`: under this tag or a twin's, from a push event or by the reconcile
    run), when that deployment is over and the image no longer runs (the caller has checked
    that the service does not run it): it failed, was rolled back, or was replaced. One
    push is deployed once, however many tags and deliveries reach it: verdict
    :attr:`PushVerdict.SPENT`, with the reason to post. ``None``: this rule has nothing to
    say (:func:`push_order` decides).

    ``deployed`` is the latest deployment record when it is of ``digest``; a deployment
    still open is left to the lock and ECS's own state (the push is a twin, or waits). The
    very push that deployed it, delivered again, is :func:`push_order`'s ``HANDLED``.

    Example
    -------
    >>> failed = DeploymentRecord("ecs-svc/1", "sha256:ab", "v1.1.0", DeploymentStatus.FAILED,
    ...                           pushed_at=120.0, updated_at=420.0, event_at=120.0)
    >>> twin = PushFacts("c0ffee1 (sha256:ab)", 120.0, 121.0)  # the twin, a second later
    >>> print(spent_push(twin, "sha256:ab", "c0ffee1", deployed=failed,
    ...                  handled_event_at=120.0).reason)  # doctest: +NORMALIZE_WHITESPACE
    c0ffee1 (sha256:ab) not deployed: the same image as v1.1.0, whose deployment failed at
    1970-01-01 00:07:00 UTC
    """
    if deployed is None or deployed.digest != digest:
        return None
    if deployed.status == DeploymentStatus.IN_PROGRESS:
        return None
    if not same_push(
        push.event_at,
        first_pushed_at=push.pushed_at,
        handled_event_at=handled_event_at,
        window=window,
    ):
        return None  # a new push of the digest: a person asks for it again
    mine = tag or ""
    redelivered = (
        push.event_at is not None
        and handled_event_at is not None
        and push.event_at <= handled_event_at
    )
    if mine == deployed.tag and redelivered:
        return None  # the very push that deployed it, delivered again
    at = _moment(deployed.updated_at)
    what = {
        DeploymentStatus.COMPLETED: f"deployment completed at {at} and no longer runs",
        DeploymentStatus.SUPERSEDED: f"deployment was replaced at {at}",
    }.get(deployed.status, f"deployment failed at {at}")
    if mine == deployed.tag:  # the reconcile run deployed it under this tag
        reason = f"{push.label} not deployed: its {what}"
    else:
        reason = (
            f"{push.label} not deployed: the same image as {deployed.tag or 'untagged'}, "
            f"whose {what}"
        )
    return PushOrder(PushVerdict.SPENT, reason)


# ---- outcome events -----------------------------------------------------------------------


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling-back"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    PROGRESS = "progress"  # an in-progress event that changes nothing
    FOREIGN = "foreign"  # not a deployment the redeploy job started
    STALE = "stale"  # ours, but already past the state the event reports
    UNKNOWN = "unknown"  # an event name ECS does not document


@dataclass(frozen=True)
class OutcomeDecision:
    """What an ``ECS Deployment State Change`` means for our records: the status to set
    (``None``: the record stays as it is) and whether the lock is freed. ``redeploy/outcome.py``
    records and posts every kind that sets a status; the others post nothing, but for a
    foreign failure (:func:`report_foreign_failure`)."""

    kind: OutcomeKind
    record_status: DeploymentStatus | None = None
    release_lock: bool = False


COMPLETED_EVENT = "SERVICE_DEPLOYMENT_COMPLETED"
FAILED_EVENT = "SERVICE_DEPLOYMENT_FAILED"
IN_PROGRESS_EVENT = "SERVICE_DEPLOYMENT_IN_PROGRESS"


def outcome_decision(
    *,
    event_name: str,
    deployment_id: str,
    is_rollback: bool,
    record: DeploymentRecord | None,
    running_image: str | None,
) -> OutcomeDecision:
    """Decide what one deployment event means; only our own deployment changes anything.

    Events arrive at least once and in any order: a state already left (a FAILED after
    COMPLETED, a rollback notice after FAILED) is :attr:`OutcomeKind.STALE` and ignored.
    ``running_image`` is the site container's image now, ``None`` when it could not be read:
    a completion is then believed.

    Example
    -------
    >>> record = DeploymentRecord("ecs-svc/1", "sha256:a", "v1", DeploymentStatus.IN_PROGRESS)
    >>> outcome_decision(event_name=COMPLETED_EVENT, deployment_id="ecs-svc/2",
    ...                  is_rollback=False, record=record, running_image=None).kind.value
    'foreign'
    """
    if event_name not in (COMPLETED_EVENT, FAILED_EVENT, IN_PROGRESS_EVENT):
        return OutcomeDecision(OutcomeKind.UNKNOWN)
    if record is None or record.deployment_id != deployment_id:
        return OutcomeDecision(OutcomeKind.FOREIGN)
    status = record.status
    if event_name == IN_PROGRESS_EVENT:
        if is_rollback and status == DeploymentStatus.IN_PROGRESS:
            return OutcomeDecision(OutcomeKind.ROLLING_BACK, DeploymentStatus.ROLLING_BACK)
        return OutcomeDecision(OutcomeKind.PROGRESS if not is_rollback else OutcomeKind.STALE)
    if status not in OPEN_STATUSES:
        return OutcomeDecision(OutcomeKind.STALE)
    if event_name == FAILED_EVENT:
        return OutcomeDecision(OutcomeKind.FAILED, DeploymentStatus.FAILED, release_lock=True)
    rolled_back = status == DeploymentStatus.ROLLING_BACK or (
        running_image is not None and not running_image.endswith(f"@{record.digest}")
    )
    if rolled_back:
        return OutcomeDecision(
            OutcomeKind.ROLLED_BACK, DeploymentStatus.ROLLED_BACK, release_lock=True
        )
    return OutcomeDecision(OutcomeKind.SUCCEEDED, DeploymentStatus.COMPLETED, release_lock=True)


def report_foreign_failure(
    decision: OutcomeDecision, *, event_name: str, deployment_id: str, superseded_id: str | None
) -> bool:
    """Whether an event about a deployment the redeploy job did not start is a failure
    on-call must hear of (started by CloudFormation, the console or a person).

    Only ``SERVICE_DEPLOYMENT_FAILED``: the rollback that follows a failure runs under a
    deployment id of its own, whose events would report our own failures a second time; and
    not the deployment a capacity shift superseded, which was ours.

    Example
    -------
    >>> report_foreign_failure(OutcomeDecision(OutcomeKind.FOREIGN), event_name=FAILED_EVENT,
    ...                        deployment_id="ecs-svc/9", superseded_id=None)
    True
    """
    return (
        decision.kind is OutcomeKind.FOREIGN
        and event_name == FAILED_EVENT
        and deployment_id != superseded_id
    )


def ecs_rolled_back(decision: OutcomeDecision, *, event_name: str, is_rollback: bool) -> bool:
    """Whether a deployment event says ECS rolled a deployment back (or is doing so), ours
    or not: the rollback that freezes pushes.

    * ``SERVICE_DEPLOYMENT_FAILED``: the site stack's circuit breaker, deployment alarms and
      lifecycle hooks all roll back (``Rollback: true``, hook ``Action: ROLLBACK``), so a
      failed deployment is a rolled-back one;
    * the ``SERVICE_DEPLOYMENT_IN_PROGRESS`` that starts the rollback ("rolling back to
      deploymentId ...");
    * our deployment completed while the service runs another image
      (:attr:`OutcomeKind.ROLLED_BACK`: the rollback's own events were lost).

    Not a :attr:`OutcomeKind.STALE` event about our deployment: the event that moved its
    record past it froze already, or ECS completed it. A late or repeated event about a
    deployment not ours still says so: the ledger, not this rule, keeps it from freezing
    twice or after an unfreeze that came later.

    Example
    -------
    >>> ecs_rolled_back(OutcomeDecision(OutcomeKind.FOREIGN), event_name=FAILED_EVENT,
    ...                 is_rollback=False)
    True
    """
    if decision.kind in (OutcomeKind.UNKNOWN, OutcomeKind.STALE):
        return False
    if decision.kind in (OutcomeKind.ROLLING_BACK, OutcomeKind.ROLLED_BACK):
        return True
    return event_name == FAILED_EVENT or (event_name == IN_PROGRESS_EVENT and is_rollback)


# ---- the reconcile run --------------------------------------------------------------------


# A record younger than this is never settled from ECS's silence about it: DescribeServices
# may lag an UpdateService, and a push may land between the reconcile run's reads. Far longer
# than either, far shorter than LOCK_TTL_SECONDS (a lost outcome event is still settled).
SETTLE_GRACE_SECONDS = 600


def settle_status(
    latest: DeploymentRecord | None,
    *,
    running_digest: str | None,
    in_progress: bool,
    deployments: Sequence[ServiceDeployment],
    record_age: float,
    grace_seconds: float = SETTLE_GRACE_SECONDS,
) -> DeploymentStatus | None:
    """What the latest deployment record should say now, when ECS clearly says so; ``None``
    leaves it alone. The record must have been read *before* ECS (``deployments``,
    ``running_digest``): a record never meets an older picture of the service.

    * A COMPLETED record whose digest the service no longer runs was replaced outside the
      redeploy job: SUPERSEDED.
    * An open record (its outcome event lost) is settled by what ECS says about *that*
      deployment id: listed as the PRIMARY deployment, rollout COMPLETED, and the service
      runs its digest: COMPLETED; rollout FAILED: ROLLED_BACK (FAILED if the digest still
      runs). Listed in any other state: ECS has not finished; leave it.
    * Not listed at all: ECS replaced it (a rollback's own deployment), or DescribeServices
      lags, or the record was written after ECS was read. Only a record older than
      ``grace_seconds`` is settled from that absence, by the digest the service runs.

    Example
    -------
    >>> record = DeploymentRecord("ecs-svc/1", "sha256:a", "v1", DeploymentStatus.IN_PROGRESS)
    >>> settle_status(record, running_digest="sha256:old", in_progress=False, deployments=[],
    ...               record_age=5.0) is None  # young, and ECS does not list it: wait
    True
    """
    if latest is None or in_progress:
        return None
    if latest.status == DeploymentStatus.COMPLETED:
        if running_digest != latest.digest:
            return DeploymentStatus.SUPERSEDED  # replaced outside the redeploy job
        return None
    if latest.status not in OPEN_STATUSES:
        return None
    ours = running_digest == latest.digest
    listed = next((d for d in deployments if d.deployment_id == latest.deployment_id), None)
    if listed is not None:
        if listed.rollout_state == "FAILED":
            return DeploymentStatus.FAILED if ours else DeploymentStatus.ROLLED_BACK
        finished = listed.rollout_state == "COMPLETED" or (
            not listed.rollout_state and record_age >= grace_seconds
        )
        if listed.status == "PRIMARY" and finished and ours:
            return DeploymentStatus.COMPLETED
        return None
    if record_age < grace_seconds:
        return None
    return DeploymentStatus.COMPLETED if ours else DeploymentStatus.ROLLED_BACK


class ReconcileAction(StrEnum):
    DEPLOY = "deploy"
    NOTHING = "nothing"
    UP_TO_DATE = "up-to-date"
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True)
class ReconcileDecision:
    action: ReconcileAction
    reason: str
    # The latest deployment's record is out of date: set it to this (and free its lock).
    settle: DeploymentStatus | None = None


def reconcile_decision(
    *,
    newest: ImageFacts | None,
    running_image: str | None,
    in_progress: bool,
    latest: DeploymentRecord | None,
    newest_handled: str | None,
    deployments: Sequence[ServiceDeployment] = (),
    record_age: float = 0.0,
    high_water: float | None = None,
    running_pushed_at: float | None = None,
    freeze: Freeze | None = None,
) -> ReconcileDecision:
    """Whether the reconcile run deploys the newest image: only one whose push event was lost.

    * Never an image the job already handled (deployed, or refused by ECS): after on-call
      rolled a bad image back, by hand or by pushing an older digest, the bad image is
      handled and stays out; pushing again is how to retry.
    * Never the digest of the latest deployment when the service does not run it (it failed,
      was rolled back or replaced), whatever tag the run finds it under, image record or not.
    * Never an image pushed before the latest deployment's image: that one is newer.
    * Never an image pushed at or before ``high_water``, the push time of the newest image
      ever deployed (a ledger item without TTL: the deployment and image records above
      expire, at no exact time), nor one older than the image running
      (``running_pushed_at``, ECR's): a rolled-back or superseded image stays out for good.
    * When ECS has no deployment in progress but the ledger disagrees, the ledger is settled
      (:func:`settle_status`, from ECS's ``deployments`` and the record's age): our completed
      deployment replaced by something else is SUPERSEDED; one still open whose outcome
      event was lost is COMPLETED or ROLLED_BACK by what ECS says about it.
    * Never while pushes are frozen (``freeze``, read now): a push whose event was lost
      waits for the unfreeze like any other; one refused while frozen was handled (its
      image record says ``frozen``) and is deployed only by ``spotops unfreeze
      --deploy-latest`` or a new push.

    Example
    -------
    >>> reconcile_decision(newest=None, running_image=None, in_progress=False, latest=None,
    ...                    newest_handled=None).action.value
    'nothing'
    """
    running_digest = (
        running_image.rsplit("@", 1)[1] if running_image and "@" in running_image else None
    )
    settle = None
    if running_image:
        settle = settle_status(
            latest,
            running_digest=running_digest,
            in_progress=in_progress,
            deployments=deployments,
            record_age=record_age,
        )
    still_open = latest is not None and latest.status in OPEN_STATUSES and settle is None
    if newest is None:
        return ReconcileDecision(
            ReconcileAction.NOTHING, "no image in the repository matches TAG_PATTERN", settle
        )
    label = f"{newest.tag or 'untagged'} ({newest.digest[:19]})"
    if running_digest == newest.digest:
        return ReconcileDecision(
            ReconcileAction.UP_TO_DATE, f"service already runs {label}", settle
        )
    if in_progress or still_open:
        return ReconcileDecision(
            ReconcileAction.WAIT, "a deployment is in progress; reconcile waits", settle
        )
    if newest_handled == FROZEN_OUTCOME:
        return ReconcileDecision(
            ReconcileAction.SKIP,
            f"{label} was pushed while pushes were frozen and not deployed; "
            "`spotops unfreeze --deploy-latest` or a new push deploys it",
            settle,
        )
    if newest_handled:
        return ReconcileDecision(
            ReconcileAction.SKIP,
            f"{label} was already handled ({newest_handled}); push it again to retry",
            settle,
        )
    if latest is not None and latest.digest == newest.digest:
        # The last deployment was of this digest, under whatever tag, and it does not run:
        # it failed, was rolled back or replaced. Not again, even without its image record.
        ended = {
            DeploymentStatus.FAILED: "failed",
            DeploymentStatus.ROLLED_BACK: "was rolled back",
            DeploymentStatus.SUPERSEDED: "was replaced",
        }.get(settle or latest.status, "no longer runs")
        return ReconcileDecision(
            ReconcileAction.SKIP,
            f"{label} is the image of the last deployment, {latest.label}, which {ended}; "
            "reconcile never deploys it again: push it again under a new tag to retry",
            settle,
        )
    if latest is not None and latest.pushed_at and newest.pushed_at <= latest.pushed_at:
        return ReconcileDecision(
            ReconcileAction.SKIP,
            f"{label} is older than the last deployed image {latest.label}",
            settle,
        )
    if high_water is not None and newest.pushed_at <= high_water:
        return ReconcileDecision(
            ReconcileAction.SKIP,
            f"{label} is not newer than the newest image ever deployed (pushed at "
            f"{_moment(high_water)}): it was deployed, rolled back or superseded; push it "
            "again to deploy it",
            settle,
        )
    if running_pushed_at is not None and newest.pushed_at < running_pushed_at:
        return ReconcileDecision(
            ReconcileAction.SKIP,
            f"{label} is older than the image running (pushed at {_moment(running_pushed_at)})",
            settle,
        )
    frozen = freeze_refusal(freeze, label)
    if frozen is not None:
        return ReconcileDecision(ReconcileAction.SKIP, f"reconcile: {frozen}", settle)
    return ReconcileDecision(
        ReconcileAction.DEPLOY, f"{label} was pushed but never deployed", settle
    )
