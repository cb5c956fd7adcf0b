"""Settings from environment variables, read and validated once per container.

Every handler gets one settings object; nothing else in ``chalicelib`` reads
``os.environ``. A missing or bad value raises :class:`SettingsError` naming the variable.

This module holds what every job reads (:class:`Settings`) and the readers of one variable
(``env_int``, ``env_parsed``, ...). A job with settings of its own parses its section in its
package with these readers (:mod:`chalicelib.chaos.settings`,
:mod:`chalicelib.alarms.settings`); the toolkit puts the sections together
(:func:`chalicelib.toolkit.load_toolkit_settings`), so this module imports no job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from chalicelib.errors import SettingsError

DEFAULT_TAG_PATTERN = r"^(v\d+\.\d+\.\d+|[0-9a-f]{7,40})$"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_P = TypeVar("_P")


@dataclass(frozen=True)
class Settings:
    """What every ops function reads. ``README.md`` documents each one; the sections of
    one job are in its package (see the module docstring).

    Attributes
    ----------
    app_name, stage:
        ``APP_NAME`` (default ``spotops``) and ``STAGE`` (default ``dev``).
    cluster_name, service_name, container_name:
        ``CLUSTER_NAME``, ``SERVICE_NAME`` (required) and ``CONTAINER_NAME`` (default ``site``):
        the ECS service the redeploy job manages and the container whose image it changes.
    repository_name:
        ``REPOSITORY_NAME`` (required): the ECR repository whose pushes redeploy the service.
    tag_pattern:
        ``TAG_PATTERN``: regex a pushed tag must match (full match) to be deployed.
    initial_desired_count:
        ``INITIAL_DESIRED_COUNT`` (default ``0``: never change the count): the desired count
        the first deployment sets on a service the site stack created with 0 tasks and the
        ``:bootstrap`` placeholder image, so the first push serves traffic. A service an
        operator scaled to 0 while it runs a real image is never lifted.
    dry_run, dry_run_parameter:
        ``DRY_RUN`` (default ``false``, changed only by a deploy) and ``DRY_RUN_PARAMETER``
        (optional SSM parameter name, read at run time so dry run can be switched without a
        deploy). A run is dry when either says so; :meth:`Controls.dry_run` decides.
    """

    app_name: str
    stage: str
    cluster_name: str
    service_name: str
    container_name: str
    repository_name: str
    tag_pattern: re.Pattern[str]
    ledger_table_name: str
    idempotency_table_name: str
    idempotency_ttl_seconds: int
    slack_webhook_secret_name: str
    slack_dlq_url: str
    slack_timeout_seconds: float
    slack_max_attempts: int
    slack_max_total_seconds: float
    slack_backoff_base_seconds: float
    secret_cache_seconds: int
    kill_switch_parameter: str
    kill_switch_cache_seconds: int
    dry_run: bool
    dry_run_parameter: str
    initial_desired_count: int
    runbook_base_url: str
    lock_ttl_seconds: int
    redeploy_max_per_hour: int
    redeploy_cooldown_seconds: int
    history_ttl_days: int
    aws_max_attempts: int

    @property
    def alarm_prefix(self) -> str:
        """``<app>-<stage>-``: every alarm of the stage is named so (chaos waits while one
        is in ALARM)."""
        return f"{self.app_name}-{self.stage}-"

    @property
    def service_key(self) -> str:
        """``<cluster>/<service>``: the name the ledger and idempotency keys use."""
        return f"{self.cluster_name}/{self.service_name}"


def env_required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required but is missing or empty")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def env_regex(env: Mapping[str, str], name: str, default: str) -> re.Pattern[str]:
    raw = env.get(name, "").strip() or default
    try:
        return re.compile(raw)
    except re.error as exc:
        raise SettingsError(f"{name} is not a valid regular expression: {exc}") from None


def env_url(env: Mapping[str, str], name: str) -> str:
    value = env_required(env, name)
    if not value.startswith(("https://", "http://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def env_parsed(env: Mapping[str, str], name: str, default: str, parse: Callable[[str], _P]) -> _P:
    raw = env.get(name, "").strip()
    try:
        return parse(raw or default)
    except ValueError as exc:
        raise SettingsError(f"{name} is invalid: {exc}") from None


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate the shared settings from ``env`` (the toolkit's
    :func:`~chalicelib.toolkit.load_toolkit_settings` adds the jobs' sections).

    Parameters
    ----------
    env:
        The environment, usually ``os.environ``.

    Returns
    -------
    Settings
        The validated settings.

    Raises
    ------
    SettingsError
        When a variable is missing or bad; the message names the variable.

    Example
    -------
    >>> load_settings(os.environ).service_key  # doctest: +SKIP
    'spotops-dev/site'
    """
    return Settings(
        app_name=env.get("APP_NAME", "").strip() or "spotops",
        stage=env.get("STAGE", "").strip() or "dev",
        cluster_name=env_required(env, "CLUSTER_NAME"),
        service_name=env_required(env, "SERVICE_NAME"),
        container_name=env.get("CONTAINER_NAME", "").strip() or "site",
        repository_name=env_required(env, "REPOSITORY_NAME"),
        tag_pattern=env_regex(env, "TAG_PATTERN", DEFAULT_TAG_PATTERN),
        ledger_table_name=env_required(env, "LEDGER_TABLE_NAME"),
        idempotency_table_name=env_required(env, "IDEMPOTENCY_TABLE_NAME"),
        idempotency_ttl_seconds=env_int(env, "IDEMPOTENCY_TTL_SECONDS", 86400, minimum=60),
        slack_webhook_secret_name=env_required(env, "SLACK_WEBHOOK_SECRET_NAME"),
        slack_dlq_url=env_url(env, "SLACK_DLQ_URL"),
        slack_timeout_seconds=env_float(env, "SLACK_TIMEOUT_SECONDS", 3.0, minimum=0.01),
        slack_max_attempts=env_int(env, "SLACK_MAX_ATTEMPTS", 4, minimum=1),
        slack_max_total_seconds=env_float(env, "SLACK_MAX_TOTAL_SECONDS", 15.0, minimum=0.01),
        slack_backoff_base_seconds=env_float(env, "SLACK_BACKOFF_BASE_SECONDS", 0.5),
        secret_cache_seconds=env_int(env, "SECRET_CACHE_SECONDS", 300),
        kill_switch_parameter=env_required(env, "KILL_SWITCH_PARAMETER"),
        kill_switch_cache_seconds=env_int(env, "KILL_SWITCH_CACHE_SECONDS", 30),
        dry_run=env_bool(env, "DRY_RUN", False),
        dry_run_parameter=env.get("DRY_RUN_PARAMETER", "").strip(),
        initial_desired_count=env_int(env, "INITIAL_DESIRED_COUNT", 0),
        runbook_base_url=env_url(env, "RUNBOOK_BASE_URL"),
        lock_ttl_seconds=env_int(env, "LOCK_TTL_SECONDS", 3600, minimum=60),
        redeploy_max_per_hour=env_int(env, "REDEPLOY_MAX_PER_HOUR", 6, minimum=1),
        redeploy_cooldown_seconds=env_int(env, "REDEPLOY_COOLDOWN_SECONDS", 0),
        history_ttl_days=env_int(env, "HISTORY_TTL_DAYS", 30, minimum=1),
        aws_max_attempts=env_int(env, "AWS_MAX_ATTEMPTS", 3, minimum=1),
    )
