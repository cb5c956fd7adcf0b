"""Settings are validated once; a missing or bad value names its variable."""

from __future__ import annotations

import pytest

from chalicelib.errors import SettingsError
from chalicelib.settings import DEFAULT_TAG_PATTERN, load_settings

VALID = {
    "CLUSTER_NAME": "spotops-dev-cluster",
    "SERVICE_NAME": "spotops-dev-site",
    "REPOSITORY_NAME": "spotops-dev-site",
    "LEDGER_TABLE_NAME": "ledger",
    "IDEMPOTENCY_TABLE_NAME": "idem",
    "SLACK_WEBHOOK_SECRET_NAME": "spotops/dev/slack",
    "SLACK_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    "KILL_SWITCH_PARAMETER": "/spotops/dev/kill-switch",
    "RUNBOOK_BASE_URL": "https://example.com/runbooks/",
}


def test_defaults_are_applied() -> None:
    settings = load_settings(VALID)

    assert settings.app_name == "spotops"
    assert settings.stage == "dev"
    assert settings.container_name == "site"
    assert settings.tag_pattern.pattern == DEFAULT_TAG_PATTERN
    assert settings.dry_run is False
    assert settings.runbook_base_url == "https://example.com/runbooks"
    assert settings.service_key == "spotops-dev-cluster/spotops-dev-site"
    assert settings.idempotency_ttl_seconds == 86400
    assert settings.lock_ttl_seconds == 3600
    assert settings.initial_desired_count == 0  # never change the count
    assert settings.dry_run_parameter == ""  # no run-time dry-run switch


@pytest.mark.parametrize("tag", ["v1.2.3", "0123abc", "0123456789abcdef0123456789abcdef01234567"])
def test_default_tag_pattern_admits_releases_and_commits(tag: str) -> None:
    assert load_settings(VALID).tag_pattern.fullmatch(tag)


@pytest.mark.parametrize("tag", ["latest", "v1.2", "main", "0123ab", "v1.2.3-rc1"])
def test_default_tag_pattern_rejects_mutable_tags(tag: str) -> None:
    assert not load_settings(VALID).tag_pattern.fullmatch(tag)


@pytest.mark.parametrize("name", sorted(VALID))
def test_missing_required_setting_names_the_variable(name: str) -> None:
    env = {k: v for k, v in VALID.items() if k != name}
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRY_RUN", "maybe"),
        ("LOCK_TTL_SECONDS", "ten"),
        ("LOCK_TTL_SECONDS", "5"),
        ("SLACK_MAX_ATTEMPTS", "0"),
        ("SLACK_TIMEOUT_SECONDS", "fast"),
        ("TAG_PATTERN", "v(1"),
        ("RUNBOOK_BASE_URL", "runbooks/"),
        ("SLACK_DLQ_URL", "dlq"),
        ("INITIAL_DESIRED_COUNT", "-1"),
        ("INITIAL_DESIRED_COUNT", "two"),
        ("INITIAL_DESIRED_COUNT", "1.5"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({**VALID, name: value})


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("off", False)])
def test_dry_run_is_a_strict_boolean(raw: str, expected: bool) -> None:
    assert load_settings({**VALID, "DRY_RUN": raw}).dry_run is expected


@pytest.mark.parametrize(("raw", "expected"), [("2", 2), (" 3 ", 3), ("0", 0), ("", 0)])
def test_initial_desired_count_is_a_non_negative_integer(raw: str, expected: int) -> None:
    assert load_settings({**VALID, "INITIAL_DESIRED_COUNT": raw}).initial_desired_count == expected


def test_dry_run_parameter_is_an_optional_name() -> None:
    env = {**VALID, "DRY_RUN_PARAMETER": " /spotops/dev/dry-run "}
    assert load_settings(env).dry_run_parameter == "/spotops/dev/dry-run"
