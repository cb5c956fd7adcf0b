"""Fixtures every layer shares: fake AWS credentials and the moto server on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.net import LOOPBACK, free_port
from tests.support.slack_stub import SlackStub

# Fake credentials only: no test may ever reach a real AWS account.
_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def pytest_configure(config: pytest.Config) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.update(_FAKE_AWS_ENV)
    # Every AWS call a test makes goes to moto, which enforces none of AWS's limits; the
    # strict layer refuses what AWS would, so a breach fails a test although moto accepts it.
    from spotops.local.limits import install_everywhere

    install_everywhere()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start the moto server once per session on a free 127.0.0.1 port; yield its URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.stop()


@pytest.fixture
def emulator(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto server, reset to empty, with AWS_ENDPOINT_URL pointing at it for this test."""
    import urllib.request

    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    """A Slack webhook stand-in on 127.0.0.1; ``slack.url`` is its (fake) webhook URL."""
    stub = SlackStub()
    try:
        yield stub
    finally:
        stub.close()
