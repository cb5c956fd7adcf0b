"""Powertools Logger, Metrics and Tracer, made once per container.

``app.py`` wires them in as middleware; every module uses this one :data:`logger` and
:data:`metrics`. (One shared Logger rather than ``Logger(child=True)`` per module: a child
logger is orphaned, and raises on ``append_keys``, whenever the jobs run without ``app.py``,
as the tests and the benchmark run them.)

The Tracer is the expensive one: constructing ``powertools.Tracer`` imports
``aws_xray_sdk.core`` (~0.4 s) even when tracing is disabled. :func:`make_tracer` therefore
returns ``None`` unless tracing is on (in Lambda, ``POWERTOOLS_TRACE_DISABLED`` not true),
and patches only ``botocore`` instead of every library X-Ray knows.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.results import JobResult, Status

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "spotops")

_TRUE = {"1", "true", "yes", "on"}


def tracing_enabled(env: dict[str, str] | None = None) -> bool:
    """Whether X-Ray tracing should be set up (the rule Powertools itself applies)."""
    env = dict(os.environ) if env is None else env
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    if env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"):
        return False
    return bool(env.get("LAMBDA_TASK_ROOT"))


def make_tracer() -> Tracer | None:
    """A Powertools Tracer patching only botocore, or ``None`` when tracing is off."""
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=["botocore"])


def count(name: str, job: str, value: int = 1) -> None:
    """Add one EMF count metric (``ActionsTaken``, ``ActionsSuppressed``, ``ActionsFailed``,
    ``EventsIgnored``, ``SlackDeadLettered``) with dimension ``job`` (one job per invocation)."""
    if metrics.dimension_set.get("job") != job:
        metrics.add_dimension(name="job", value=job)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def ignore_event(job: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An event no job acts on (malformed, or not ours): logged with why, counted as
    ``EventsIgnored``, answered ``ignored``; ``extra`` goes to the log only."""
    logger.warning("event ignored", extra={"reason": reason, **extra})
    count("EventsIgnored", job)
    return JobResult(job, Status.IGNORED, reason).as_dict()
