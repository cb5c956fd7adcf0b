"""Settings from environment variables, read and validated once per container.

Every handler gets one :class:`Settings` object; nothing else in ``chalicelib`` reads
``os.environ``. A missing or bad value raises :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from chalicelib.alarms.rules import FlapPolicy, Severity, SpotPolicy
from chalicelib.chaos.guards import (
    MAX_HOURS,
    ChaosPolicy,
    FreezePeriod,
    Window,
    parse_days,
    parse_freeze,
    parse_hours,
    time_zone,
)
from chalicelib.errors import SettingsError

DEFAULT_TAG_PATTERN = r"^(v\d+\.\d+\.\d+|[0-9a-f]{7,40})$"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_P = TypeVar("_P")


# ---- chaos: only the chaos_tick function gets these; every one is optional ----------------

# The chaos function's Lambda timeout (ops.yaml) is 900 s; the recovery watch must end before
# it, with room to record and report.
CHAOS_MAX_RECOVERY_SECONDS = 840


@dataclass(frozen=True)
class ChaosSettings:
    """The chaos job's settings (``CHAOS_*``); ``README.md`` documents each one.

    Every field has a default, so the other functions, which do not get these variables,
    load their settings unchanged.

    Attributes
    ----------
    leash_parameter:
        ``CHAOS_LEASH_PARAMETER``: SSM parameter read on every run; only ``off`` unleashes
        (kills for real). Empty, missing, unreadable or anything else: leashed.
    window, freeze:
        ``CHAOS_WINDOW_DAYS`` (``mon-fri``), ``CHAOS_WINDOW_HOURS`` (``9-17``: from 09:00 up
        to 17:00), ``CHAOS_TIME_ZONE`` (``UTC``) and ``CHAOS_FREEZE_DATES`` (``YYYY-MM-DD``
        or ``YYYY-MM-DD..YYYY-MM-DD``, comma separated; none by default).
    mtbk_hours, min_gap_hours:
        ``CHAOS_MTBK_HOURS`` (16: mean window hours between kills of a service) and
        ``CHAOS_MIN_GAP_HOURS`` (4); a service's tags may set its own.
    recovery_timeout_seconds, poll_seconds:
        ``CHAOS_RECOVERY_TIMEOUT_SECONDS`` (600; at most 840, inside the function's 900 s):
        a kill not recovered by then is a failed experiment. ``CHAOS_POLL_SECONDS`` (10): how
        often recovery is checked.
    """

    leash_parameter: str = ""
    window: Window = field(default_factory=Window)
    freeze: tuple[FreezePeriod, ...] = ()
    mtbk_hours: float = 16.0
    min_gap_hours: float = 4.0
    recovery_timeout_seconds: int = 600
    poll_seconds: int = 10

    def policy(self, tick_minutes: int) -> ChaosPolicy:
        """The pure guards' view of these settings, for a schedule every ``tick_minutes``."""
        return ChaosPolicy(
            window=self.window,
            freeze=self.freeze,
            mtbk_hours=self.mtbk_hours,
            min_gap_hours=self.min_gap_hours,
            tick_minutes=tick_minutes,
        )


# ---- the alarm function (remediation, flapping, Spot, channels): every one is optional --------


@dataclass(frozen=True)
class RemediationSettings:
    """The alarm function's settings; ``README.md`` documents each one.

    Attributes
    ----------
    max_per_hour:
        ``REMEDIATION_MAX_PER_HOUR`` (3): automated actions per service per UTC hour, all
        alarms together; when spent, the follow-up says "escalating to a human".
    rollback_window_seconds:
        ``REMEDIATION_ROLLBACK_WINDOW_SECONDS`` (1800): a 5xx alarm rolls back only when
        the toolkit's last deployment completed at most this long before it started.
    scale_out_percent:
        ``REMEDIATION_SCALE_OUT_PERCENT`` (50): tasks a scale-out adds, in percent of the
        desired count (at least one, never past the autoscaling maximum).
    flap:
        ``ALARM_FLAP_WINDOW_SECONDS`` (3600), ``ALARM_FLAP_THRESHOLD`` (3 entries into ALARM
        within the window make it flapping), ``ALARM_FLAP_SUMMARY_SECONDS`` (900: one
        summary per this long while it flaps).
    spot:
        ``SPOT_INTERRUPTION_THRESHOLD`` (3) interruptions within
        ``SPOT_INTERRUPTION_WINDOW_SECONDS`` (1800) shift to on-demand;
        ``CAPACITY_RETURN_AFTER_SECONDS`` (3600) quiet brings Spot back.
    channels:
        ``SLACK_WEBHOOK_SECRETS_BY_SEVERITY``: ``critical=<secret name>,info=<secret name>``;
        a severity not named (and the default, empty) posts to ``SLACK_WEBHOOK_SECRET_NAME``.
    alarm_topic_arn:
        ``ALARM_TOPIC_ARN``: the site's alarm topic (written by ``spotops`` when the app is
        packaged); SNS messages from another topic are alerted but never remediated.
    """

    max_per_hour: int = 3
    rollback_window_seconds: int = 1800
    scale_out_percent: int = 50
    flap: FlapPolicy = field(default_factory=FlapPolicy)
    spot: SpotPolicy = field(default_factory=SpotPolicy)
    channels: tuple[tuple[Severity, str], ...] = ()
    alarm_topic_arn: str = ""

    def channel_secret(self, severity: Severity) -> str | None:
        """The webhook secret of ``severity``'s channel; ``None``: the default channel."""
        return dict(self.channels).get(severity)


@dataclass(frozen=True)
class Settings:
    """Every setting the ops functions read. ``README.md`` documents each one.

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
    # ---- chaos (CHAOS_*): optional, defaults when absent ----
    chaos: ChaosSettings = field(default_factory=ChaosSettings)
    # ---- the alarm function: optional, defaults when absent ----
    remediation: RemediationSettings = field(default_factory=RemediationSettings)

    @property
    def alarm_prefix(self) -> str:
        """``<app>-<stage>-``: every alarm of the stage is named so (chaos waits while one
        is in ALARM)."""
        return f"{self.app_name}-{self.stage}-"

    @property
    def service_key(self) -> str:
        """``<cluster>/<service>``: the name the ledger and idempotency keys use."""
        return f"{self.cluster_name}/{self.service_name}"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required but is missing or empty")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
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


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
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


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _regex(env: Mapping[str, str], name: str, default: str) -> re.Pattern[str]:
    raw = env.get(name, "").strip() or default
    try:
        return re.compile(raw)
    except re.error as exc:
        raise SettingsError(f"{name} is not a valid regular expression: {exc}") from None


def _url(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name)
    if not value.startswith(("https://", "http://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _parsed(env: Mapping[str, str], name: str, default: str, parse: Callable[[str], _P]) -> _P:
    raw = env.get(name, "").strip()
    try:
        return parse(raw or default)
    except ValueError as exc:
        raise SettingsError(f"{name} is invalid: {exc}") from None


def _hours(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    value = _float(env, name, default)
    if not (value >= 0 if zero else value > 0) or value > MAX_HOURS:
        least = "0 or more" if zero else "more than 0"
        raise SettingsError(f"{name} must be {least} and at most a year of hours, got {value}")
    return value


def load_chaos_settings(env: Mapping[str, str]) -> ChaosSettings:
    """Read and validate the ``CHAOS_*`` settings; an absent one takes its default.

    Raises
    ------
    SettingsError
        When a variable is present but bad; the message names the variable.

    Example
    -------
    >>> load_chaos_settings({"CHAOS_WINDOW_HOURS": "10-16"}).window.start_hour
    10
    """
    zone = env.get("CHAOS_TIME_ZONE", "").strip() or "UTC"
    try:
        time_zone(zone)
    except ValueError as exc:
        raise SettingsError(f"CHAOS_TIME_ZONE is invalid: {exc}") from None
    start, end = _parsed(env, "CHAOS_WINDOW_HOURS", "9-17", parse_hours)
    timeout = _int(env, "CHAOS_RECOVERY_TIMEOUT_SECONDS", 600, minimum=1)
    if timeout > CHAOS_MAX_RECOVERY_SECONDS:
        raise SettingsError(
            f"CHAOS_RECOVERY_TIMEOUT_SECONDS must be <= {CHAOS_MAX_RECOVERY_SECONDS} (the "
            f"function stops at 900 s), got {timeout}"
        )
    return ChaosSettings(
        leash_parameter=env.get("CHAOS_LEASH_PARAMETER", "").strip(),
        window=Window(
            days=_parsed(env, "CHAOS_WINDOW_DAYS", "mon-fri", parse_days),
            start_hour=start,
            end_hour=end,
            time_zone=zone,
        ),
        freeze=_parsed(env, "CHAOS_FREEZE_DATES", "", parse_freeze),
        mtbk_hours=_hours(env, "CHAOS_MTBK_HOURS", 16.0),
        min_gap_hours=_hours(env, "CHAOS_MIN_GAP_HOURS", 4.0, zero=True),
        recovery_timeout_seconds=timeout,
        poll_seconds=_int(env, "CHAOS_POLL_SECONDS", 10, minimum=1),
    )


def _channels(env: Mapping[str, str], name: str) -> tuple[tuple[Severity, str], ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    found: dict[Severity, str] = {}
    for part in raw.split(","):
        key, sep, secret = (p.strip() for p in part.partition("="))
        if not sep or not key or not secret:
            raise SettingsError(
                f"{name} must be <severity>=<secret name>[,...], got {part.strip()[:60]!r}"
            )
        try:
            severity = Severity(key.lower())
        except ValueError:
            known = ", ".join(s.value for s in Severity)
            raise SettingsError(f"{name}: {key[:20]!r} is not a severity ({known})") from None
        if severity in found:
            raise SettingsError(f"{name} names {severity.value} twice")
        found[severity] = secret
    return tuple(sorted(found.items()))


def load_remediation_settings(env: Mapping[str, str]) -> RemediationSettings:
    """Read and validate the alarm function's settings; an absent one takes its default.

    Raises
    ------
    SettingsError
        When a variable is present but bad; the message names the variable.

    Example
    -------
    >>> load_remediation_settings({"REMEDIATION_MAX_PER_HOUR": "2"}).max_per_hour
    2
    """
    return RemediationSettings(
        max_per_hour=_int(env, "REMEDIATION_MAX_PER_HOUR", 3, minimum=1),
        rollback_window_seconds=_int(env, "REMEDIATION_ROLLBACK_WINDOW_SECONDS", 1800, minimum=60),
        scale_out_percent=_int(env, "REMEDIATION_SCALE_OUT_PERCENT", 50, minimum=1),
        flap=FlapPolicy(
            window_seconds=_int(env, "ALARM_FLAP_WINDOW_SECONDS", 3600, minimum=60),
            threshold=_int(env, "ALARM_FLAP_THRESHOLD", 3, minimum=2),
            summary_seconds=_int(env, "ALARM_FLAP_SUMMARY_SECONDS", 900, minimum=0),
        ),
        spot=SpotPolicy(
            threshold=_int(env, "SPOT_INTERRUPTION_THRESHOLD", 3, minimum=1),
            window_seconds=_int(env, "SPOT_INTERRUPTION_WINDOW_SECONDS", 1800, minimum=60),
            return_after_seconds=_int(env, "CAPACITY_RETURN_AFTER_SECONDS", 3600, minimum=0),
        ),
        channels=_channels(env, "SLACK_WEBHOOK_SECRETS_BY_SEVERITY"),
        alarm_topic_arn=env.get("ALARM_TOPIC_ARN", "").strip(),
    )


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate every setting from ``env``.

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
        cluster_name=_required(env, "CLUSTER_NAME"),
        service_name=_required(env, "SERVICE_NAME"),
        container_name=env.get("CONTAINER_NAME", "").strip() or "site",
        repository_name=_required(env, "REPOSITORY_NAME"),
        tag_pattern=_regex(env, "TAG_PATTERN", DEFAULT_TAG_PATTERN),
        ledger_table_name=_required(env, "LEDGER_TABLE_NAME"),
        idempotency_table_name=_required(env, "IDEMPOTENCY_TABLE_NAME"),
        idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", 86400, minimum=60),
        slack_webhook_secret_name=_required(env, "SLACK_WEBHOOK_SECRET_NAME"),
        slack_dlq_url=_url(env, "SLACK_DLQ_URL"),
        slack_timeout_seconds=_float(env, "SLACK_TIMEOUT_SECONDS", 3.0, minimum=0.01),
        slack_max_attempts=_int(env, "SLACK_MAX_ATTEMPTS", 4, minimum=1),
        slack_max_total_seconds=_float(env, "SLACK_MAX_TOTAL_SECONDS", 15.0, minimum=0.01),
        slack_backoff_base_seconds=_float(env, "SLACK_BACKOFF_BASE_SECONDS", 0.5),
        secret_cache_seconds=_int(env, "SECRET_CACHE_SECONDS", 300),
        kill_switch_parameter=_required(env, "KILL_SWITCH_PARAMETER"),
        kill_switch_cache_seconds=_int(env, "KILL_SWITCH_CACHE_SECONDS", 30),
        dry_run=_bool(env, "DRY_RUN", False),
        dry_run_parameter=env.get("DRY_RUN_PARAMETER", "").strip(),
        initial_desired_count=_int(env, "INITIAL_DESIRED_COUNT", 0),
        runbook_base_url=_url(env, "RUNBOOK_BASE_URL"),
        lock_ttl_seconds=_int(env, "LOCK_TTL_SECONDS", 3600, minimum=60),
        redeploy_max_per_hour=_int(env, "REDEPLOY_MAX_PER_HOUR", 6, minimum=1),
        redeploy_cooldown_seconds=_int(env, "REDEPLOY_COOLDOWN_SECONDS", 0),
        history_ttl_days=_int(env, "HISTORY_TTL_DAYS", 30, minimum=1),
        aws_max_attempts=_int(env, "AWS_MAX_ATTEMPTS", 3, minimum=1),
        chaos=load_chaos_settings(env),
        remediation=load_remediation_settings(env),
    )
