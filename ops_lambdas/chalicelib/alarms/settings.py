"""The alarm function's own settings (remediation, flapping, Spot, channels), parsed here
with the readers of :mod:`chalicelib.settings`; the toolkit adds them to the shared settings
as ``remediation``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.alarms.rules import FlapPolicy, Severity, SpotPolicy
from chalicelib.errors import SettingsError
from chalicelib.settings import env_int


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
        max_per_hour=env_int(env, "REMEDIATION_MAX_PER_HOUR", 3, minimum=1),
        rollback_window_seconds=env_int(
            env, "REMEDIATION_ROLLBACK_WINDOW_SECONDS", 1800, minimum=60
        ),
        scale_out_percent=env_int(env, "REMEDIATION_SCALE_OUT_PERCENT", 50, minimum=1),
        flap=FlapPolicy(
            window_seconds=env_int(env, "ALARM_FLAP_WINDOW_SECONDS", 3600, minimum=60),
            threshold=env_int(env, "ALARM_FLAP_THRESHOLD", 3, minimum=2),
            summary_seconds=env_int(env, "ALARM_FLAP_SUMMARY_SECONDS", 900, minimum=0),
        ),
        spot=SpotPolicy(
            threshold=env_int(env, "SPOT_INTERRUPTION_THRESHOLD", 3, minimum=1),
            window_seconds=env_int(env, "SPOT_INTERRUPTION_WINDOW_SECONDS", 1800, minimum=60),
            return_after_seconds=env_int(env, "CAPACITY_RETURN_AFTER_SECONDS", 3600, minimum=0),
        ),
        channels=_channels(env, "SLACK_WEBHOOK_SECRETS_BY_SEVERITY"),
        alarm_topic_arn=env.get("ALARM_TOPIC_ARN", "").strip(),
    )
