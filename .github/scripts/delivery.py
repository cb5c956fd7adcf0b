"""The deploy workflow's own steps: what changed, the rollout's outcome, the smoke tests.

``.github/workflows/deploy.yml`` runs it with the project's virtual environment (boto3 and
``spotops`` installed), after assuming the deploy role:

    delivery.py plan    --stage dev --before <sha> --after <sha> [--force]
    delivery.py wait    --stage dev --digest sha256:...
    delivery.py smoke   --stage dev --commit <sha>

``plan`` prints ``infra=true|false`` (for ``$GITHUB_OUTPUT``): whether ``spotops deploy``
must run, because ``infra/``, ``ops_lambdas/`` or ``config/`` changed in the push, the
push's range is unknown, or the stage's site stack does not exist yet.

``wait`` follows the ECS deployment that runs the pushed digest (the redeploy Lambda starts
it on ECR's push event) and exits 0 when it completed, 1 when it failed or was rolled back
(circuit breaker or deployment alarms), or when none started or finished in time.

``smoke`` checks the site URL from the stack's outputs: ``/healthz`` answers 200 and
``/version`` shows the pushed commit. Every message goes to stderr; exit codes are 0 done,
1 failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What ``spotops deploy`` ships: templates, the ops toolkit, stage parameters.
INFRA_PATHS = ("infra/", "ops_lambdas/", "config/")
NO_COMMIT = "0" * 40  # github.event.before of a branch's first push

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    deploy_infra: bool
    reason: str


def changed_paths(before: str, after: str, cwd: Path) -> list[str] | None:
    """Files changed between two commits, or ``None`` when git cannot tell."""
    if not before or before == NO_COMMIT:
        return None
    done = subprocess.run(
        ["git", "diff", "--name-only", before, after],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return [line for line in done.stdout.splitlines() if line.strip()]


def plan(changed: Sequence[str] | None, *, site_stack_exists: bool, forced: bool = False) -> Plan:
    """Whether the push needs ``spotops deploy`` before ``spotops push``, and why."""
    if forced:
        return Plan(True, "asked for (workflow_dispatch input deploy_infra)")
    if not site_stack_exists:
        return Plan(True, "the stage's site stack does not exist yet")
    if changed is None:
        return Plan(True, "the pushed range is unknown (first push or force push)")
    touched = sorted({p for p in changed if p.startswith(INFRA_PATHS)})
    if touched:
        shown = ", ".join(touched[:5]) + (
            f" and {len(touched) - 5} more" if len(touched) > 5 else ""
        )
        return Plan(True, f"changed: {shown}")
    return Plan(False, f"nothing under {', '.join(INFRA_PATHS)} changed")


# ---- the stage's stacks ----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    name: str
    site_stack: str


def load_stage(project_dir: Path, stage: str) -> Stage:
    """The stage's site stack name, exactly as ``spotops`` names it."""
    from spotops.stage.config import STACKS, load_stage_config

    config = load_stage_config(project_dir, stage)
    site = next(spec for spec in STACKS if spec.part == "site")
    return Stage(stage, site.stack_name(config.app, stage))


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str] | None:
    """The outputs of a stack, or ``None`` when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    if not stacks or stacks[0].get("StackStatus") == "REVIEW_IN_PROGRESS":
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


# ---- wait for the rollout ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def _runs_digest(ecs: Any, task_definition: str, digest: str, cache: dict[str, bool]) -> bool:
    if task_definition not in cache:
        described = ecs.describe_task_definition(taskDefinition=task_definition)
        images = [c.get("image", "") for c in described["taskDefinition"]["containerDefinitions"]]
        cache[task_definition] = any(image.endswith(f"@{digest}") for image in images)
    return cache[task_definition]


def wait_for_rollout(
    ecs: Any,
    *,
    cluster: str,
    service: str,
    digest: str,
    start_timeout: float = 600,
    finish_timeout: float = 1800,
    poll_seconds: float = 15,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Log = _stderr,
) -> Outcome:
    """Follow the deployment that runs ``digest`` to COMPLETED, FAILED or a rollback.

    The deployment is the one whose task definition pins ``<repository>@<digest>``. It must
    appear within ``start_timeout`` (the redeploy Lambda acts on ECR's push event) and
    finish within ``finish_timeout`` after that.
    """
    cache: dict[str, bool] = {}
    started_at = clock()
    tracked: str | None = None
    deadline = started_at + start_timeout
    last_line = ""
    while True:
        found = ecs.describe_services(cluster=cluster, services=[service])
        services = found.get("services") or []
        if not services:
            return Outcome(False, f"Service {service} not found in cluster {cluster}.")
        deployments: list[dict[str, Any]] = services[0].get("deployments") or []
        ours = [d for d in deployments if _runs_digest(ecs, d["taskDefinition"], digest, cache)]
        if tracked is None and ours:
            # Several only if a rollout of the same digest is replacing another: follow the
            # newest, which is the primary one.
            newest = next((d for d in ours if d.get("status") == "PRIMARY"), ours[0])
            tracked = str(newest["id"])
            deadline = clock() + finish_timeout
            log(f"Deployment {tracked} runs {digest}; waiting for its outcome.")
        if tracked is not None:
            current = next((d for d in deployments if d.get("id") == tracked), None)
            if current is None:
                primary = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
                return Outcome(
                    False,
                    f"Deployment {tracked} of {digest} is gone: it was rolled back or replaced "
                    f"(the service now runs {primary.get('taskDefinition', 'another revision')}).",
                )
            state = current.get("rolloutState", "")
            reason = current.get("rolloutStateReason", "")
            if state == "FAILED":
                return Outcome(
                    False,
                    f"Deployment {tracked} of {digest} FAILED and ECS rolls back: "
                    f"{reason or 'no reason given'}",
                )
            if state == "COMPLETED" and current.get("status") == "PRIMARY":
                return Outcome(
                    True, f"Deployment {tracked} of {digest} completed: {reason}".strip()
                )
            line = (
                f"{current.get('status')} {state or '-'}: running {current.get('runningCount', 0)}"
                f"/{current.get('desiredCount', 0)}, pending {current.get('pendingCount', 0)}"
            )
            if line != last_line:
                log(line)
                last_line = line
        if clock() >= deadline:
            waited = int(clock() - started_at)
            if tracked is None:
                return Outcome(
                    False,
                    f"No deployment of {digest} started within {waited} s. The redeploy "
                    "function did not act: check its Slack message, `spotops status`, and "
                    "the kill switch and dry run (`spotops kill-switch`, `spotops dry-run`).",
                )
            return Outcome(
                False, f"Deployment {tracked} of {digest} did not finish within {waited} s."
            )
        sleep(poll_seconds)


# ---- smoke tests -----------------------------------------------------------------------


def _get(url: str, timeout: float) -> tuple[int, str]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    # Only http(s) reaches here (checked above), never file: or a custom scheme.
    request = urllib.request.Request(url, headers={"User-Agent": "spotops-smoke"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536).decode("utf-8", "replace")


def check_site(
    base_url: str, commit: str, get: Callable[[str, float], tuple[int, str]] = _get
) -> list[str]:
    """What is wrong with the site now (an empty list: healthy and on ``commit``)."""
    problems = []
    base = base_url.rstrip("/")
    try:
        status, _ = get(f"{base}/healthz", 10)
        if status != 200:
            problems.append(f"/healthz answered {status}")
        status, body = get(f"{base}/version", 10)
    except (OSError, ValueError) as exc:
        return [*problems, f"{base} cannot be reached: {exc}"]
    if status != 200:
        return [*problems, f"/version answered {status}"]
    try:
        shown = str(json.loads(body).get("git_commit") or "")
    except (ValueError, AttributeError):
        return [*problems, "/version is not a JSON object"]
    if len(shown) < 7 or not commit.startswith(shown):
        problems.append(f"/version shows commit {shown or '(none)'}, not {commit[:12]}")
    return problems


def smoke(
    base_url: str,
    commit: str,
    *,
    timeout: float = 180,
    poll_seconds: float = 10,
    get: Callable[[str, float], tuple[int, str]] = _get,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    log: Log = _stderr,
) -> Outcome:
    """Retry :func:`check_site` until it passes or ``timeout`` (old targets drain first)."""
    deadline = clock() + timeout
    while True:
        problems = check_site(base_url, commit, get)
        if not problems:
            return Outcome(True, f"{base_url}: /healthz 200, /version shows {commit[:12]}.")
        if clock() >= deadline:
            return Outcome(False, f"{base_url}: " + "; ".join(problems))
        log("Not yet: " + "; ".join(problems))
        sleep(poll_seconds)


# ---- command line ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="delivery.py", description=__doc__.split("\n")[0])
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--region", default=None, help="default: AWS_REGION")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="does this push need spotops deploy?")
    p.add_argument("--stage", required=True)
    p.add_argument("--before", default="")
    p.add_argument("--after", default="HEAD")
    p.add_argument("--force", action="store_true")
    w = sub.add_parser("wait", help="follow the ECS deployment of a pushed digest")
    w.add_argument("--stage", required=True)
    w.add_argument("--digest", required=True)
    w.add_argument("--start-timeout", type=float, default=600)
    w.add_argument("--finish-timeout", type=float, default=1800)
    s = sub.add_parser("smoke", help="/healthz and /version of the stage's site URL")
    s.add_argument("--stage", required=True)
    s.add_argument("--commit", required=True)
    s.add_argument("--url", default=None, help="default: the site stack's SiteUrl output")
    s.add_argument("--timeout", type=float, default=180)
    return parser


def main(argv: Iterable[str] | None = None, clients: Mapping[str, Any] | None = None) -> int:
    args = _parser().parse_args(None if argv is None else list(argv))
    if args.command == "wait" and not str(args.digest).startswith("sha256:"):
        _stderr(f"--digest must be sha256:..., got {args.digest!r}")
        return 2

    def client(service: str) -> Any:
        if clients is not None:
            return clients[service]
        import boto3

        return boto3.client(service, region_name=args.region)

    stage = load_stage(args.project_dir, args.stage)
    outputs = stack_outputs(client("cloudformation"), stage.site_stack)
    if args.command == "plan":
        changed = changed_paths(args.before, args.after, args.project_dir)
        decided = plan(changed, site_stack_exists=outputs is not None, forced=args.force)
        _stderr(f"spotops deploy {'runs' if decided.deploy_infra else 'skipped'}: {decided.reason}")
        print(f"infra={'true' if decided.deploy_infra else 'false'}")
        return 0
    if outputs is None:
        _stderr(f"Stack {stage.site_stack} does not exist: deploy the stage first.")
        return 1
    if args.command == "wait":
        outcome = wait_for_rollout(
            client("ecs"),
            cluster=outputs["ClusterName"],
            service=outputs["ServiceName"],
            digest=args.digest,
            start_timeout=args.start_timeout,
            finish_timeout=args.finish_timeout,
        )
    else:
        url = args.url or outputs.get("SiteUrl", "")
        outcome = smoke(url, args.commit, timeout=args.timeout)
    _stderr(outcome.message)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
