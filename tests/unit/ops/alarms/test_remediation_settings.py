"""The alarm function's settings: all optional, validated, a bad value names its variable."""

from __future__ import annotations

import pytest

from chalicelib.alarms.rules import Severity
from chalicelib.alarms.settings import load_remediation_settings
from chalicelib.errors import SettingsError
from chalicelib.toolkit import load_toolkit_settings
from tests.unit.ops.test_settings import VALID


def test_defaults_give_one_channel_and_conservative_limits() -> None:
    settings = load_toolkit_settings(VALID).remediation
    assert settings.max_per_hour == 3
    assert settings.rollback_window_seconds == 1800
    assert settings.scale_out_percent == 50
    assert (settings.flap.window_seconds, settings.flap.threshold) == (3600, 3)
    assert settings.flap.summary_seconds == 900
    assert (settings.spot.threshold, settings.spot.window_seconds) == (3, 1800)
    assert settings.spot.return_after_seconds == 3600
    assert settings.channels == ()
    assert settings.channel_secret(Severity.CRITICAL) is None  # the default channel


def test_a_channel_per_severity_is_a_secret_name_per_severity() -> None:
    settings = load_remediation_settings(
        {
            "SLACK_WEBHOOK_SECRETS_BY_SEVERITY": (
                "critical=spotops/prod/slack-webhook-critical, INFO=spotops/prod/slack-webhook-info"
            )
        }
    )
    assert settings.channel_secret(Severity.CRITICAL) == "spotops/prod/slack-webhook-critical"
    assert settings.channel_secret(Severity.INFO) == "spotops/prod/slack-webhook-info"
    assert settings.channel_secret(Severity.WARNING) is None


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("SLACK_WEBHOOK_SECRETS_BY_SEVERITY", "critical", "<severity>=<secret name>"),
        ("SLACK_WEBHOOK_SECRETS_BY_SEVERITY", "urgent=s", "'urgent' is not a severity"),
        ("SLACK_WEBHOOK_SECRETS_BY_SEVERITY", "info=a,info=b", "names info twice"),
        ("REMEDIATION_MAX_PER_HOUR", "0", "REMEDIATION_MAX_PER_HOUR must be >= 1"),
        ("REMEDIATION_ROLLBACK_WINDOW_SECONDS", "soon", "must be an integer"),
        ("ALARM_FLAP_THRESHOLD", "1", "ALARM_FLAP_THRESHOLD must be >= 2"),
        ("SPOT_INTERRUPTION_WINDOW_SECONDS", "5", ">= 60"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=name) as caught:
        load_toolkit_settings({**VALID, name: value})
    assert words in str(caught.value)
