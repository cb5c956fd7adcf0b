"""The push-to-redeploy path over HTTP against the moto server on 127.0.0.1.

Checks what in-process moto cannot: the clients honour ``AWS_ENDPOINT_URL`` and the whole
flow works through real (loopback) HTTP requests.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from chalicelib.aws import AwsClients
from chalicelib.events import EcrImageActionEvent
from chalicelib.redeploy.flow import handle_push
from chalicelib.toolkit import build_toolkit, load_toolkit_settings
from tests.support.events import load_event
from tests.support.ops_world import FakeLambdaContext, build_world, settings_env
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator


def test_push_redeploys_through_the_emulator(emulator: str, slack: SlackStub) -> None:
    world = build_world(webhook_url=slack.url)
    world.clients = AwsClients(max_attempts=1)  # fresh clients: they read AWS_ENDPOINT_URL
    assert urlparse(world.clients.ecs.meta.endpoint_url).netloc == urlparse(emulator).netloc

    env = settings_env(world)
    kit = build_toolkit(load_toolkit_settings(env), AwsClients(max_attempts=1)).with_context(
        FakeLambdaContext()
    )
    digest = world.push_image("v1.2.3")
    event = world.push_event(load_event("ecrImageActionPush"), digest, "v1.2.3")

    result = handle_push(EcrImageActionEvent(event), kit)

    assert result["status"] == "deploying"
    assert world.site_image() == f"{world.repository_uri}@{digest}"
    assert handle_push(EcrImageActionEvent(event), kit)["status"] == "duplicate"
    assert len(slack.bodies) == 1
