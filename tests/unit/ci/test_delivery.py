""".github/scripts/delivery.py: the deploy workflow's plan, rollout wait and smoke tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.delivery_script import load_delivery_script

REPO = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "a" * 64
OLD_DIGEST = "sha256:" + "b" * 64
COMMIT = "0123456789abcdef" * 2 + "01234567"
TASK_DEFINITIONS = "arn:aws:ecs:us-east-1:123456789012:task-definition/spotops-dev-site"


delivery = load_delivery_script()


class Clock:
    """A fake monotonic clock that sleep() advances."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def deployment(
    ident: str, revision: str, status: str = "PRIMARY", state: str = "IN_PROGRESS", **extra: Any
) -> dict[str, Any]:
    return {
        "id": ident,
        "taskDefinition": f"{TASK_DEFINITIONS}:{revision}",
        "status": status,
        "rolloutState": state,
        "runningCount": 1,
        "desiredCount": 2,
        "pendingCount": 1,
        **extra,
    }


class FakeEcs:
    """describe_services answers one snapshot per call (the last one repeats)."""

    def __init__(self, snapshots: list[list[dict[str, Any]]]) -> None:
        self.snapshots = snapshots
        self.calls = 0
        self.images = {"1": f"repo@{OLD_DIGEST}", "2": f"repo@{DIGEST}", "3": f"repo@{OLD_DIGEST}"}

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        snapshot = self.snapshots[min(self.calls, len(self.snapshots) - 1)]
        self.calls += 1
        return {"services": [{"deployments": snapshot}]}

    def describe_task_definition(self, taskDefinition: str) -> dict[str, Any]:
        revision = taskDefinition.rsplit(":", 1)[1]
        return {
            "taskDefinition": {
                "containerDefinitions": [
                    {"name": "site", "image": self.images[revision]},
                    {"name": "xray", "image": "public.ecr.aws/xray/aws-xray-daemon:3"},
                ]
            }
        }


@dataclass
class Waited:
    ok: bool
    message: str
    lines: list[str]
    waited: float


def wait(ecs: FakeEcs, **kwargs: Any) -> Waited:
    clock = Clock()
    lines: list[str] = []
    outcome = delivery.wait_for_rollout(
        ecs,
        cluster="spotops-dev",
        service="spotops-dev-site",
        digest=DIGEST,
        clock=clock,
        sleep=clock.sleep,
        log=lines.append,
        **kwargs,
    )
    return Waited(outcome.ok, outcome.message, lines, clock.now)


# ---- plan ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed", "exists", "forced", "expected"),
    [
        (["site/website/app.py", "README.md"], True, False, False),
        (["infra/cloudformation/site.yaml"], True, False, True),
        (["ops_lambdas/app.py"], True, False, True),
        (["config/dev.json"], True, False, True),
        (["site/website/app.py"], False, False, True),
        (None, True, False, True),
        ([], True, True, True),
    ],
)
def test_plan_runs_spotops_deploy_only_when_needed(
    changed: list[str] | None, exists: bool, forced: bool, expected: bool
) -> None:
    decided = delivery.plan(changed, site_stack_exists=exists, forced=forced)
    assert decided.deploy_infra is expected
    assert decided.reason


def test_changed_paths_reads_the_pushed_range(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "README.md").write_text("one\n")
    git("add", ".")
    git("commit", "-qm", "one")
    before = git("rev-parse", "HEAD")
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "x.yaml").write_text("two\n")
    git("add", ".")
    git("commit", "-qm", "two")
    after = git("rev-parse", "HEAD")
    assert delivery.changed_paths(before, after, tmp_path) == ["infra/x.yaml"]
    assert delivery.changed_paths(after, after, tmp_path) == []  # a run started by hand
    assert delivery.changed_paths("0" * 40, after, tmp_path) is None  # a branch's first push
    assert delivery.changed_paths("f" * 40, after, tmp_path) is None  # force push: unknown


# ---- wait ------------------------------------------------------------------------------


def test_wait_succeeds_when_the_deployment_of_the_digest_completes() -> None:
    ecs = FakeEcs(
        [
            [deployment("old", "1", state="COMPLETED")],  # the Lambda has not acted yet
            [deployment("new", "2"), deployment("old", "1", status="ACTIVE")],
            [deployment("new", "2", state="COMPLETED", rolloutStateReason="steady state")],
        ]
    )
    outcome = wait(ecs)
    assert outcome.ok, outcome.message
    assert "new" in outcome.message
    assert any("running 1/2" in line for line in outcome.lines)


def test_a_failed_deployment_fails_with_ecs_reason() -> None:
    reason = "ECS deployment circuit breaker: tasks failed to start."
    ecs = FakeEcs(
        [
            [deployment("new", "2"), deployment("old", "1", status="ACTIVE")],
            [deployment("new", "2", state="FAILED", rolloutStateReason=reason)],
        ]
    )
    outcome = wait(ecs)
    assert not outcome.ok
    assert "FAILED" in outcome.message
    assert reason in outcome.message


def test_a_rolled_back_deployment_that_vanished_fails() -> None:
    ecs = FakeEcs(
        [
            [deployment("new", "2"), deployment("old", "1", status="ACTIVE")],
            [deployment("rollback", "3", state="COMPLETED")],  # alarms rolled it back
        ]
    )
    outcome = wait(ecs)
    assert not outcome.ok
    assert "rolled back" in outcome.message
    assert "spotops-dev-site:3" in outcome.message


def test_no_deployment_of_the_digest_times_out_with_what_to_check() -> None:
    ecs = FakeEcs([[deployment("old", "1", state="COMPLETED")]])
    outcome = wait(ecs, start_timeout=120, poll_seconds=15)
    assert not outcome.ok
    assert "No deployment" in outcome.message
    assert "kill switch" in outcome.message
    assert 120 <= outcome.waited <= 150


def test_a_deployment_that_never_finishes_times_out() -> None:
    ecs = FakeEcs([[deployment("new", "2")]])
    outcome = wait(ecs, finish_timeout=300, poll_seconds=15)
    assert not outcome.ok
    assert "did not finish" in outcome.message


def test_an_image_already_running_succeeds_at_once() -> None:
    ecs = FakeEcs([[deployment("new", "2", state="COMPLETED")]])
    outcome = wait(ecs)
    assert outcome.ok
    assert ecs.calls == 1


# ---- smoke -----------------------------------------------------------------------------


def site(answers: dict[str, list[tuple[int, str]]]) -> Callable[[str, float], tuple[int, str]]:
    """A fake HTTP GET: each path answers its list in turn (the last one repeats)."""
    seen: dict[str, int] = {}

    def get(url: str, timeout: float) -> tuple[int, str]:
        path = "/" + url.split("/", 3)[3]
        index = seen.get(path, 0)
        seen[path] = index + 1
        replies = answers[path]
        return replies[min(index, len(replies) - 1)]

    return get


def smoke(get: Callable[[str, float], tuple[int, str]], timeout: float = 60) -> Any:
    clock = Clock()
    return delivery.smoke(
        "http://site.example",
        COMMIT,
        timeout=timeout,
        get=get,
        clock=clock,
        sleep=clock.sleep,
        log=lambda _: None,
    )


def version(commit: str) -> tuple[int, str]:
    return 200, json.dumps({"service": "spotops", "git_commit": commit})


def test_smoke_passes_when_healthy_and_on_the_pushed_commit() -> None:
    get = site({"/healthz": [(200, '{"status":"ok"}')], "/version": [version(COMMIT[:12])]})
    assert smoke(get).ok


def test_smoke_waits_for_old_tasks_to_drain() -> None:
    get = site(
        {
            "/healthz": [(200, "{}")],
            "/version": [version("ffffffffffff"), version("ffffffffffff"), version(COMMIT[:12])],
        }
    )
    assert smoke(get).ok


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"/healthz": [(503, "")], "/version": [version(COMMIT[:12])]}, "/healthz answered 503"),
        ({"/healthz": [(200, "")], "/version": [version("ffffffffffff")]}, "not 0123456789ab"),
        ({"/healthz": [(200, "")], "/version": [version("")]}, "(none)"),
        ({"/healthz": [(200, "")], "/version": [(200, "<html>")]}, "not a JSON object"),
    ],
)
def test_smoke_fails_with_what_is_wrong(
    answers: dict[str, list[tuple[int, str]]], expected: str
) -> None:
    outcome = smoke(site(answers))
    assert not outcome.ok
    assert expected in outcome.message


def test_smoke_refuses_a_url_that_is_not_http() -> None:
    assert delivery.check_site("file:///etc", COMMIT)[0].startswith("file:///etc cannot be reached")


# ---- command line ----------------------------------------------------------------------


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str] | None) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        if self.outputs is None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationError",
                        "Message": f"Stack {StackName} does not exist",
                    }
                },
                "DescribeStacks",
            )
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]
        return {"Stacks": [{"StackStatus": "UPDATE_COMPLETE", "Outputs": outputs}]}


OUTPUTS = {"ClusterName": "spotops-dev", "ServiceName": "spotops-dev-site", "SiteUrl": "http://x"}


def test_cli_plan_prints_the_output_line_and_names_the_stage_stack(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfn = FakeCloudFormation(None)
    code = delivery.main(
        ["--project-dir", str(REPO), "plan", "--stage", "dev", "--before", "", "--after", "HEAD"],
        clients={"cloudformation": cfn},
    )
    assert code == 0
    assert capsys.readouterr().out == "infra=true\n"
    assert cfn.asked == ["spotops-dev-site"]


def test_cli_wait_exits_1_on_a_rollback(capsys: pytest.CaptureFixture[str]) -> None:
    ecs = FakeEcs([[deployment("new", "2", state="FAILED", rolloutStateReason="alarm")]])
    code = delivery.main(
        ["--project-dir", str(REPO), "wait", "--stage", "dev", "--digest", DIGEST],
        clients={"cloudformation": FakeCloudFormation(OUTPUTS), "ecs": ecs},
    )
    assert code == 1
    assert "FAILED" in capsys.readouterr().err


def test_cli_refuses_a_digest_that_is_not_one() -> None:
    code = delivery.main(["wait", "--stage", "dev", "--digest", "latest"], clients={})
    assert code == 2
