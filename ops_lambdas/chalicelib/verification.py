"""Verification events: a function proves it is wired and decides, and changes nothing.

``spotops verify`` invokes each function with the event AWS documents for it plus one
top-level key, ``"spotopsVerification": "<id>"`` (the id: 1 to 64 letters, digits or
hyphens). The function then runs its read-and-decide path with dry run forced, answers its
usual result plus ``"verification": "<id>"`` and ``"dry_run": true``, and logs one JSON line
carrying ``"verification": "<id>"`` (found in its log group with the filter pattern
``{ $.verification = "<id>" }``).

**Why a forged marker is harmless.** The marker can only make a run do less, never more:

* dry run is forced (:class:`ForcedDryRun`), whatever ``DRY_RUN``, the dry-run parameter or
  the kill switch say, so every job stops at its "would ..." answer;
* under it, every AWS call that changes something is refused (:class:`ReadOnlyClient` raises
  :class:`WriteRefusedError`): ECS, ECR, SSM, SQS, load balancer and autoscaling writes
  cannot happen even if a job's own dry-run check had a bug;
* the jobs' own bookkeeping is not written either: ledger writes (DynamoDB) are suppressed
  and listed in the answer (``suppressed_writes``) as if they had succeeded, so the decision
  follows the path a real run takes; idempotency records are neither read nor written
  (:class:`NoRecords`), so a verification never replays nor blocks a real delivery;
* Slack messages are recorded, not posted (:class:`RecordedNotices`); their titles come back
  in ``would_notify``.

An event without the marker runs exactly as before. An event whose marker is not a valid id
is malformed (:func:`verification_id` raises :class:`MalformedVerificationError`): it is
logged with what was wrong and acted on by nothing; the job never sees it.

The deployment hook answers a marked event without running its smoke tests or calling ECS
(:func:`run_hook`): ``hookStatus`` ``IN_PROGRESS``, the one answer that
decides nothing (were ECS ever to read it, ECS would invoke the hook again, with its own
payload, which never carries the marker), with what the hook would test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemNotFoundError,
)

from chalicelib.aws import AwsClients
from chalicelib.controls import DryRunState, KillSwitchState
from chalicelib.errors import OpsError
from chalicelib.observability import ignore_event, logger
from chalicelib.slack import DeliveryResult, SlackMessage

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from chalicelib.toolkit import Notifier, RunControls, Toolkit

MARKER_KEY = "spotopsVerification"
ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,64}")
_ECHO_LIMIT = 40  # a bad id is echoed back in the log, a pasted essay is not
# API operations that only read. Everything else a client offers is a write (a verification
# must not make it). Prefixes of the API names (``DescribeServices``), not the Python ones.
READ_OPERATION_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "BatchGet",
    "BatchCheckLayerAvailability",
    "Query",
    "Scan",
)
# DynamoDB writes are the ledger's bookkeeping: suppressed (answered as done), not refused.
SUPPRESSED_DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
HOOK_VERIFICATION_STATUS = "IN_PROGRESS"
HOOK_FAILED = "FAILED"  # ECS's word; the hook answers it to anything malformed


class MalformedVerificationError(OpsError):
    """The event carries the verification key with something that is not a valid id."""


class WriteRefusedError(OpsError):
    """A verification run reached an AWS call that changes something; it was not made."""


def verification_id(event: Any) -> str | None:
    """The verification id the event carries, or ``None`` when it carries none.

    Parameters
    ----------
    event:
        The raw event, as Lambda passes it.

    Returns
    -------
    str | None
        The id when ``event["spotopsVerification"]`` is 1 to 64 letters, digits or hyphens;
        ``None`` when the key is absent (an ordinary event).

    Raises
    ------
    MalformedVerificationError
        When the key is present with anything else; the message says what was wrong.

    Example
    -------
    >>> verification_id({"source": "aws.ecr", "spotopsVerification": "verify-1"})
    'verify-1'
    >>> verification_id({"source": "aws.ecr"}) is None
    True
    """
    if not isinstance(event, Mapping) or MARKER_KEY not in event:
        return None
    value = event[MARKER_KEY]
    rule = "1 to 64 letters, digits or hyphens"
    if not isinstance(value, str):
        raise MalformedVerificationError(
            f"{MARKER_KEY} must be a string of {rule}, got {type(value).__name__}"
        )
    if not ID_PATTERN.fullmatch(value):
        shown = value[:_ECHO_LIMIT] + ("..." if len(value) > _ECHO_LIMIT else "")
        raise MalformedVerificationError(f"{MARKER_KEY} must be {rule}, got {shown!r}")
    return value


def is_read_operation(api_name: str) -> bool:
    """Whether an AWS API operation only reads (``DescribeServices``: yes; ``StopTask``: no).

    Example
    -------
    >>> is_read_operation("DescribeServices"), is_read_operation("UpdateService")
    (True, False)
    """
    return api_name.startswith(READ_OPERATION_PREFIXES)


# ---- what a verification run is given instead of the real pieces ----------------------------


@dataclass
class Suppressed:
    """What a verification run would have written or posted (reported in its answer)."""

    writes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


class ReadOnlyClient:
    """A boto3 client that makes read calls and no others.

    A write raises :class:`WriteRefusedError`, except DynamoDB's item writes, which are
    answered ``{}`` (as if done) and listed in ``suppressed``: the ledger's bookkeeping must
    not change a verification's decision, and must not happen.
    """

    def __init__(self, client: Any, verification: str, suppressed: Suppressed) -> None:
        self._client = client
        self._verification = verification
        self._suppressed = suppressed

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        mapping = getattr(getattr(self._client, "meta", None), "method_to_api_mapping", {})
        api_name = mapping.get(name)
        if api_name is None or is_read_operation(api_name):
            return attribute
        service = self._client.meta.service_model.service_name
        if service == "dynamodb" and api_name in SUPPRESSED_DYNAMODB_WRITES:

            def suppressed(**kwargs: Any) -> dict[str, Any]:
                self._suppressed.writes.append(
                    f"dynamodb:{api_name} {kwargs.get('TableName', '')}".strip()
                )
                return {}

            return suppressed

        def refused(*args: Any, **kwargs: Any) -> Any:
            raise WriteRefusedError(
                f"verification {self._verification} refused {service}:{api_name}: "
                "a verification event changes nothing"
            )

        return refused


class ReadOnlyClients(AwsClients):
    """The container's lazy clients, each behind :class:`ReadOnlyClient`."""

    def __init__(self, inner: AwsClients, verification: str, suppressed: Suppressed) -> None:
        self._inner = inner
        self._verification = verification
        self._suppressed = suppressed

    def client(self, service: str) -> Any:
        return ReadOnlyClient(self._inner.client(service), self._verification, self._suppressed)


@dataclass(frozen=True)
class ForcedDryRun:
    """The run-time controls with dry run forced on; the kill switch is read as usual (a
    read), so the answer says what an engaged switch would stop."""

    inner: RunControls
    verification: str

    def kill_switch(self) -> KillSwitchState:
        return self.inner.kill_switch()

    def dry_run(self) -> DryRunState:
        return DryRunState(True, f"verification event {self.verification} (dry run forced)")


@dataclass(frozen=True)
class RecordedNotices:
    """A notifier that records each message's title and posts nothing."""

    suppressed: Suppressed

    def post(self, message: SlackMessage, *, job: str) -> DeliveryResult:
        title = next(
            (
                str(block["text"]["text"])
                for block in message.blocks
                if block.get("type") == "header"
            ),
            message.text,
        )
        self.suppressed.notices.append(title)
        return DeliveryResult(False, 0, "verification event: not posted")


class NoRecords(BasePersistenceLayer):
    """Idempotency that remembers nothing: a verification neither replays an earlier result
    nor leaves a record that would make a real delivery of the same event a duplicate."""

    def _get_record(self, idempotency_key: str) -> DataRecord:
        raise IdempotencyItemNotFoundError

    def _put_record(self, data_record: DataRecord) -> None:
        return None

    def _update_record(self, data_record: DataRecord) -> None:
        return None

    def _delete_record(self, data_record: DataRecord) -> None:
        return None


def verification_toolkit(kit: Toolkit, verification: str, suppressed: Suppressed) -> Toolkit:
    """``kit`` for a verification run: dry run forced, reads only, nothing written or posted.

    Example
    -------
    >>> checked = verification_toolkit(kit, "verify-1", Suppressed())  # doctest: +SKIP
    >>> checked.controls.dry_run().active  # doctest: +SKIP
    True
    """

    def ro(client: Any) -> Any:  # typed as the client it stands in for
        return ReadOnlyClient(client, verification, suppressed)

    notifier: Notifier = RecordedNotices(suppressed)
    aws = ReadOnlyClients(kit.aws, verification, suppressed) if kit.aws is not None else None
    return replace(
        kit,
        settings=replace(kit.settings, dry_run=True),
        ecs=ro(kit.ecs),
        ecr=ro(kit.ecr),
        ledger=kit.ledger.on_client(ro(kit.ledger.client)),
        notifier=notifier,
        controls=ForcedDryRun(kit.controls, verification),
        idempotency=NoRecords(),
        aws=aws,
        channels={severity: notifier for severity in kit.channels},
    )


# ---- running a handler --------------------------------------------------------------------


def run_job(
    job: str,
    event: Mapping[str, Any],
    toolkit: Callable[[], Toolkit],
    work: Callable[[Toolkit], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``work`` on the toolkit, or, for a marked event, on its verification toolkit.

    Parameters
    ----------
    job:
        The job's name (the ``job`` metric dimension).
    event:
        The raw event.
    toolkit:
        Makes the container's toolkit (not made for a malformed marker).
    work:
        The job, given the toolkit it must use.

    Returns
    -------
    dict
        The job's answer; for a marked event with ``verification``, ``dry_run`` (true),
        ``would_notify`` and ``suppressed_writes`` added; for a malformed marker, ``ignored``.

    Example
    -------
    >>> run_job("redeploy", event, get_toolkit, lambda kit: push(wrapped, kit))  # doctest: +SKIP
    """
    try:
        verification = verification_id(event)
    except MalformedVerificationError as exc:
        return ignore_event(job, f"malformed verification event: {exc}")
    if verification is None:
        return work(toolkit())
    suppressed = Suppressed()
    logger.append_keys(verification=verification)
    try:
        result = work(verification_toolkit(toolkit(), verification, suppressed))
    except Exception as exc:
        logger.exception(
            "verification event failed",
            extra={"verification": verification, "error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    finally:
        logger.remove_keys(["verification"])
    answer = {
        **result,
        "verification": verification,
        "dry_run": True,
        "would_notify": list(suppressed.notices),
        "suppressed_writes": list(suppressed.writes),
    }
    _log_answer(verification, answer)
    return answer


def _log_answer(verification: str, answer: Mapping[str, Any]) -> None:
    logger.info(
        "verification event answered",
        extra={
            "verification": verification,
            "dry_run": True,
            "status": answer.get("status") or answer.get("hookStatus"),
            "decision": answer.get("reason") or answer.get("would"),
        },
    )


class HookTarget(Protocol):
    """What the hook tests (:class:`chalicelib.hook.smoke.Target`)."""

    @property
    def base_url(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def hook_plan(target: HookTarget | None, problem: str, revision_arn: str | None) -> str:
    """What the deployment hook would do for an event (pure): the parsed target (or why
    there is none) and the target revision's ARN, as the hook's own parsers give them.

    Example
    -------
    >>> hook_plan(None, "hookDetails is missing", None)
    'answer FAILED: cannot test: hookDetails is missing'
    """
    if target is None:
        return f"answer {HOOK_FAILED}: cannot test: {problem}"
    headers = ", ".join(target.headers)
    compare = f" and compare /version with the image of {revision_arn}" if revision_arn else ""
    return f"run the smoke tests on {target.base_url} with header {headers}{compare}"


def run_hook(
    event: Any,
    *,
    job: str,
    decide: Callable[[], dict[str, str]],
    plan: Callable[[], str],
) -> dict[str, Any]:
    """The deployment hook's entry. An ECS event: ``decide()`` (smoke tests, ECS).

    A marked event: no smoke test runs and ECS is not called; ``hookStatus`` is
    ``IN_PROGRESS`` (decides nothing, see the module docstring) and ``would`` is ``plan()``.
    A bad marker: ``FAILED``, the hook's answer to any malformed event (never ``SUCCEEDED``).

    Example
    -------
    >>> run_hook({MARKER_KEY: "v-1"}, job="hook", decide=dict, plan=lambda: "x")["would"]
    'x'
    """
    try:
        verification = verification_id(event)
    except MalformedVerificationError as exc:
        ignore_event(job, f"malformed verification event: {exc}")
        return {"hookStatus": HOOK_FAILED}
    if verification is None:
        return dict(decide())
    answer = {
        "hookStatus": HOOK_VERIFICATION_STATUS,
        "verification": verification,
        "dry_run": True,
        "would": plan(),
    }
    _log_answer(verification, answer)
    return answer
