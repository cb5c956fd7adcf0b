"""``spotops rollback``: put the service back on an earlier revision, and freeze pushes.

What to roll back to, and how, is decided by pure functions over facts (:func:`parse_to`,
:func:`previous_revision`, :func:`plan`, :func:`check_lock`, :func:`check_kill_switch`):
with no ``--to``, the revision that ran before the current one, as the redeploy job recorded
it in the ledger; with ``--to``, a revision, an image digest or a tag. A ROLLING service is
updated to that revision; a CANARY or LINEAR deployment in progress (or baking) is stopped
with ``ROLLBACK``, ECS's instant weight flip back to the revision it came from.

:class:`Rollback` is the edge: it reads the stage (stacks, ECS, ECR, the ledger, the kill
switch), acts as every production action does (dry run, kill switch, the service lock, the
ledger's history and freeze, a Slack report linking ``runbooks/rollback.md``) and follows
the rollout until ECS says it is done. The ledger is the functions' own code
(:mod:`spotops.lambda_code`), so the lock and the freeze mean the same on both sides.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

import spotops.lambda_code  # noqa: F401  (puts ops_lambdas on sys.path)
from spotops.errors import NotDeployedError, SpotopsError, UsageError, is_error
from spotops.ops.switches import read_switch, switch_parameter_name, webhook_secret_name
from spotops.stage.stacks import StackDeployer, StackInfo
from spotops.target import AWS, Target

# isort: split
from chalicelib.controls import KILL_SWITCH_OFF
from chalicelib.ledger import DeploymentRecord, Freeze, Lock, SafetyLedger
from chalicelib.runbooks import ROLLBACK_COMMAND, runbook_url
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from spotops.aws import ClientFactory

RUNBOOK = ROLLBACK_COMMAND  # the functions link the same page when they freeze pushes
ACTION = "rollback"
FROZEN_BY = "rollback-command"
PLANNED_FREEZE_BY = "freeze-command"
# Long enough for a rollout to finish while we follow it; a crashed command's lock expires.
LOCK_TTL_SECONDS = 1800
# ECS's strategies whose deployment in progress (or baking) StopServiceDeployment rolls back
# by shifting the traffic weight back at once.
STOPPABLE_STRATEGIES = frozenset({"CANARY", "LINEAR"})
ROLLOUT_DONE, ROLLOUT_FAILED = "COMPLETED", "FAILED"
# ListServiceDeployments' statuses after StopServiceDeployment(ROLLBACK).
STOP_DONE, STOP_FAILED = "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"

_ARN = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/(?P<family>[A-Za-z0-9_-]{1,255}):"
    r"(?P<revision>\d+)$"
)
_FAMILY_REVISION = re.compile(r"^(?P<family>[A-Za-z0-9_-]{1,255}):(?P<revision>\d+)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# ECR's image tag: up to 128 of letters, digits, _ . - (not starting with . or -).
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
TO_HELP = "a revision (family:N, N, or a task definition ARN), an image digest (sha256:...) or tag"


# ---- pure decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """What ``--to`` names: ``previous`` (no ``--to``), ``revision``, ``digest`` or ``tag``."""

    kind: str
    value: str = ""


def parse_to(text: str | None, family: str) -> Wanted:
    """Read ``--to`` for a service whose task definition family is ``family``.

    Raises
    ------
    UsageError
        Neither a revision, a digest nor a tag; or a revision of another family.
    """
    if text is None or not text.strip():
        return Wanted("previous")
    text = text.strip()
    found = _ARN.match(text) or _FAMILY_REVISION.match(text)
    if found:
        if found["family"] != family:
            raise UsageError(
                f"--to {text}: revision of family {found['family']}, but the service runs "
                f"family {family}. Name one of {family}'s revisions ({family}:N)."
            )
        return Wanted("revision", f"{family}:{int(found['revision'])}")
    if text.isdigit():
        return Wanted("revision", f"{family}:{int(text)}")
    if _DIGEST.match(text):
        return Wanted("digest", text)
    if text.startswith("sha256:"):
        raise UsageError(f"--to {text[:80]}: a digest is sha256: and 64 lowercase hex digits.")
    if _TAG.match(text):
        return Wanted("tag", text)
    raise UsageError(f"--to {text[:80]!r} is not {TO_HELP}.")


def short(task_definition: str) -> str:
    """``family:N`` of a task definition ARN (anything else as it is); a revision still to
    register (``register:<image>``) as what it will run."""
    if task_definition.startswith("register:"):
        digest = task_definition.rsplit("@", 1)[-1]
        return f"a new revision with {digest[:19]}…"
    return task_definition.rsplit("/", 1)[-1]


def clock_time(epoch: float) -> str:
    return f"{datetime.fromtimestamp(epoch, UTC):%H:%M} UTC"


def previous_revision(current: str, record: DeploymentRecord | None, freeze: Freeze | None) -> str:
    """The revision that ran before ``current``, as the ledger's deployment record knows it.

    Raises
    ------
    UsageError
        Pushes are frozen after a rollback (going back again without a name would walk
        further back than on-call may mean), or the ledger does not know what ran before.
    """
    if freeze is not None and freeze.frozen and freeze.by != PLANNED_FREEZE_BY:
        raise UsageError(
            f"Already rolled back at {clock_time(freeze.since)} ({freeze.reason}); pushes are "
            "frozen. To go further back name the target with --to (a revision, digest or tag); "
            "to resume pushes: `spotops unfreeze`."
        )
    if record is None or not record.previous_task_definition:
        raise UsageError(
            "The ledger does not know what ran before the current revision "
            f"({short(current)}): no deployment of the redeploy job records it. Name the "
            f"target with --to ({TO_HELP})."
        )
    if record.task_definition != current:
        raise UsageError(
            f"The ledger does not know what ran before {short(current)}: its last deployment "
            f"is of {short(record.task_definition) or 'another revision'}, not of what the "
            f"service runs now. Name the target with --to ({TO_HELP})."
        )
    return record.previous_task_definition


@dataclass(frozen=True)
class ServiceState:
    """What ECS says of the service."""

    current: str  # the task definition ARN it runs (during a deployment: the new one)
    strategy: str = "ROLLING"  # deploymentConfiguration.strategy
    open_deployments: tuple[str, ...] = ()  # ARNs of its service deployments not yet ended


@dataclass(frozen=True)
class Plan:
    """What the rollback does: ``update`` the service to ``target``, or ``stop`` the
    deployment ``stop_arn`` with ``ROLLBACK`` (ECS returns to ``target``)."""

    how: str
    current: str
    target: str
    stop_arn: str = ""

    def describe(self, service: str) -> str:
        if self.how == "stop":
            return (
                f"stop the deployment in progress on {service} with ROLLBACK "
                f"({self.stop_arn.rsplit('/', 1)[-1]}): traffic goes back from "
                f"{short(self.current)} to {short(self.target)}"
            )
        return f"update {service} from {short(self.current)} to {short(self.target)}"


def plan(state: ServiceState, target: str, *, source: str | None) -> Plan:
    """How to get ``state``'s service to ``target``. ``source`` is the revision an open
    deployment started from (what ``ROLLBACK`` returns to), when the ledger knows it.

    Raises
    ------
    UsageError
        ``target`` already runs; or a CANARY/LINEAR deployment is open and ``target`` is not
        where stopping it returns to.
    """
    stoppable = state.strategy in STOPPABLE_STRATEGIES and state.open_deployments
    if stoppable:
        arn = state.open_deployments[0]
        if source is not None and target == source:
            return Plan("stop", state.current, target, stop_arn=arn)
        raise UsageError(
            f"A {state.strategy} deployment of {short(state.current)} is in progress: stopping "
            f"it returns to {short(source) if source else 'the revision it started from'}, not "
            f"{short(target)}. Run `spotops rollback` without --to to stop it, or wait for it "
            "to end and roll back then."
        )
    if target == state.current:
        raise UsageError(
            f"Nothing to roll back: the service already runs {short(target)}. Name another "
            "revision with --to."
        )
    return Plan("update", state.current, target)


def check_kill_switch(parameter: str, value: str | None, stage: str) -> None:
    """Refuse while the stage's kill switch is engaged, read as the functions read it: any
    value but an off word, and an unreadable or missing parameter, stop automation.

    Raises
    ------
    UsageError
        The kill switch is on (or unreadable), with how to turn it off.
    """
    if value is not None and value.strip().lower() in KILL_SWITCH_OFF:
        return
    state = "does not exist" if value is None else f"is {value.strip()[:40]!r}"
    raise UsageError(
        f"Refused: the kill switch {parameter} {state}, so every production action of stage "
        f"{stage} stands still. Nothing changed. When it is safe: `spotops kill-switch off "
        f"--stage {stage}`, then roll back again."
    )


def check_lock(lock: Lock | None, holder: str) -> None:
    """Refuse while someone else holds the service's lock (a redeploy, chaos, remediation).

    Raises
    ------
    UsageError
        Naming the holder, its action and when it expires.
    """
    if lock is None or lock.holder == holder:
        return
    raise UsageError(
        f"Refused: the service is locked by {lock.holder} ({lock.action}) until "
        f"{clock_time(lock.expires_at)}. Nothing changed. Wait for it to finish (`spotops "
        "status`), or stop automation first with `spotops kill-switch on`."
    )


# ---- the edge ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StageNames:
    """The stage's names and outputs the rollback needs."""

    app: str
    stage: str
    cluster: str
    service: str
    repository: str
    family: str
    ledger_table: str
    kill_switch: str
    webhook_secret: str
    slack_dead_letters: str
    runbook_base: str

    @property
    def service_key(self) -> str:
        return f"{self.cluster}/{self.service}"


def stage_names(client: ClientFactory, app: str, stage: str) -> StageNames:
    """Read the site and ops stacks' outputs.

    Raises
    ------
    NotDeployedError
        A stack is missing.
    """
    stacks = StackDeployer(client("cloudformation"))
    found: dict[str, StackInfo] = {}
    for part in ("site", "ops"):
        name = f"{app}-{stage}-{part}"
        info = stacks.describe(name)
        if info is None:
            raise NotDeployedError(
                f"Stack {name} does not exist: deploy the stage first with "
                f"`spotops deploy --stage {stage}`."
            )
        found[part] = info
    site, ops = found["site"].outputs, found["ops"].outputs
    parameters = found["ops"].parameters
    return StageNames(
        app=app,
        stage=stage,
        cluster=site.get("ClusterName", f"{app}-{stage}"),
        service=site.get("ServiceName", f"{app}-{stage}-site"),
        repository=site.get("RepositoryName", f"{app}-{stage}-site"),
        family=site.get("TaskDefinitionFamily", ""),
        ledger_table=ops.get("LedgerTableName", f"{app}-{stage}-ledger"),
        kill_switch=ops.get("KillSwitchParameterName")
        or switch_parameter_name(app, stage, "kill-switch"),
        webhook_secret=ops.get("SlackWebhookSecretName") or webhook_secret_name(app, stage),
        slack_dead_letters=ops.get("SlackDeadLetterQueueUrl", ""),
        runbook_base=parameters.get("RunbookBaseUrl", ""),
    )


@dataclass(frozen=True)
class Prepared:
    """Everything decided before anything changes: what :meth:`Rollback.run` does."""

    names: StageNames
    plan: Plan
    wanted: Wanted
    how_found: str  # how the target was found, for the user

    @property
    def holder(self) -> str:
        return f"rollback:{short(self.plan.target)}"


@dataclass
class Outcome:
    prepared: Prepared
    state: str  # COMPLETED, FAILED, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED
    deployment: str = ""
    froze: bool = False
    slack: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state in (ROLLOUT_DONE, STOP_DONE)


class Rollback:
    """One rollback of a stage's service.

    Parameters
    ----------
    client:
        Makes a boto3 client by service name (the session's).
    target:
        Where the stage is: on the emulator it plays ECS's end of the rollout.
    progress:
        Called with each line of progress (stderr).
    poll_seconds, timeout_seconds:
        How often ECS is read while the rollout is followed, and for how long at most.
    clock:
        Epoch seconds; tests pass a fake.
    """

    def __init__(
        self,
        client: ClientFactory,
        *,
        app: str,
        stage: str,
        target: Target = AWS,
        progress: Callable[[str], None] = lambda line: None,
        poll_seconds: float = 5.0,
        timeout_seconds: float = 1800.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.app = app
        self.stage = stage
        self.target = target
        self._progress = progress
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._sleep = sleep

    def ledger(self, names: StageNames) -> SafetyLedger:
        return SafetyLedger(self._client("dynamodb"), names.ledger_table, clock=self._clock)

    # ---- reading and deciding ------------------------------------------------------------

    def _service(self, names: StageNames) -> dict[str, Any]:
        found = self._client("ecs").describe_services(
            cluster=names.cluster, services=[names.service]
        )
        active = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
        if not active:
            raise NotDeployedError(
                f"Service {names.service} is not active in cluster {names.cluster}: deploy "
                f"the stage with `spotops deploy --stage {names.stage}`."
            )
        return dict(active[0])

    def _state(self, names: StageNames, service: Mapping[str, Any]) -> ServiceState:
        strategy = str((service.get("deploymentConfiguration") or {}).get("strategy") or "ROLLING")
        open_deployments: tuple[str, ...] = ()
        if strategy in STOPPABLE_STRATEGIES:
            listed = self._client("ecs").list_service_deployments(
                cluster=names.cluster,
                service=names.service,
                status=["PENDING", "IN_PROGRESS"],  # not ended (a bake included)
            )
            open_deployments = tuple(
                str(d["serviceDeploymentArn"]) for d in listed.get("serviceDeployments", [])
            )
        return ServiceState(str(service["taskDefinition"]), strategy, open_deployments)

    def prepare(self, to: str | None) -> Prepared:
        """Read the facts and decide; nothing changes.

        Raises
        ------
        UsageError
            A bad ``--to``, nothing to roll back to, the target runs already, the kill
            switch is on, or the service is locked by someone else.
        NotDeployedError
            The stage is not deployed.
        """
        names = stage_names(self._client, self.app, self.stage)
        service = self._service(names)
        state = self._state(names, service)
        family = names.family or short(state.current).rsplit(":", 1)[0]
        names = StageNames(**{**names.__dict__, "family": family})
        wanted = parse_to(to, family)
        ledger = self.ledger(names)
        record = ledger.read_deployment(names.service_key)
        source = (
            record.previous_task_definition
            if record is not None and record.task_definition == state.current
            else None
        ) or None
        if wanted.kind == "previous":
            target = previous_revision(state.current, record, ledger.read_freeze(names.service_key))
            how = "the revision that ran before (the ledger's last deployment)"
        else:
            target, how = self._resolve(names, state.current, wanted)
        chosen = plan(state, target, source=source)
        check_kill_switch(
            names.kill_switch,
            read_switch(self._client("ssm"), names.kill_switch),
            self.stage,
        )
        prepared = Prepared(names, chosen, wanted, how)
        check_lock(ledger.read_lock(names.service_key), prepared.holder)
        return prepared

    def _resolve(self, names: StageNames, current: str, wanted: Wanted) -> tuple[str, str]:
        """The task definition ARN ``wanted`` names, and how it was found."""
        ecs = self._client("ecs")
        if wanted.kind == "revision":
            try:
                found = ecs.describe_task_definition(taskDefinition=wanted.value)
            except ClientError as exc:
                if is_error(exc, "ClientException", "InvalidParameterException"):
                    raise UsageError(
                        f"--to {wanted.value}: no such revision of {names.family}. "
                        f"`aws ecs list-task-definitions --family-prefix {names.family}` "
                        "lists them."
                    ) from exc
                raise
            if found["taskDefinition"].get("status") == "INACTIVE":
                # ECS starts no task of a deregistered revision: the update would fail later.
                raise UsageError(
                    f"--to {wanted.value}: that revision is deregistered (INACTIVE), so ECS "
                    "cannot run it. Name an active revision, or the image's tag or digest "
                    "(a new revision is registered with it)."
                )
            return str(found["taskDefinition"]["taskDefinitionArn"]), "the revision named"
        digest = wanted.value
        ecr = self._client("ecr")
        if wanted.kind == "tag":
            try:
                details = ecr.describe_images(
                    repositoryName=names.repository, imageIds=[{"imageTag": wanted.value}]
                )["imageDetails"]
            except ClientError as exc:
                if is_error(exc, "ImageNotFoundException"):
                    raise UsageError(
                        f"--to {wanted.value}: no image tagged {wanted.value!r} in "
                        f"{names.repository}."
                    ) from exc
                raise
            digest = str(details[0]["imageDigest"])
        else:
            try:
                ecr.describe_images(
                    repositoryName=names.repository, imageIds=[{"imageDigest": digest}]
                )
            except ClientError as exc:
                if is_error(exc, "ImageNotFoundException"):
                    raise UsageError(
                        f"--to {digest[:19]}…: no such image in {names.repository}."
                    ) from exc
                raise
        return self._revision_with(names, current, digest)

    def _revision_with(self, names: StageNames, current: str, digest: str) -> tuple[str, str]:
        """The newest revision of the family whose container runs ``repo@digest``; without
        one, ``register:<digest>``: :meth:`run` registers it from the current revision (as the
        redeploy job does), so a dry run registers nothing."""
        ecs = self._client("ecs")
        definition = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
        container = _site_container(definition, names.repository)
        uri = str(container["image"]).split("@", 1)[0].rsplit(":", 1)[0]
        if "/" not in uri or not uri.endswith(names.repository):
            uri = self._repository_uri(names.repository)
        image = f"{uri}@{digest}"
        arns = ecs.list_task_definitions(familyPrefix=names.family, sort="DESC", status="ACTIVE")
        for arn in arns.get("taskDefinitionArns", []):
            if short(arn).rsplit(":", 1)[0] != names.family:
                continue
            found = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            images = [c.get("image") for c in found.get("containerDefinitions", [])]
            if image in images:
                return str(arn), f"the newest revision running {digest[:19]}…"
        return f"register:{image}", f"a new revision of {short(current)} with {digest[:19]}…"

    def _repository_uri(self, repository: str) -> str:
        found = self._client("ecr").describe_repositories(repositoryNames=[repository])
        return str(found["repositories"][0]["repositoryUri"])

    # ---- acting --------------------------------------------------------------------------

    def run(self, prepared: Prepared) -> Outcome:
        """Take the lock, act, record, freeze, follow the rollout, report; release the lock.

        Raises
        ------
        UsageError
            The lock was taken by someone else in the meantime (nothing changed).
        """
        names, chosen = prepared.names, prepared.plan
        ledger = self.ledger(names)
        key = names.service_key
        taken = ledger.acquire_lock(
            key,
            holder=prepared.holder,
            action=ACTION,
            ttl_seconds=LOCK_TTL_SECONDS,
            details={"target": chosen.target, "from": chosen.current},
        )
        if not taken.acquired:
            check_lock(taken.lock, prepared.holder)
        try:
            outcome = self._act(prepared, ledger)
        finally:
            ledger.release_lock(key, holder=prepared.holder)
        return outcome

    def _act(self, prepared: Prepared, ledger: SafetyLedger) -> Outcome:
        names, chosen = prepared.names, prepared.plan
        key = names.service_key
        ecs = self._client("ecs")
        target = chosen.target
        if target.startswith("register:"):
            target = self._register(names, chosen.current, target.removeprefix("register:"))
            chosen = Plan(chosen.how, chosen.current, target, chosen.stop_arn)
            prepared = Prepared(names, chosen, prepared.wanted, prepared.how_found)
            self._progress(f"Registered {short(target)}.")
        started = self._clock()
        if chosen.how == "stop":
            ecs.stop_service_deployment(serviceDeploymentArn=chosen.stop_arn, stopType="ROLLBACK")
            deployment = chosen.stop_arn
        else:
            updated = ecs.update_service(
                cluster=names.cluster, service=names.service, taskDefinition=target
            )["service"]
            deployment = next(
                (
                    str(d["id"])
                    for d in updated.get("deployments", [])
                    if d.get("status") == "PRIMARY"
                ),
                "",
            )
        self._progress(f"Rolling back: {chosen.describe(names.service)}.")
        reason = f"rolled back to {short(target)} by spotops rollback"
        ledger.record_history(
            key,
            ACTION,
            "started",
            f"{short(chosen.current)} -> {short(target)} ({chosen.how}; {deployment or '-'})",
        )
        # Frozen from now, once the rollback is under way: the timeline reads started, frozen.
        froze = ledger.freeze(
            key, at=self._clock(), reason=reason, by=FROZEN_BY, deployment_id=deployment
        )
        outcome = Outcome(prepared, "", deployment, froze)
        outcome.state = self._follow(names, chosen, deployment, outcome.notes)
        seconds = self._clock() - started
        ledger.record_history(
            key,
            ACTION,
            "succeeded" if outcome.succeeded else "failed",
            f"{short(chosen.current)} -> {short(target)}: {outcome.state} after {seconds:.0f}s",
        )
        outcome.slack = self._report(outcome, seconds)
        return outcome

    def _register(self, names: StageNames, current: str, image: str) -> str:
        from chalicelib.gateway import EcsGateway

        gateway = EcsGateway(
            self._client("ecs"), self._client("ecr"), cluster=names.cluster, service=names.service
        )
        definition = gateway.task_definition(current)
        container = _site_container(definition.raw, names.repository)
        return gateway.register_copy(definition, str(container["name"]), image)

    def _follow(self, names: StageNames, chosen: Plan, deployment: str, notes: list[str]) -> str:
        """Poll ECS until the rollout ends; its end state."""
        ecs = self._client("ecs")
        played = self.target.settle_rollout(ecs, names.cluster, names.service)
        if played is not None:
            notes.append(played)
            return STOP_DONE if chosen.how == "stop" else ROLLOUT_DONE
        deadline = self._clock() + self._timeout
        last = ""
        while True:
            state, said = (
                self._stop_state(deployment)
                if chosen.how == "stop"
                else self._rollout_state(names, deployment)
            )
            if said != last:
                self._progress(said)
                last = said
            if state in (ROLLOUT_DONE, ROLLOUT_FAILED, STOP_DONE, STOP_FAILED):
                return state
            if self._clock() >= deadline:
                raise SpotopsError(
                    f"The rollout did not end within {self._timeout:.0f}s ({said}). It carries "
                    f"on: follow it with `spotops status --stage {names.stage}`."
                )
            self._sleep(self._poll)

    def _rollout_state(self, names: StageNames, deployment: str) -> tuple[str, str]:
        service = self._service(names)
        for d in service.get("deployments", []):
            if d.get("id") == deployment or (not deployment and d.get("status") == "PRIMARY"):
                state = str(d.get("rolloutState", ""))
                return state, (
                    f"  {state or '?'}: running {d.get('runningCount', 0)}/"
                    f"{d.get('desiredCount', 0)}, pending {d.get('pendingCount', 0)}, failed "
                    f"{d.get('failedTasks', 0)}  {d.get('rolloutStateReason', '')}".rstrip()
                )
        return ROLLOUT_FAILED, "  the deployment is no longer listed: ECS replaced it"

    def _stop_state(self, arn: str) -> tuple[str, str]:
        found = self._client("ecs").describe_service_deployments(serviceDeploymentArns=[arn])
        deployments = found.get("serviceDeployments") or [{}]
        status = str(deployments[0].get("status", ""))
        reason = str(deployments[0].get("statusReason", ""))
        return status, f"  {status or '?'} {reason}".rstrip()

    # ---- the report ------------------------------------------------------------------------

    def _report(self, outcome: Outcome, seconds: float) -> str:
        names, chosen = outcome.prepared.names, outcome.prepared.plan
        link = runbook_url(names.runbook_base, RUNBOOK) if names.runbook_base else RUNBOOK
        ok = outcome.succeeded
        title = (
            f":rewind: Rolled back {names.service} to {short(chosen.target)}"
            if ok
            else f":x: Rollback of {names.service} to {short(chosen.target)} failed"
        )
        body = (
            f"{names.app}-{names.stage}: {chosen.describe(names.service)}; ECS says "
            f"{outcome.state} after {seconds:.0f}s. Pushes are frozen: the next push is "
            "recorded, not deployed, until `spotops unfreeze`."
        )
        message = build_message(
            title,
            body,
            facts=[
                ("From", short(chosen.current)),
                ("To", short(chosen.target)),
                ("How", chosen.how),
                ("By", "spotops rollback"),
            ],
            runbook=link,
        )
        return post_report(
            self._client,
            names,
            message.payload(),
            job="rollback-command",
        )


def _site_container(definition: Mapping[str, Any], repository: str) -> Mapping[str, Any]:
    """The container that runs the repository's image (the first one when none names it)."""
    containers = list(definition.get("containerDefinitions", []))
    for container in containers:
        image = str(container.get("image", ""))
        if f"/{repository}@" in image or f"/{repository}:" in image or image.endswith(repository):
            return dict(container)
    if not containers:
        raise SpotopsError(f"{definition.get('taskDefinitionArn', '?')} has no container.")
    return dict(containers[0])


# ---- Slack -------------------------------------------------------------------------------


def post_report(
    client: ClientFactory,
    names: StageNames,
    payload: Mapping[str, Any],
    *,
    job: str,
    max_attempts: int = 3,
) -> str:
    """Post ``payload`` to the stage's webhook with slack_sdk's retry handlers (429, 5xx,
    connection errors); when it still fails, put it on the stage's Slack dead-letter queue in
    the shape ``spotops dead-letters replay`` re-posts. What happened, in one line (never
    the URL: it is a secret)."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.webhook import WebhookClient

    from spotops.proof.verify_facts import read_webhook_url

    url = read_webhook_url(client("secretsmanager"), names.webhook_secret)
    reason = ""
    if not url:
        reason = f"the webhook secret {names.webhook_secret} holds no URL"
    else:
        retries = max_attempts - 1
        webhook = WebhookClient(
            url,
            timeout=5,
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=retries),
                ServerErrorRetryHandler(max_retry_count=retries),
                ConnectionErrorRetryHandler(max_retry_count=retries),
            ],
        )
        try:
            answer = webhook.send_dict(dict(payload))
        except Exception as exc:  # after the retries: a refused connection, a timeout, TLS
            reason = f"{type(exc).__name__}"
        else:
            if 200 <= answer.status_code < 300:
                return "Slack: report posted."
            reason = f"Slack answered HTTP {answer.status_code}"
    if not names.slack_dead_letters:
        return f"Slack: report NOT posted ({reason}) and the stage has no Slack dead-letter queue."
    client("sqs").send_message(
        QueueUrl=names.slack_dead_letters,
        MessageBody=json.dumps(
            {"job": job, "reason": reason, "attempts": max_attempts, "message": dict(payload)}
        ),
        MessageAttributes={
            "job": {"DataType": "String", "StringValue": job},
            "reason": {"DataType": "String", "StringValue": reason[:256] or "-"},
        },
    )
    return (
        f"Slack: report NOT posted ({reason}); it waits on the Slack dead-letter queue: "
        f"`spotops dead-letters replay --queue slack --stage {names.stage}` posts it."
    )


def render_outcome(outcome: Outcome) -> list[str]:
    """What the command prints once the rollout ended (stdout)."""
    names, chosen = outcome.prepared.names, outcome.prepared.plan
    verdict = "done" if outcome.succeeded else "FAILED"
    lines = [
        f"Rollback {verdict}: {names.service} runs {short(chosen.target)} "
        f"(was {short(chosen.current)}); ECS: {outcome.state}.",
    ]
    if outcome.froze:
        lines.append(
            f"Pushes are frozen: a push is recorded, not deployed. Resume with `spotops "
            f"unfreeze --stage {names.stage}` (add --deploy-latest to deploy the newest one)."
        )
    else:
        lines.append(f"Pushes were frozen already; `spotops unfreeze --stage {names.stage}`.")
    lines.append(outcome.slack)
    return lines


def describe_prepared(prepared: Prepared, where: str) -> str:
    chosen = prepared.plan
    return (
        f"Roll back on {where}: {chosen.describe(prepared.names.service)} "
        f"(target: {prepared.how_found}), then freeze pushes until `spotops unfreeze`."
    )
