"""The collaborators every job takes as one argument, and the per-container accessor.

Jobs are plain functions ``job(event, kit)``; tests build a :class:`Toolkit` from moto
clients and fakes, and production builds one per container with :func:`get_toolkit`.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
)

from chalicelib.alarms.settings import RemediationSettings, load_remediation_settings
from chalicelib.aws import AwsClients
from chalicelib.chaos.settings import ChaosSettings, load_chaos_settings
from chalicelib.controls import Controls, DryRunState, KillSwitchState
from chalicelib.ledger import SafetyLedger
from chalicelib.settings import Settings, load_settings
from chalicelib.slack import DeliveryResult, SlackMessage, SlackNotifier
from chalicelib.slo import SloSettings, load_slo_settings

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecs import ECSClient


class Notifier(Protocol):
    def post(self, message: SlackMessage, *, job: str) -> DeliveryResult: ...


class RunControls(Protocol):
    """The run-time controls a job asks before it changes production (:class:`Controls`)."""

    def kill_switch(self) -> KillSwitchState: ...

    def dry_run(self) -> DryRunState: ...


@dataclass(frozen=True)
class ToolkitSettings(Settings):
    """The shared settings with each job's own section, parsed in the job's package: the
    toolkit is the composition root, the one shared module that may know the jobs.

    Attributes
    ----------
    chaos:
        ``CHAOS_*`` (:mod:`chalicelib.chaos.settings`).
    remediation:
        The alarm function's (:mod:`chalicelib.alarms.settings`).
    slo:
        ``SLO_*``: the objectives and the load balancer measured (:mod:`chalicelib.slo`).
    """

    chaos: ChaosSettings = field(default_factory=ChaosSettings)
    remediation: RemediationSettings = field(default_factory=RemediationSettings)
    slo: SloSettings = field(default_factory=SloSettings)


def load_toolkit_settings(env: Mapping[str, str]) -> ToolkitSettings:
    """Read and validate every setting of the ops functions from ``env``.

    Raises
    ------
    SettingsError
        When a variable is missing or bad; the message names the variable.

    Example
    -------
    >>> load_toolkit_settings(os.environ).chaos.mtbk_hours  # doctest: +SKIP
    16.0
    """
    shared = load_settings(env)
    return ToolkitSettings(
        **{f.name: getattr(shared, f.name) for f in fields(Settings)},
        chaos=load_chaos_settings(env),
        remediation=load_remediation_settings(env),
        slo=load_slo_settings(env),
    )


@dataclass(frozen=True)
class Toolkit:
    """Settings, AWS clients and the shared safety pieces a job needs."""

    settings: ToolkitSettings
    ecs: ECSClient
    ecr: ECRClient
    ledger: SafetyLedger
    notifier: Notifier
    controls: RunControls
    idempotency: BasePersistenceLayer
    lambda_context: Any | None = None
    # The container's lazy clients: what only some jobs need is made on first use (chaos).
    aws: AwsClients | None = None
    # Slack channels by severity (SLACK_WEBHOOK_SECRETS_BY_SEVERITY); others use ``notifier``.
    channels: Mapping[str, Notifier] = field(default_factory=dict)

    def notifier_for(self, severity: str) -> Notifier:
        """The channel of ``severity`` (``critical``, ``warning``, ``info``), else the default."""
        return self.channels.get(severity, self.notifier)

    def with_context(self, lambda_context: Any) -> Toolkit:
        """A copy bound to this invocation's Lambda context (for idempotency timeouts)."""
        return replace(self, lambda_context=lambda_context)

    def _clients(self) -> AwsClients:
        if self.aws is None:
            raise RuntimeError(
                "this toolkit was built without AwsClients (build_toolkit adds them)"
            )
        return self.aws

    @property
    def elbv2(self) -> Any:
        """Elastic Load Balancing v2 (target health), made on first use."""
        return self._clients().elbv2

    @property
    def cloudwatch(self) -> Any:
        """CloudWatch (alarm states), made on first use."""
        return self._clients().cloudwatch

    @property
    def dynamodb(self) -> Any:
        """DynamoDB (the ledger table's chaos records), made on first use."""
        return self._clients().dynamodb

    @property
    def ssm(self) -> Any:
        """SSM (the chaos leash), made on first use."""
        return self._clients().ssm

    @property
    def autoscaling(self) -> Any:
        """Application Auto Scaling (the scale-out's maximum), made on first use."""
        return self._clients().autoscaling


def build_toolkit(
    settings: ToolkitSettings,
    clients: AwsClients,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Toolkit:
    """Assemble the production toolkit from settings and lazy clients. ``sleep`` and
    ``clock`` are the Slack notifiers' (their waits, budgets and pacing); tests pass a clock
    that skips the waits."""
    controls = Controls(
        ssm=clients.ssm,
        secretsmanager=clients.secretsmanager,
        kill_switch_parameter=settings.kill_switch_parameter,
        kill_switch_cache_seconds=settings.kill_switch_cache_seconds,
        dry_run=settings.dry_run,
        dry_run_parameter=settings.dry_run_parameter,
        webhook_secret_name=settings.slack_webhook_secret_name,
        secret_cache_seconds=settings.secret_cache_seconds,
        stage=settings.stage,
    )

    def notifier_of(webhook_url: Callable[[], str]) -> SlackNotifier:
        return SlackNotifier(
            webhook_url=webhook_url,
            sqs=clients.sqs,
            dlq_url=settings.slack_dlq_url,
            timeout=settings.slack_timeout_seconds,
            max_attempts=settings.slack_max_attempts,
            max_total_seconds=settings.slack_max_total_seconds,
            backoff_base_seconds=settings.slack_backoff_base_seconds,
            sleep=sleep,
            clock=clock,
        )

    notifier = notifier_of(controls.webhook_url)
    channels: dict[str, Notifier] = {
        severity.value: notifier_of(functools.partial(controls.webhook_url_of, secret))
        for severity, secret in settings.remediation.channels
    }
    return Toolkit(
        settings=settings,
        ecs=clients.ecs,
        ecr=clients.ecr,
        ledger=SafetyLedger(
            clients.dynamodb, settings.ledger_table_name, settings.history_ttl_days
        ),
        notifier=notifier,
        controls=controls,
        idempotency=DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table_name, boto3_client=clients.dynamodb
        ),
        aws=clients,
        channels=channels,
    )


_lock = threading.Lock()
_toolkit: Toolkit | None = None


def get_toolkit() -> Toolkit:
    """The container's toolkit: settings validated and clients made on first use, then kept.

    Raises
    ------
    SettingsError
        When a setting is missing or bad (the message names the variable).
    """
    global _toolkit
    if _toolkit is None:
        with _lock:
            if _toolkit is None:
                settings = load_toolkit_settings(os.environ)
                _toolkit = build_toolkit(settings, AwsClients(settings.aws_max_attempts))
    return _toolkit


def reset_toolkit() -> None:
    """Forget the container's toolkit (tests change the environment between cases)."""
    global _toolkit
    with _lock:
        _toolkit = None
