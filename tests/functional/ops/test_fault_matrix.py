"""The fault matrix: every step of the push path x every fault AWS or Lambda causes.

Each cell runs what AWS would run after the fault: Lambda's two async retries while the
invocation fails, a duplicate delivery of the same event, the reconcile schedule, and ECS's
outcome event for whatever deployment it runs. Then, for every cell:

* at most one ``UpdateService`` was carried out for the image;
* no lock is held once the sequence ends;
* every failure was posted exactly once, with its runbook link (and nothing posted twice);
* the ledger tells the truth about what the service runs;
* no task definition revision is left active that the service does not run.

The outcome path has its own matrix below: events duplicated, out of order, about other
deployments, and a rollback under ECS's own deployment id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.events import EcrImageActionEvent, EcsDeploymentStateChangeEvent, ScheduledEvent
from chalicelib.ledger import SafetyLedger
from chalicelib.redeploy.flow import handle_push, reconcile
from chalicelib.redeploy.outcome import handle_deployment_state
from chalicelib.toolkit import Toolkit
from tests.support.events import load_event
from tests.support.faults import (
    AWS_STEPS,
    FAULTS,
    SLACK_STEP,
    Faults,
    FaultyClient,
    FaultyNotifier,
    LambdaTimeout,
)
from tests.support.ops_world import FakeLambdaContext, World, make_kit
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.filterwarnings("ignore:Dimension .job. has already been added")

CELLS = [(step, fault) for step in AWS_STEPS for fault in FAULTS] + [
    (SLACK_STEP, "crash"),
    (SLACK_STEP, "timeout"),
]
ACCESS_DENIED_RUNBOOK = "https://runbooks.example.com/spotops/ops-access-denied.md"


@dataclasses.dataclass
class ShortLivedContext(FakeLambdaContext):
    """An invocation that ran out of time: Powertools' in-progress record of a timed-out
    attempt has expired by the time Lambda retries it (a minute or more later)."""

    def get_remaining_time_in_millis(self) -> int:
        return 1


def faulty_kit(world: World, faults: Faults) -> Toolkit:
    """A fresh container's toolkit whose ECS, ECR, ledger and Slack calls follow the plan."""
    # A generous Slack timeout: a delivery retried after a slow answer would post twice,
    # which is the webhook's at-least-once, not the job's (the matrix counts the job's posts).
    kit = make_kit(world, SLACK_TIMEOUT_SECONDS="5", SLACK_MAX_TOTAL_SECONDS="10").with_context(
        ShortLivedContext()
    )
    ledger_client = FaultyClient(kit.ledger._ddb, "dynamodb", faults, world.ledger_table)
    return dataclasses.replace(
        kit,
        ecs=FaultyClient(kit.ecs, "ecs", faults),
        ecr=FaultyClient(kit.ecr, "ecr", faults),
        ledger=SafetyLedger(ledger_client, world.ledger_table),
        notifier=FaultyNotifier(kit.notifier, faults),
    )


def invoke(faults: Faults, job: Callable[[], dict[str, Any]]) -> dict[str, Any] | str:
    """One Lambda invocation: its result, or the name of what ended it."""
    faults.next_invocation()
    try:
        return job()
    except (Exception, LambdaTimeout) as exc:
        return type(exc).__name__


def run_sequence(world: World, faults: Faults) -> list[dict[str, Any] | str]:
    digest = world.push_image("v1.0.0")
    push = world.push_event(load_event("ecrImageActionPush"), digest, "v1.0.0")
    scheduled = load_event("scheduledEvent")
    outcomes: list[dict[str, Any] | str] = []

    def push_once() -> dict[str, Any]:
        return handle_push(EcrImageActionEvent(push), faulty_kit(world, faults))

    # The push, and Lambda's two async retries while the invocation fails.
    for _ in range(3):
        outcomes.append(invoke(faults, push_once))
        if isinstance(outcomes[-1], dict):
            break
    outcomes.append(invoke(faults, push_once))  # EventBridge delivers it again
    outcomes.append(
        invoke(faults, lambda: reconcile(ScheduledEvent(scheduled), faulty_kit(world, faults)))
    )
    # ECS finishes the deployment it runs and says so.
    kit = make_kit(world)
    record = kit.ledger.read_deployment(kit.settings.service_key)
    if record is not None and world.site_image().endswith(f"@{record.digest}"):
        completed = load_event("ecsDeploymentStateChangeCompleted")
        completed["resources"] = [world.service_desc()["serviceArn"]]
        completed["detail"]["deploymentId"] = record.deployment_id
        outcomes.append(
            invoke(
                faults,
                lambda: handle_deployment_state(
                    EcsDeploymentStateChangeEvent(completed), faulty_kit(world, faults)
                ),
            )
        )
    return outcomes


@pytest.mark.parametrize(("step", "fault"), CELLS, ids=[f"{s}-{f}" for s, f in CELLS])
def test_the_push_path_stays_exactly_once_under_each_fault(
    world: World, slack: SlackStub, step: str, fault: str
) -> None:
    faults = Faults(step=step, fault=fault)

    outcomes = run_sequence(world, faults)

    kit = make_kit(world)
    svc = kit.settings.service_key
    deployed = "@" in world.site_image()
    texts = slack.texts() + [m["message"]["text"] for m in world.dlq_messages()]
    summary = f"{step}/{fault}: {outcomes}\n{texts}"
    assert faults.fired, summary
    # At most one UpdateService, and the image runs unless AWS refused a write for good.
    assert faults.performed.get("ecs.update_service", 0) <= 1, summary
    # Access denied is a misconfiguration: posted once, not retried until a new push.
    refused = fault == "denied" and step.startswith(("ecs.", "ecr."))
    assert deployed is not refused, summary
    # No lock left behind.
    assert kit.ledger.read_lock(svc) is None, summary
    # Posts: at most one "deploying"; a refusal or a denial posted exactly once, with its
    # runbook; nothing else failing posted.
    assert sum(t.startswith(":rocket:") for t in texts) <= 1, summary
    failures = [t for t in texts if t.startswith((":x:", ":no_entry:"))]
    if fault == "denied" and step.startswith(("ecs.", "ecr.")):
        assert len(failures) == 1, summary
        assert ACCESS_DENIED_RUNBOOK in str(slack.bodies + world.dlq_messages()), summary
    else:
        assert failures == [], summary
    if deployed and step != SLACK_STEP:
        assert sum(t.startswith(":rocket:") for t in texts) == 1, summary
    # The ledger tells the truth.
    record = kit.ledger.read_deployment(svc)
    if deployed:
        assert record is not None, summary
        assert world.site_image().endswith(f"@{record.digest}"), summary
        assert record.status.value == "COMPLETED", summary
    else:
        assert record is None, summary
    # No orphan revisions: only the bootstrap one and the one the service runs.
    active = set(world.clients.ecs.list_task_definitions(familyPrefix="site")["taskDefinitionArns"])
    assert active <= {world.bootstrap_td, world.service_desc()["taskDefinition"]}, summary


# ---- the outcome path ---------------------------------------------------------------------


def _state(
    name: str, deployment_id: str, event_id: str, world: World
) -> EcsDeploymentStateChangeEvent:
    event = load_event(name)
    event["id"] = event_id
    event["resources"] = [world.service_desc()["serviceArn"]]
    event["detail"]["deploymentId"] = deployment_id
    return EcsDeploymentStateChangeEvent(event)


OURS, OTHER = "ours", "ecs-svc/someone-else"
OUTCOME_SEQUENCES = {
    "completed-twice": ([("Completed", OURS, "e1"), ("Completed", OURS, "e1")], "COMPLETED", 1),
    "failed-then-late-rollback-notice": (
        [("Failed", OURS, "e1"), ("Rollback", OURS, "e2")],
        "FAILED",
        1,
    ),
    # A failure we did not start is reported (once), and changes nothing of ours.
    "foreign-failure-then-ours-completes": (
        [("Failed", OTHER, "e1"), ("Completed", OURS, "e2")],
        "COMPLETED",
        2,
    ),
    # The rollback freezes pushes (posted once, by its event); our failure is posted.
    "rollback-under-ecs-id-then-ours-fails": (
        [("Rollback", OTHER, "e1"), ("Completed", OTHER, "e2"), ("Failed", OURS, "e3")],
        "FAILED",
        2,
    ),
    "completed-then-late-failure": (
        [("Completed", OURS, "e1"), ("Failed", OURS, "e2")],
        "COMPLETED",
        1,
    ),
    "rollback-notice-then-failure-then-completion": (
        [("Rollback", OURS, "e1"), ("Failed", OURS, "e2"), ("Completed", OURS, "e3")],
        "FAILED",
        2,
    ),
    "only-foreign-events": (
        [("Failed", OTHER, "e1"), ("Completed", OTHER, "e2"), ("Failed", OTHER, "e3")],
        "IN_PROGRESS",
        1,  # the foreign failure, once for its two events
    ),
}


@pytest.mark.parametrize("name", OUTCOME_SEQUENCES)
def test_outcome_events_change_only_our_deployment_once(
    world: World, kit: Toolkit, slack: SlackStub, name: str
) -> None:
    events, final_status, posts = OUTCOME_SEQUENCES[name]
    digest = world.push_image("v1.0.0")
    started = handle_push(
        EcrImageActionEvent(world.push_event(load_event("ecrImageActionPush"), digest, "v1.0.0")),
        kit,
    )
    ours = started["deployment_id"]
    before = len(slack.bodies)

    for kind, deployment, event_id in events:
        deployment_id = ours if deployment == OURS else deployment
        event = _state(f"ecsDeploymentStateChange{kind}", deployment_id, event_id, world)
        handle_deployment_state(event, make_kit(world))

    svc = kit.settings.service_key
    record = kit.ledger.read_deployment(svc)
    assert record is not None
    assert record.status == final_status
    assert len(slack.bodies) - before == posts, slack.texts()
    lock = kit.ledger.read_lock(svc)
    assert (lock is None) is (final_status != "IN_PROGRESS")
