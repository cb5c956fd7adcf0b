"""``spotops verify``: after a deploy, prove each flow of the toolkit works, changing nothing
users see. One row per flow; each row decided by a pure function over the facts
:mod:`spotops.proof.verify_facts` read.

The flows: EventBridge rules and schedules reach their functions; alarms reach
``alarm_action`` through a confirmed subscription; each function answers a verification
event from its dry-run path and logs it; ECS may invoke the deployment hook; Slack receives a
message; the site answers through its load balancer with the image the service runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from spotops.ops import aws_events
from spotops.ops.local_lambda import LocalInvokeError
from spotops.ops.switches import webhook_secret_name
from spotops.proof.rows import ProofReport, Row, State
from spotops.proof.verify_facts import (
    AlarmTopicFacts,
    HookFacts,
    InvocationFacts,
    RuleFacts,
    SiteFacts,
    SlackFacts,
    StackFacts,
    invoke_on_lambda,
    logged_in_group,
    logged_in_output,
    probe_site,
    read_alarm_topic,
    read_hook,
    read_rules,
    read_stack,
    read_webhook_url,
    running_image,
    send_to_slack,
)
from spotops.stage.config import check_stage

if TYPE_CHECKING:
    from spotops.aws import AwsSession
    from spotops.factory import CLIFactory

VERIFICATION_KEY = "spotopsVerification"

# Where each flow's failure is explained (files in runbooks/).
RUNBOOKS = {
    # An event EventBridge cannot deliver lands in the events dead-letter queue.
    "event-rules": "runbooks/ops-dead-letters.md",
    # On call's path from an alarm to Slack and to the toolkit's action.
    "alarm-topic": "runbooks/README.md",
    "functions": "runbooks/ops-access-denied.md",
    "deployment-hook": "runbooks/deploy-failed.md",
    "slack": "runbooks/slack-webhook-missing.md",
    "site": "runbooks/unhealthy-hosts.md",
}

LOG_WAIT_SECONDS = 30.0


def new_verification_id() -> str:
    """An id matching the contract's ``^[A-Za-z0-9-]{1,64}$``, new for each run."""
    return f"verify-{uuid.uuid4().hex[:16]}"


def marked(event: Mapping[str, Any], verification: str) -> dict[str, Any]:
    """The event AWS documents, plus the verification marker the functions answer dry."""
    return {**event, VERIFICATION_KEY: verification}


# ---- IAM documents, read the way AWS evaluates the parts that matter here --------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _matches(patterns: Iterable[Any], value: str) -> bool:
    """IAM's wildcards (``*`` and ``?``), case-insensitive as IAM compares actions."""
    return any(fnmatchcase(value.lower(), str(p).lower()) for p in patterns)


def _statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [s for s in _as_list((document or {}).get("Statement")) if isinstance(s, Mapping)]


def _principal_services(statement: Mapping[str, Any]) -> list[Any]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    return _as_list(principal.get("Service")) if isinstance(principal, Mapping) else []


def _source_arns(statement: Mapping[str, Any]) -> list[Any] | None:
    """The ``aws:SourceArn`` values a statement's condition allows; ``None`` when it does not
    limit the source."""
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, values in (conditions or {}).items():
            if key.lower() == "aws:sourcearn" and operator in (
                "ArnLike",
                "ArnEquals",
                "StringLike",
                "StringEquals",
            ):
                return _as_list(values)
    return None


def events_may_invoke(
    policy: Mapping[str, Any] | None, *, function_arn: str, rule_arn: str
) -> bool:
    """True when the function's resource policy lets EventBridge invoke it for this rule."""
    for statement in _statements(policy):
        if statement.get("Effect") != "Allow":
            continue
        if not _matches(_principal_services(statement), "events.amazonaws.com"):
            continue
        if not _matches(_as_list(statement.get("Action")), "lambda:InvokeFunction"):
            continue
        resources = _as_list(statement.get("Resource")) or [function_arn]
        if not _matches(resources, function_arn):
            continue
        sources = _source_arns(statement)
        if sources is None or _matches(sources, rule_arn):
            return True
    return False


def _allows(document: Mapping[str, Any], action: str, resource: str) -> tuple[bool, bool]:
    """(allowed, denied) for ``action`` on ``resource`` by one identity policy."""
    allowed = denied = False
    for statement in _statements(document):
        if not _matches(_as_list(statement.get("Action")), action):
            continue
        if not _matches(_as_list(statement.get("Resource")), resource):
            continue
        if statement.get("Effect") == "Deny":
            denied = True
        elif statement.get("Effect") == "Allow":
            allowed = True
    return allowed, denied


def hook_role_problem(hook: HookFacts) -> str:
    """What stops ECS from invoking the hook with its role ("" when nothing does)."""
    trusted = any(
        statement.get("Effect") == "Allow"
        and _matches(_principal_services(statement), "ecs.amazonaws.com")
        and _matches(_as_list(statement.get("Action")), "sts:AssumeRole")
        for statement in _statements(hook.trust_policy)
    )
    if not trusted:
        return f"role {hook.role_name} does not let ecs.amazonaws.com assume it"
    verdicts = [_allows(d, "lambda:InvokeFunction", hook.function_arn) for d in hook.policies]
    if any(denied for _, denied in verdicts):
        return f"role {hook.role_name} denies lambda:InvokeFunction on {hook.function_arn}"
    if not any(allowed for allowed, _ in verdicts):
        return f"role {hook.role_name} does not allow lambda:InvokeFunction on {hook.function_arn}"
    return ""


# ---- the rows --------------------------------------------------------------------------


def decide_rules(rules: Sequence[RuleFacts], *, stage: str) -> Row:
    """Flow 1: each rule and schedule of the ops stack reaches its function."""
    name, runbook = "event-rules", RUNBOOKS["event-rules"]
    if not rules:
        return Row(
            name,
            State.FAIL,
            "the ops stack has no EventBridge rules",
            advice=f"Deploy the ops stack: `spotops deploy --stage {stage}`.",
            runbook=runbook,
        )
    for rule in rules:
        kind = "schedule" if rule.schedule else "rule"
        if not rule.exists:
            return Row(
                name,
                State.FAIL,
                f"{kind} {rule.name} ({rule.logical_id}) is missing",
                advice=f"Recreate it by deploying the ops stack: `spotops deploy --stage {stage}`.",
                runbook=runbook,
            )
        if rule.state != "ENABLED":
            return Row(
                name,
                State.FAIL,
                f"{kind} {rule.name} is {rule.state or 'not enabled'}: its events reach nothing",
                advice=f"Enable it: `aws events enable-rule --name {rule.name}`.",
                runbook=runbook,
            )
        if not rule.function or rule.function_arn not in rule.targets:
            return Row(
                name,
                State.FAIL,
                f"{kind} {rule.name} does not target {rule.function or 'its function'} "
                f"(targets: {', '.join(rule.targets) or 'none'})",
                advice=f"Restore its target: `spotops deploy --stage {stage}`.",
                runbook=runbook,
            )
        if not events_may_invoke(rule.policy, function_arn=rule.function_arn, rule_arn=rule.arn):
            return Row(
                name,
                State.FAIL,
                f"{rule.function}'s resource policy does not let EventBridge invoke it for "
                f"{kind} {rule.name}: its events go to the dead-letter queue",
                advice=(
                    f"Deploy the ops stack again to restore the permission: `spotops deploy "
                    f"--stage {stage}` (or `aws lambda add-permission --function-name "
                    f"{rule.function} --principal events.amazonaws.com --action "
                    f"lambda:InvokeFunction --source-arn {rule.arn} --statement-id "
                    f"{rule.logical_id}`)."
                ),
                runbook=runbook,
            )
    schedules = sum(1 for r in rules if r.schedule)
    return Row(
        name,
        State.OK,
        f"{len(rules) - schedules} rules and {schedules} schedules enabled, each targeting its "
        "function, which lets EventBridge invoke it",
        runbook=runbook,
    )


def decide_alarm_topic(facts: AlarmTopicFacts, *, proves_account: bool) -> Row:
    """Flow 2: alarms send to the stage's topic and the topic reaches ``alarm_action``."""
    name, runbook = "alarm-topic", RUNBOOKS["alarm-topic"]
    subscription = facts.subscription
    if subscription is not None and subscription.pending:
        return Row(
            name,
            State.FAIL,
            f"alarm_action's subscription to {facts.topic_arn} is pending confirmation: "
            "alarms reach neither the toolkit nor Slack",
            advice=(
                "Delete the pending subscription and deploy again (`spotops deploy`); a Lambda "
                "subscription in the same account is confirmed by SNS itself."
            ),
            runbook=runbook,
        )
    seen = {alarm.name for alarm in facts.alarms}
    missing = [n for n in facts.expected_alarms if n not in seen]
    if missing:
        return Row(
            name,
            State.FAIL,
            f"alarm(s) the stacks created are gone: {', '.join(missing)}",
            advice="Deploy the stage again (`spotops deploy`) to recreate them.",
            runbook=runbook,
        )
    for alarm in facts.alarms:
        if facts.topic_arn not in alarm.actions:
            return Row(
                name,
                State.FAIL,
                f"alarm {alarm.name} sends its actions to "
                f"{', '.join(alarm.actions) or 'nothing'}, not {facts.topic_arn}",
                advice="Deploy the stage again (`spotops deploy`) to restore its actions.",
                runbook=runbook,
            )
        if not alarm.actions_enabled:
            return Row(
                name,
                State.FAIL,
                f"alarm {alarm.name} has its actions disabled: it reaches nobody",
                advice=(
                    f"If nobody muted it on purpose: `aws cloudwatch enable-alarm-actions "
                    f"--alarm-names {alarm.name}`."
                ),
                runbook=runbook,
            )
    alarms = f"{len(facts.alarms)} alarm(s) send to the stage's topic with actions enabled"
    if subscription is None:
        if proves_account:
            return Row(
                name,
                State.FAIL,
                f"alarm_action is not subscribed to {facts.topic_arn}: alarms reach neither "
                "the toolkit nor Slack",
                advice="Deploy the ops stack again (`spotops deploy`): it subscribes alarm_action.",
                runbook=runbook,
            )
        return Row(
            name,
            State.EMULATOR,
            f"{alarms}; the emulator's CloudFormation drops AWS::SNS::Subscription and "
            "AWS::CloudWatch::Alarm, so the subscription and the alarms are not proven here",
            runbook=runbook,
        )
    if not proves_account:
        return Row(
            name,
            State.EMULATOR,
            f"{alarms}; subscribed, but the emulator confirms every subscription itself",
            runbook=runbook,
        )
    return Row(
        name, State.OK, f"{alarms}; alarm_action's subscription is confirmed", runbook=runbook
    )


def decide_functions(
    runs: Sequence[InvocationFacts], verification: str, *, stand_in: bool, log_place: str
) -> Row:
    """Flow 3: each function answers its verification event dry and logs it."""
    name, runbook = "functions", RUNBOOKS["functions"]
    if not runs:
        return Row(
            name,
            State.FAIL,
            "the ops stack has no functions",
            advice="Deploy the ops stack: `spotops deploy`.",
            runbook=runbook,
        )
    for run in runs:
        if run.answer is None:
            return Row(
                name,
                State.FAIL,
                f"{run.function} failed on its verification event: {run.error}",
                advice=f"Read its log: `spotops logs --source {run.function}`; fix and deploy.",
                runbook=runbook,
            )
        if run.answer.get("verification") != verification:
            return Row(
                name,
                State.FAIL,
                f"{run.function} answered without the verification marker: the deployed code "
                "predates verification events and may have acted on the synthetic event",
                advice="Deploy the current ops code (`spotops deploy`), then verify again.",
                runbook=runbook,
            )
        if run.answer.get("dry_run") is not True:
            return Row(
                name,
                State.FAIL,
                f"{run.function} answered the verification without forcing dry run",
                advice="Switch the toolkit off (`spotops kill-switch on`) and fix the handler.",
                runbook=runbook,
            )
        if not run.logged:
            return Row(
                name,
                State.FAIL,
                f"{run.function} answered, but its verification line is not in {log_place}",
                advice=(
                    "Check the function's log group exists and its role may write to it "
                    "(logs:CreateLogStream, logs:PutLogEvents)."
                ),
                runbook=runbook,
            )
    detail = f"{len(runs)} functions answered verification {verification} dry and logged it"
    if stand_in:
        return Row(
            name,
            State.EMULATOR,
            f"{detail} (run here from the deployed zip: the emulator cannot invoke Lambda)",
            runbook=runbook,
        )
    return Row(name, State.OK, detail, runbook=runbook)


def decide_hook(hook: HookFacts, *, image_deployed: bool) -> Row:
    """Flow 4: ECS may invoke the smoke-test hook (CANARY and LINEAR only)."""
    name, runbook = "deployment-hook", RUNBOOKS["deployment-hook"]
    if hook.strategy == "ROLLING":
        return Row(name, State.SKIP, "strategy ROLLING: no deployment hook", runbook=runbook)
    if not hook.hook_enabled:
        return Row(
            name, State.SKIP, f"strategy {hook.strategy}, SmokeTestHook disabled", runbook=runbook
        )
    if not hook.role_name:
        if not image_deployed:
            return Row(
                name,
                State.SKIP,
                "no image deployed yet: the site stack adds the hook with the first image",
                runbook=runbook,
            )
        return Row(
            name,
            State.FAIL,
            "the site stack has no SmokeTestHookRole although the hook is enabled",
            advice="Deploy the stage again: `spotops deploy`.",
            runbook=runbook,
        )
    if not hook.function_arn:
        return Row(
            name,
            State.FAIL,
            "the deployment_hook function does not exist: ECS fails (and rolls back) every "
            "deployment at the hook",
            advice="Deploy the ops stack: `spotops deploy`.",
            runbook=runbook,
        )
    problem = hook_role_problem(hook)
    if problem:
        return Row(
            name,
            State.FAIL,
            f"{problem}: ECS cannot run the smoke test and rolls deployments back",
            advice="Deploy the site stack again (`spotops deploy`) to restore the role's policy.",
            runbook=runbook,
        )
    return Row(
        name,
        State.OK,
        f"strategy {hook.strategy}: role {hook.role_name} may invoke deployment_hook",
        runbook=runbook,
    )


def decide_slack(facts: SlackFacts | None, *, stage: str, proves_account: bool) -> Row:
    """Flow 5: a verification message reaches Slack (``None``: not asked for)."""
    name, runbook = "slack", RUNBOOKS["slack"]
    set_it = f"`spotops slack-webhook set --stage {stage}` (the URL on standard input)"
    if facts is None:
        return Row(name, State.SKIP, "--no-slack", runbook=runbook)
    if not facts.configured:
        return Row(
            name,
            State.FAIL,
            "the Slack webhook secret is unset: every message goes to the dead-letter queue",
            advice=f"Store the webhook URL: {set_it}.",
            runbook=runbook,
        )
    if facts.status == 200:
        if proves_account:
            return Row(name, State.OK, "the verification message was delivered", runbook=runbook)
        return Row(
            name,
            State.EMULATOR,
            "delivered to the webhook the stage holds (a local receiver, not Slack)",
            runbook=runbook,
        )
    if facts.status in (403, 404, 410):
        return Row(
            name,
            State.FAIL,
            f"the webhook answers {facts.status} ({facts.body or 'no body'}): it was revoked "
            "or its channel removed",
            advice=f"Create a new incoming webhook in Slack and store it: {set_it}.",
            runbook=runbook,
        )
    reason = facts.error or f"HTTP {facts.status} ({facts.body or 'no body'})"
    return Row(
        name,
        State.FAIL,
        f"the verification message was not delivered: {reason}",
        advice=f"Check the URL the secret holds and Slack's status; store it again with {set_it}.",
        runbook=runbook,
    )


def image_matches(version: Mapping[str, Any], image: str) -> bool:
    """True when ``/version``'s image digest or tag is the one the service runs."""
    digest, tag = version.get("image_digest"), version.get("image_tag")
    if "@" in image:
        return bool(digest) and image.endswith(f"@{digest}")
    return bool(tag) and image.endswith(f":{tag}")


def decide_site(facts: SiteFacts, *, proves_account: bool) -> Row:
    """Flow 6: the site answers through its load balancer with the image the service runs."""
    name, runbook = "site", RUNBOOKS["site"]
    if not proves_account:
        if facts.error and not facts.healthz_status:
            return Row(
                name,
                State.EMULATOR,
                f"not reached: the emulator's load balancer {facts.url} serves nothing "
                f"(the service runs {facts.running_image or 'no image'})",
                runbook=runbook,
            )
        if facts.healthz_status != 200:
            return Row(
                name,
                State.FAIL,
                f"{facts.url}/healthz answered {facts.error or facts.healthz_status}",
                advice="Read the site's log: `spotops logs --source site`.",
                runbook=runbook,
            )
        shown = dict(facts.version or {})
        return Row(
            name,
            State.EMULATOR,
            f"the local site at {facts.url} answers /healthz and /version (version "
            f"{shown.get('version')}, image tag {shown.get('image_tag')}); the emulator's "
            f"service runs {facts.running_image or 'no image'} and starts no task",
            runbook=runbook,
        )
    if facts.healthz_status != 200:
        return Row(
            name,
            State.FAIL,
            f"{facts.url}/healthz answered {facts.error or facts.healthz_status}",
            advice=(
                "Check the service's tasks and target health: `spotops status`; then the "
                "site's log: `spotops logs --source site`."
            ),
            runbook=runbook,
        )
    if facts.version is None or not image_matches(facts.version, facts.running_image):
        shown = dict(facts.version or {})
        return Row(
            name,
            State.FAIL,
            f"/version shows image {shown.get('image_digest') or shown.get('image_tag')}, the "
            f"service runs {facts.running_image}: the load balancer reaches another revision",
            advice="Follow the deployment with `spotops status`; if it is done, redeploy.",
            runbook=runbook,
        )
    return Row(
        name,
        State.OK,
        f"{facts.url} answers /healthz and /version with {facts.running_image}",
        runbook=runbook,
    )


# ---- the run ---------------------------------------------------------------------------


def _timed(check: Callable[[], Row], name: str) -> Row:
    """The row ``check`` decides, with how long it took; a refused read becomes its row's
    failure instead of ending the run."""
    started = time.monotonic()
    try:
        row = check()
    except (ClientError, BotoCoreError) as exc:
        row = Row(
            name,
            State.FAIL,
            f"a read was refused: {exc}",
            advice="Run verify with credentials that may read the stage's resources.",
            runbook=RUNBOOKS[name],
        )
    return Row(row.name, row.state, row.detail, row.advice, row.runbook, time.monotonic() - started)


def verification_events(
    *,
    account: str,
    region: str,
    app: str,
    stage: str,
    site: Mapping[str, str],
    image: str,
) -> dict[str, dict[str, Any]]:
    """The event each function is verified with, of the shape AWS sends it; ordered from
    the least able to act (an alarm back to OK) to the most (a chaos tick)."""
    digest = image.rsplit("@", 1)[1] if "@" in image else "sha256:" + "0" * 64
    repository = site.get("RepositoryName", f"{app}-{stage}-site")
    cluster = site.get("ClusterName", f"{app}-{stage}")
    service = site.get("ServiceName", f"{app}-{stage}-site")
    service_arn = f"arn:aws:ecs:{region}:{account}:service/{cluster}/{service}"
    alarm = f"{app}-{stage}-unhealthy-hosts"
    return {
        "alarm_action": aws_events.alarm_sns(
            account=account,
            region=region,
            topic_arn=site.get(
                "AlarmTopicArn", f"arn:aws:sns:{region}:{account}:{app}-{stage}-alarms"
            ),
            name=alarm,
            state="OK",
            description="spotops verify",
            reason="spotops verify: a verification event, acted on by nothing.",
        ),
        "deployment_outcome": aws_events.deployment_state(
            account=account,
            region=region,
            service_arn=service_arn,
            deployment_id=f"ecs-svc/{uuid.uuid4().int % 10**19}",
            name="SERVICE_DEPLOYMENT_COMPLETED",
            reason="spotops verify",
        ),
        "image_scan_alert": aws_events.image_scan(
            account=account,
            region=region,
            repository=repository,
            digest=digest,
            tags=["verify"],
            counts={},
        ),
        "deployment_hook": aws_events.lifecycle_hook(
            account=account,
            region=region,
            cluster=cluster,
            service=service,
            hook_details={
                "baseUrl": site.get("SiteUrl", ""),
                "testHeader": "X-Spotops-Test-Traffic",
                "testHeaderValue": stage,
            },
        ),
        "redeploy_on_push": aws_events.ecr_push(
            account=account, region=region, repository=repository, digest=digest, tag="verify"
        ),
        "reconcile_images": aws_events.scheduled(
            account=account, region=region, rule_name=f"{app}-{stage}-verify-reconcile"
        ),
        "chaos_tick": aws_events.scheduled(
            account=account, region=region, rule_name=f"{app}-{stage}-verify-chaos"
        ),
    }


class _Verification:
    """One run's context: the session, the stage's stacks and names."""

    def __init__(self, factory: CLIFactory, session: AwsSession, app: str, stage: str) -> None:
        self.factory = factory
        self.session = session
        self.app = app
        self.stage = stage
        self.id = new_verification_id()
        names = {s.part: s.stack_name(app, stage) for s in factory.stack_specs()}
        cfn = session.client("cloudformation")
        self.site: StackFacts = read_stack(cfn, names["site"], stage)
        self.ops: StackFacts = read_stack(cfn, names["ops"], stage, template=True)
        self.proves = session.target.proves_account

    def function_name(self, function: str) -> str:
        return f"{self.app}-{self.stage}-{function}"

    def image(self) -> str:
        return running_image(
            self.session.client("ecs"),
            self.site.outputs.get("ClusterName", ""),
            self.site.outputs.get("ServiceName", ""),
        )

    def rules(self) -> Row:
        found = read_rules(self.ops, self.session.client("events"), self.session.client("lambda"))
        return decide_rules(found, stage=self.stage)

    def alarm_topic(self) -> Row:
        lam = self.session.client("lambda")
        function_arn = str(
            lam.get_function_configuration(FunctionName=self.function_name("alarm_action"))[
                "FunctionArn"
            ]
        )
        expected = [
            *self.site.of_type("AWS::CloudWatch::Alarm").values(),
            *self.ops.of_type("AWS::CloudWatch::Alarm").values(),
        ]
        facts = read_alarm_topic(
            self.session.client("sns"),
            self.session.client("cloudwatch"),
            topic_arn=self.site.outputs.get("AlarmTopicArn", ""),
            function_arn=function_arn,
            alarm_prefix=f"{self.app}-{self.stage}-",
            expected_alarms=expected,
        )
        return decide_alarm_topic(facts, proves_account=self.proves)

    def functions(self) -> Row:
        prefix = f"{self.app}-{self.stage}-"
        deployed = sorted(
            name.removeprefix(prefix) for name in self.ops.of_type("AWS::Lambda::Function").values()
        )
        account = str(self.session.client("sts").get_caller_identity()["Account"])
        events = verification_events(
            account=account,
            region=self.session.region,
            app=self.app,
            stage=self.stage,
            site=self.site.outputs,
            image=self.image(),
        )
        unknown = [f for f in deployed if f not in events]
        runs: list[InvocationFacts] = []
        # In the order of ``events``, the least able to act first; on AWS the run stops at
        # the first answer without the marker: that code predates verification events and
        # the next function must not be handed a synthetic event.
        for function in (f for f in events if f in deployed):
            if not self.proves:
                runs.append(self._run_here(function, events[function]))
                continue
            runs.append(self._invoke(function, events[function]))
            answer = runs[-1].answer
            if answer is None or answer.get("verification") != self.id:
                break
        if self.proves:
            runs = self._with_logs(runs)
        row = decide_functions(
            runs,
            self.id,
            stand_in=not self.proves,
            log_place="its output" if not self.proves else "its log group",
        )
        if unknown and row.state is not State.FAIL:
            return Row(
                row.name,
                State.WARN,
                f"{row.detail}; not verified (no verification event known): {', '.join(unknown)}",
                advice="Update spotops: this version does not know every deployed function.",
                runbook=row.runbook,
            )
        return row

    def _run_here(self, function: str, event: Mapping[str, Any]) -> InvocationFacts:
        rehearsal = self.factory.rehearsal(self.session, self.app, self.stage, dry_run=True)
        try:
            ran = rehearsal.run(function, marked(event, self.id))
        except LocalInvokeError as exc:
            return InvocationFacts(function, None, error=str(exc))
        return InvocationFacts(function, ran.result, logged=logged_in_output(ran.logs, self.id))

    def _invoke(self, function: str, event: Mapping[str, Any]) -> InvocationFacts:
        answer, error = invoke_on_lambda(
            self.session.client("lambda"), self.function_name(function), marked(event, self.id)
        )
        return InvocationFacts(function, answer, error=error)

    def _with_logs(self, runs: list[InvocationFacts]) -> list[InvocationFacts]:
        logs = self.session.client("logs")
        since = int((time.time() - 300) * 1000)
        return [
            InvocationFacts(
                run.function,
                run.answer,
                run.error,
                logged=run.answer is not None
                and logged_in_group(
                    logs,
                    f"/aws/lambda/{self.function_name(run.function)}",
                    self.id,
                    since_ms=since,
                    wait_seconds=LOG_WAIT_SECONDS,
                    poll_seconds=self.session.target.log_poll_seconds,
                ),
            )
            for run in runs
        ]

    def hook(self) -> Row:
        facts = read_hook(
            self.site,
            self.session.client("lambda"),
            self.session.client("iam"),
            function_name=self.function_name("deployment_hook"),
        )
        return decide_hook(facts, image_deployed=bool(self.site.parameters.get("ImageUri")))

    def slack(self, enabled: bool) -> Row:
        if not enabled:
            return decide_slack(None, stage=self.stage, proves_account=self.proves)
        secret = self.ops.outputs.get("SlackWebhookSecretName") or webhook_secret_name(
            self.app, self.stage
        )
        url = read_webhook_url(self.session.client("secretsmanager"), secret)
        text = (
            f":white_check_mark: spotops verify: {self.app} {self.stage} reaches this channel "
            f"(verification {self.id}; nothing was changed)."
        )
        return decide_slack(send_to_slack(url, text), stage=self.stage, proves_account=self.proves)

    def site_row(self, site_url: str | None) -> Row:
        url = site_url or self.site.outputs.get("SiteUrl", "")
        facts = probe_site(url, self.image(), timeout=10 if self.proves else 2)
        return decide_site(facts, proves_account=self.proves)


def run_verify(
    factory: CLIFactory,
    *,
    stage: str,
    region: str | None,
    slack: bool = True,
    site_url: str | None = None,
) -> ProofReport:
    """Prove each flow of the deployed stage, changing nothing users see.

    Parameters
    ----------
    factory:
        The CLI's factory (config, session, local Lambda runner).
    stage, region:
        The stage and where it runs.
    slack:
        False for ``--no-slack``: the Slack row is skipped, nothing is posted.
    site_url:
        Where the site answers instead of the stack's ``SiteUrl`` (the demo's local site:
        the emulator's load balancer serves nothing).

    Returns
    -------
    ProofReport
        One row per flow; ``exit_code`` 1 and ``first_failure`` when a flow fails.

    Raises
    ------
    NotDeployedError
        The site or ops stack does not exist.
    """
    config = factory.load_config(check_stage(stage))
    session = factory.aws(region)
    run = _Verification(factory, session, config.app, config.stage)
    rows = [
        _timed(run.rules, "event-rules"),
        _timed(run.alarm_topic, "alarm-topic"),
        _timed(run.functions, "functions"),
        _timed(run.hook, "deployment-hook"),
        _timed(lambda: run.slack(slack), "slack"),
        _timed(lambda: run.site_row(site_url), "site"),
    ]
    return ProofReport("verify", stage, session.target.describe(session.region), rows)
