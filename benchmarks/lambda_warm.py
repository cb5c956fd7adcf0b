"""The Lambda warm path, run in its own process: each event kind, handled again and again by
the packaged app, against moto.

Run by ``benchmarks.bench_lambda`` as ``python -I -B lambda_warm.py <unpacked zip> <repo>
<rounds> <out.json>``, with fake AWS credentials. The unpacked deployment zip comes first on
the path, as in Lambda (our code, Chalice's runtime, ``slack_sdk``); boto3 and Powertools
come from this environment, as in Lambda they come from the runtime and the layer. moto runs
in-process; Slack is a stub on 127.0.0.1. The world (ECR, ECS, DynamoDB, SSM, Secrets
Manager, SQS, a load-balanced service for chaos) is the functional tests' own
(``tests/support/ops_world.py``).

Each round sends one event of every kind through the app's handler, Chalice middleware and
Powertools included (logs and metrics go to stdout, as in Lambda), at least a second after
the previous one ended: the app paces its posts to one Slack webhook to one a second, and
back-to-back events would time that wait. Round 0 is discarded:
the first invocation of a container builds the toolkit (clients, settings). Tracing is off
(no X-Ray daemon here).

Adding a kind is one entry in :data:`KINDS`: a name, the handler in ``app.py``, how to make
its event for round ``i``, and the result statuses that count as handled.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One event kind: its handler, how to make its event, what a handled result says."""

    name: str
    handler: str
    event: Callable[[Any, dict[str, Any], int], dict[str, Any]]
    statuses: frozenset[str]


def _push(world: Any, state: dict[str, Any], i: int) -> dict[str, Any]:
    from tests.support.events import load_event

    tag = f"v1.0.{i}"
    digest = world.base.push_image(tag)
    return dict(world.base.push_event(load_event("ecrImageActionPush"), digest, tag))


def _outcome(world: Any, state: dict[str, Any], i: int) -> dict[str, Any]:
    from tests.support.events import load_event
    from tests.support.ops_world import ACCOUNT, REGION

    base = world.base
    event = load_event("ecsDeploymentStateChangeCompleted")
    event["id"] = f"bench-outcome-{i}"
    event["resources"] = [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{base.cluster}/{base.service}"]
    event["detail"]["deploymentId"] = state["redeploy push"]["deployment_id"]
    return event


def _scheduled(prefix: str) -> Callable[[Any, dict[str, Any], int], dict[str, Any]]:
    def make(world: Any, state: dict[str, Any], i: int) -> dict[str, Any]:
        from tests.support.events import load_event

        event = load_event("scheduledEvent")
        event["id"] = f"bench-{prefix}-{i}"
        return event

    return make


def _alarm(world: Any, state: dict[str, Any], i: int) -> dict[str, Any]:
    from tests.support.alarms import sns_alarm

    # A new alarm each round, going to ALARM: the Slack alert path, rules and ledger included.
    return sns_alarm(f"spotops-test-bench-{i}", at=time.time())


KINDS = (
    Kind("redeploy push", "redeploy_on_push", _push, frozenset({"deploying"})),
    Kind("deployment outcome", "deployment_outcome", _outcome, frozenset({"succeeded"})),
    Kind(
        "reconcile",
        "reconcile_images",
        _scheduled("reconcile"),
        frozenset({"up-to-date", "skipped"}),
    ),
    Kind("chaos tick (leashed)", "chaos_tick", _scheduled("chaos"), frozenset({"leashed"})),
    Kind("alarm (SNS, notify only)", "alarm_action", _alarm, frozenset({"no-policy"})),
)


class Context:
    """The parts of the Lambda context Chalice and Powertools read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/28/[$LATEST]bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def run(rounds: int) -> dict[str, list[float]]:
    from moto import mock_aws
    from moto.moto_api import state_manager

    from tests.support.ops_world import CHAOS_LEASH, build_chaos_world, build_world
    from tests.support.slack_stub import SlackStub

    slack = SlackStub()
    times: dict[str, list[float]] = {kind.name: [] for kind in KINDS}
    try:
        with mock_aws():
            chaos = build_chaos_world(build_world(webhook_url=slack.url))
            chaos.tag(chaos="on", mtbk_hours="0.001")  # the dice always say "kill"
            os.environ.update(
                chaos.settings_env(
                    REDEPLOY_MAX_PER_HOUR="100000",
                    CHAOS_WINDOW_DAYS="mon-sun",
                    CHAOS_WINDOW_HOURS="0-24",
                    CHAOS_MIN_GAP_HOURS="0",
                    CHAOS_LEASH_PARAMETER=CHAOS_LEASH,
                )
            )
            import app  # the packaged app: the unpacked zip is first on the path
            from chalicelib.slack import MIN_POST_INTERVAL_SECONDS

            state: dict[str, Any] = {}
            last_ended = float("-inf")
            for i in range(rounds + 1):
                for kind in KINDS:
                    event = kind.event(chaos, state, i)
                    handler = getattr(app, kind.handler)
                    # Slack takes one message a second per webhook and the app paces its posts
                    # (chalicelib.slack). Events sent back to back would time that wait, not
                    # the handler: space them as a live stage's are, outside the timing. A
                    # second post within one event (the alarm's alert and follow-up) still
                    # waits inside it, as it does in Lambda.
                    time.sleep(
                        max(0.0, MIN_POST_INTERVAL_SECONDS - (time.perf_counter() - last_ended))
                    )
                    started = time.perf_counter()
                    result = handler(event, Context(kind.handler))
                    last_ended = time.perf_counter()
                    took = last_ended - started
                    if result.get("status") not in kind.statuses:
                        raise RuntimeError(f"{kind.name}, round {i}: {result}")
                    state[kind.name] = result
                    if i:
                        times[kind.name].append(took)
            state_manager.unset_transition("ecs::task")
    finally:
        slack.close()
    return times


def main(argv: list[str]) -> int:
    zip_dir, root, rounds, out = argv
    sys.path[:0] = [zip_dir]
    sys.path.append(root)
    times = run(int(rounds))
    with open(out, "w") as sink:
        json.dump({"seconds": times, "kinds": [k.name for k in KINDS]}, sink)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
