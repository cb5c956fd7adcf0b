"""The local emulator (moto on loopback) as a :class:`~spotops.target.Target`: every step it
needs that AWS does not, in one object the factory injects where the endpoint is on this
machine.

- Retries off: botocore would replay a call that crashed moto (HTTP 500) several times.
- AWS's limits enforced on every call (:mod:`spotops.local.limits`), here and in each local
  Lambda process, since moto enforces none.
- Change sets run directly and their reviews leave out resources whose conditions are false
  (moto executes change sets without outputs or exports, and lists such resources).
- A deleted stack's exports that moto kept stop a new create, with the fix.
- The ops functions get an empty stand-in for AWS's public Powertools layer, which moto does
  not hold (nothing runs inside moto's Lambda; the handlers run from the zip locally).
- Before the network stack is deleted, what moto cannot delete itself goes first
  (:mod:`spotops.local.emulator`).
- The ops stack's secret is created when missing, and ``spotops simulate`` may act for real.
- ``spotops simulate`` plays AWS's part where moto has none: an image put without Docker
  (:mod:`spotops.local.images`), a scan started, a deployment ended (ECS sends no state
  change), and the alarms and capacity provider strategy moto's CloudFormation dropped put
  back as the site template declares them. Every message it returns says ``emulator``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from spotops.errors import StackStateError
from spotops.local.emulator import (
    clear_network_for_deletion,
    leftover_exports,
    reset_advice,
    roll_back_service,
)
from spotops.local.images import put_image
from spotops.local.limits import install

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

    from spotops.ops.simulate import Rehearsal
    from spotops.stage.stacks import StackInfo

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STAND_IN_LAYER = "powertools-stand-in"
# What a metric alarm standing in for a composite alarm keeps of PutCompositeAlarm's arguments.
_COMPOSITE_STAND_IN = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
)
# The strict layer in each local Lambda process (before the zip's path comes first, so it
# is spotops' own module, never something the zip ships).
STRICT_LAMBDA_PRELUDES = ("spotops.local.limits:install_everywhere",)


def on_loopback(endpoint_url: str | None) -> bool:
    """True when the endpoint is on this machine (the moto server)."""
    if not endpoint_url:
        return False
    return (urlparse(endpoint_url).hostname or "") in LOOPBACK_HOSTS


class EmulatorTarget:
    """The moto server at ``endpoint_url``."""

    retry_attempts = 1
    stack_poll_seconds = 0.2
    log_poll_seconds = 0.5
    executes_change_sets_directly = True
    lists_false_conditions = True
    creates_missing_secrets = True
    acts_for_real_in_rehearsals = True
    lambda_preludes: Sequence[str] = STRICT_LAMBDA_PRELUDES
    proves_account = False

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def describe(self, region: str) -> str:
        return f"the local emulator at {self.endpoint_url}"

    def guard_session(self, events: Any) -> None:
        install(events, self.endpoint_url)

    def check_new_stack(self, cfn: Any, stack_name: str) -> None:
        if leftover_exports(cfn, stack_name):
            raise StackStateError(reset_advice(self.endpoint_url))

    def powertools_layer(self, lambda_client: LambdaClient) -> tuple[str, str] | None:
        return stand_in_layer(lambda_client), (
            "Powertools layer: the emulator's empty stand-in (nothing runs in moto's Lambda)."
        )

    def before_deletion(
        self, part: str, stack: StackInfo, client: Callable[[str], Any]
    ) -> str | None:
        vpc = stack.outputs.get("VpcId") if part == "network" else None
        if not vpc:
            return None
        removed = clear_network_for_deletion(client("ec2"), vpc)
        return (
            f"Emulator: removed {len(removed)} route table(s), gateway(s) and "
            "endpoint(s) moto cannot delete itself."
        )

    def put_image(self, ecr: Any, repository: str, tag: str) -> tuple[str, str]:
        digest = put_image(ecr, repository, tag)
        return digest, (
            f"Emulator: no image tagged {tag!r} was in {repository}; put a stand-in image "
            f"there ({digest[:19]}…), as a push would (moto has no registry to push to)."
        )

    def start_image_scan(self, ecr: Any, repository: str, tag: str) -> str:
        ecr.start_image_scan(repositoryName=repository, imageId={"imageTag": tag})
        return f"Emulator: started the scan of {repository}:{tag} (moto's canned findings)."

    def settle_deployment(
        self, ecs: Any, cluster: str, service: str, outcome: str, *, apply: bool
    ) -> str:
        if not apply:
            return (
                f"Emulator: dry run, so the emulator's deployment is left as it is (without "
                f"--dry-run the stand-in ends it {outcome}, as ECS would)."
            )
        if outcome == "failed":
            back_to = roll_back_service(ecs, cluster, service)
            return (
                f"Emulator: played ECS's circuit breaker: the deployment failed and the "
                f"service rolled back to {back_to.rsplit('/', 1)[-1]}."
            )
        return (
            "Emulator: played ECS's end of the deployment: completed (moto starts no tasks, "
            "so the service already shows the new revision)."
        )

    def settle_rollout(self, ecs: Any, cluster: str, service: str) -> str | None:
        # moto moves the service to the new revision at once but leaves every deployment
        # IN_PROGRESS for good: the rollout is over as far as the emulator can tell.
        return (
            "Emulator: played ECS's end of the rollout: completed (moto starts no tasks and "
            "ends no deployment, so the service already shows the revision)."
        )

    def invoke_function(
        self, rehearsal: Rehearsal, function: str, event: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        # Nothing runs inside moto's Lambda: the deployed zip runs here, as simulate runs it.
        return rehearsal.run(function, event).result

    def place_alarm(self, cloudwatch: Any, definition: Mapping[str, Any], state: str) -> str | None:
        name = str(definition["AlarmName"])
        composite = "AlarmRule" in definition
        created = not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if created and composite:
            # moto implements no PutCompositeAlarm (and its PutMetricAlarm drops AlarmRule):
            # the alert stands in as a metric alarm of its name, description and actions,
            # which is all the alarm function reads back (its state and description).
            cloudwatch.put_metric_alarm(
                **{k: v for k, v in definition.items() if k in _COMPOSITE_STAND_IN},
                EvaluationPeriods=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        elif created:
            cloudwatch.put_metric_alarm(**definition)
        # The alarm function reads the alarm again and acts only on the state it finds.
        cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=state, StateReason=f"Rehearsal: set to {state}."
        )
        if created and composite:
            made = (
                "created a metric alarm of its name, description and actions in place of the "
                "site template's composite alarm (moto has no composite alarms)"
            )
        elif created:
            made = "created it as the site template defines it (moto's CloudFormation drops alarms)"
        else:
            made = "it was there"
        return f"Emulator: alarm {name} set to {state}; {made}."

    def restore_strategy(
        self,
        ecs: Any,
        cluster: str,
        service: str,
        strategy: Sequence[Mapping[str, Any]],
        *,
        apply: bool,
    ) -> str | None:
        found = ecs.describe_services(cluster=cluster, services=[service])["services"]
        if not strategy or (found and found[0].get("capacityProviderStrategy")):
            return None
        providers = ", ".join(
            f"{p['capacityProvider']} weight {p.get('weight', 0)}" for p in strategy
        )
        if not apply:
            return (
                f"Emulator: moto's CloudFormation dropped {service}'s capacity provider "
                f"strategy ({providers}), so it shows launch type EC2; a dry run leaves it so "
                "(without --dry-run the stand-in puts it back first)."
            )
        ecs.update_service(
            cluster=cluster,
            service=service,
            capacityProviderStrategy=[dict(p) for p in strategy],
            forceNewDeployment=True,
        )
        return (
            f"Emulator: gave {service} the site template's capacity provider strategy "
            f"({providers}); moto's CloudFormation drops it."
        )


def stand_in_layer(lambda_client: LambdaClient) -> str:
    """The ARN of the emulator's empty Powertools stand-in, published once."""
    versions = lambda_client.list_layer_versions(LayerName=STAND_IN_LAYER)
    existing = versions.get("LayerVersions") or []
    if existing:
        return str(existing[0]["LayerVersionArn"])
    published = lambda_client.publish_layer_version(
        LayerName=STAND_IN_LAYER,
        Description="Stands in for AWS's public Powertools layer in the local emulator.",
        Content={"ZipFile": _empty_zip()},
        CompatibleRuntimes=["python3.11"],
    )
    return str(published["LayerVersionArn"])


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/.keep", "")
    return buffer.getvalue()
