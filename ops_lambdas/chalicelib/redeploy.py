"""Push-to-redeploy: an ECR push (or the reconcile schedule) becomes exactly one ECS deployment.

Flow for one image (``deploy_image``):

1. Powertools idempotency keyed by repository + digest + service: the same event twice, the
   same digest under a new event id, or a push and the reconcile run for the same image
   start at most one deployment (a concurrent twin gets ``IdempotencyAlreadyInProgressError``).
2. The image must still exist in ECR; the service and its site container must exist.
3. Skip when the service already runs that digest.
4. Plan: the new image, and on the first deployment (desired count 0, site container on the
   ``:bootstrap`` placeholder) the desired count ``INITIAL_DESIRED_COUNT``
   (:func:`desired_count_change`).
5. Kill switch (SSM, read now) and dry run (``DRY_RUN`` or the dry-run parameter, read now):
   report the plan, change nothing.
6. Safety ledger: cooldown, per-service lock (conditional write), hourly budget.
7. Register a copy of the current task definition with only the site container's image
   changed to ``<repository uri>@<digest>``; one ``UpdateService`` with the new revision
   (and the desired count, when the plan sets one); record the deployment id; post
   "deploying <tag> (<short digest>)" to Slack.

Outcomes that may succeed later (lock held, kill switch, dry run, throttling, a missing
service) raise :class:`DeferredError` inside the idempotent section, so Powertools forgets
the attempt and a later delivery or the reconcile run can act. Final outcomes (deployed,
already running, image deleted) are remembered for ``IDEMPOTENCY_TTL_SECONDS``.

Throttling policy: botocore already retries throttled calls (standard mode,
``AWS_MAX_ATTEMPTS``). If ECS or ECR still throttles, the job releases its lock, logs,
counts ``ActionsFailed`` and returns normally (no raise): raising would make Lambda retry
the async event twice more into the same throttle. The reconcile schedule (every 15
minutes) deploys the image once ECS answers again.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import error_code, is_throttling
from chalicelib.errors import DeferredError, LedgerError
from chalicelib.observability import count, logger
from chalicelib.runbooks import DEPLOY_FAILED, REDEPLOY, runbook_url
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotentHookFunction
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from chalicelib.events import EcrImageActionEvent, ScheduledEvent
    from chalicelib.toolkit import Toolkit

JOB = "redeploy"
IDEMPOTENCY_KEY_PREFIX = "spotops-redeploy"
RECONCILE_TRIGGER = "reconcile"
# The site stack points the task definition at ``<repository uri>:bootstrap`` until an image
# exists (first deploy); the same rule as ``spotops.images.is_placeholder``, which
# ops_lambdas may not import.
BOOTSTRAP_TAG = "bootstrap"

# Fields of DescribeTaskDefinition's output that RegisterTaskDefinition accepts.
_REGISTER_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
)


@dataclass(frozen=True)
class Image:
    """One image of our repository, by digest (the tag is only for humans)."""

    repository: str
    digest: str
    tag: str | None

    @property
    def short_digest(self) -> str:
        """``sha256:`` plus the first 12 hex digits, as Docker prints it."""
        return self.digest[:19]

    @property
    def label(self) -> str:
        return f"{self.tag or 'untagged'} ({self.short_digest})"


def short(digest: str | None) -> str:
    return (digest or "unknown")[:19]


def is_bootstrap_image(image: str) -> bool:
    """True for the ``<repository uri>:bootstrap`` placeholder: no image was ever deployed."""
    return "@" not in image and image.rsplit("/", 1)[-1].endswith(f":{BOOTSTRAP_TAG}")


def desired_count_change(
    service_desired: int | None, current_image: str, initial: int
) -> int | None:
    """The desired count a deployment sets with its ``UpdateService``, or ``None`` to leave it.

    The site stack creates the service with 0 tasks on the ``:bootstrap`` placeholder, so
    without this the first push would deploy an image nobody runs. Only that never-deployed
    state is lifted: a service at 0 that runs a real image was scaled down on purpose (that
    is how on-call takes the site down) and a push must not bring it back.

    Parameters
    ----------
    service_desired:
        The service's ``desiredCount`` now (``None`` when ECS did not say: never lifted).
    current_image:
        The image of the site container in the service's task definition now.
    initial:
        ``INITIAL_DESIRED_COUNT``; ``0`` means never change the count.

    Returns
    -------
    int or None
        ``initial`` on a first deployment, else ``None``.

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


def _result(status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"job": JOB, "status": status, "reason": reason, **extra}


def _footer(kit: Toolkit, trigger: str) -> str:
    s = kit.settings
    return f"{s.app_name}-{s.stage} · {JOB} · {trigger}"


# ---- entry points ----------------------------------------------------------------------------


def handle_push(event: EcrImageActionEvent, kit: Toolkit) -> dict[str, Any]:
    """Handle one ``ECR Image Action`` event; never raises for bad input.

    Parameters
    ----------
    event:
        The wrapped EventBridge event.
    kit:
        Settings and clients.

    Returns
    -------
    dict
        ``status`` (``deploying``, ``ignored``, ``already-running``, ``duplicate``, ``locked``,
        ``dry-run``, ``killed``, ``deferred``, ``skipped``, ``failed``...) and ``reason``.

    Example
    -------
    >>> handle_push(EcrImageActionEvent(raw), kit)["status"]  # doctest: +SKIP
    'deploying'
    """
    settings = kit.settings
    problem = event.problem(settings.repository_name)
    if problem:
        return _ignore(problem, event_id=event.get("id"))
    tag = event.image_tag
    if tag is None or not settings.tag_pattern.fullmatch(tag):
        return _ignore(
            f"tag {tag!r} does not match TAG_PATTERN {settings.tag_pattern.pattern}",
            event_id=event.get("id"),
        )
    image = Image(event.repository_name, event.image_digest, tag)
    return deploy_image(image, kit, trigger=f"push event {event.get('id')}")


def reconcile(event: ScheduledEvent, kit: Toolkit) -> dict[str, Any]:
    """Deploy the newest image matching ``TAG_PATTERN`` when its push event was lost.

    Does nothing when the service already runs it, when a deployment is in progress, or when
    the ledger says the last deployment of that digest failed (a new push is needed).
    """
    settings = kit.settings
    logger.info("reconcile run", extra={"rule": event.rule_arn})
    count("ReconcileRuns", JOB)  # a heartbeat: the schedule fires even when nothing is to do
    try:
        image = newest_matching_image(kit)
        if image is None:
            return _ignore("no image in the repository matches TAG_PATTERN")
        service = _describe_service(kit)
        running = running_digest(kit, service)
    except DeferredError as exc:
        count("ActionsSuppressed", JOB)
        logger.warning("reconcile deferred", extra={"reason": exc.reason})
        return _result(exc.outcome, exc.reason)
    if running == image.digest:
        return _result("up-to-date", f"service already runs {image.label}")
    in_progress = [
        d
        for d in service.get("deployments", [])
        if d.get("rolloutState") == "IN_PROGRESS" or d.get("status") == "ACTIVE"
    ]
    if in_progress or len(service.get("deployments", [])) > 1:
        return _result("in-progress", "a deployment is in progress; reconcile waits")
    latest = kit.ledger.get_deployment(settings.service_key)
    if (
        latest
        and latest.get("digest") == image.digest
        and latest.get("status")
        in (
            "FAILED",
            "ROLLING_BACK",
            "ROLLED_BACK",
        )
    ):
        return _result(
            "skipped",
            f"the last deployment of {image.label} failed ({latest.get('status')}); "
            "push a fixed image",
        )
    logger.info("reconcile found an undeployed image", extra={"image": image.label})
    return deploy_image(image, kit, trigger=RECONCILE_TRIGGER)


def _ignore(reason: str, **extra: Any) -> dict[str, Any]:
    logger.warning("event ignored", extra={"reason": reason, **extra})
    count("EventsIgnored", JOB)
    return _result("ignored", reason)


# ---- the one deployment path -------------------------------------------------------------


def deploy_image(image: Image, kit: Toolkit, *, trigger: str) -> dict[str, Any]:
    """Deploy ``image`` at most once per idempotency window (see the module docstring)."""
    settings = kit.settings
    config = IdempotencyConfig(
        expires_after_seconds=settings.idempotency_ttl_seconds,
        response_hook=cast("IdempotentHookFunction", _mark_duplicate),
    )
    if kit.lambda_context is not None:
        config.register_lambda_context(kit.lambda_context)

    def deploy_once(key: dict[str, str]) -> dict[str, Any]:
        return _deploy(image, kit, trigger)

    guarded = idempotent_function(
        deploy_once,
        data_keyword_argument="key",
        persistence_store=kit.idempotency,
        config=config,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )
    key = {"repository": image.repository, "digest": image.digest, "service": settings.service_key}
    logger.append_keys(image_digest=image.digest, image_tag=image.tag)
    try:
        result: dict[str, Any] = guarded(key=key)
    except DeferredError as exc:
        count("ActionsSuppressed", JOB)
        logger.warning("redeploy not done", extra={"outcome": exc.outcome, "reason": exc.reason})
        return _result(exc.outcome, exc.reason, digest=image.digest, tag=image.tag)
    except IdempotencyAlreadyInProgressError:
        count("ActionsSuppressed", JOB)
        reason = f"{image.label} is being deployed by another invocation"
        logger.info("duplicate delivery", extra={"reason": reason})
        return _result("duplicate", reason, digest=image.digest, tag=image.tag)
    return result


def _mark_duplicate(response: Any, data_record: DataRecord) -> Any:  # IdempotentHookFunction
    """Powertools response hook: a replayed result is a duplicate, not a new action."""
    count("ActionsSuppressed", JOB)
    if isinstance(response, dict):
        replay = dict(response)
        replay["duplicate"] = True
        replay["original_status"] = response.get("status")
        replay["status"] = "duplicate"
        replay["reason"] = f"already handled: {response.get('status')} ({response.get('reason')})"
        logger.info("duplicate delivery absorbed", extra={"original": response.get("status")})
        return replay
    return response


def _deploy(image: Image, kit: Toolkit, trigger: str) -> dict[str, Any]:
    settings = kit.settings
    svc = settings.service_key

    # -- read: image, service, task definition (nothing changes yet) --
    if not _image_exists(kit, image):
        reason = f"image {image.label} no longer exists in {image.repository}"
        logger.warning("image gone before redeploy", extra={"reason": reason})
        count("ActionsSuppressed", JOB)
        return _result("skipped", reason, digest=image.digest, tag=image.tag)
    service = _describe_service(kit)
    task_def = _describe_task_definition(kit, service["taskDefinition"])
    container = _site_container(task_def, settings.container_name)
    current_image = str(container.get("image", ""))
    if current_image.endswith(f"@{image.digest}"):
        count("ActionsSuppressed", JOB)
        return _result(
            "already-running",
            f"{svc} already runs {image.label}",
            digest=image.digest,
            tag=image.tag,
        )
    new_image = f"{_repository_uri(kit, image.repository)}@{image.digest}"
    desired = service.get("desiredCount")
    new_count = desired_count_change(
        desired if isinstance(desired, int) else None,
        current_image,
        settings.initial_desired_count,
    )
    plan = (
        f"register a new revision of {task_def['family']} with {settings.container_name} "
        f"image {new_image} and update service {svc}"
    )
    if new_count is not None:
        plan += (
            f", setting its desired count from 0 to {new_count} (first deploy: the service "
            f"ran the :{BOOTSTRAP_TAG} placeholder)"
        )

    # -- controls: kill switch and dry run (both report the plan) --
    switch = kit.controls.kill_switch()
    if switch.engaged:
        title = f":octagonal_sign: Redeploy stopped: {image.label}"
        reason = f"{switch.reason}; would {plan}"
        _report_held_back(kit, image, "killed", title, reason, trigger)
        raise DeferredError("killed", reason)
    dry_run = kit.controls.dry_run()
    if dry_run.active:
        title = f":test_tube: [dry run] would deploy {image.label}"
        reason = f"dry run: {dry_run.reason}; would {plan}"
        _report_held_back(kit, image, "dry-run", title, reason, trigger)
        raise DeferredError("dry-run", reason)

    # -- safety ledger: cooldown, lock, budget --
    cooldown = kit.ledger.cooldown_remaining(svc, JOB)
    if cooldown:
        raise DeferredError("cooldown", f"redeploy of {svc} is cooling down for {cooldown}s")
    holder = f"{JOB}:{image.short_digest}:{uuid.uuid4().hex[:12]}"  # unique per attempt
    lock = kit.ledger.acquire_lock(
        svc,
        holder=holder,
        action=JOB,
        ttl_seconds=settings.lock_ttl_seconds,
        details={"digest": image.digest, "tag": image.tag or "", "trigger": trigger},
    )
    if not lock.acquired:
        reason = (
            f"{svc} is locked by {lock.holder.get('action', '?')} "
            f"({lock.holder.get('holder', '?')}) until {lock.holder.get('expires_at', '?')}"
        )
        _report(kit, f":lock: Redeploy waiting: {image.label}", reason, trigger)
        raise DeferredError("locked", reason)
    if not kit.ledger.consume_budget(JOB, settings.redeploy_max_per_hour):
        kit.ledger.release_lock(svc, holder=holder)
        reason = f"hourly budget of {settings.redeploy_max_per_hour} redeploys is spent"
        _report(kit, f":hourglass: Redeploy postponed: {image.label}", reason, trigger)
        raise DeferredError("budget", reason)

    # -- act: new revision, UpdateService --
    try:
        new_arn = _register_copy(kit, task_def, settings.container_name, new_image)
        update: dict[str, Any] = {
            "cluster": settings.cluster_name,
            "service": settings.service_name,
            "taskDefinition": new_arn,
        }
        if new_count is not None:
            # First deploy only (desired 0 on the :bootstrap placeholder). A service scaled to
            # 0 while it runs a real image is how on-call takes the site down: never lifted.
            update["desiredCount"] = new_count
        response = kit.ecs.update_service(**update)
    except (ClientError, BotoCoreError) as exc:
        kit.ledger.release_lock(svc, holder=holder)
        code = error_code(exc) or type(exc).__name__
        count("ActionsFailed", JOB)
        if is_throttling(exc):
            reason = f"ECS throttled ({code}) after retries; reconcile will retry"
            logger.warning("redeploy throttled", extra={"reason": reason})
            raise DeferredError("deferred", reason) from None
        reason = f"ECS refused the redeploy: {code}"
        logger.error("redeploy failed", extra={"reason": reason})
        _report(
            kit,
            f":x: Redeploy failed: {image.label}",
            reason,
            trigger,
            runbook=runbook_url(settings.runbook_base_url, DEPLOY_FAILED),
        )
        raise DeferredError("failed", reason) from None
    deployment_id = _deployment_id(response.get("service", {}), new_arn)

    # -- record and report --
    record = {
        "deployment_id": deployment_id,
        "digest": image.digest,
        "tag": image.tag or "",
        "task_definition": new_arn,
        "previous_image": current_image,
        "desired_count": new_count,  # only when this deployment set it (None is not stored)
        "status": "IN_PROGRESS",
        "trigger": trigger,
    }
    try:
        kit.ledger.update_lock(svc, holder, {"deployment_id": deployment_id})
        kit.ledger.put_deployment(svc, record)
        kit.ledger.record_history(svc, JOB, "deploying", f"{image.label} {deployment_id}")
        kit.ledger.start_cooldown(svc, JOB, settings.redeploy_cooldown_seconds)
    except LedgerError as exc:  # the deployment runs; say so loudly but do not redo it
        logger.error("deployment started but ledger write failed", extra={"error": str(exc)})
    count("ActionsTaken", JOB)
    logger.info(
        "redeploy started",
        extra={"deployment_id": deployment_id, "image": new_image, "desired_count": new_count},
    )
    facts = [
        ("Deployment", deployment_id),
        ("Task definition", new_arn.rsplit("/", 1)[-1]),
        ("Previous image", current_image or "-"),
    ]
    if new_count is not None:
        facts.append(("Desired count", f"0 → {new_count} (first deploy)"))
    _report(
        kit,
        f":rocket: deploying {image.label}",
        f"deploying `{image.tag or 'untagged'}` (`{image.short_digest}`) to `{svc}`",
        trigger,
        facts=facts,
        runbook=runbook_url(settings.runbook_base_url, REDEPLOY),
    )
    extra: dict[str, Any] = {} if new_count is None else {"desired_count": new_count}
    return _result(
        "deploying",
        f"deploying {image.label}",
        digest=image.digest,
        tag=image.tag,
        deployment_id=deployment_id,
        task_definition=new_arn,
        **extra,
    )


def _report(
    kit: Toolkit,
    title: str,
    body: str,
    trigger: str,
    *,
    facts: list[tuple[str, str]] | None = None,
    runbook: str | None = None,
) -> None:
    message = build_message(
        title,
        body,
        facts=facts or (),
        runbook=runbook or runbook_url(kit.settings.runbook_base_url, REDEPLOY),
        footer=_footer(kit, trigger),
    )
    kit.notifier.post(message, job=JOB)


def _report_held_back(
    kit: Toolkit, image: Image, outcome: str, title: str, body: str, trigger: str
) -> None:
    """Report an image the kill switch or dry run holds back.

    A push reports every time. The reconcile run finds the same held-back image every 15
    minutes; it reports it once per ``IDEMPOTENCY_TTL_SECONDS``, or on-call would get the
    same notice all day and learn to ignore the channel.
    """
    if trigger == RECONCILE_TRIGGER:
        notice = f"notice-{outcome}-{image.digest}"
        if kit.ledger.cooldown_remaining(kit.settings.service_key, notice):
            logger.info("held-back image already reported", extra={"outcome": outcome})
            return
        kit.ledger.start_cooldown(
            kit.settings.service_key, notice, kit.settings.idempotency_ttl_seconds
        )
    _report(kit, title, body, trigger)


# ---- AWS reads and writes ------------------------------------------------------------------


def _aws_failure(exc: Exception, what: str) -> DeferredError:
    code = error_code(exc) or type(exc).__name__
    if is_throttling(exc):
        return DeferredError("deferred", f"{what}: throttled ({code}); reconcile will retry")
    return DeferredError("skipped", f"{what}: {code}")


def _image_exists(kit: Toolkit, image: Image) -> bool:
    try:
        kit.ecr.describe_images(
            repositoryName=image.repository, imageIds=[{"imageDigest": image.digest}]
        )
    except ClientError as exc:
        if error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        raise _aws_failure(exc, "cannot check the image in ECR") from None
    except BotoCoreError as exc:
        raise _aws_failure(exc, "cannot check the image in ECR") from None
    return True


def _repository_uri(kit: Toolkit, repository: str) -> str:
    try:
        response = kit.ecr.describe_repositories(repositoryNames=[repository])
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(exc, f"cannot describe repository {repository}") from None
    return str(response["repositories"][0]["repositoryUri"])


def _describe_service(kit: Toolkit) -> dict[str, Any]:
    settings = kit.settings
    try:
        response = kit.ecs.describe_services(
            cluster=settings.cluster_name, services=[settings.service_name]
        )
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(exc, f"cannot describe service {settings.service_key}") from None
    services = [s for s in response.get("services", []) if s.get("status") == "ACTIVE"]
    if not services:
        failures = "; ".join(f.get("reason", "?") for f in response.get("failures", []))
        raise DeferredError(
            "skipped",
            f"service {settings.service_key} not found or not active ({failures or 'no service'})",
        )
    return dict(services[0])


def _describe_task_definition(kit: Toolkit, arn: str) -> dict[str, Any]:
    try:
        response = kit.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(exc, f"cannot describe task definition {arn}") from None
    task_def = dict(response["taskDefinition"])
    if response.get("tags"):
        task_def["tags"] = response["tags"]
    return task_def


def _site_container(task_def: dict[str, Any], name: str) -> dict[str, Any]:
    for container in task_def.get("containerDefinitions", []):
        if container.get("name") == name:
            return dict(container)
    raise DeferredError(
        "skipped", f"task definition {task_def.get('family')} has no container named {name}"
    )


def _register_copy(kit: Toolkit, task_def: dict[str, Any], container: str, image: str) -> str:
    """Register ``task_def`` again with only ``container``'s image changed; return the ARN."""
    request = {k: copy.deepcopy(task_def[k]) for k in _REGISTER_FIELDS if task_def.get(k)}
    if task_def.get("tags"):
        request["tags"] = copy.deepcopy(task_def["tags"])
    for definition in request["containerDefinitions"]:
        if definition.get("name") == container:
            definition["image"] = image
    response = kit.ecs.register_task_definition(**request)
    return str(response["taskDefinition"]["taskDefinitionArn"])


def _deployment_id(service: dict[str, Any], task_definition: str) -> str:
    deployments = service.get("deployments", [])
    for deployment in deployments:
        if deployment.get("taskDefinition") == task_definition:
            return str(deployment["id"])
    for deployment in deployments:
        if deployment.get("status") == "PRIMARY":
            return str(deployment["id"])
    return "unknown"


def running_digest(kit: Toolkit, service: dict[str, Any] | None = None) -> str | None:
    """The digest the service's site container runs, or ``None`` when it runs a tag."""
    service = service or _describe_service(kit)
    task_def = _describe_task_definition(kit, service["taskDefinition"])
    image = str(_site_container(task_def, kit.settings.container_name).get("image", ""))
    return image.rsplit("@", 1)[1] if "@" in image else None


def newest_matching_image(kit: Toolkit) -> Image | None:
    """The most recently pushed image with a tag matching ``TAG_PATTERN``."""
    settings = kit.settings
    best: tuple[datetime, Image] | None = None
    try:
        pages = kit.ecr.get_paginator("describe_images").paginate(
            repositoryName=settings.repository_name, filter={"tagStatus": "TAGGED"}
        )
        for page in pages:
            for detail in page.get("imageDetails", []):
                tags = [t for t in detail.get("imageTags", []) if settings.tag_pattern.fullmatch(t)]
                pushed = detail.get("imagePushedAt")
                if not tags or not isinstance(pushed, datetime):
                    continue
                if best is None or pushed > best[0]:
                    image = Image(settings.repository_name, detail["imageDigest"], sorted(tags)[0])
                    best = (pushed, image)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_failure(exc, f"cannot list images of {settings.repository_name}") from None
    return best[1] if best else None
