"""The run-time controls set from the command line: webhook secret, kill switch, dry run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from spotops.cli.main import cli
from spotops.errors import NotDeployedError, UsageError
from spotops.ops import switches as controls

WEBHOOK = "https://hooks.slack.com/services/T000/B000/not-a-real-token"
SECRET = "spotops/dev/slack-webhook"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        yield {
            "secretsmanager": boto3.client("secretsmanager", region_name="us-east-1"),
            "ssm": boto3.client("ssm", region_name="us-east-1"),
        }


@pytest.mark.parametrize(
    "url",
    ["", "hooks.slack.com/services/x", "ftp://hooks.slack.com/x", "http://hooks.slack.com/x"],
)
def test_error_if_the_webhook_url_is_not_https_and_the_url_is_not_echoed(url):
    with pytest.raises(UsageError) as caught:
        controls.check_webhook_url(url)
    assert "hooks.slack.com/x" not in str(caught.value)


def test_plain_http_is_accepted_only_on_loopback():
    assert controls.check_webhook_url(" http://127.0.0.1:8099/hook\n") == (
        "http://127.0.0.1:8099/hook"
    )
    assert controls.check_webhook_url("http://localhost/hook") == "http://localhost/hook"


def test_the_webhook_is_stored_as_json_in_the_secret_the_stack_created(aws):
    aws["secretsmanager"].create_secret(Name=SECRET, SecretString='{"url": ""}')

    done = controls.set_webhook(aws["secretsmanager"], SECRET, WEBHOOK, create_missing=False)

    assert done == "updated"
    stored = aws["secretsmanager"].get_secret_value(SecretId=SECRET)["SecretString"]
    assert json.loads(stored) == {"url": WEBHOOK}


def test_error_if_the_ops_stack_never_made_the_secret(aws):
    with pytest.raises(NotDeployedError, match="spotops deploy --stage dev"):
        controls.set_webhook(aws["secretsmanager"], SECRET, WEBHOOK, create_missing=False)


def test_the_emulator_gets_the_secret_it_does_not_create_from_the_stack(aws):
    assert controls.set_webhook(aws["secretsmanager"], SECRET, WEBHOOK, create_missing=True) == (
        "created"
    )


def test_a_switch_takes_only_on_or_off_words_and_must_exist(aws):
    name = controls.switch_parameter_name("spotops", "dev", "kill-switch")
    with pytest.raises(NotDeployedError):
        controls.set_switch(aws["ssm"], name, "kill-switch", "on")
    aws["ssm"].put_parameter(Name=name, Value="off", Type="String")
    with pytest.raises(UsageError, match=r"on or off \(also true/false, yes/no, 1/0; any case\)"):
        controls.set_switch(aws["ssm"], name, "kill-switch", "maybe")
    assert controls.read_switch(aws["ssm"], name) == "off"  # a refused word writes nothing

    controls.set_switch(aws["ssm"], name, "kill-switch", "TRUE")

    assert controls.read_switch(aws["ssm"], name) == "on"


@pytest.mark.parametrize(
    ("switch", "word", "stored"),
    [
        ("kill-switch", "On", "on"),
        ("kill-switch", "false", "off"),
        ("dry-run", "ON", "true"),
        ("dry-run", "off", "false"),
        ("dry-run", "Yes", "true"),
        ("chaos-leash", "0", "off"),
        ("chaos-leash", "true", "on"),
    ],
)
def test_every_switch_takes_the_same_words_and_stores_what_the_functions_read(
    aws, switch, word, stored
):
    name = controls.switch_parameter_name("spotops", "dev", switch)
    aws["ssm"].put_parameter(Name=name, Value="x", Type="String")

    assert controls.set_switch(aws["ssm"], name, switch, word) == stored

    assert controls.read_switch(aws["ssm"], name) == stored
    assert controls.shown_value(switch, stored) == ("on" if stored in ("on", "true") else "off")


def test_a_value_set_by_hand_is_shown_as_it_is():
    assert controls.shown_value("kill-switch", "disabled-by-bob") == "disabled-by-bob"
    # The kill switch function reads "no" as on (only off/false/0/disabled let automation
    # act): shown as written, never as "off".
    assert controls.shown_value("kill-switch", "no") == "no"
    assert controls.shown_value("dry-run", " TRUE ") == "on"  # what spotops stores, any case


def test_the_kill_switch_command_sets_and_prints_the_value(aws, monkeypatch):
    aws["ssm"].put_parameter(Name="/spotops/dev/kill-switch", Value="off", Type="String")
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    result = CliRunner().invoke(cli, ["kill-switch", "on"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "on"
    assert "/spotops/dev/kill-switch set to on" in result.stderr


def test_the_slack_webhook_command_reads_the_url_from_stdin(aws, monkeypatch):
    aws["secretsmanager"].create_secret(Name=SECRET, SecretString='{"url": ""}')
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    result = CliRunner().invoke(cli, ["slack-webhook", "set"], input=WEBHOOK + "\n")

    assert result.exit_code == 0, result.output
    assert WEBHOOK not in result.output
    stored = aws["secretsmanager"].get_secret_value(SecretId=SECRET)["SecretString"]
    assert json.loads(stored)["url"] == WEBHOOK


@pytest.mark.parametrize("switch", ["kill-switch", "dry-run", "chaos-leash"])
def test_every_switch_command_takes_any_case_and_shows_on_or_off(aws, monkeypatch, switch):
    name = f"/spotops/dev/{switch}"
    aws["ssm"].put_parameter(
        Name=name, Value="false" if switch == "dry-run" else "off", Type="String"
    )
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    shown = CliRunner().invoke(cli, [switch])
    result = CliRunner().invoke(cli, [switch, "ON"])

    assert shown.stdout.strip() == "off"
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "on"
    assert f"{name} set to on" in result.stderr


@pytest.mark.parametrize("switch", ["kill-switch", "dry-run", "chaos-leash"])
def test_a_word_no_switch_takes_is_refused_with_the_list_and_changes_nothing(
    aws, monkeypatch, switch
):
    name = f"/spotops/dev/{switch}"
    aws["ssm"].put_parameter(Name=name, Value="off", Type="String")
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    result = CliRunner().invoke(cli, [switch, "enable"])

    assert result.exit_code == 2
    assert "'enable' is not one of 'on', 'true', 'yes', '1', 'off', 'false', 'no', '0'" in (
        result.output
    )
    assert aws["ssm"].get_parameter(Name=name)["Parameter"]["Value"] == "off"
