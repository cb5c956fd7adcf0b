"""CI outlives the longest deployment it waits for.

The deploy job assumes ci-role.yaml's role once, runs ``spotops deploy`` (a site stack update
waits for ECS's whole CANARY or LINEAR deployment: its bakes and the smoke-test hook), pushes,
then ``delivery.py wait`` follows the push's deployment just as long. A call after the
credentials expire fails while AWS carries on, and a wait that gives up early fails a deployment
that would have succeeded; so the wait outlasts the longest deployment site.yaml's parameters
allow, the job outlasts both deployments, and the session outlasts the job.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.delivery_script import load_delivery_script
from tests.support.templates import load

REPO = Path(__file__).resolve().parents[3]
WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"

# Limits of the services CI runs on.
GITHUB_HOSTED_JOB_MINUTES = 360  # a job on a GitHub-hosted runner ends after 6 hours
IAM_MAX_SESSION_SECONDS = 43200  # a role's MaxSessionDuration: 1 to 12 hours
IAM_MIN_SESSION_SECONDS = 3600

# What the job spends besides the two deployments (minutes), each generous for its step.
BEFORE_CREDENTIALS = 10  # checkout, setup-python, make setup
STACK_UPDATES = 30  # change sets and updates of the network, site (but the service) and ops stacks
PUSH = 15  # build the image on the runner, push it to ECR
STATUS = 2  # spotops status, always
# Within a deployment, besides bakes and hooks: new tasks pull, start and pass health checks
# (60 s grace), and old targets drain (120 s deregistration delay) before ECS completes it.
TASKS_START_AND_DRAIN = 10

TRAFFIC_SHIFTING = {"CANARY", "LINEAR"}


delivery = load_delivery_script()


def longest_deployment_minutes(parameters: dict[str, Any], hook_minutes: int) -> int:
    """The longest CANARY or LINEAR deployment these parameter limits allow, in minutes.

    Canary: the canary bake, then the bake with all traffic shifted. Linear: a step bake per
    step (ceil(100 / step): one more than ECS waits, as a margin), then the bake. Both: every
    lifecycle hook may hold the deployment until its timeout, and tasks start and drain.
    """
    bake = int(parameters["BakeTimeInMinutes"]["MaxValue"])
    canary = int(parameters["CanaryBakeTimeInMinutes"]["MaxValue"]) + bake
    steps = math.ceil(100 / float(parameters["LinearStepPercent"]["MinValue"]))
    linear = steps * int(parameters["LinearStepBakeTimeInMinutes"]["MaxValue"]) + bake
    return max(canary, linear) + hook_minutes + TASKS_START_AND_DRAIN


def hook_minutes(site: dict[str, Any]) -> int:
    """How long the service's lifecycle hooks may hold one deployment, in minutes."""
    (service,) = [r for r in site["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
    hooks = service["Properties"]["DeploymentConfiguration"]["LifecycleHooks"]
    if "Fn::If" in hooks:
        hooks = hooks["Fn::If"][1]
    # No timeout would mean ECS's own default: make the template say it.
    return sum(int(hook["TimeoutConfiguration"]["TimeoutInMinutes"]) for hook in hooks)


@dataclass(frozen=True)
class Durations:
    job_minutes: int
    session_seconds: int
    max_session_seconds: int
    wait_start_seconds: float
    wait_finish_seconds: float
    smoke_seconds: float

    def job_needs(self, deployment_minutes: int) -> float:
        """Minutes the deploy job may take when both deployments take ``deployment_minutes``."""
        return (
            BEFORE_CREDENTIALS
            + STACK_UPDATES
            + deployment_minutes
            + PUSH
            + self.wait_start_seconds / 60
            + self.wait_finish_seconds / 60
            + self.smoke_seconds / 60
            + STATUS
        )

    def shortfalls(self, deployment_minutes: int) -> list[str]:
        """Why CI would give up on, or lose its credentials in, such a deployment."""
        found = []
        if self.wait_finish_seconds < deployment_minutes * 60:
            found.append(
                f"delivery.py wait --finish-timeout {self.wait_finish_seconds:g} s is shorter "
                f"than a {deployment_minutes} minute deployment"
            )
        if self.job_minutes < self.job_needs(deployment_minutes):
            found.append(
                f"timeout-minutes {self.job_minutes} is shorter than the "
                f"{self.job_needs(deployment_minutes):g} minutes the job may need"
            )
        if self.session_seconds < self.job_minutes * 60:
            found.append(
                f"role-duration-seconds {self.session_seconds} ends before the job's "
                f"{self.job_minutes} minutes"
            )
        if self.session_seconds > self.max_session_seconds:
            found.append(
                f"role-duration-seconds {self.session_seconds} is more than the role's "
                f"MaxSessionDuration {self.max_session_seconds}: AssumeRoleWithWebIdentity fails"
            )
        return found


def _workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    return dict(data["jobs"]["deploy"])


def _delivery_args(job: dict[str, Any], command: str) -> Any:
    (run,) = [s["run"] for s in job["steps"] if f"delivery.py {command}" in s.get("run", "")]
    words = shlex.split(run)
    return delivery._parser().parse_args(words[words.index(".github/scripts/delivery.py") + 1 :])


def durations() -> Durations:
    job = _workflow()
    (assume,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    role = load("ci-role")["Resources"]["DeployRole"]["Properties"]
    wait = _delivery_args(job, "wait")
    return Durations(
        job_minutes=int(job["timeout-minutes"]),
        session_seconds=int(assume["with"]["role-duration-seconds"]),
        max_session_seconds=int(role["MaxSessionDuration"]),
        wait_start_seconds=wait.start_timeout,
        wait_finish_seconds=wait.finish_timeout,
        smoke_seconds=_delivery_args(job, "smoke").timeout,
    )


def site_longest_deployment() -> int:
    site = load("site")
    return longest_deployment_minutes(site["Parameters"], hook_minutes(site))


def _beyond_any_hosted_job() -> bool:
    """No workflow setting could follow it: even a wait just long enough outlasts any job."""
    longest = site_longest_deployment()
    shortest_wait = Durations(GITHUB_HOSTED_JOB_MINUTES, 0, 0, 600, longest * 60, 180)
    return shortest_wait.job_needs(longest) > GITHUB_HOSTED_JOB_MINUTES


# ---- the real workflow, role and templates ------------------------------------------------


def test_every_deployment_strategy_is_one_this_computation_knows() -> None:
    allowed = set(load("site")["Parameters"]["DeploymentStrategy"]["AllowedValues"])
    assert allowed - {"ROLLING"} == TRAFFIC_SHIFTING, "a new strategy needs its duration here"


@pytest.mark.xfail(
    condition=_beyond_any_hosted_job(),
    strict=True,
    reason=(
        "site.yaml's MaxValues allow CANARY/LINEAR deployments (up to 24 h per bake, 34 linear "
        "steps) that no job on a GitHub-hosted runner (6 h) can follow twice; lower "
        "BakeTimeInMinutes, CanaryBakeTimeInMinutes and LinearStepBakeTimeInMinutes (or raise "
        "LinearStepPercent's MinValue) so the longest deployment fits what deploy.yml follows"
    ),
)
def test_ci_follows_the_longest_deployment_site_yaml_allows() -> None:
    assert durations().shortfalls(site_longest_deployment()) == []


def test_the_credentials_last_the_whole_job_and_the_role_allows_them() -> None:
    found = durations()
    assert found.job_minutes <= GITHUB_HOSTED_JOB_MINUTES
    assert found.session_seconds >= found.job_minutes * 60
    assert found.session_seconds <= found.max_session_seconds
    assert IAM_MIN_SESSION_SECONDS <= found.max_session_seconds <= IAM_MAX_SESSION_SECONDS


def test_the_workflow_follows_a_deployment_as_long_as_its_wait_allows() -> None:
    found = durations()
    budget = int(found.wait_finish_seconds // 60)
    assert found.shortfalls(budget) == []


def test_the_wait_step_passes_its_timeouts_explicitly() -> None:
    # So a default changed in delivery.py cannot shorten the wait behind this test's back.
    (run,) = [s["run"] for s in _workflow()["steps"] if "delivery.py wait" in s.get("run", "")]
    assert "--start-timeout" in run
    assert "--finish-timeout" in run


def test_the_smoke_test_hooks_timeout_is_counted() -> None:
    assert hook_minutes(load("site")) >= 1


# ---- the computation, at its limits -------------------------------------------------------

LIMITS = {
    "BakeTimeInMinutes": {"MaxValue": 60},
    "CanaryBakeTimeInMinutes": {"MaxValue": 60},
    "LinearStepPercent": {"MinValue": 10},
    "LinearStepBakeTimeInMinutes": {"MaxValue": 6},
}


@pytest.mark.parametrize(
    ("changes", "minutes"),
    [
        ({}, 60 + 60 + 5 + TASKS_START_AND_DRAIN),  # canary 120 = linear 10 x 6 + 60
        ({"CanaryBakeTimeInMinutes": {"MaxValue": 61}}, 121 + 5 + TASKS_START_AND_DRAIN),
        ({"LinearStepBakeTimeInMinutes": {"MaxValue": 7}}, 130 + 5 + TASKS_START_AND_DRAIN),
        # 100 / 9.9 is 10.1 steps: 11, not 10.
        ({"LinearStepPercent": {"MinValue": 9.9}}, 66 + 60 + 5 + TASKS_START_AND_DRAIN),
        ({"LinearStepPercent": {"MinValue": 3}}, 34 * 6 + 60 + 5 + TASKS_START_AND_DRAIN),
    ],
)
def test_the_longest_deployment_is_the_longer_of_canary_and_linear(
    changes: dict[str, Any], minutes: int
) -> None:
    assert longest_deployment_minutes({**LIMITS, **changes}, hook_minutes=5) == minutes


CI = Durations(
    job_minutes=340,
    session_seconds=20400,
    max_session_seconds=21600,
    wait_start_seconds=600,
    wait_finish_seconds=8100,
    smoke_seconds=180,
)


def test_a_deployment_exactly_as_long_as_ci_allows_fits() -> None:
    assert CI.job_needs(135) == 340
    assert CI.shortfalls(135) == []


def test_one_minute_more_than_ci_allows_is_refused_by_the_wait_and_the_job() -> None:
    found = CI.shortfalls(136)
    assert len(found) == 2
    assert "--finish-timeout 8100 s is shorter than a 136 minute deployment" in found[0]
    assert "timeout-minutes 340 is shorter than the 341 minutes" in found[1]


@pytest.mark.parametrize(
    ("session", "max_session", "reason"),
    [
        (20399, 21600, "role-duration-seconds 20399 ends before the job's 340 minutes"),
        (20400, 20399, "more than the role's MaxSessionDuration 20399"),
    ],
)
def test_a_session_shorter_than_the_job_or_longer_than_the_role_allows_is_refused(
    session: int, max_session: int, reason: str
) -> None:
    found = Durations(340, session, max_session, 600, 8100, 180).shortfalls(135)
    assert len(found) == 1
    assert reason in found[0]
