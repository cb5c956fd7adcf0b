"""Translating AWS faults into one clear message, and the session factory's settings."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from spotops.aws import AwsSession, AwsSettings
from spotops.errors import (
    AwsCallError,
    CredentialsError,
    RegionError,
    translate_aws_error,
)
from spotops.factory import open_session
from spotops.local.target import EmulatorTarget


def _client_error(code: str, message: str = "boom") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeStacks")


def test_no_credentials_says_how_to_configure_them():
    error = translate_aws_error(NoCredentialsError())

    assert isinstance(error, CredentialsError)
    assert "AWS_PROFILE" in str(error)
    assert "AWS_ENDPOINT_URL" in str(error)


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_credentials_say_to_refresh_them(code):
    error = translate_aws_error(_client_error(code))

    assert isinstance(error, CredentialsError)
    assert "expired" in str(error)
    assert "aws sso login" in str(error)


def test_rejected_credentials_name_the_code():
    error = translate_aws_error(_client_error("InvalidClientTokenId", "bad key"))

    assert isinstance(error, CredentialsError)
    assert "InvalidClientTokenId: bad key" in str(error)


def test_unreachable_endpoint_points_at_the_region():
    error = translate_aws_error(
        EndpointConnectionError(endpoint_url="https://cloudformation.us-east-9.amazonaws.com/"),
        region="us-east-9",
    )

    assert isinstance(error, RegionError)
    assert "us-east-9" in str(error)
    assert "--region" in str(error)


def test_other_errors_keep_operation_code_and_message():
    error = translate_aws_error(_client_error("Throttling", "slow down"), region="eu-west-1")

    assert isinstance(error, AwsCallError)
    assert str(error) == "DescribeStacks failed in region eu-west-1: Throttling: slow down"


@pytest.mark.parametrize(
    ("endpoint", "emulator"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://localhost:4566", True),
        ("https://cloudformation.example.com", False),
        (None, False),
    ],
)
def test_retries_are_off_only_against_a_loopback_endpoint(endpoint, emulator):
    session = open_session(AwsSettings(region="us-east-1", endpoint_url=endpoint))

    assert isinstance(session.target, EmulatorTarget) is emulator
    assert (session.config().retries["max_attempts"] == 1) is emulator


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_PROFILE", "ops")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

    assert AwsSettings.from_env() == AwsSettings("eu-central-1", "ops", "http://127.0.0.1:4566")
    assert AwsSettings.from_env(region="us-west-2").region == "us-west-2"


def test_clients_use_the_emulator_endpoint():
    session = AwsSession(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:4566"))

    client = session.client("cloudformation")

    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == "us-east-1"


def test_error_if_the_region_is_unknown():
    session = AwsSession(AwsSettings(region="us-east-9"))

    with pytest.raises(RegionError, match="Unknown AWS region 'us-east-9'"):
        session.check()


def test_error_if_no_region_is_set(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(RegionError, match="--region"):
        AwsSession(AwsSettings.from_env()).check()


def test_error_if_there_are_no_credentials(monkeypatch):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(CredentialsError, match="No AWS credentials found"):
        AwsSession(AwsSettings(region="us-east-1")).check()


def test_the_factory_executes_change_sets_directly_only_on_the_emulator(monkeypatch, tmp_path):
    from spotops.factory import CLIFactory

    factory = CLIFactory(project_dir=tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    emulated = factory.aws("us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    real = factory.aws("us-east-1")

    assert emulated.client("ecs").meta.endpoint_url == "http://127.0.0.1:4566"
    assert factory.deployer(emulated)._direct is True
    assert factory.deployer(real)._direct is False
    assert real.client("ecs").meta.endpoint_url == "https://ecs.us-east-1.amazonaws.com"


def test_aws_errors_are_read_by_code_never_by_their_words():
    from spotops.errors import error_code, is_error

    reworded = ClientError(
        {"Error": {"Code": "ClusterNotFoundException", "Message": "anything at all"}}, "X"
    )

    assert error_code(reworded) == "ClusterNotFoundException"
    assert is_error(reworded, "ServiceNotFoundException", "ClusterNotFoundException")
    assert error_code(ValueError("ClusterNotFoundException")) == ""


def test_no_module_matches_aws_error_text():
    import re
    from pathlib import Path

    import spotops

    text_match = re.compile(r'"[A-Za-z ]+" in (str\(exc\)|message)')
    offenders = [
        path.name
        for path in Path(spotops.__file__).parent.rglob("*.py")
        if text_match.search(path.read_text())
    ]
    assert offenders == []
