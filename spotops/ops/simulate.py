"""Rehearse what the ops toolkit would do with one event: the deployed functions, run here.

A :class:`Rehearsal` fetches the zip the ops stack deployed, and each function's deployed
environment, and runs a handler on an event of the exact AWS shape (``aws_events``) in a
fresh local process (``local_lambda``). Against the local emulator it acts on the emulator.
Against a real account it is forced dry: ``DRY_RUN=true`` in the function's environment
makes every action report what it would do (chaos is leashed by it too), so on-call can
rehearse without touching production.

Where the local emulator lacks AWS's part (moto has no registry, ends no deployment, drops
the site's alarms and capacity provider strategy), the target plays it
(:class:`~spotops.target.Target`; on AWS it refuses or does nothing): what it did comes back
as :attr:`Rehearsal.notes`, each naming the emulator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spotops.errors import NotDeployedError, UsageError
from spotops.ops import aws_events
from spotops.ops.local_lambda import Invocation, invoke, unpack
from spotops.ops.site_alarms import (
    DeployedStack,
    alarm_definitions,
    composite_alarm_definitions,
    composite_inputs,
    rule_children,
    service_strategy,
)
from spotops.stage.templates import load_template
from spotops.target import AWS, Target

if TYPE_CHECKING:
    from spotops.aws import ClientFactory

# Settings of a rehearsal that are the machine's, not the function's.
_PASSED_THROUGH = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_PROFILE",
    "PATH",
    "HOME",
)


@dataclass(frozen=True)
class StageFacts:
    """Where the rehearsal acts: account, region, the site's names."""

    account: str
    region: str
    site: Mapping[str, str]


class Rehearsal:
    """Run the deployed ops functions of one stage locally.

    Parameters
    ----------
    clients:
        A callable returning a boto3 client by service name (the CLI session's).
    app, stage, region:
        The stage.
    work_dir:
        Where the zip is unpacked (``.spotops/simulate/<stage>``).
    force_dry_run:
        True for a real account: every action only reports.
    base_env:
        Where the credentials and endpoint come from (default: this process's environment).
    lambda_preludes:
        What each function's process calls first (the target's
        :attr:`~spotops.target.Target.lambda_preludes`).
    target:
        Where the stage is: plays AWS's part where the emulator has none.
    """

    def __init__(
        self,
        clients: ClientFactory,
        *,
        app: str,
        stage: str,
        region: str,
        work_dir: Path,
        force_dry_run: bool,
        base_env: Mapping[str, str] | None = None,
        lambda_preludes: Sequence[str] = (),
        target: Target = AWS,
    ) -> None:
        self._client = clients
        self.app = app
        self.stage = stage
        self.region = region
        self._work_dir = work_dir
        self.force_dry_run = force_dry_run
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._zip_dir: Path | None = None
        self._facts: StageFacts | None = None
        self._lambda_preludes = tuple(lambda_preludes)
        self.target = target
        # What the target did in AWS's place, for the user to read (each names the emulator).
        self.notes: list[str] = []

    def note(self, message: str | None) -> None:
        if message:
            self.notes.append(message)

    def site_stack(self) -> tuple[dict[str, Any], DeployedStack]:
        """The site stack's deployed template and what resolves it."""
        name = f"{self.app}-{self.stage}-site"
        cfn = self._client("cloudformation")
        self._outputs(name)  # a clear error when the stack is missing
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        physical = {
            str(r["LogicalResourceId"]): str(r.get("PhysicalResourceId") or "")
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
            for r in page["StackResourceSummaries"]
        }
        body = cfn.get_template(StackName=name)["TemplateBody"]
        if isinstance(body, Mapping):
            template = dict(body)
        else:  # YAML with CloudFormation's short tags: the project's own reader parses it
            self._work_dir.mkdir(parents=True, exist_ok=True)
            copy = self._work_dir / "site-template.yaml"
            copy.write_text(str(body))
            template = load_template(copy)
        deployed = DeployedStack(
            parameters={
                str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
                for p in stack.get("Parameters", [])
            },
            physical=physical,
            region=self.region,
            account=self.facts().account,
        )
        return template, deployed

    def client(self, service: str) -> Any:
        return self._client(service)

    def function_name(self, function: str) -> str:
        return f"{self.app}-{self.stage}-{function}"

    def facts(self) -> StageFacts:
        """The account, region and site outputs (read once)."""
        if self._facts is None:
            account = str(self._client("sts").get_caller_identity()["Account"])
            site = self._outputs(f"{self.app}-{self.stage}-site")
            self._facts = StageFacts(account=account, region=self.region, site=site)
        return self._facts

    def _outputs(self, stack: str) -> dict[str, str]:
        try:
            found = self._client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        except Exception as exc:  # a ClientError whose message names the missing stack
            raise NotDeployedError(
                f"Stack {stack} does not exist: deploy the stage first with "
                f"`spotops deploy --stage {self.stage}`."
            ) from exc
        return {o["OutputKey"]: str(o["OutputValue"]) for o in found[0].get("Outputs", [])}

    def zip_dir(self) -> Path:
        """The deployed zip, unpacked (fetched once)."""
        if self._zip_dir is None:
            stack = f"{self.app}-{self.stage}-ops"
            self._outputs(stack)  # a clear error when the ops stack is missing
            body = self._client("cloudformation").get_template(StackName=stack)["TemplateBody"]
            template = body if isinstance(body, dict) else json.loads(body)
            code = next(
                resource["Properties"]["Code"]
                for resource in template["Resources"].values()
                if resource.get("Type") == "AWS::Lambda::Function"
            )
            zipped = self._client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])
            target = self._work_dir / Path(str(code["S3Key"])).stem
            self._zip_dir = unpack(zipped["Body"].read(), target)
        return self._zip_dir

    def environment(
        self, function: str, overrides: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The function's deployed environment, plus this machine's credentials and endpoint;
        dry run forced when the rehearsal must change nothing."""
        try:
            config = self._client("lambda").get_function_configuration(
                FunctionName=self.function_name(function)
            )
        except Exception as exc:
            raise NotDeployedError(
                f"Function {self.function_name(function)} does not exist: deploy the ops stack "
                f"with `spotops deploy --stage {self.stage}`."
            ) from exc
        env = {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}
        env.update({k: self._base_env[k] for k in _PASSED_THROUGH if k in self._base_env})
        env.update(
            {
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name(function),
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            }
        )
        env.update(overrides or {})
        if self.force_dry_run:
            env["DRY_RUN"] = "true"
        return env

    def run(
        self,
        function: str,
        event: Mapping[str, Any],
        *,
        overrides: Mapping[str, str] | None = None,
    ) -> Invocation:
        """Run ``app.<function>`` of the deployed zip on ``event``."""
        if not function.replace("_", "").isalnum():
            raise UsageError(f"Unknown function {function!r}.")
        return invoke(
            self.zip_dir(),
            function,
            event,
            self.environment(function, overrides),
            function_name=self.function_name(function),
            function_arn=(
                f"arn:aws:lambda:{self.region}:{self.facts().account}:function:"
                f"{self.function_name(function)}"
            ),
            work_dir=self._work_dir / "events",
            preludes=self._lambda_preludes,
        )


# ---- the kinds of event a rehearsal can send -------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of event: the function that handles it, its arguments, how to build it."""

    function: str
    arguments: tuple[str, ...]
    build: Callable[[Rehearsal, Sequence[str]], dict[str, Any]]
    help: str


def _ecr_push(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    (tag,) = args
    facts = rehearsal.facts()
    repository = facts.site["RepositoryName"]
    ecr = rehearsal.client("ecr")
    try:
        digest = str(
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])[
                "imageDetails"
            ][0]["imageDigest"]
        )
    except ecr.exceptions.ImageNotFoundException:
        # The push itself, played where there is no registry (AWS refuses: push for real).
        digest, message = rehearsal.target.put_image(ecr, repository, tag)
        rehearsal.note(message)
    return aws_events.ecr_push(
        account=facts.account,
        region=facts.region,
        repository=repository,
        digest=digest,
        tag=tag,
    )


def _chaos_tick(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    facts = rehearsal.facts()
    return aws_events.scheduled(
        account=facts.account, region=facts.region, rule_name=f"{rehearsal.app}-simulated-chaos"
    )


def _alarm(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    """The state change of one of the site's alarms, its trigger and description (with the
    runbook link) as CloudWatch holds the alarm the site template defines; for a burn-rate
    alert (a composite alarm), its rule and the windows that set it off. A window alone is
    refused: it has no actions, so CloudWatch sends nothing when it changes."""
    name, state = args
    if state not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise UsageError(f"STATE is ALARM, OK or INSUFFICIENT_DATA, not {state!r}.")
    facts = rehearsal.facts()
    template, deployed = rehearsal.site_stack()
    composites = composite_alarm_definitions(template, deployed)
    windows = composite_inputs(composites)
    definitions = {**alarm_definitions(template, deployed), **composites}
    prefix = f"{rehearsal.app}-{rehearsal.stage}-"
    full = name if name in definitions else f"{prefix}{name}"
    if full in windows:
        raise UsageError(
            f"{full.removeprefix(prefix)} is an input of the burn-rate alert "
            f"{windows[full].removeprefix(prefix)}; it notifies nobody: simulate the alert."
        )
    if full not in definitions:
        valid = ", ".join(sorted(n.removeprefix(prefix) for n in definitions if n not in windows))
        raise UsageError(
            f"No alarm {name!r} in the {rehearsal.stage} stage's site template: use one of {valid}."
        )
    cloudwatch = rehearsal.client("cloudwatch")
    rehearsal.note(rehearsal.target.place_alarm(cloudwatch, definitions[full], state))
    described = cloudwatch.describe_alarms(
        AlarmNames=[full], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    found = described.get("CompositeAlarms", []) + described.get("MetricAlarms", [])
    if not found:
        raise NotDeployedError(
            f"Alarm {full} is in the site template but not in CloudWatch: deploy the stage "
            f"again with `spotops deploy --stage {rehearsal.stage}`."
        )
    alarm = found[0]
    reason = f"Rehearsal: {full} set to {state} by spotops simulate."
    if full in composites:
        # The emulator's stand-in for a composite alarm is a metric alarm: the rule and
        # actions come from the template there, from CloudWatch on AWS.
        rule = str(alarm.get("AlarmRule") or composites[full]["AlarmRule"])
        actions = ("AlarmActions", "OKActions", "InsufficientDataActions")
        return aws_events.composite_alarm_sns(
            account=facts.account,
            region=facts.region,
            topic_arn=facts.site["AlarmTopicArn"],
            name=full,
            state=state,
            description=str(alarm.get("AlarmDescription", "")),
            reason=reason,
            rule=rule,
            actions={key: [str(a) for a in alarm.get(key, [])] for key in actions},
            # An AND of windows changes when its last window does.
            triggering=[child.rsplit(":alarm:", 1)[-1] for child in rule_children(rule)[-1:]],
        )
    return aws_events.alarm_sns(
        account=facts.account,
        region=facts.region,
        topic_arn=facts.site["AlarmTopicArn"],
        name=full,
        state=state,
        description=str(alarm.get("AlarmDescription", "")),
        reason=reason,
        trigger=aws_events.sns_trigger(alarm),
    )


def _spot_interruption(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    facts = rehearsal.facts()
    return aws_events.spot_interruption(
        account=facts.account,
        region=facts.region,
        cluster=facts.site["ClusterName"],
        service=facts.site["ServiceName"],
        task_id="0" * 32,
    )


def _placement_failure(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    facts = rehearsal.facts()
    template, deployed = rehearsal.site_stack()
    rehearsal.note(
        rehearsal.target.restore_strategy(
            rehearsal.client("ecs"),
            facts.site["ClusterName"],
            facts.site["ServiceName"],
            service_strategy(template, deployed),
            apply=not rehearsal.force_dry_run,
        )
    )
    return aws_events.placement_failure(
        account=facts.account,
        region=facts.region,
        cluster=facts.site["ClusterName"],
        service=facts.site["ServiceName"],
    )


def _image_scan(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    """The scan event of the image tagged ``TAG``, with the counts of its finished scan."""
    (tag,) = args
    facts = rehearsal.facts()
    repository = facts.site["RepositoryName"]
    ecr = rehearsal.client("ecr")
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        raise UsageError(
            f"No image tagged {tag!r} in {repository}: `spotops simulate ecr-push {tag}` "
            "puts one there on the emulator; on AWS, `spotops push`."
        ) from None
    try:
        found = ecr.describe_image_scan_findings(
            repositoryName=repository, imageId={"imageTag": tag}, maxResults=1
        )
    except ecr.exceptions.ScanNotFoundException:
        # Not scanned yet: the emulator scans now; on AWS scan on push did it or nothing will.
        rehearsal.note(rehearsal.target.start_image_scan(ecr, repository, tag))
        found = ecr.describe_image_scan_findings(
            repositoryName=repository, imageId={"imageTag": tag}, maxResults=1
        )
    if found.get("imageScanStatus", {}).get("status") != "COMPLETE":
        raise UsageError(f"The scan of {repository}:{tag} has not finished; try again shortly.")
    counts = found.get("imageScanFindings", {}).get("findingSeverityCounts", {})
    return aws_events.image_scan(
        account=facts.account,
        region=facts.region,
        repository=repository,
        digest=str(found["imageId"]["imageDigest"]),
        tags=[tag],
        counts={str(k): int(v) for k, v in counts.items()},
    )


DEPLOYMENT_OUTCOMES = {
    "completed": ("SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment {id} completed."),
    "failed": (
        "SERVICE_DEPLOYMENT_FAILED",
        "ECS deployment circuit breaker: tasks failed to start ({id}).",
    ),
}


def _deployment(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    """The end of the service's current deployment as ECS reports it (the emulator's end
    played first: ECS there ends none and sends nothing)."""
    (outcome,) = args
    if outcome not in DEPLOYMENT_OUTCOMES:
        raise UsageError(f"OUTCOME is completed or failed, not {outcome!r}.")
    facts = rehearsal.facts()
    cluster, name = facts.site["ClusterName"], facts.site["ServiceName"]
    ecs = rehearsal.client("ecs")
    service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    primary = next(d for d in service["deployments"] if d.get("status") == "PRIMARY")
    rehearsal.note(
        rehearsal.target.settle_deployment(
            ecs, cluster, name, outcome, apply=not rehearsal.force_dry_run
        )
    )
    event_name, reason = DEPLOYMENT_OUTCOMES[outcome]
    return aws_events.deployment_state(
        account=facts.account,
        region=facts.region,
        service_arn=str(service["serviceArn"]),
        deployment_id=str(primary["id"]),
        name=event_name,
        reason=reason.format(id=primary["id"]),
    )


def _smoke_test(rehearsal: Rehearsal, args: Sequence[str]) -> dict[str, Any]:
    """What ECS sends the deployment hook, pointed at ``URL`` (the site stack's ``SiteUrl``
    output, or a candidate): would the CANARY/LINEAR gate pass? It only reads: GET requests
    with the test header."""
    (url,) = args
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"URL is the site's http(s) address (output SiteUrl), not {url!r}.")
    facts = rehearsal.facts()
    return aws_events.lifecycle_hook(
        account=facts.account,
        region=facts.region,
        cluster=facts.site["ClusterName"],
        service=facts.site["ServiceName"],
        hook_details={
            "baseUrl": url,
            "testHeader": "X-Spotops-Test-Traffic",
            "testHeaderValue": rehearsal.stage,
        },
    )


KINDS: dict[str, Kind] = {
    "ecr-push": Kind(
        "redeploy_on_push",
        ("TAG",),
        _ecr_push,
        "a push of TAG (the emulator puts a stand-in image when it is missing)",
    ),
    "alarm": Kind("alarm_action", ("NAME", "STATE"), _alarm, "an alarm changing state (by SNS)"),
    "spot-interruption": Kind(
        "alarm_action", (), _spot_interruption, "a Spot interruption of one of the site's tasks"
    ),
    "placement-failure": Kind(
        "alarm_action", (), _placement_failure, "Fargate Spot capacity unavailable"
    ),
    "chaos-tick": Kind("chaos_tick", (), _chaos_tick, "one run of the chaos schedule"),
    "deployment": Kind(
        "deployment_outcome",
        ("OUTCOME",),
        _deployment,
        "the service's deployment ending (completed or failed)",
    ),
    "image-scan": Kind(
        "image_scan_alert", ("TAG",), _image_scan, "the finished ECR scan of an image"
    ),
    "smoke-test": Kind(
        "deployment_hook", ("URL",), _smoke_test, "the CANARY/LINEAR smoke-test gate on URL"
    ),
}


def rehearse(rehearsal: Rehearsal, kind: str, args: Sequence[str]) -> tuple[Kind, Invocation]:
    """Build the event of ``kind`` and run its function.

    Raises
    ------
    UsageError
        An unknown kind or the wrong number of arguments, naming what it takes.
    """
    found = KINDS.get(kind)
    if found is None:
        raise UsageError(f"Unknown kind {kind!r}: use one of {', '.join(sorted(KINDS))}.")
    if len(args) != len(found.arguments):
        usage = " ".join((kind, *found.arguments))
        raise UsageError(f"{kind} takes {len(found.arguments)} argument(s): simulate {usage}")
    return found, rehearsal.run(found.function, found.build(rehearsal, args))


def verdict(ran: Invocation) -> tuple[str, str]:
    """The function's answer and why, in one line each: its ``reason``; for the chaos run
    each service's (the refusing guards); for the deployment hook, whose answer to ECS is
    only ``hookStatus``, what it logged (the failed checks and the decision's reason)."""
    result = ran.result
    status = str(result.get("status") or result.get("hookStatus") or "?")
    reasons = [str(result["reason"])] if result.get("reason") else []
    for service in result.get("services", []):
        if isinstance(service, Mapping) and service.get("reason"):
            reasons.append(f"{service.get('service', '?')}: {service['reason']}")
    if "hookStatus" in result:
        reasons += _hook_reasons(ran.logs)
    return status, "; ".join(reasons) or "(the function gave no reason)"


def _hook_reasons(logs: str) -> list[str]:
    found: list[str] = []
    for line in logs.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("check"):
            found.append(f"{entry.get('url', entry['check'])}: {entry.get('error', 'failed')}")
        elif entry.get("hook_status") or str(entry.get("message", "")).startswith(
            "deployment hook"
        ):
            found.append(str(entry.get("reason") or entry.get("message", "")))
    return [r for r in found if r]
