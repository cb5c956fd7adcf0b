"""Where a stage's calls go, and the few steps that place needs beyond what AWS does itself.

Every module takes boto3 clients and an endpoint like any AWS client does; what differs
between AWS and a stand-in for it (the local emulator) sits behind this one object, which
the factory chooses from the endpoint and hands to whatever needs it. :data:`AWS` does
nothing extra; the emulator's implementation lives in :mod:`spotops.local`, the only part of
spotops that knows the emulator exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from spotops.errors import SpotopsError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

    from spotops.ops.simulate import Rehearsal
    from spotops.stage.stacks import StackInfo


class Target(Protocol):
    """What a place that answers AWS's APIs needs beyond AWS's own behaviour.

    Attributes
    ----------
    retry_attempts:
        botocore's ``max_attempts`` for every client.
    stack_poll_seconds, log_poll_seconds:
        How often a stack's events and a log group are read while followed.
    executes_change_sets_directly:
        Run a change set's template as a stack update (the target executes change sets
        without outputs or exports; see :class:`~spotops.stage.stacks.StackDeployer`).
    lists_false_conditions:
        Change sets list resources whose conditions are false; the review leaves them out.
    creates_missing_secrets:
        The ops stack's secret may be missing although the stack exists: create it.
    acts_for_real_in_rehearsals:
        ``spotops simulate`` may change things without ``--dry-run``.
    lambda_preludes:
        ``module:function`` calls made first in each local Lambda process
        (:mod:`spotops.ops.lambda_process`).
    proves_account:
        What this target answers is the account's own answer. False for a stand-in: the
        rows of ``doctor`` and ``verify`` it answers say ``emulator``, never a silent pass.
    """

    @property
    def retry_attempts(self) -> int: ...

    @property
    def stack_poll_seconds(self) -> float: ...

    @property
    def log_poll_seconds(self) -> float: ...

    @property
    def executes_change_sets_directly(self) -> bool: ...

    @property
    def lists_false_conditions(self) -> bool: ...

    @property
    def creates_missing_secrets(self) -> bool: ...

    @property
    def acts_for_real_in_rehearsals(self) -> bool: ...

    @property
    def lambda_preludes(self) -> Sequence[str]: ...

    @property
    def proves_account(self) -> bool: ...

    def describe(self, region: str) -> str:
        """Where calls go, as a question or a message names it (``region us-east-1``)."""
        ...

    def guard_session(self, events: Any) -> None:
        """Prepare a new botocore session's event system before any client is made."""
        ...

    def check_new_stack(self, cfn: Any, stack_name: str) -> None:
        """Raise a :class:`~spotops.errors.SpotopsError` with the fix when ``stack_name``,
        which does not exist, cannot be created on this target."""
        ...

    def powertools_layer(self, lambda_client: LambdaClient) -> tuple[str, str] | None:
        """``(layer ARN, note)`` when the functions must use a layer of this target instead
        of AWS's public Powertools layer; ``None`` to use AWS's."""
        ...

    def before_deletion(
        self, part: str, stack: StackInfo, client: Callable[[str], Any]
    ) -> str | None:
        """Put right what would stop the deletion of ``stack`` (the stage's ``part``);
        return what was done, for the record, or ``None`` when nothing was."""
        ...

    # ---- the parts of AWS a rehearsal plays on a stand-in (``spotops simulate``) --------
    # Each returns a message that names the stand-in, or refuses (UsageError) where AWS
    # itself does the thing: a rehearsal never plays AWS's part against a real account.

    def put_image(self, ecr: Any, repository: str, tag: str) -> tuple[str, str]:
        """Put an image tagged ``tag`` into ``repository`` without Docker; its digest and a
        message."""
        ...

    def start_image_scan(self, ecr: Any, repository: str, tag: str) -> str:
        """Scan the image tagged ``tag`` now; a message."""
        ...

    def settle_deployment(
        self, ecs: Any, cluster: str, service: str, outcome: str, *, apply: bool
    ) -> str:
        """Play ECS's end of the service's deployment (``completed`` or ``failed``: the
        circuit breaker rolls back), or with ``apply`` False only say what it would; a
        message."""
        ...

    def settle_rollout(self, ecs: Any, cluster: str, service: str) -> str | None:
        """Play ECS's end of the rollout an action of the command line just started on the
        service (``spotops rollback``), where the target never ends one: a message naming the
        stand-in, and the rollout counts as completed. ``None`` where ECS ends it itself:
        follow it."""
        ...

    def invoke_function(
        self, rehearsal: Rehearsal, function: str, event: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Run the stage's deployed ops ``function`` (``redeploy_on_push``...) on ``event`` as
        Lambda would, and return its result: on AWS ``Invoke`` (RequestResponse); where Lambda
        runs nothing (the emulator), the deployed zip in a local process (``rehearsal``)."""
        ...

    def place_alarm(self, cloudwatch: Any, definition: Mapping[str, Any], state: str) -> str | None:
        """Make the alarm ``definition`` (``PutMetricAlarm``'s arguments, or
        ``PutCompositeAlarm``'s: it has an ``AlarmRule``) exist in ``state`` where the target
        dropped it; a message, or None when the target keeps alarms."""
        ...

    def restore_strategy(
        self,
        ecs: Any,
        cluster: str,
        service: str,
        strategy: Sequence[Mapping[str, Any]],
        *,
        apply: bool,
    ) -> str | None:
        """Give the service the capacity provider ``strategy`` its template declares where
        the target dropped it (with ``apply`` False only say so); a message, or None when the
        target keeps strategies."""
        ...


@dataclass(frozen=True)
class AwsTarget:
    """AWS itself: CloudFormation, Lambda and the rest do all of it; nothing extra to do."""

    retry_attempts: int = 5
    stack_poll_seconds: float = 3.0
    log_poll_seconds: float = 2.0
    executes_change_sets_directly: bool = False
    lists_false_conditions: bool = False
    creates_missing_secrets: bool = False
    acts_for_real_in_rehearsals: bool = False
    lambda_preludes: Sequence[str] = ()
    proves_account: bool = True

    def describe(self, region: str) -> str:
        return f"region {region}"

    def guard_session(self, events: Any) -> None:
        return None

    def check_new_stack(self, cfn: Any, stack_name: str) -> None:
        return None

    def powertools_layer(self, lambda_client: LambdaClient) -> tuple[str, str] | None:
        return None

    def before_deletion(
        self, part: str, stack: StackInfo, client: Callable[[str], Any]
    ) -> str | None:
        return None

    def put_image(self, ecr: Any, repository: str, tag: str) -> tuple[str, str]:
        raise UsageError(
            f"No image tagged {tag!r} in {repository}, and on AWS only a real push puts one "
            "there: `spotops push`, then `spotops simulate ecr-push <its tag> --dry-run`."
        )

    def start_image_scan(self, ecr: Any, repository: str, tag: str) -> str:
        raise UsageError(
            f"No finished scan of {repository}:{tag}. On AWS, ECR scans each image on push; "
            "rehearse with the tag of a pushed image (`spotops status` names the running one)."
        )

    def settle_deployment(
        self, ecs: Any, cluster: str, service: str, outcome: str, *, apply: bool
    ) -> str:
        raise UsageError(
            "simulate deployment runs only on the local emulator: on AWS, ECS itself ends the "
            "deployment and sends its state change to the outcome function (`spotops status` "
            "follows it)."
        )

    def settle_rollout(self, ecs: Any, cluster: str, service: str) -> str | None:
        return None

    def invoke_function(
        self, rehearsal: Rehearsal, function: str, event: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        answer = rehearsal.client("lambda").invoke(
            FunctionName=rehearsal.function_name(function),
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        body = answer["Payload"].read()
        result = json.loads(body) if body else {}
        if answer.get("FunctionError"):
            raise SpotopsError(
                f"{rehearsal.function_name(function)} failed ({answer['FunctionError']}): "
                f"{str(result.get('errorMessage', result))[:300]}"
            )
        return result if isinstance(result, dict) else {"result": result}

    def place_alarm(self, cloudwatch: Any, definition: Mapping[str, Any], state: str) -> str | None:
        return None

    def restore_strategy(
        self,
        ecs: Any,
        cluster: str,
        service: str,
        strategy: Sequence[Mapping[str, Any]],
        *,
        apply: bool,
    ) -> str | None:
        return None


AWS: Target = AwsTarget()
