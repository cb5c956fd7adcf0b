"""Fixtures for the ops functional tests: moto in-process and a Slack stub on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from moto import mock_aws

from chalicelib import toolkit as toolkit_module
from chalicelib.observability import logger as ops_logger
from chalicelib.observability import metrics
from chalicelib.toolkit import Toolkit
from tests.support.ops_world import LogLines, World, build_world, make_kit
from tests.support.slack_stub import SlackStub


@pytest.fixture(autouse=True)
def _clean_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "spotops-test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    toolkit_module.reset_toolkit()
    yield
    metrics.clear_metrics()
    toolkit_module.reset_toolkit()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def world(aws: None, slack: SlackStub) -> World:
    return build_world(webhook_url=slack.url)


@pytest.fixture
def kit(world: World) -> Toolkit:
    return make_kit(world)


@pytest.fixture
def logs() -> Iterator[LogLines]:
    handler = LogLines()
    stdlib_logger = logging.getLogger(ops_logger.name)
    stdlib_logger.addHandler(handler)
    try:
        yield handler
    finally:
        stdlib_logger.removeHandler(handler)
