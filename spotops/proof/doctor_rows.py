"""What each ``spotops doctor`` row says, decided from facts already read.

Pure functions only: :mod:`spotops.proof.doctor_facts` reads the account, these decide. A row
FAILs only for what blocks a deploy or a flow of the toolkit; what works now but deserves
attention WARNs; what only a stand-in of the local emulator could answer says ``emulator``.
Every WARN and FAIL says what to do, with the exact command where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from spotops.proof.rows import Row, State
from spotops.reports.cost import ON_DEMAND_QUOTA, SPOT_QUOTA, VcpuPeak
from spotops.stage.account import MANUAL_COMMAND

# Runbooks the rows point at (files of runbooks/).
RUNBOOK_INDEX = "README.md"
RUNBOOK_CAPACITY = "running-tasks-below-desired.md"
RUNBOOK_DEPLOY = "deploy-failed.md"
RUNBOOK_SCAN = "image-vulnerability.md"
RUNBOOK_WEBHOOK = "slack-webhook-missing.md"
RUNBOOK_DEAD_LETTERS = "ops-dead-letters.md"
RUNBOOK_CHAOS = "chaos-kill.md"
RUNBOOK_REDEPLOY = "redeploy.md"
# The runbook doctor fetches to prove RunbookBaseUrl: every alarm's link has this shape.
PROBE_RUNBOOK = RUNBOOK_DEAD_LETTERS

# A share of a quota the stages may need before doctor warns: past it, one more stage or a
# larger MaxTasks leaves deployments waiting for capacity.
QUOTA_WARN_SHARE = 0.8
# ECS waits up to its own timeouts for a service to settle, and a canary deployment bakes;
# an operation older than this is stuck rather than slow.
STUCK_AFTER = timedelta(minutes=60)

NOT_DEPLOYED = "not deployed yet"


@dataclass(frozen=True)
class OtherStage:
    """Another stage deployed in the account and region, and the most vCPU it can run
    (``None`` when its parameters could not be read as a peak)."""

    stage: str
    peak: VcpuPeak | None


@dataclass(frozen=True)
class StackFacts:
    """A stack as CloudFormation describes it, with its last operation's first failure."""

    name: str
    status: str
    reason: str = ""
    last_change: datetime | None = None
    failed_resource: str = ""
    failed_reason: str = ""


# ---- 1. credentials ----------------------------------------------------------------


def credentials_row(
    identity: Mapping[str, str] | None, error: str, *, region: str, proves_account: bool
) -> Row:
    """STS's answer: who calls, in which account and region."""
    name = "credentials"
    if identity is None:
        return Row(
            name,
            State.FAIL,
            f"STS GetCallerIdentity failed in {region}: {error}",
            advice="Configure credentials (aws configure, AWS_PROFILE or an SSO login) and "
            "the region (--region / AWS_REGION), then run doctor again.",
        )
    detail = f"account {identity['Account']} as {identity['Arn']}, region {region}"
    if not proves_account:
        return Row(name, State.EMULATOR, f"emulator {detail}")
    return Row(name, State.OK, detail)


# ---- 2. config -------------------------------------------------------------------------


def config_row(stage: str, problem: str) -> Row:
    """The stage's parameters against every template (``problem`` empty when they fit)."""
    name = "config"
    if problem:
        return Row(
            name,
            State.FAIL,
            problem,
            advice=f"Fix config/{stage}.json (or the --param values) as the message says; "
            "`spotops cost --stage " + stage + "` rechecks it without AWS.",
        )
    return Row(name, State.OK, f"config/{stage}.json fits the network, site and ops templates")


# ---- 3. Fargate quotas ---------------------------------------------------------------


def _split(peak: VcpuPeak | None, spot: bool) -> float:
    if peak is None:
        return 0.0
    return peak.spot_vcpu if spot else peak.on_demand_vcpu


def quota_row(
    *,
    spot: bool,
    stage: str,
    region: str,
    own: VcpuPeak | None,
    others: Sequence[OtherStage],
    quota: float | None,
    error: str,
    proves_account: bool,
) -> Row:
    """One Fargate vCPU quota against the most this stage and the other deployed stages can
    run at once (each at its largest steady count during a deployment)."""
    title, code = SPOT_QUOTA if spot else ON_DEMAND_QUOTA
    name = "fargate spot vcpu quota" if spot else "fargate on-demand vcpu quota"
    mine = _split(own, spot)
    theirs = sum(_split(other.peak, spot) for other in others)
    need = mine + theirs
    unknown = [other.stage for other in others if other.peak is None]
    counted = ", ".join(f"{o.stage} {_split(o.peak, spot):g}" for o in others if o.peak)
    need_text = f"needs up to {need:g} vCPU ({stage} {mine:g}" + (
        f", other stages: {counted})" if counted else ")"
    )
    if unknown:
        need_text += f"; not counted (parameters unreadable): {', '.join(unknown)}"
    if not proves_account:
        return Row(name, State.EMULATOR, f"{need_text}; the emulator has no quota values")
    if quota is None:
        return Row(
            name,
            State.WARN,
            f"{need_text}; quota {code} could not be read: {error}",
            advice=f'Check "{title}" ({code}) in the Service Quotas console for {region}, or '
            "allow servicequotas:GetServiceQuota to the role you deploy with.",
            runbook=RUNBOOK_CAPACITY,
        )
    increase = (
        f"aws service-quotas request-service-quota-increase --service-code fargate "
        f"--quota-code {code} --desired-value {max(need, 1):g} --region {region}"
    )
    lower = (
        "or lower the peak (MaxTasks, TaskCpu, "
        + ("SpotWeight" if spot else "OnDemandBase/OnDemandWeight")
        + ")"
    )
    detail = f"{need_text}; quota {quota:g} ({code})"
    if need > quota:
        return Row(
            name,
            State.FAIL,
            detail,
            advice=f"Request more: `{increase}`, {lower}; until then tasks beyond the quota "
            "do not start and a deployment waits for capacity.",
            runbook=RUNBOOK_CAPACITY,
        )
    if need > QUOTA_WARN_SHARE * quota:
        return Row(
            name,
            State.WARN,
            f"{detail}: over {QUOTA_WARN_SHARE:.0%} of it",
            advice=f"One more stage or a larger MaxTasks will not fit; request more ahead: "
            f"`{increase}`.",
            runbook=RUNBOOK_CAPACITY,
        )
    return Row(name, State.OK, detail)


# ---- 4. account setup -------------------------------------------------------------------


def service_linked_role_row(found: bool | None) -> Row:
    """ECS's service-linked role. Missing only WARNs: ``spotops deploy`` creates it first
    (:func:`~spotops.stage.account.ensure_ecs_service_linked_role`) when the caller may create
    IAM roles, so its absence blocks a deploy only for a caller that may not."""
    name = "ecs service-linked role"
    if found is None:
        return Row(
            name,
            State.WARN,
            "IAM roles could not be read (access denied)",
            advice="If the first deploy fails with 'Unable to assume the service linked role', "
            f"an administrator runs `{MANUAL_COMMAND}` once.",
        )
    if not found:
        return Row(
            name,
            State.WARN,
            "AWSServiceRoleForECS does not exist yet",
            advice="spotops deploy creates it when your role may create IAM roles; otherwise an "
            f"administrator runs `{MANUAL_COMMAND}` once.",
        )
    return Row(name, State.OK, "AWSServiceRoleForECS exists")


def fargate_spot_row(
    *,
    cluster: str,
    cluster_providers: Sequence[str] | None,
    offered: str | None,
    region: str,
    proves_account: bool,
) -> Row:
    """Fargate Spot in the region, as ECS answers: the stage's cluster holds FARGATE_SPOT
    (ECS only associates what the region offers), or, before the site is deployed,
    DescribeCapacityProviders' status for it."""
    name = "fargate spot offered"
    if not proves_account:
        return Row(name, State.EMULATOR, "the emulator does not model where Fargate Spot runs")
    if cluster_providers is not None:
        if "FARGATE_SPOT" in cluster_providers:
            return Row(name, State.OK, f"cluster {cluster} has FARGATE_SPOT")
        return Row(
            name,
            State.FAIL,
            f"cluster {cluster} has {', '.join(cluster_providers) or 'no capacity providers'}",
            advice="The service's strategy needs FARGATE_SPOT on its cluster: deploy the site "
            "stack again (`spotops deploy`), or set SpotWeight=0 where Fargate Spot is not "
            "offered.",
            runbook=RUNBOOK_CAPACITY,
        )
    if offered == "ACTIVE":
        return Row(name, State.OK, f"ECS lists FARGATE_SPOT as ACTIVE in {region}")
    return Row(
        name,
        State.WARN,
        f"ECS did not list FARGATE_SPOT as ACTIVE in {region} ({offered or 'not listed'})",
        advice="Fargate Spot may not be offered here: check the region in the ECS console, or "
        "deploy with SpotWeight=0 and OnDemandWeight=1 (on-demand only).",
        runbook=RUNBOOK_CAPACITY,
    )


# ---- 5. stacks ----------------------------------------------------------------------------


def _aws(command: str, stack: str, region: str, extra: str = "") -> str:
    return f"aws cloudformation {command} --stack-name {stack} --region {region}{extra}"


def stack_row(
    part: str, stack_name: str, facts: StackFacts | None, *, stage: str, region: str, now: datetime
) -> Row:
    """A stack's state and, when it blocks a deploy, the exact way out."""
    name = f"stack {part}"
    if facts is None or facts.status == "REVIEW_IN_PROGRESS":
        return Row(name, State.OK, f"{stack_name}: {NOT_DEPLOYED} (deploy creates it)")
    status = facts.status
    cause = (
        f"; first failure: {facts.failed_resource}: {facts.failed_reason}"
        if facts.failed_resource
        else (f"; {facts.reason}" if facts.reason else "")
    )
    detail = f"{stack_name}: {status}{cause}"
    redeploy = f"spotops deploy --stage {stage} --region {region}"
    delete_then_deploy = (
        f"`{_aws('delete-stack', stack_name, region)}`, then "
        f"`{_aws('wait stack-delete-complete', stack_name, region)}`, then `{redeploy}`"
    )
    if status == "ROLLBACK_COMPLETE":
        return Row(
            name,
            State.FAIL,
            detail,
            advice="Its first creation failed and CloudFormation cannot update it. Fix the "
            f"cause above, then {delete_then_deploy}.",
            runbook=RUNBOOK_DEPLOY,
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        skip = f" --resources-to-skip {facts.failed_resource}" if facts.failed_resource else ""
        return Row(
            name,
            State.FAIL,
            detail,
            advice="Fix what stopped the rollback (the failure above) and run "
            f"`{_aws('continue-update-rollback', stack_name, region)}`; if that resource "
            f"cannot be fixed, `{_aws('continue-update-rollback', stack_name, region, skip)}` "
            f"(CloudFormation then leaves it as it is). Then `{redeploy}`.",
            runbook=RUNBOOK_DEPLOY,
        )
    if status == "DELETE_FAILED":
        retain = f" --retain-resources {facts.failed_resource}" if facts.failed_resource else ""
        return Row(
            name,
            State.FAIL,
            detail,
            advice="Remove what blocked the deletion (the failure above) and run "
            f"`spotops destroy --stage {stage}` again, or keep that resource: "
            f"`{_aws('delete-stack', stack_name, region, retain)}`.",
            runbook=RUNBOOK_DEPLOY,
        )
    if status.endswith("_FAILED"):  # ROLLBACK_FAILED, CREATE_FAILED, UPDATE_FAILED, IMPORT_*
        return Row(
            name,
            State.FAIL,
            detail,
            advice=f"A stack in {status} can only be deleted: {delete_then_deploy}.",
            runbook=RUNBOOK_DEPLOY,
        )
    if status.endswith("_IN_PROGRESS"):
        return _in_progress_row(name, detail, facts, stack_name, region=region, now=now)
    return Row(name, State.OK, detail)


def _in_progress_row(
    name: str, detail: str, facts: StackFacts, stack_name: str, *, region: str, now: datetime
) -> Row:
    age = now - facts.last_change if facts.last_change else timedelta(0)
    minutes = int(age.total_seconds() // 60)
    detail = f"{detail} for {minutes} min"
    if age <= STUCK_AFTER:
        return Row(
            name,
            State.WARN,
            detail,
            advice="An operation is running and a deploy now would be refused; follow it with "
            "`spotops status` and run doctor again once it settles.",
        )
    events = _aws("describe-stack-events", stack_name, region, " --max-items 20")
    if facts.status == "UPDATE_IN_PROGRESS":
        cancel = _aws("cancel-update-stack", stack_name, region)
        way_out = f"Cancel it (CloudFormation rolls back): `{cancel}`"
    elif facts.status == "CREATE_IN_PROGRESS":
        way_out = (
            f"Delete it (this stops the creation): `{_aws('delete-stack', stack_name, region)}`"
        )
    else:  # rollbacks and deletions cannot be cancelled: the resource they wait on can
        way_out = (
            "It cannot be cancelled: find the resource it waits on and release it (an ECS "
            "service that never stabilizes: `aws ecs update-service --desired-count 0`)"
        )
    return Row(
        name,
        State.FAIL,
        detail,
        advice=f"Stuck for over {int(STUCK_AFTER.total_seconds() // 60)} min. See what it waits "
        f"on: `{events}`. {way_out}.",
        runbook=RUNBOOK_DEPLOY,
    )


# ---- 6. Powertools layer ------------------------------------------------------------------


def layer_row(
    *,
    arn: str,
    description: str | None,
    error: str,
    pinned: str,
    chosen_by: str,
    proves_account: bool,
) -> Row:
    """The Powertools layer the functions load (or will load) exists and holds the pinned
    aws-lambda-powertools: AWS ends the layer's Description with the version it holds."""
    name = "powertools layer"
    if not proves_account:
        return Row(name, State.EMULATOR, "the emulator's functions load an empty stand-in layer")
    fix = (
        "Deploy with the layer of the pin: `spotops deploy` reads it from "
        f"/aws/service/powertools/python/x86_64/python3.11/{pinned}; where that parameter is "
        "missing pass --param PowertoolsLayerArn=<arn> (spotops/data/powertools_layers.json "
        "says how to find it)."
    )
    if description is None:
        return Row(
            name,
            State.FAIL,
            f"{arn} ({chosen_by}) does not exist or cannot be read: {error}",
            advice=fix,
            runbook=RUNBOOK_REDEPLOY,
        )
    if not description.rstrip().endswith(pinned):
        return Row(
            name,
            State.WARN,
            f"{arn} ({chosen_by}) holds {description!r}, not aws-lambda-powertools {pinned}",
            advice="The functions run another Powertools than their tests. " + fix,
            runbook=RUNBOOK_REDEPLOY,
        )
    return Row(name, State.OK, f"{arn} ({chosen_by}) holds aws-lambda-powertools {pinned}")


# ---- 7. ECR scanning ------------------------------------------------------------------------


def scanning_row(scan_type: str | None, error: str) -> Row:
    """The registry's scanning, and which of image_scan_alert's rules its results reach."""
    name = "ecr scanning"
    if scan_type is None:
        return Row(
            name,
            State.WARN,
            f"the registry's scanning configuration could not be read: {error}",
            advice="Allow ecr:GetRegistryScanningConfiguration, or check Private registry > "
            "Scanning in the ECR console: image_scan_alert needs basic or enhanced scanning.",
            runbook=RUNBOOK_SCAN,
        )
    if scan_type.upper() == "ENHANCED":
        return Row(
            name,
            State.OK,
            "ENHANCED (Amazon Inspector): the InspectorFindings rule (Inspector2 Scan and "
            "Finding) reaches image_scan_alert; the ECR Image Scan rule stays quiet",
            runbook=RUNBOOK_SCAN,
        )
    return Row(
        name,
        State.OK,
        "BASIC (scan on push): the ECR Image Scan rule reaches image_scan_alert; the "
        "InspectorFindings rule stays quiet",
        runbook=RUNBOOK_SCAN,
    )


# ---- 8. Slack ------------------------------------------------------------------------------


def webhook_row(
    *,
    secret: str,
    url_set: bool | None,
    error: str,
    sent_status: int | None,
    send_error: str,
    send_test: bool,
    sent: bool,
    stage: str,
    proves_account: bool,
) -> Row:
    """The webhook secret, and with ``send_test`` the test message's delivery. ``sent`` is
    False when the message was not posted (on the emulator, doctor calls only 127.0.0.1)."""
    name = "slack webhook"
    set_it = f"`spotops slack-webhook set --stage {stage}` (the URL from standard input)"
    if url_set is None:
        return Row(
            name,
            State.FAIL,
            f"secret {secret} could not be read: {error}",
            advice=f"Store the incoming-webhook URL: {set_it}. The ops stack creates the "
            "secret: if the stack is missing too, deploy it first.",
            runbook=RUNBOOK_WEBHOOK,
        )
    if not url_set:
        return Row(
            name,
            State.FAIL,
            f"secret {secret} holds no URL: every Slack message goes to the dead-letter queue",
            advice=f"Store the incoming-webhook URL: {set_it}.",
            runbook=RUNBOOK_WEBHOOK,
        )
    if not send_test:
        return Row(name, State.OK, f"secret {secret} holds a URL (--send-test delivers one)")
    if not sent:
        return Row(
            name,
            State.EMULATOR,
            f"secret {secret} holds a URL; not posted: on the emulator only 127.0.0.1 is",
        )
    if sent_status == 200:
        detail = f"secret {secret} holds a URL; the test message was delivered (200)"
        return Row(name, State.OK if proves_account else State.EMULATOR, detail)
    answer = f"answered {sent_status}" if sent_status is not None else f"failed: {send_error}"
    revoked = " (Slack answers 404 for a webhook that was removed)" if sent_status == 404 else ""
    return Row(
        name,
        State.FAIL,
        f"secret {secret} holds a URL, but the test message {answer}{revoked}",
        advice=f"Create a new incoming webhook in Slack and store it: {set_it}.",
        runbook=RUNBOOK_WEBHOOK,
    )


# ---- 9. runbooks ----------------------------------------------------------------------------


def runbook_url_row(
    *, url: str, status: int | None, error: str, fetched: bool, proves_account: bool
) -> Row:
    """One runbook fetched through RunbookBaseUrl, as every alarm and Slack message links it.
    ``fetched`` is False when the URL was not asked (on the emulator, doctor calls only
    127.0.0.1)."""
    name = "runbook url"
    if not fetched:
        return Row(name, State.EMULATOR, f"{url} not fetched: on the emulator only 127.0.0.1 is")
    if status is not None and 200 <= status < 300:
        detail = f"{url} answered {status}"
        return Row(name, State.OK if proves_account else State.EMULATOR, detail)
    answer = f"answered {status}" if status is not None else f"failed: {error}"
    return Row(
        name,
        State.FAIL,
        f"{url} {answer}: every alarm and Slack message links a page that does not open",
        advice="Publish runbooks/ where RunbookBaseUrl points, or deploy with --param "
        "RunbookBaseUrl=<base URL of the runbooks folder, no trailing slash>.",
        runbook=RUNBOOK_INDEX,
    )


# ---- 10. dead letters and switches -----------------------------------------------------------


def dead_letter_row(which: str, queue: str, depth: int | None, error: str) -> Row:
    """A dead-letter queue's depth: a message there is an alert or event nobody handled."""
    name = f"{which} dead letters"
    if depth is None:
        return Row(
            name,
            State.WARN,
            f"{queue} could not be read: {error}",
            advice="Allow sqs:GetQueueAttributes, or look at the queue in the SQS console.",
            runbook=RUNBOOK_DEAD_LETTERS,
        )
    if depth:
        return Row(
            name,
            State.WARN,
            f"{depth} message(s) wait in {queue}",
            advice="Read them, fix the cause each names, then redrive or purge them as "
            f"{RUNBOOK_DEAD_LETTERS} says.",
            runbook=RUNBOOK_DEAD_LETTERS,
        )
    return Row(name, State.OK, f"{queue} is empty", runbook=RUNBOOK_DEAD_LETTERS)


_SWITCH_MEANING = {
    "kill-switch": {"off": "automation may act", "on": "every automated action is stopped"},
    "dry-run": {"false": "automation acts", "true": "automation only reports what it would do"},
    "chaos-leash": {"on": "chaos only reports its kills", "off": "chaos stops tasks"},
}
_SWITCH_RUNBOOK = {
    "kill-switch": RUNBOOK_INDEX,
    "dry-run": RUNBOOK_REDEPLOY,
    "chaos-leash": RUNBOOK_CHAOS,
}


def switch_row(switch: str, parameter: str, value: str | None, stage: str) -> Row:
    """A run-time switch as it stands (set with ``spotops <switch> <value>``)."""
    if value is None:
        return Row(
            switch,
            State.WARN,
            f"{parameter} does not exist",
            advice=f"Deploy the ops stack again (`spotops deploy --stage {stage}`); it creates "
            "the parameter.",
            runbook=_SWITCH_RUNBOOK[switch],
        )
    meaning = _SWITCH_MEANING[switch].get(value, "an unknown value: automation stays stopped")
    return Row(switch, State.OK, f"{value}: {meaning}", runbook=_SWITCH_RUNBOOK[switch])


def not_deployed_rows(names: Sequence[str], ops_stack: str) -> list[Row]:
    """The rows that read the ops stack's resources, before its first deploy."""
    return [Row(name, State.SKIP, f"{NOT_DEPLOYED} ({ops_stack})") for name in names]


RUNBOOK_ROLLBACK = "rollback.md"


def pushes_row(
    *, frozen: bool | None, since: str = "", reason: str = "", by: str = "", error: str = ""
) -> Row:
    """Whether pushes deploy: a freeze (after a rollback, or planned) is a warning, since
    every push is recorded and not deployed until someone lifts it. ``frozen`` None: the
    ledger could not be read (``error``)."""
    name = "pushes"
    if frozen is None:
        return Row(
            name,
            State.WARN,
            f"the ledger's freeze could not be read: {error}",
            advice="Allow dynamodb:GetItem on the ledger table, or read FREEZE#<cluster>/"
            "<service> in the DynamoDB console.",
            runbook=RUNBOOK_ROLLBACK,
        )
    if not frozen:
        return Row(name, State.OK, "pushes deploy (not frozen)", runbook=RUNBOOK_ROLLBACK)
    return Row(
        name,
        State.WARN,
        f"frozen since {since} ({reason or 'no reason given'}; by {by}): a push is recorded, "
        "not deployed",
        advice="When the fix is ready: `spotops unfreeze` (add --deploy-latest to deploy the "
        "newest push held back).",
        runbook=RUNBOOK_ROLLBACK,
    )
