"""End to end: a Slack message the shipped redeploy function could not deliver (no webhook
yet) is found by ``spotops status`` and ``spotops dead-letters list``, and once the webhook
is set, ``dead-letters replay`` posts it and only then deletes it; the queue ends empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ops_stage import STAGE, Stage, deployed_stage, spotops
from tests.support.slack_stub import SlackStub

pytestmark = pytest.mark.emulator


def waiting(stage: Stage) -> tuple[int, int]:
    """(visible, hidden) messages of the Slack queue, read without receiving any."""
    attributes = stage.client("sqs").get_queue_attributes(
        QueueUrl=stage.ops["SlackDeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


@pytest.fixture
def stage(emulator: str, tmp_path: Path) -> Stage:
    return deployed_stage(emulator, tmp_path)


def test_a_dead_lettered_deploy_message_is_listed_then_replayed_once_the_webhook_is_set(
    stage: Stage, slack: SlackStub
) -> None:
    digest = stage.push_image("v1.0.0")
    ran = stage.run("redeploy_on_push", stage.push_event(digest, "v1.0.0"))
    assert ran["result"]["status"] == "deploying", ran["logs"]

    status = spotops(stage.project, stage.emulator, "status", "--stage", STAGE)
    assert status.returncode == 0, status.stderr[-2000:]
    assert "slack webhook: NOT SET" in status.stdout
    assert "dead letters (Slack messages): 1" in status.stdout

    listed = spotops(stage.project, stage.emulator, "dead-letters", "list", "--stage", STAGE)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "slack: 1 waiting" in listed.stdout
    assert "slack    redeploy | 0 attempts | " in listed.stdout  # no request was made
    assert ":rocket: deploying v1.0.0" in listed.stdout
    assert "events: 0 waiting" in listed.stdout

    # Without a webhook the replay fails and keeps the message.
    failed = spotops(stage.project, stage.emulator, "dead-letters", "replay", "--yes")
    assert failed.returncode == 1
    assert "replay FAILED, kept: the Slack webhook is unset" in failed.stdout
    assert waiting(stage) == (1, 0)  # kept, and visible again at once

    set_hook = spotops(stage.project, stage.emulator, "slack-webhook", "set", stdin=slack.url)
    assert set_hook.returncode == 0, set_hook.stderr
    replayed = spotops(stage.project, stage.emulator, "dead-letters", "replay", "--yes")

    assert replayed.returncode == 0, replayed.stdout + replayed.stderr[-2000:]
    assert "replayed and deleted: Slack answered 200" in replayed.stdout
    assert slack.texts()[-1].startswith(":rocket: deploying v1.0.0")
    assert waiting(stage) == (0, 0)
    after = spotops(stage.project, stage.emulator, "status", "--stage", STAGE)
    assert "slack webhook: set" in after.stdout
