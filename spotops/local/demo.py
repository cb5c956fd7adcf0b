"""``make demo``: the whole system on this machine, with no AWS account.

It starts the local AWS emulator (moto) and a Slack-compatible webhook receiver on
127.0.0.1, deploys the three stacks into the emulator with ``spotops deploy``, starts the
site, then walks through the flows. The emulator emits no events and cannot invoke a
Lambda, so each flow feeds an event of the exact AWS shape to the *deployed* function, run
from its deployment zip with its deployed environment (``simulate.Rehearsal``), and checks
the effect through the emulator's APIs. Where ECS itself would act (starting tasks,
replacing a stopped one) the demo plays its part and says so. It prints a timeline, stops
everything it started, and exits 0, or 1 naming the step that failed.

Run it: ``make demo`` (``python -m spotops.local.demo``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from spotops.local.images import put_image
from spotops.local.limits import install
from spotops.local.site import steady_site
from spotops.local.slack_receiver import LOOPBACK, SlackReceiver
from spotops.local.target import EmulatorTarget
from spotops.ops import aws_events
from spotops.ops.simulate import Rehearsal, rehearse
from spotops.project import find_project_dir

APP, STAGE, REGION = "spotops", "dev", "us-east-1"
# Fake credentials for the emulator: it accepts any.
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}


class DemoStepError(Exception):
    """A step did not do what it should; the demo stops there."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass
class Timeline:
    """What happened, when (seconds since the demo started)."""

    started: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str, str]] = field(default_factory=list)
    printer: Callable[[str], None] = print

    def add(self, step: str, what: str) -> None:
        at = time.monotonic() - self.started
        self.entries.append((at, step, what))
        self.printer(f"[{at:6.1f}s] {step:<10} {what}")

    def render(self) -> str:
        lines = ["", "Timeline", "--------"]
        lines += [f"{at:6.1f}s  {step:<10} {what}" for at, step, what in self.entries]
        return "\n".join(lines)


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free port on 127.0.0.1."""
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, preferred))
            return preferred
        except OSError:
            probe.bind((LOOPBACK, 0))
            return int(probe.getsockname()[1])


def _wait_http(url: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return str(response.read().decode())
        except OSError as exc:
            last = str(exc)
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds:.0f} s ({last})")


@dataclass
class DemoState:
    """What one step of the demo learns and a later one uses, declared in one place."""

    # The emulator's URL, once it runs (every client and process of the demo uses it).
    endpoint: str = ""
    # The environment of the `spotops` commands the demo runs: fake keys, the endpoint.
    env: dict[str, str] = field(default_factory=dict)
    # The site running here (the smoke-test gate probes it).
    site_url: str = ""
    # The push event the push flow delivered; the duplicate flow delivers it again.
    push_event: dict[str, Any] | None = None


class Demo:
    """One run of the demo; :meth:`run` returns the exit status."""

    def __init__(
        self,
        project_dir: Path,
        *,
        printer: Callable[[str], None] = print,
        before_teardown: Callable[[Demo, SlackReceiver], None] | None = None,
    ) -> None:
        self.project_dir = project_dir
        self._before_teardown = before_teardown
        self.print = printer
        self.timeline = Timeline(printer=printer)
        self.state = DemoState()
        self._clients: dict[str, Any] = {}

    # ---- plumbing ---------------------------------------------------------------------

    def client(self, service: str) -> Any:
        if service not in self._clients:
            client = boto3.client(
                service,
                endpoint_url=self.state.endpoint,
                region_name=REGION,
                aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"max_attempts": 1}),
            )
            # The emulator enforces none of AWS's limits; the demo's own calls meet them too.
            install(client.meta.events, self.state.endpoint)
            self._clients[service] = client
        return self._clients[service]

    def spotops(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "spotops", "--project-dir", str(self.project_dir), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.state.env,
            timeout=600,
            check=False,
        )

    def _moto_state(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            f"{self.state.endpoint}/moto-api/state-manager/{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    @contextlib.contextmanager
    def _emulator(self) -> Iterator[None]:
        import logging
        import warnings

        from moto.server import ThreadedMotoServer

        # The emulator runs in this process: keep its per-request lines and its notes about
        # resource types it does not model (see DESIGN.md) out of the demo's output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module="moto")

        port = free_port(4566)
        if port != 4566:
            self.print(f"Port 4566 is taken; the emulator uses {port}.")
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
        server.start()
        self.state.endpoint = f"http://{LOOPBACK}:{port}"
        # moto keeps its state per process: start empty, whatever ran here before.
        request = urllib.request.Request(f"{self.state.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
            pass
        # Tasks the demo starts stay RUNNING until stopped (moto drifts them to STOPPED).
        self._moto_state(
            "set-transition",
            {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        )
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                self._moto_state("unset-transition", {"model_name": "ecs::task"})
            server.stop()

    @contextlib.contextmanager
    def _site(self) -> Iterator[str]:
        port = free_port(8080)
        if port != 8080:
            self.print(f"Port 8080 is taken; the site uses {port}.")
        env = {**os.environ, "HOST": LOOPBACK, "PORT": str(port), "DRAIN_SECONDS": "0"}
        process = subprocess.Popen(
            [sys.executable, "-m", "website"],
            cwd=self.project_dir / "site",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://{LOOPBACK}:{port}"
            _wait_http(f"{url}/healthz", 30)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    # ---- the run -------------------------------------------------------------------------

    def run(self) -> int:
        self.print("spotops demo: the whole system on this machine, no AWS account needed.\n")
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(self._emulator())
                slack = SlackReceiver(printer=self.print)
                stack.callback(slack.close)
                self.state.env = {
                    **os.environ,
                    **FAKE_AWS,
                    "AWS_ENDPOINT_URL": self.state.endpoint,
                    "AWS_REGION": REGION,
                    "AWS_DEFAULT_REGION": REGION,
                    "NO_COLOR": "1",
                }
                self.timeline.add(
                    "emulator", f"moto on {self.state.endpoint}; Slack receiver ready"
                )
                self.prove("doctor")
                self.deploy(slack)
                site_url = self.state.site_url = stack.enter_context(self._site())
                version = json.loads(_wait_http(f"{site_url}/version", 5))
                self.timeline.add("site", f"serves {site_url} (version {version.get('version')})")
                self.prove("verify", "--site-url", site_url)
                work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                rehearsal = self.rehearsal(work)
                flows = (
                    self.push_flow,
                    self.duplicate_flow,
                    self.scan_flow,
                    self.gate_flow,
                    self.alarm_flow,
                    # Before the Spot flow: an interruption counts as a kill for chaos's gap.
                    self.chaos_flow,
                    self.spot_flow,
                    # Last: it freezes pushes (and lifts the freeze) and ends on the timeline
                    # and the incident report of everything above.
                    self.rollback_flow,
                )
                for flow in flows:
                    flow(rehearsal, slack)
                if self._before_teardown is not None:  # tests look at the emulator here
                    self._before_teardown(self, slack)
        except DemoStepError as exc:
            self.print(self.timeline.render())
            self.print(f"\nFAILED at step {exc.step}: {exc.reason}")
            return 1
        self.print(self.timeline.render())
        self.print("\nEverything the demo started is stopped. Deploy for real: see README.md.")
        return 0

    def rehearsal(self, work: Path) -> Rehearsal:
        return Rehearsal(
            self.client,
            app=APP,
            stage=STAGE,
            region=REGION,
            work_dir=work,
            force_dry_run=False,
            base_env=self.state.env,  # the functions' processes talk to the emulator
            lambda_preludes=EmulatorTarget(self.state.endpoint).lambda_preludes,
        )

    def prove(self, command: str, *args: str) -> None:
        """``spotops doctor`` (before the deploy) or ``verify`` (after it), as a user runs them:
        the table is printed, and a failing row stops the demo like a failed step."""
        done = self.spotops(command, "--stage", STAGE, *args)
        self.print(done.stdout.rstrip())
        verdict = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode != 0:
            raise DemoStepError(command, verdict or done.stderr.strip())
        self.timeline.add(command, verdict)

    def deploy(self, slack: SlackReceiver) -> None:
        done = self.spotops("deploy", "--yes", "--stage", STAGE)
        if done.returncode != 0:
            raise DemoStepError("deploy", " | ".join(done.stderr.strip().splitlines()[-3:]))
        stacks = [s["StackName"] for s in self.client("cloudformation").describe_stacks()["Stacks"]]
        self.timeline.add("deploy", f"{len(stacks)} stacks: {', '.join(sorted(stacks))}")
        hook = self.spotops("slack-webhook", "set", "--stage", STAGE, stdin=slack.url + "\n")
        if hook.returncode != 0:
            raise DemoStepError("webhook", hook.stderr.strip())
        self.timeline.add("webhook", "Slack webhook secret set to the local receiver")

    # ---- flows ---------------------------------------------------------------------------

    def _service(self) -> dict[str, Any]:
        site = self._site_outputs()
        found: dict[str, Any] = self.client("ecs").describe_services(
            cluster=site["ClusterName"], services=[site["ServiceName"]]
        )["services"][0]
        return found

    def _site_outputs(self) -> dict[str, str]:
        stack = self.client("cloudformation").describe_stacks(StackName=f"{APP}-{STAGE}-site")
        return {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}

    def _site_image(self) -> str:
        definition = self.client("ecs").describe_task_definition(
            taskDefinition=self._service()["taskDefinition"]
        )["taskDefinition"]
        return str(
            next(c["image"] for c in definition["containerDefinitions"] if c["name"] == "site")
        )

    def _push_image(self, tag: str) -> str:
        return put_image(self.client("ecr"), self._site_outputs()["RepositoryName"], tag)

    def _revisions(self) -> int:
        family = self._site_outputs()["TaskDefinitionFamily"]
        arns = self.client("ecs").list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
        return len(arns)

    def push_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        before = len(slack.messages)
        digest, self.state.push_event, ran = self._deliver_push(rehearsal, "v1.0.0")
        self.timeline.add("push", f"pushed v1.0.0 ({digest[:19]}) to ECR")
        if ran.get("status") != "deploying":
            raise DemoStepError("push", f"redeploy_on_push answered {ran}")
        image = self._site_image()
        service = self._service()
        if not image.endswith(f"@{digest}"):
            raise DemoStepError("push", f"the service runs {image}, not the pushed digest")
        self.timeline.add(
            "push",
            f"redeploy_on_push: new revision pinned to {image.rsplit('/', 1)[-1][:30]}…, "
            f"service updated, desired count {service['desiredCount']}",
        )
        self._complete(rehearsal, str(ran["deployment_id"]), "push")
        posted = [m.get("text", "") for m in slack.messages[before:]]
        if not (
            any(t.startswith(":rocket:") for t in posted)
            and any(t.startswith(":white_check_mark:") for t in posted)
        ):
            raise DemoStepError("push", f"Slack got {posted}, not deploying and completed")
        self.timeline.add("push", "Slack: 'deploying' then 'Deployed' (ECS's completion event)")

    def _complete(self, rehearsal: Rehearsal, deployment_id: str, step: str) -> None:
        """ECS's part: the deployment completed (moto ends none), told to the outcome function."""
        outcome = rehearsal.run(
            "deployment_outcome",
            aws_events.deployment_state(
                account=rehearsal.facts().account,
                region=REGION,
                service_arn=self._service()["serviceArn"],
                deployment_id=deployment_id,
                name="SERVICE_DEPLOYMENT_COMPLETED",
                reason="ECS deployment ecs-svc completed.",
            ),
        ).result
        if outcome.get("status") != "succeeded":
            raise DemoStepError(step, f"deployment_outcome answered {outcome}")

    def _deliver_push(
        self, rehearsal: Rehearsal, tag: str
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Put an image tagged ``tag`` and deliver its push event to the redeploy function:
        the image's digest, the event and the function's result."""
        facts = rehearsal.facts()
        digest = self._push_image(tag)
        event = aws_events.ecr_push(
            account=facts.account,
            region=REGION,
            repository=facts.site["RepositoryName"],
            digest=digest,
            tag=tag,
        )
        return digest, event, rehearsal.run("redeploy_on_push", event).result

    def duplicate_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        if self.state.push_event is None:
            raise DemoStepError(
                "duplicate", "no push was delivered before (the push flow runs first)"
            )
        revisions = self._revisions()
        again = rehearsal.run("redeploy_on_push", self.state.push_event).result
        if again.get("status") != "duplicate" or self._revisions() != revisions:
            raise DemoStepError("duplicate", f"a second delivery answered {again}")
        self.timeline.add("duplicate", "the same push delivered again: absorbed, no new revision")

    def scan_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        repository = rehearsal.facts().site["RepositoryName"]
        digest = self._site_image().rsplit("@", 1)[-1]
        self.client("ecr").start_image_scan(
            repositoryName=repository, imageId={"imageDigest": digest}
        )
        sent = len(slack.messages)
        _, ran = rehearse(rehearsal, "image-scan", ["v1.0.0"])  # what `simulate image-scan` sends
        if ran.result.get("status") != "alerted":
            raise DemoStepError("scan", f"image_scan_alert answered {ran.result}")
        if not any("image-vulnerability.md" in json.dumps(m) for m in slack.messages[sent:]):
            raise DemoStepError("scan", "no alert with the image-vulnerability runbook")
        self.timeline.add(
            "scan",
            f"ECR scan of the running image: {ran.result.get('findings')} (the emulator's "
            "canned finding) -> alert with runbooks/image-vulnerability.md",
        )

    def gate_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        """The CANARY/LINEAR smoke-test hook, as ECS would call it: against the site running
        here (it passes), then against a candidate that does not answer (ECS rolls back)."""
        with socket.socket() as probe:  # a port nothing listens on once this closes
            probe.bind((LOOPBACK, 0))
            silent = f"http://{LOOPBACK}:{probe.getsockname()[1]}"
        answers = [
            rehearse(rehearsal, "smoke-test", [url])[1].result.get("hookStatus")
            for url in (self.state.site_url, silent)
        ]
        if answers != ["SUCCEEDED", "FAILED"]:
            raise DemoStepError("gate", f"deployment_hook answered {answers}")
        self.timeline.add(
            "gate",
            "deployment_hook: smoke tests on the site SUCCEEDED; on a candidate that does not "
            "answer FAILED (ECS would roll back before users see it)",
        )

    def alarm_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        facts = rehearsal.facts()
        site = facts.site
        name = f"{APP}-{STAGE}-unhealthy-hosts"
        self._spot_strategy(site)  # the site stack's strategy (moto's CloudFormation drops it)
        before = self._service()["deployments"][0]["id"]
        sent = len(slack.messages)
        description = (
            "A target failed the load balancer's health check. Runbook: "
            "https://github.com/spotops/spotops/blob/main/runbooks/unhealthy-hosts.md"
        )
        reason = "Threshold Crossed: 1 datapoint [1.0] was greater than the threshold (0.0)."
        self._alarm_in_alarm(name, description, reason, site["AlarmTopicArn"])

        def deliver(state: str, why: str) -> dict[str, Any]:
            """The alarm's state change as its actions send it: SNS to the function."""
            event = aws_events.alarm_sns(
                account=facts.account,
                region=REGION,
                topic_arn=site["AlarmTopicArn"],
                name=name,
                state=state,
                description=description,
                reason=why,
            )
            return rehearsal.run("alarm_action", event).result

        ran = deliver("ALARM", reason)
        after = self._service()["deployments"][0]["id"]
        posted = [m.get("text", "") for m in slack.messages[sent:]]
        if ran.get("status") != "acted" or after == before:
            raise DemoStepError("alarm", f"alarm_action answered {ran}")
        if not any("unhealthy-hosts.md" in json.dumps(m) for m in slack.messages[sent:]):
            raise DemoStepError("alarm", f"no alert with the runbook link in {posted}")
        self.timeline.add("alarm", f"{name} ALARM -> alert with its runbook link")
        self.timeline.add(
            "alarm",
            f"remediation within budget: new deployment forced; follow-up ({len(posted)} posts)",
        )
        # The forced deployment brought healthy targets back: the alarm recovers, as it would
        # in CloudWatch (chaos refuses to act while any alarm of the stage is in ALARM).
        recovered = "Threshold Crossed: 1 datapoint [0.0] was not greater than the threshold."
        self.client("cloudwatch").set_alarm_state(
            AlarmName=name, StateValue="OK", StateReason=recovered
        )
        # Its OKActions notify the topic too: the function records the recovery, which the
        # incident report's impact window ends on.
        back = deliver("OK", recovered)
        self.timeline.add("alarm", f"{name} OK -> alarm_action: {back.get('status')}")

    def spot_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        facts = rehearsal.facts()
        site = facts.site
        cluster, service = site["ClusterName"], site["ServiceName"]
        notice = rehearsal.run(
            "alarm_action",
            aws_events.spot_interruption(
                account=facts.account,
                region=REGION,
                cluster=cluster,
                service=service,
                task_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ),
        ).result
        if notice.get("status") != "noticed":
            raise DemoStepError("spot", f"a Spot interruption answered {notice}")
        self.timeline.add("spot", "Spot interruption -> notice (runbooks/spot-interruption.md)")
        shifted = rehearsal.run(
            "alarm_action",
            aws_events.placement_failure(
                account=facts.account, region=REGION, cluster=cluster, service=service
            ),
        ).result
        strategy = self._service().get("capacityProviderStrategy", [])
        on_demand: dict[str, Any] = next(
            (p for p in strategy if p["capacityProvider"] == "FARGATE"), {}
        )
        if shifted.get("status") != "acted" or not on_demand.get("weight"):
            raise DemoStepError("spot", f"a placement failure answered {shifted}; {strategy}")
        self.timeline.add(
            "spot", f"Spot capacity unavailable -> shifted to on-demand FARGATE ({strategy})"
        )

    def _alarm_in_alarm(self, name: str, description: str, reason: str, topic: str) -> None:
        """The alarm as the site stack makes it, in ALARM: moto's CloudFormation drops
        CloudWatch alarms, and the alarm function reads the alarm again before it acts."""
        cloudwatch = self.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=description,
            ActionsEnabled=True,
            AlarmActions=[topic],
            Namespace="AWS/ApplicationELB",
            MetricName="UnHealthyHostCount",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)

    def _spot_strategy(self, site: Mapping[str, str]) -> None:
        self.client("ecs").update_service(
            cluster=site["ClusterName"],
            service=site["ServiceName"],
            capacityProviderStrategy=[
                {"capacityProvider": "FARGATE", "base": 0, "weight": 0},
                {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1},
            ],
            forceNewDeployment=True,
        )

    def chaos_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        site = self._site_outputs()
        tasks = steady_site(self.client("ecs"), self.client("elbv2"), site)
        leash = self.spotops("chaos-leash", "off", "--stage", STAGE)
        if leash.returncode != 0:
            raise DemoStepError("chaos", leash.stderr.strip())
        self.timeline.add("chaos", f"site opted in: {len(tasks)} tasks running, leash off")
        stop = threading.Event()
        hand = threading.Thread(target=self._replace_stopped_tasks, args=(site, stop), daemon=True)
        hand.start()
        try:
            ran = rehearsal.run(
                "chaos_tick",
                aws_events.scheduled(
                    account=rehearsal.facts().account,
                    region=REGION,
                    rule_name=f"{APP}-{STAGE}-ops-chaos",
                ),
                overrides={  # open all week: the demo must not depend on the hour it runs at
                    "CHAOS_WINDOW_DAYS": "mon-sun",
                    "CHAOS_WINDOW_HOURS": "0-24",
                    "CHAOS_POLL_SECONDS": "1",
                    "CHAOS_RECOVERY_TIMEOUT_SECONDS": "60",
                    # The emulator's load balancer has no metrics (moto has no PR()
                    # statistic), so no error budget to read: the budget guard is off here.
                    "CHAOS_MIN_BUDGET_PERCENT": "0",
                },
            ).result
        finally:
            stop.set()
            hand.join(timeout=5)
        key = f"{site['ClusterName']}/{site['ServiceName']}"
        ours: dict[str, Any] = next(
            (r for r in ran.get("services", []) if r.get("service") == key), {}
        )
        for line in ours.get("verdicts", []):
            self.timeline.add("chaos", f"guard {line}")
        if ran.get("status") != "killed" or ours.get("status") != "recovered":
            raise DemoStepError("chaos", f"chaos_tick answered {ours or ran}")
        self.timeline.add(
            "chaos",
            f"stopped task {str(ours.get('task', '')).rsplit('/', 1)[-1][:8]}…; recovered in "
            f"{ours.get('recovery_seconds')} s (ChaosTimeToRecover)",
        )

    def rollback_flow(self, rehearsal: Rehearsal, slack: SlackReceiver) -> None:
        """A new push deployed, rolled back by command, a push refused while pushes are
        frozen, the freeze lifted with that push deployed; then what on-call reads after it."""
        good = self._service()["taskDefinition"]
        digest, _, ran = self._deliver_push(rehearsal, "v1.1.0")
        if ran.get("status") != "deploying":
            raise DemoStepError("rollback", f"the push of v1.1.0 answered {ran}")
        self._complete(rehearsal, str(ran["deployment_id"]), "rollback")
        self.timeline.add("rollback", f"pushed v1.1.0 ({digest[:19]}): deployed, completed")

        started = time.monotonic()
        done = self.spotops("rollback", "--yes", "--stage", STAGE)
        took = time.monotonic() - started
        if done.returncode != 0 or self._service()["taskDefinition"] != good:
            raise DemoStepError("rollback", _last_lines(done))
        self.timeline.add(
            "rollback",
            f"`spotops rollback --yes`: back to {good.rsplit('/', 1)[-1]} in {took:.1f} s "
            "(the whole command); pushes frozen",
        )

        sent = len(slack.messages)
        held, _, refused = self._deliver_push(rehearsal, "v1.2.0")
        notices = [m.get("text", "") for m in slack.messages[sent:]]
        if refused.get("status") != "frozen" or self._service()["taskDefinition"] != good:
            raise DemoStepError("rollback", f"a push while frozen answered {refused}")
        if not any(t.startswith(":snowflake:") for t in notices):
            raise DemoStepError("rollback", f"no 'push not deployed' notice in {notices}")
        self.timeline.add(
            "rollback", "pushed v1.2.0 while frozen: recorded, reported, not deployed"
        )
        status = self.spotops("status", "--stage", STAGE)
        pushes = next((x for x in status.stdout.splitlines() if x.startswith("Pushes:")), "")
        if status.returncode != 0 or not pushes.startswith("Pushes: frozen"):
            raise DemoStepError("rollback", f"status says {pushes!r}: {_last_lines(status)}")
        self.timeline.add("rollback", f"`spotops status`: {pushes}")

        resumed = self.spotops("unfreeze", "--deploy-latest", "--stage", STAGE)
        result = resumed.stdout[resumed.stdout.find("{") :]
        deployed = json.loads(result) if resumed.returncode == 0 and result else {}
        if deployed.get("status") != "deploying" or not self._site_image().endswith(held):
            raise DemoStepError("rollback", _last_lines(resumed))
        self._complete(rehearsal, str(deployed["deployment_id"]), "rollback")
        self.timeline.add("rollback", "`spotops unfreeze --deploy-latest`: v1.2.0 deployed")

        for command in (("timeline",), ("incident", "report")):
            shown = self.spotops(*command, "--stage", STAGE, "--since", "1h")
            if shown.returncode != 0:
                raise DemoStepError(command[0], _last_lines(shown))
            self.print(f"\n$ spotops {' '.join(command)} --stage {STAGE} --since 1h")
            self.print(shown.stdout.rstrip())
            self.timeline.add(command[0], f"printed above ({len(shown.stdout.splitlines())} lines)")

    def _replace_stopped_tasks(self, site: dict[str, str], stop: threading.Event) -> None:
        """ECS's part after a kill: start a replacement for the stopped task."""
        ecs = boto3.client(
            "ecs",
            endpoint_url=self.state.endpoint,
            region_name=REGION,
            aws_access_key_id="demo",
            aws_secret_access_key="demo",  # noqa: S106 - emulator
        )
        cluster, name = site["ClusterName"], site["ServiceName"]
        seen: set[str] = set()
        while not stop.wait(0.5):
            stopped = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
            for arn in set(stopped) - seen:
                seen.add(arn)
                service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
                ecs.run_task(
                    cluster=cluster,
                    taskDefinition=service["taskDefinition"],
                    count=1,
                    group=f"service:{name}",
                    capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                )
                self.timeline.add("ecs", "(played by the demo) replacement task started")


def _last_lines(done: subprocess.CompletedProcess[str]) -> str:
    return " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])


def main() -> int:
    """Run the demo; Ctrl-C exits 130 without a traceback, as every spotops command does."""
    try:
        return Demo(find_project_dir()).run()
    except KeyboardInterrupt:
        # The run's ExitStack has unwound by now: the site, the Slack receiver and the
        # emulator are stopped, and subprocess.run killed any spotops command it was running.
        print("\nInterrupted: everything the demo started is stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
