"""Powertools idempotency, applied once for every job that changes or reports something.

EventBridge and SNS deliver at least once and Lambda retries a failed async invocation twice,
so a job's work runs inside :func:`run_once`: the same key within ``IDEMPOTENCY_TTL_SECONDS``
replays the first result (marked ``duplicate``) instead of acting again. A
:class:`~chalicelib.errors.DeferredError` raised inside is *not* remembered (Powertools
deletes the record), so the next delivery or the reconcile run can act on the same key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from chalicelib.errors import DeferredError
from chalicelib.observability import count, logger
from chalicelib.results import JobResult, Status

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotentHookFunction
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from chalicelib.toolkit import Toolkit


def run_once(
    kit: Toolkit,
    *,
    job: str,
    key_prefix: str,
    key: Mapping[str, str],
    work: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``work`` at most once per ``key``; return its JSON result, or the replay of it.

    Returns ``deferred``-style results for a :class:`DeferredError` (not remembered) and
    ``duplicate`` while another invocation holds the same key.
    """

    def replayed(response: Any, data_record: DataRecord) -> Any:  # IdempotentHookFunction
        count("ActionsSuppressed", job)
        if not isinstance(response, dict):
            return response
        logger.info("duplicate delivery absorbed", extra={"original": response.get("status")})
        return {
            **response,
            "duplicate": True,
            "original_status": response.get("status"),
            "status": Status.DUPLICATE.value,
            "reason": f"already handled: {response.get('status')} ({response.get('reason')})",
        }

    config = IdempotencyConfig(
        expires_after_seconds=kit.settings.idempotency_ttl_seconds,
        response_hook=cast("IdempotentHookFunction", replayed),
    )
    if kit.lambda_context is not None:
        config.register_lambda_context(kit.lambda_context)

    def once(key: dict[str, str]) -> dict[str, Any]:
        return work()

    guarded = idempotent_function(
        once,
        data_keyword_argument="key",
        persistence_store=kit.idempotency,
        config=config,
        key_prefix=key_prefix,
    )
    try:
        result: dict[str, Any] = guarded(key=dict(key))
    except DeferredError as exc:
        count("ActionsSuppressed", job)
        logger.warning("not done now", extra={"outcome": exc.outcome, "reason": exc.reason})
        return JobResult(job, Status(exc.outcome), exc.reason, dict(exc.facts)).as_dict()
    except IdempotencyAlreadyInProgressError:
        count("ActionsSuppressed", job)
        reason = "the same work is being done by another invocation"
        logger.info("duplicate delivery", extra={"reason": reason})
        return JobResult(job, Status.DUPLICATE, reason, dict(key)).as_dict()
    return result
