"""Push-to-redeploy: an ECR push (or the reconcile run) becomes at most one ECS deployment.

The flow for one image (:func:`deploy_image`), every AWS call through the gateway and every
rule in ``decisions.py``:

1. Idempotency (one helper, ``idempotent.run_once``) on repository + digest + tag + service:
   a duplicate delivery or Lambda's retry of a *finished* attempt replays its result; a new
   tag on an older digest (a rollback by push) is a new request.
2. Read: the image (still in ECR?), the service, its task definition. Already running ->
   done (and a deployment whose ledger record was lost in a crash is adopted). Then the
   push's own time: one older than what runs changes nothing, and a twin's or late event
   of a push whose deployment failed or was undone is held back (``decisions.spent_push``:
   within ``TWIN_WINDOW_SECONDS`` of that push it is that push; later, a new one).
3. Plan the new revision (and, on a first deploy, the desired count); kill switch and dry
   run report the plan and stop.
4. Ledger: cooldown; the service lock, held by ``redeploy:<digest>`` so a retry of the same
   work re-takes it; the hourly budget, counted once per lock.
5. Act: reuse a revision an earlier attempt registered for this image, else register one;
   ``UpdateService``. After a transport error on either call, ask ECS what happened before
   deciding. On every path that did not start a deployment the lock is released and a
   revision registered by this attempt is deregistered.
6. Record in the ledger first, then post to Slack, so a retry after a ledger error never
   posts twice.

Failures by kind (``decisions.failure_kind``): transient ones (throttling, 5xx, a lost
answer) are left to the next delivery or the reconcile run, without a message each time;
access denied and requests ECS refuses are recorded, posted once with their runbook, and not
retried until a new push.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.deployments import (
    BOOTSTRAP_TAG,
    DeploymentRecord,
    DeploymentStatus,
    ImageFacts,
    deployment_in_progress,
    primary_deployment_of,
)
from chalicelib.errors import DeferredError, LedgerError
from chalicelib.failures import FailureKind
from chalicelib.gateway import AwsCallError, EcsGateway, ServiceFacts, TaskDefinition
from chalicelib.idempotent import run_once
from chalicelib.ledger import Lock
from chalicelib.observability import count, ignore_event, logger
from chalicelib.redeploy.decisions import (
    FROZEN_OUTCOME,
    PushFacts,
    PushOrder,
    PushVerdict,
    ReconcileAction,
    desired_count_change,
    freeze_refusal,
    push_order,
    reconcile_decision,
    redeploy_lock_holder,
    spent_push,
    twin_owner,
)
from chalicelib.redeploy.outcome import JOB as OUTCOME_JOB
from chalicelib.redeploy.outcome import frozen_notice
from chalicelib.results import JobResult, Status
from chalicelib.runbooks import (
    ACCESS_DENIED,
    DEPLOY_FAILED,
    REDEPLOY,
    ROLLBACK_COMMAND,
    runbook_url,
)
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from chalicelib.events import EcrImageActionEvent, ScheduledEvent
    from chalicelib.toolkit import Toolkit

JOB = "redeploy"
IDEMPOTENCY_KEY_PREFIX = "spotops-redeploy"
RECONCILE_TRIGGER = "reconcile"


@dataclass(frozen=True)
class Image:
    """One image of our repository, by digest (the tag is only for humans)."""

    repository: str
    digest: str
    tag: str | None
    event_at: float | None = None  # the push event's time (None: found by reconcile)

    @property
    def short_digest(self) -> str:
        """``sha256:`` plus the first 12 hex digits, as Docker prints it."""
        return self.digest[:19]

    @property
    def label(self) -> str:
        return f"{self.tag or 'untagged'} ({self.short_digest})"


def short(digest: str | None) -> str:
    return (digest or "unknown")[:19]


def gateway_of(kit: Toolkit) -> EcsGateway:
    settings = kit.settings
    return EcsGateway(
        kit.ecs, kit.ecr, cluster=settings.cluster_name, service=settings.service_name
    )


def _result(status: Status, reason: str, **facts: Any) -> dict[str, Any]:
    return JobResult(JOB, status, reason, facts).as_dict()


# ---- entry points ----------------------------------------------------------------------------


def handle_push(event: EcrImageActionEvent, kit: Toolkit) -> dict[str, Any]:
    """Handle one ``ECR Image Action`` event; never raises for bad input.

    Returns
    -------
    dict
        ``status`` (a :class:`~chalicelib.redeploy.decisions.Status` value) and ``reason``.

    Example
    -------
    >>> handle_push(EcrImageActionEvent(raw), kit)["status"]  # doctest: +SKIP
    'deploying'
    """
    settings = kit.settings
    problem = event.problem(settings.repository_name)
    if problem:
        return ignore_event(JOB, problem, event_id=event.get("id"))
    tag = event.image_tag
    if tag is None or not settings.tag_pattern.fullmatch(tag):
        return ignore_event(
            JOB,
            f"tag {tag!r} does not match TAG_PATTERN {settings.tag_pattern.pattern}",
            event_id=event.get("id"),
        )
    image = Image(event.repository_name, event.image_digest, tag, event.at)
    return deploy_image(image, kit, trigger=f"push event {event.get('id')}")


def reconcile(event: ScheduledEvent, kit: Toolkit) -> dict[str, Any]:
    """Deploy the newest matching image only when its push event was lost (see
    :func:`~chalicelib.redeploy.decisions.reconcile_decision`)."""
    settings = kit.settings
    svc = settings.service_key
    logger.info("reconcile run", extra={"rule": event.rule_arn})
    count("ReconcileRuns", JOB)  # a heartbeat: the schedule fires even when nothing is to do
    gateway = gateway_of(kit)
    # The ledger first, then ECS: a push that lands between the two reads then shows in ECS
    # (a deployment in progress, or the new image running) instead of a record ECS seems
    # not to know, which would be settled ROLLED_BACK in the middle of its deployment.
    latest = kit.ledger.read_deployment(svc)
    mark = kit.ledger.read_high_water(svc)
    high_water = mark.at if mark is not None else None
    read_at = time.time()
    try:
        images = gateway.tagged_images(settings.repository_name)
        service = gateway.service()
        running_image = gateway.running_image(service, settings.container_name)
    except AwsCallError as exc:
        return _read_failed(kit, exc, trigger=RECONCILE_TRIGGER, image=None)
    matching = [
        (facts, sorted(t for t in tags if settings.tag_pattern.fullmatch(t)))
        for facts, tags in images
    ]
    candidates = [(facts, tags[0]) for facts, tags in matching if tags]
    newest = max(candidates, key=lambda c: c[0].pushed_at, default=None)
    running_digest = running_image.rsplit("@", 1)[1] if "@" in running_image else None
    running_pushed_at = next(
        (facts.pushed_at for facts, _ in images if facts.digest == running_digest), None
    )
    handled = kit.ledger.read_image(svc, newest[0].digest) if newest else None
    decision = reconcile_decision(
        newest=newest[0] if newest else None,
        running_image=running_image if service else None,
        in_progress=deployment_in_progress(service.deployments) if service else False,
        latest=latest,
        newest_handled=handled.outcome if handled is not None else None,
        deployments=service.deployments if service else (),
        record_age=read_at - latest.updated_at if latest is not None else 0.0,
        high_water=high_water,
        running_pushed_at=running_pushed_at,
        freeze=kit.ledger.read_freeze(svc),
    )
    logger.info(
        "reconcile decided",
        extra={
            "action": decision.action.value,
            "reason": decision.reason,
            "settle": decision.settle.value if decision.settle else None,
        },
    )
    if decision.settle is not None and latest is not None:
        _settle(kit, latest, decision.settle, running_image)
    if decision.action is not ReconcileAction.DEPLOY or newest is None:
        status = {
            ReconcileAction.UP_TO_DATE: Status.UP_TO_DATE,
            ReconcileAction.WAIT: Status.IN_PROGRESS,
            ReconcileAction.NOTHING: Status.IGNORED,
            ReconcileAction.SKIP: Status.SKIPPED,
        }.get(decision.action, Status.SKIPPED)
        settled = decision.settle.value if decision.settle else None
        return _result(status, decision.reason, settled=settled)
    facts, tag = newest
    image = Image(settings.repository_name, facts.digest, tag)
    logger.info("reconcile found an undeployed image", extra={"image": image.label})
    return deploy_image(image, kit, trigger=RECONCILE_TRIGGER)


def _settle(
    kit: Toolkit, latest: DeploymentRecord, status: DeploymentStatus, running_image: str
) -> None:
    """ECS has finished but the ledger was never told (a lost outcome event), or someone
    replaced our deployment: record what is true, free the lock, say so once."""
    svc = kit.settings.service_key
    running = running_image.rsplit("/", 1)[-1] or "nothing"
    reason = (
        f"reconcile: the service runs {running}, ECS deploys nothing and no longer rolls out "
        f"deployment {latest.deployment_id}"
    )
    if not kit.ledger.set_deployment_status(svc, latest.deployment_id, status.value, reason):
        return  # someone else settled it first
    kit.ledger.release_lock(svc, deployment_id=latest.deployment_id)
    kit.ledger.record_history(svc, JOB, status.value.lower(), latest.label)
    logger.info("latest deployment settled", extra={"status": status.value})
    if status is DeploymentStatus.SUPERSEDED:
        return  # someone chose to run something else: nothing went wrong
    frozen = ""
    # ECS rolled back and its event was lost: freeze as the outcome job would have. The
    # freeze's time is the deployment's last record (its start), not now: an unfreeze by
    # on-call after that start already knew of this deployment and wins over a late finding.
    if status is DeploymentStatus.ROLLED_BACK and kit.ledger.freeze(
        svc,
        at=latest.updated_at or time.time(),
        reason=(
            f"ECS rolled back deployment {latest.deployment_id} (found by the reconcile run: "
            "its outcome event never arrived)"
        ),
        by="ecs",
        deployment_id=latest.deployment_id,
    ):
        kit.ledger.record_history(svc, OUTCOME_JOB, "frozen", latest.deployment_id)
        frozen = "\n" + frozen_notice(svc, kit.settings.runbook_base_url)
    done = status is DeploymentStatus.COMPLETED
    title = {
        DeploymentStatus.COMPLETED: f":white_check_mark: Deployed {latest.label}",
        DeploymentStatus.FAILED: f":x: Deployment failed: {latest.label}",
    }.get(status, f":rewind: Rolled back: {latest.label} was NOT deployed")
    _report(
        kit,
        title,
        f"`{svc}` runs `{running}`; ECS's outcome event for deployment "
        f"`{latest.deployment_id}` never arrived, so the reconcile run recorded it.{frozen}",
        RECONCILE_TRIGGER,
        runbook=runbook_url(kit.settings.runbook_base_url, REDEPLOY if done else DEPLOY_FAILED),
    )


# ---- the one deployment path -------------------------------------------------------------


def deploy_image(image: Image, kit: Toolkit, *, trigger: str) -> dict[str, Any]:
    """Deploy ``image`` at most once per idempotency window (see the module docstring)."""
    settings = kit.settings
    logger.append_keys(image_digest=image.digest, image_tag=image.tag)
    return run_once(
        kit,
        job=JOB,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
        key={
            "repository": image.repository,
            "digest": image.digest,
            "tag": image.tag or "",
            "service": settings.service_key,
        },
        work=lambda: _deploy(image, kit, trigger),
    )


def _deploy(image: Image, kit: Toolkit, trigger: str) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key
    gateway = gateway_of(kit)
    facts = {"digest": image.digest, "tag": image.tag}

    # -- read: image, service, task definition (nothing changes yet) --
    try:
        pushed = gateway.image(image.repository, image.digest)
        if pushed is None:
            reason = f"image {image.label} no longer exists in {image.repository}"
            logger.warning("image gone before redeploy", extra={"reason": reason})
            count("ActionsSuppressed", JOB)
            return _result(Status.SKIPPED, reason, **facts)
        service = gateway.service()
        if service is None:
            raise DeferredError(
                Status.SKIPPED.value,
                f"service {svc} not found or not active (or its cluster)",
                **facts,
            )
        task_def = gateway.task_definition(service.task_definition)
    except AwsCallError as exc:
        return _read_failed(kit, exc, trigger=trigger, image=image)
    current_image = task_def.image_of(settings.container_name)
    if current_image is None:
        raise DeferredError(
            Status.SKIPPED.value,
            f"task definition {task_def.family} has no container named {settings.container_name}",
            **facts,
        )
    if current_image.endswith(f"@{image.digest}"):
        owner = _resume_if_ours(kit, image, service, pushed.pushed_at, trigger)
        if owner is not None:
            return _twin(kit, image, owner, trigger)
        count("ActionsSuppressed", JOB)
        return _result(Status.ALREADY_RUNNING, f"{svc} already runs {image.label}", **facts)

    # -- ordered by the pushes' own times: a late, older push changes nothing --
    try:
        order = _order(kit, gateway, image, pushed, current_image)
    except AwsCallError as exc:
        return _read_failed(kit, exc, trigger=trigger, image=image)
    if order.verdict is not PushVerdict.NEWER:
        return _not_newer(kit, image, order.verdict, order.reason, trigger)

    # -- frozen after a rollback: the present state, read again now, not the push's --
    frozen = freeze_refusal(kit.ledger.read_freeze(svc), image.label)
    if frozen is not None:
        _frozen(kit, image, frozen, trigger)
        # Raised, so the attempt is forgotten: this same event delivered again after the
        # unfreeze (how `spotops unfreeze --deploy-latest` deploys it) deploys.
        raise DeferredError(Status.FROZEN.value, frozen, **facts)

    # -- plan; kill switch and dry run report it --
    try:
        new_image = f"{gateway.repository_uri(image.repository)}@{image.digest}"
    except AwsCallError as exc:
        return _read_failed(kit, exc, trigger=trigger, image=image)
    new_count = desired_count_change(
        service.desired_count, current_image, settings.initial_desired_count
    )
    plan = (
        f"register a new revision of {task_def.family} with {settings.container_name} "
        f"image {new_image} and update service {svc}"
    )
    if new_count is not None:
        plan += (
            f", setting its desired count from 0 to {new_count} (first deploy: the service "
            f"ran the :{BOOTSTRAP_TAG} placeholder)"
        )
    switch = kit.controls.kill_switch()
    if switch.engaged:
        reason = f"{switch.reason}; would {plan}"
        title = f":octagonal_sign: Redeploy stopped: {image.label}"
        _notify_once(kit, image, "killed", title, reason, trigger, every_push=True)
        raise DeferredError(Status.KILL_SWITCH.value, reason, **facts)
    dry_run = kit.controls.dry_run()
    if dry_run.active:
        reason = f"dry run: {dry_run.reason}; would {plan}"
        title = f":test_tube: [dry run] would deploy {image.label}"
        _notify_once(kit, image, "dry-run", title, reason, trigger, every_push=True)
        raise DeferredError(Status.DRY_RUN.value, reason, **facts)

    # -- ECS busy (a rollback after a failure runs without our lock): try again later --
    if deployment_in_progress(service.deployments):
        raise DeferredError(
            Status.IN_PROGRESS.value,
            f"ECS is rolling out another deployment of {svc}; reconcile deploys this later",
            **facts,
        )

    # -- safety ledger: cooldown, lock, budget --
    cooldown = kit.ledger.cooldown_remaining(svc, JOB)
    if cooldown:
        raise DeferredError(
            Status.COOLDOWN.value, f"redeploy of {svc} is cooling down for {cooldown}s", **facts
        )
    holder = redeploy_lock_holder(image.digest)
    lock = kit.ledger.acquire_lock(
        svc,
        holder=holder,
        action=JOB,
        ttl_seconds=settings.lock_ttl_seconds,
        details={"digest": image.digest, "trigger": trigger},  # the tag is claimed below
    )
    if not lock.acquired:
        held = lock.lock
        owner = twin_owner(image.digest, image.tag, lock=held)
        if owner is not None:  # the lock is this digest's: another tag is deploying it
            return _twin(kit, image, owner, trigger)
        reason = (
            f"{svc} is locked by {held.action} ({held.holder}) until {held.expires_at}"
            if held is not None
            else f"{svc} is locked by ? (?) until ?"  # freed between our write and read
        )
        title = f":lock: Redeploy waiting: {image.label}"
        _notify_once(kit, image, "locked", title, reason, trigger)
        raise DeferredError(Status.LOCKED.value, reason, **facts)
    # One digest under two tags shares the holder: the first tag to claim the lock owns the
    # work; the other is its twin and leaves the lock, the budget and ECS alone.
    claimed = kit.ledger.claim_in_lock(svc, holder, "tag", image.tag or "")
    if claimed is None:
        raise DeferredError(
            Status.LOCKED.value, f"the lock on {svc} expired before the redeploy began", **facts
        )
    owner = twin_owner(image.digest, image.tag, lock=Lock(holder=holder, tag=str(claimed)))
    if owner is not None:
        return _twin(kit, image, owner, trigger)

    started = False
    registered: str | None = None
    try:
        if not (lock.lock is not None and lock.lock.budget_taken):
            if not kit.ledger.consume_budget(JOB, settings.redeploy_max_per_hour):
                reason = f"hourly budget of {settings.redeploy_max_per_hour} redeploys is spent"
                title = f":hourglass: Redeploy postponed: {image.label}"
                _notify_once(kit, image, "budget", title, reason, trigger)
                raise DeferredError(Status.BUDGET.value, reason, **facts)
            kit.ledger.update_lock(svc, holder, {"budget_taken": True})

        # -- act: a revision for the image, then UpdateService --
        try:
            revision, registered = _revision_for(
                gateway, task_def, settings.container_name, new_image
            )
            deployment_id = _update(gateway, revision, new_count)
        except AwsCallError as exc:
            return _act_failed(kit, exc, image, trigger)
        started = True
    finally:
        if not started:
            _undo(kit, gateway, svc, holder, registered)

    # -- record first, then report (a failure here is retried: the retry resumes it) --
    _finish(
        kit,
        image,
        Started(
            deployment_id,
            revision,
            current_image,
            new_count,
            pushed.pushed_at,
            previous_revision=service.task_definition,
        ),
        trigger,
    )
    count("ActionsTaken", JOB)
    extra: dict[str, Any] = {} if new_count is None else {"desired_count": new_count}
    return _result(
        Status.DEPLOYING,
        f"deploying {image.label}",
        **facts,
        deployment_id=deployment_id,
        task_definition=revision,
        **extra,
    )


@dataclass(frozen=True)
class Started:
    """A deployment ECS took for an image: what the ledger and Slack are told."""

    deployment_id: str
    revision: str
    previous_image: str
    desired_count: int | None
    pushed_at: float
    previous_revision: str = ""  # what a rollback goes back to


def _finish(kit: Toolkit, image: Image, started: Started, trigger: str) -> None:
    """Record a started deployment, then announce it once.

    Every write is idempotent, so Lambda's retry after a crash or a ledger error here (the
    image then already runs) calls this again and completes what is missing."""
    settings = kit.settings
    svc = settings.service_key
    holder = redeploy_lock_holder(image.digest)
    lock = kit.ledger.read_lock(svc)
    if lock is not None and lock.holder == holder and not lock.deployment_id:
        kit.ledger.update_lock(svc, holder, {"deployment_id": started.deployment_id})
    latest = kit.ledger.read_deployment(svc)
    # The same deployment is the same id *and* image (the local emulator reuses ids).
    if (
        latest is None
        or latest.deployment_id != started.deployment_id
        or latest.digest != image.digest
    ):
        kit.ledger.put_deployment(
            svc,
            {
                "deployment_id": started.deployment_id,
                "digest": image.digest,
                "tag": image.tag or "",
                "task_definition": started.revision,
                "previous_image": started.previous_image,
                "previous_task_definition": started.previous_revision or None,
                "desired_count": started.desired_count,  # only when this deployment set it
                "pushed_at": started.pushed_at,
                "event_at": image.event_at,
                "status": DeploymentStatus.IN_PROGRESS.value,
                "trigger": trigger,
            },
        )
    kit.ledger.record_image(
        svc, image.digest, "deployed", tag=image.tag or "", event_at=image.event_at
    )
    # The hold-back that never expires: nothing pushed before this push is deployed again
    # by the reconcile run (it was deployed, rolled back or superseded).
    kit.ledger.raise_high_water(
        svc, max(started.pushed_at, image.event_at or 0.0), digest=image.digest, tag=image.tag or ""
    )
    kit.ledger.start_cooldown(svc, JOB, settings.redeploy_cooldown_seconds)
    # History may repeat on a retry; the notice may not: it is claimed, then posted.
    kit.ledger.record_history(svc, JOB, "deploying", f"{image.label} {started.deployment_id}")
    if not kit.ledger.claim_announcement(svc, started.deployment_id, image.digest):
        return
    logger.info(
        "redeploy started",
        extra={"deployment_id": started.deployment_id, "desired_count": started.desired_count},
    )
    message_facts = [
        ("Deployment", started.deployment_id),
        ("Task definition", started.revision.rsplit("/", 1)[-1]),
        ("Previous image", started.previous_image or "-"),
    ]
    if started.desired_count is not None:
        message_facts.append(("Desired count", f"0 → {started.desired_count} (first deploy)"))
    _report(
        kit,
        f":rocket: deploying {image.label}",
        f"deploying `{image.tag or 'untagged'}` (`{image.short_digest}`) to `{svc}`",
        trigger,
        facts=message_facts,
        runbook=runbook_url(settings.runbook_base_url, REDEPLOY),
    )


def _order(
    kit: Toolkit, gateway: EcsGateway, image: Image, pushed: ImageFacts, current_image: str
) -> PushOrder:
    """Gather what ``push_order`` compares: this push (its event's
    time, ECR's push time), the image the service runs now (ECR's push time, and the time of
    the push that deployed it, from the ledger) and the last image the job deployed."""
    svc = kit.settings.service_key
    handled = kit.ledger.read_image(svc, image.digest)
    running = None
    running_digest = current_image.rsplit("@", 1)[1] if "@" in current_image else None
    if running_digest is not None:
        in_ecr = gateway.image(image.repository, running_digest)
        record = kit.ledger.read_image(svc, running_digest)
        event_at = record.event_at if record is not None else None
        if in_ecr is not None or event_at is not None:
            tag = (in_ecr.tag if in_ecr else None) or (record.tag if record is not None else "")
            running = PushFacts(
                f"{tag or 'untagged'} ({short(running_digest)})",
                in_ecr.pushed_at if in_ecr is not None else 0.0,
                event_at,
            )
    latest_record = kit.ledger.read_deployment(svc)
    this_push = PushFacts(image.label, pushed.pushed_at, image.event_at)
    # A push refused while frozen was not deployed: its event, delivered again after the
    # unfreeze, is still to be handled.
    handled_at = (
        handled.event_at if handled is not None and handled.outcome != FROZEN_OUTCOME else None
    )
    # One push, one deployment: a twin's or late event of a push whose deployment failed
    # (or was undone) does not deploy that digest again; a new push of it does.
    spent = spent_push(
        this_push, image.digest, image.tag, deployed=latest_record, handled_event_at=handled_at
    )
    if spent is not None:
        return spent
    latest = None
    if latest_record is not None and latest_record.digest != image.digest:
        latest = PushFacts(
            latest_record.label, latest_record.pushed_at, latest_record.event_at or None
        )
    elif latest_record is None:  # expired: the hold-back without TTL still knows
        mark = kit.ledger.read_high_water(svc)
        if mark is not None and mark.at is not None and mark.digest != image.digest:
            label = f"{mark.tag or 'untagged'} ({short(mark.digest)})"
            latest = PushFacts(label, mark.at)
    return push_order(this_push, running=running, latest=latest, handled_at=handled_at)


def _not_newer(
    kit: Toolkit, image: Image, verdict: PushVerdict, reason: str, trigger: str
) -> dict[str, Any]:
    """A push that is not newer than what it would replace changes nothing on ECS. An older
    one is recorded and posted once; a push already handled (delivered again) is only
    logged."""
    svc = kit.settings.service_key
    facts = {"digest": image.digest, "tag": image.tag}
    count("ActionsSuppressed", JOB)
    logger.info("push not deployed", extra={"verdict": verdict.value, "reason": reason})
    if verdict is PushVerdict.HANDLED:
        return _result(Status.SKIPPED, reason, **facts)
    if verdict is PushVerdict.SPENT:
        return _held_back(kit, image, reason, trigger)
    if kit.ledger.read_image(svc, image.digest) is None:
        kit.ledger.record_image(
            svc, image.digest, "older", tag=image.tag or "", detail=reason, event_at=image.event_at
        )
    kit.ledger.record_history(svc, JOB, "older", reason)
    _notify_once(
        kit,
        image,
        "older",
        f":arrow_down: Not deployed: {image.label} is older",
        f"{reason}. The push was delivered late; the service keeps the newer image. To go "
        "back to this image on purpose, push it again under a new tag.",
        trigger,
    )
    return _result(Status.OLDER, reason, **facts)


def _frozen(kit: Toolkit, image: Image, reason: str, trigger: str) -> None:
    """A push while pushes are frozen changes nothing on ECS: recorded (its image record,
    so the reconcile run leaves it alone after the unfreeze, and the history, once per push
    however often it is delivered) and posted once per push."""
    svc = kit.settings.service_key
    count("ActionsSuppressed", JOB)
    logger.info("push not deployed: frozen", extra={"reason": reason})
    before = kit.ledger.read_image(svc, image.digest)
    delivered_again = (
        before is not None
        and before.outcome == FROZEN_OUTCOME
        and before.tag == (image.tag or "")
        and before.event_at == image.event_at
    )
    if not delivered_again:
        kit.ledger.record_image(
            svc,
            image.digest,
            FROZEN_OUTCOME,
            tag=image.tag or "",
            detail=reason,
            event_at=image.event_at,
        )
        kit.ledger.record_history(svc, JOB, FROZEN_OUTCOME, reason)
    _notify_once(
        kit,
        image,
        f"frozen-{image.tag or 'untagged'}-{int(image.event_at or 0)}",
        f":snowflake: Push not deployed: {image.label}",
        f"{reason}.",
        trigger,
        runbook=ROLLBACK_COMMAND,
    )


def _held_back(kit: Toolkit, image: Image, reason: str, trigger: str) -> dict[str, Any]:
    """A twin's or late push (or the reconcile run) of a digest whose deployment, for this
    same push, failed or was undone changes nothing on ECS: recorded (history; an image
    record if none is left, so the reconcile run keeps it out) and posted once."""
    svc = kit.settings.service_key
    if kit.ledger.read_image(svc, image.digest) is None:
        kit.ledger.record_image(
            svc,
            image.digest,
            "held-back",
            tag=image.tag or "",
            detail=reason,
            event_at=image.event_at,
        )
    kit.ledger.record_history(svc, JOB, "held-back", reason)
    _notify_once(
        kit,
        image,
        "held-back",
        f":no_entry_sign: Not deployed again: {image.label}",
        f"{reason}. A twin tag's or a late push event does not deploy an image again after "
        "its deployment failed or was undone. To try this image again on purpose, push it "
        "again under a new tag.",
        trigger,
        runbook=DEPLOY_FAILED,
    )
    return _result(Status.HELD_BACK, reason, digest=image.digest, tag=image.tag)


def _revision_for(
    gateway: EcsGateway, task_def: TaskDefinition, container: str, image: str
) -> tuple[str, str | None]:
    """The revision to deploy and, when this call registered it, its ARN (to undo).

    The family's latest revision already carrying ``image`` was registered by an earlier
    attempt at the same work (a crash, a lost answer): it is reused, so retries leave no
    orphan revisions behind.
    """
    latest = _latest_with_image(gateway, task_def.family, container, image)
    if latest is not None:
        return latest, None
    try:
        arn = gateway.register_copy(task_def, container, image)
    except AwsCallError as exc:
        if exc.kind is not FailureKind.UNKNOWN:
            raise
        # The answer was lost: look for the revision before registering another.
        found = _latest_with_image(gateway, task_def.family, container, image)
        if found is None:
            raise
        return found, found
    return arn, arn


def _latest_with_image(gateway: EcsGateway, family: str, container: str, image: str) -> str | None:
    latest = gateway.task_definition(family)
    if latest.raw.get("status", "ACTIVE") != "ACTIVE":
        return None  # deregistered (an earlier attempt's clean-up): never deploy it
    return latest.arn if latest.image_of(container) == image else None


def _update(gateway: EcsGateway, revision: str, desired_count: int | None) -> str:
    """``UpdateService``; the id of the deployment it started. After a transport error, ECS
    is asked whether our revision became the primary deployment before giving up."""
    try:
        service = gateway.update_service(revision, desired_count)
    except AwsCallError as exc:
        if exc.kind is not FailureKind.UNKNOWN:
            raise
        asked = gateway.service()
        if asked is None or asked.task_definition != revision:
            raise  # ECS did not take it: nothing started
        started = _deployment_of(asked, revision)
        logger.warning("UpdateService answer lost; ECS took it", extra={"id": started})
        return started
    return _deployment_of(service, revision)


def _deployment_of(service: ServiceFacts, revision: str) -> str:
    """The deployment ECS started for ``revision`` (its PRIMARY one)."""
    found = primary_deployment_of(service.deployments, revision)
    if found is None:  # the local emulator never moves its deployment to the new revision
        found = next((d.deployment_id for d in service.deployments if d.status == "PRIMARY"), None)
    return found or "unknown"


def _undo(kit: Toolkit, gateway: EcsGateway, svc: str, holder: str, registered: str | None) -> None:
    """What a path that started no deployment leaves behind: nothing."""
    if registered is not None:
        try:
            service = gateway.service()
            if service is not None and service.task_definition == registered:
                return  # ECS took it after all: it is not an orphan, and the lock is its
            gateway.deregister(registered)
        except AwsCallError as exc:
            logger.error(
                "orphan task definition revision left active",
                extra={"task_definition": registered, "error": str(exc)},
            )
    try:
        kit.ledger.release_lock(svc, holder=holder)
    except LedgerError as exc:
        logger.error("lock not released; it expires on its own", extra={"error": str(exc)})


def _resume_if_ours(
    kit: Toolkit, image: Image, service: ServiceFacts, pushed_at: float, trigger: str
) -> str | None:
    """The image already runs. If this job started that (its lock, or an unannounced
    record, says so), a crash or ledger error cut the attempt short after ``UpdateService``:
    complete the record and the notice, so the outcome event is recognised and frees the
    lock. An image someone else deployed is left alone.

    Returns the owner's tag when the image runs because a push of it under another tag
    deployed it (this push is its twin: nothing to resume), else ``None``."""
    svc = kit.settings.service_key
    lock = kit.ledger.read_lock(svc)
    latest = kit.ledger.read_deployment(svc)
    owner = twin_owner(image.digest, image.tag, lock=lock, record=latest)
    if owner is not None:
        return owner
    ours = lock is not None and lock.holder == redeploy_lock_holder(image.digest)
    unannounced = latest is not None and latest.digest == image.digest and not latest.announced
    if not (ours or unannounced):
        return None
    deployment_id = str(
        (lock.deployment_id if lock is not None else "")
        or (latest.deployment_id if latest is not None else "")
        or _deployment_of(service, service.task_definition)
    )
    logger.warning("resuming a deployment cut short", extra={"deployment_id": deployment_id})
    _finish(
        kit,
        image,
        Started(deployment_id, service.task_definition, "", None, pushed_at),
        trigger,
    )
    return None


def _twin(kit: Toolkit, image: Image, owner: str, trigger: str) -> dict[str, Any]:
    """A twin push (this digest, another tag, deployed by the push of ``owner``) changes
    nothing: no revision, no ``UpdateService``, no budget, and the lock stays the owner's.
    Recorded in the history and mentioned once, naming both tags."""
    svc = kit.settings.service_key
    tag = image.tag or "untagged"
    other = owner or "another tag"
    reason = (
        f"{tag} is the same image ({image.short_digest}) as {other}, whose push deploys it; "
        "one image is deployed once"
    )
    count("ActionsSuppressed", JOB)
    logger.info("twin push", extra={"owner_tag": owner, "reason": reason})
    kit.ledger.record_history(svc, JOB, "twin", reason)
    _notify_once(
        kit,
        image,
        f"twin-{tag}",
        f":link: {tag} is {other}: one image ({image.short_digest}), deployed once",
        f"`{tag}` and `{other}` tag the same image (`{image.short_digest}`). It is deployed "
        f"to `{svc}` once, by the push of `{other}`; the push of `{tag}` changes nothing.",
        trigger,
    )
    return _result(Status.TWIN, reason, digest=image.digest, tag=image.tag, twin_of=owner or None)


# ---- failures -------------------------------------------------------------------------------


def _read_failed(
    kit: Toolkit, exc: AwsCallError, *, trigger: str, image: Image | None
) -> dict[str, Any]:
    """A read failed: transient and unknown ones wait for the next run; access denied is a
    misconfiguration on-call must fix, posted once with its runbook."""
    facts = {"digest": image.digest, "tag": image.tag} if image else {}
    if exc.kind is FailureKind.DENIED:
        reason = f"access denied reading ECS/ECR ({exc.operation}: {exc.code})"
        logger.error("redeploy cannot read", extra={"reason": reason})
        count("ActionsFailed", JOB)
        if image is not None:  # not retried by the reconcile run: it would be denied again
            kit.ledger.record_image(
                kit.settings.service_key,
                image.digest,
                "refused",
                tag=image.tag or "",
                detail=reason,
            )
        _notify_once(
            kit,
            image,
            f"denied-{exc.operation}",
            f":no_entry: Redeploy cannot read ECS/ECR: {image.label if image else 'access denied'}",
            f"{reason}. The function's role is missing a permission; see the runbook. "
            "Push the image again once it is fixed.",
            trigger,
            every_push=True,
            runbook=ACCESS_DENIED,
        )
        return _result(Status.FAILED, reason, **facts)
    reason = f"cannot read ECS/ECR ({exc.operation}: {exc.code}); the next run retries"
    count("ActionsSuppressed", JOB)
    logger.warning("redeploy deferred", extra={"reason": reason})
    if image is None:  # the reconcile run's own reads: nothing to forget
        return _result(Status.DEFERRED, reason)
    # Inside the idempotent section: raised, so the attempt is forgotten and retried.
    raise DeferredError(Status.DEFERRED.value, reason, **facts)


def _act_failed(kit: Toolkit, exc: AwsCallError, image: Image, trigger: str) -> dict[str, Any]:
    """``RegisterTaskDefinition`` or ``UpdateService`` failed and no deployment started."""
    svc = kit.settings.service_key
    facts = {"digest": image.digest, "tag": image.tag}
    count("ActionsFailed", JOB)
    if exc.kind in (FailureKind.TRANSIENT, FailureKind.UNKNOWN, FailureKind.MISSING):
        why = {
            FailureKind.TRANSIENT: "ECS throttled or failed",
            FailureKind.UNKNOWN: "ECS's answer was lost and it did not take",
            FailureKind.MISSING: "ECS no longer has what",
        }[exc.kind]
        reason = f"{why} the redeploy ({exc.operation}: {exc.code}); reconcile retries"
        logger.warning("redeploy deferred", extra={"reason": reason})
        raise DeferredError(Status.DEFERRED.value, reason, **facts)
    # Access denied or an invalid request: it fails the same way until something changes.
    reason = f"ECS refused the redeploy ({exc.operation}: {exc.code})"
    logger.error("redeploy failed", extra={"reason": reason})
    runbook = ACCESS_DENIED if exc.kind is FailureKind.DENIED else DEPLOY_FAILED
    try:
        kit.ledger.record_image(svc, image.digest, "refused", tag=image.tag or "", detail=reason)
        kit.ledger.record_history(svc, JOB, "refused", f"{image.label} {reason}")
    except LedgerError as ledger_exc:
        logger.error("refusal not recorded", extra={"error": str(ledger_exc)})
    _report(
        kit,
        f":x: Redeploy failed: {image.label}",
        f"{reason}. Nothing was deployed; push again once it is fixed.",
        trigger,
        runbook=runbook_url(kit.settings.runbook_base_url, runbook),
    )
    return _result(Status.FAILED, reason, **facts)


# ---- reporting ------------------------------------------------------------------------------


def _report(
    kit: Toolkit,
    title: str,
    body: str,
    trigger: str,
    *,
    facts: list[tuple[str, str]] | None = None,
    runbook: str | None = None,
) -> None:
    settings = kit.settings
    message = build_message(
        title,
        body,
        facts=facts or (),
        runbook=runbook or runbook_url(settings.runbook_base_url, REDEPLOY),
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · {trigger}",
    )
    kit.notifier.post(message, job=JOB)


def _notify_once(
    kit: Toolkit,
    image: Image | None,
    notice: str,
    title: str,
    body: str,
    trigger: str,
    *,
    every_push: bool = False,
    runbook: str = REDEPLOY,
) -> None:
    """Post a notice about something that will be tried again.

    The reconcile run meets the same held-back image every 15 minutes, and a lock or budget
    holds back every retry: each notice is posted once per ``IDEMPOTENCY_TTL_SECONDS`` per
    image, or on-call would learn to ignore the channel. With ``every_push``, a push (a
    person asking) is always answered.
    """
    settings = kit.settings
    if not (every_push and trigger != RECONCILE_TRIGGER):
        key = f"notice-{notice}-{image.digest if image else 'any'}"
        try:
            if kit.ledger.cooldown_remaining(settings.service_key, key):
                logger.info("notice already posted", extra={"notice": notice})
                return
            kit.ledger.start_cooldown(settings.service_key, key, settings.idempotency_ttl_seconds)
        except LedgerError as exc:
            logger.error("notice state unreadable; posting", extra={"error": str(exc)})
    _report(kit, title, body, trigger, runbook=runbook_url(settings.runbook_base_url, runbook))
