"""``spotops dead-letters``: listing, the runbook's replay rules, replay against moto's SQS
and a local Slack stub (a message goes only once delivered), purge after confirmation."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from spotops.cli.main import cli
from spotops.factory import CLIFactory
from spotops.ops import dead_letters as dl
from spotops.stage.config import STACKS, load_stage_config
from spotops.stage.stacks import StackInfo
from spotops.target import AWS
from tests.support.slack_stub import SlackStub

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION = "spotops-dev-redeploy_on_push"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
NEW, OLD = "sha256:" + "b" * 64, "sha256:" + "a" * 64


def slack_body(text: str = "Deploying v1.2.3", reason: str = "HTTP 503") -> str:
    return json.dumps(
        {"job": "redeploy", "reason": reason, "attempts": 4, "message": {"text": text}}
    )


def push_event(digest: str = NEW, tag: str = "v1.2.3") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "time": "2026-12-01T10:02:03Z",
        "detail": {
            "action-type": "PUSH",
            "result": "SUCCESS",
            "repository-name": "spotops-dev-site",
            "image-digest": digest,
            "image-tag": tag,
        },
    }


def on_failure_record(event: dict[str, Any], function_arn: str = FUNCTION_ARN) -> str:
    return json.dumps(
        {
            "requestContext": {
                "requestId": "r-1",
                "functionArn": f"{function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responsePayload": {"errorType": "LedgerError", "errorMessage": "put_item failed"},
        }
    )


def letter(kind: str, payload: dict[str, Any], function: str = FUNCTION) -> dl.DeadLetter:
    return dl.DeadLetter("events", "m", "r", kind, function, None, "s", payload)


# ---- the pure parts --------------------------------------------------------------------


def test_every_shape_the_runbook_describes_is_read_with_kind_function_and_reason():
    sent = int(datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
    slack = dl.parse_letter(
        "slack", {"MessageId": "1", "Body": slack_body(), "Attributes": {"SentTimestamp": sent}}
    )
    record = dl.parse_letter("events", {"MessageId": "2", "Body": on_failure_record(push_event())})
    bridge = dl.parse_letter(
        "events",
        {
            "MessageId": "3",
            "Body": json.dumps({"detail-type": "Scheduled Event", "time": "t"}),
            "MessageAttributes": {
                "TARGET_ARN": {"StringValue": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x-rec"},
                "ERROR_CODE": {"StringValue": "NO_PERMISSIONS"},
            },
        },
    )
    garbage = dl.parse_letter("events", {"MessageId": "4", "Body": "not json"})

    assert (slack.kind, slack.function, slack.payload) == (
        "slack",
        "redeploy",
        {"text": "Deploying v1.2.3"},
    )
    assert slack.summary == "redeploy | 4 attempts | Deploying v1.2.3 | HTTP 503"
    assert slack.age(datetime(2026, 12, 1, 12, 5, tzinfo=UTC)) == "2h05m"
    assert (record.kind, record.function) == ("push", FUNCTION)
    assert record.payload == push_event()
    assert "RetriesExhausted LedgerError: put_item failed" in record.summary
    assert (bridge.kind, bridge.function) == ("schedule", "x-rec")
    assert "NO_PERMISSIONS" in bridge.summary
    assert garbage.kind == "other"


def test_a_summary_is_one_line_cut_at_its_width_and_keeps_the_message_start():
    long = dl.parse_letter("slack", {"Body": slack_body(text="x\n" * 200, reason="r" * 300)})
    assert "\n" not in long.summary
    assert len(long.summary) == dl.SUMMARY_WIDTH
    job, attempts, text, reason = long.summary.split(" | ")
    assert (job, attempts) == ("redeploy", "4 attempts")
    assert len(text) == dl.SLACK_TEXT_WIDTH
    assert text.endswith("…")
    assert reason.startswith("rrr")


def test_only_slack_messages_are_replayed_without_facts():
    assert dl.decide_replay(letter("slack", {"text": "hi"}), None).replay
    assert not dl.decide_replay(letter("slack", {}), None).replay
    scheduled = dl.decide_replay(letter("schedule", {"detail-type": "Scheduled Event"}), None)
    assert not scheduled.replay
    assert "15 minutes" in scheduled.reason
    other = dl.decide_replay(letter("other", {}), None)
    assert not other.replay
    assert "ops-dead-letters.md" in other.reason


FACTS = dl.ServiceFacts(newest_digest=NEW, running_digest=OLD, primary_deployment="ecs-svc/2")


@pytest.mark.parametrize(
    ("digest", "facts", "replay", "says"),
    [
        (NEW, FACTS, True, "newest image"),
        (OLD, FACTS, False, "older image"),
        (NEW, dl.ServiceFacts(NEW, NEW, "ecs-svc/2"), False, "already runs"),
        (NEW, None, False, "not deployed"),
    ],
)
def test_a_push_is_replayed_only_if_newest_and_not_running(digest, facts, replay, says):
    decision = dl.decide_replay(letter("push", push_event(digest)), facts)
    assert decision.replay is replay
    assert says in decision.reason


@pytest.mark.parametrize(
    ("deployment", "in_progress", "replay"),
    [
        ("ecs-svc/2", {"ecs-svc/2"}, True),
        ("ecs-svc/1", set(), False),
        ("ecs-svc/2", {"ecs-svc/3"}, False),
    ],
)
def test_an_outcome_is_replayed_only_for_the_primary_deployment_alone(
    deployment, in_progress, replay
):
    facts = dl.ServiceFacts(NEW, OLD, "ecs-svc/2", frozenset(in_progress))
    event = {"detail-type": "ECS Deployment State Change", "detail": {"deploymentId": deployment}}
    assert dl.decide_replay(letter("outcome", event), facts).replay is replay


def test_the_newest_image_is_the_newest_whose_tag_matches_the_pattern():
    images = [
        {"imageDigest": OLD, "imageTags": ["v1.0.0"], "imagePushedAt": datetime(2026, 1, 1)},
        {"imageDigest": NEW, "imageTags": ["scratch"], "imagePushedAt": datetime(2026, 2, 1)},
        {"imageDigest": "sha256:c", "imagePushedAt": datetime(2026, 3, 1)},  # untagged
    ]
    assert dl.newest_matching(images, r"^v\d+\.\d+\.\d+$") == OLD
    assert dl.newest_matching(images, None) == NEW
    assert dl.newest_matching([], None) is None


# ---- against moto's SQS and the Slack stub ----------------------------------------------


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        sqs = boto3.client("sqs", region_name=REGION)
        yield {
            "sqs": sqs,
            "slack": sqs.create_queue(QueueName="spotops-dev-slack-dlq")["QueueUrl"],
            "events": sqs.create_queue(QueueName="spotops-dev-events-dlq")["QueueUrl"],
        }


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    stub = SlackStub()
    yield stub
    stub.close()


def waiting(aws: dict[str, Any], queue: str) -> int:
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=aws[queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_reading_all_messages_and_releasing_them_leaves_every_one_visible(aws):
    for n in range(12):  # more than one receive call's 10
        aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body(text=f"m{n}"))
    queues = dl.DeadLetterQueues(aws["sqs"])

    letters = queues.read("slack", aws["slack"])
    queues.release(aws["slack"], letters)

    assert sorted(x.payload["text"] for x in letters) == sorted(f"m{n}" for n in range(12))
    assert queues.count(aws["slack"]) == 12


def test_a_slack_replay_deletes_only_what_slack_took_and_keeps_what_it_refused(aws, slack):
    for text in ("first", "second"):
        aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body(text=text))
    queues = dl.DeadLetterQueues(aws["sqs"])
    letters = queues.read("slack", aws["slack"], hide_seconds=600)
    slack.script.extend(["200", "500"])

    outcomes = dl.replay(
        queues,
        aws["slack"],
        letters,
        facts=lambda _: None,
        deliver=lambda x: dl.post_to_slack(slack.url, x.payload),
    )

    assert [o.deleted for o in outcomes] == [True, False]
    assert outcomes[1].delivery is not None
    assert "HTTP 500" in outcomes[1].delivery.detail
    assert slack.texts() == ["first", "second"]
    kept = queues.read("slack", aws["slack"])  # visible at once, not after 600 s
    assert [x.payload["text"] for x in kept] == ["second"]


def test_a_slack_replay_with_no_webhook_fails_and_keeps_the_message(aws):
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())
    queues = dl.DeadLetterQueues(aws["sqs"])
    letters = queues.read("slack", aws["slack"])

    (outcome,) = dl.replay(
        queues,
        aws["slack"],
        letters,
        facts=lambda _: None,
        deliver=lambda x: dl.post_to_slack("", x.payload),
    )

    assert not outcome.deleted
    assert outcome.delivery is not None
    assert "unset" in outcome.delivery.detail
    assert waiting(aws, "slack") == 1


class RecordingLambda:
    """moto's Lambda client, keeping what was invoked (moto answers without running it).

    moto accepts an asynchronous invocation of a function that does not exist (202); AWS
    answers 404 ResourceNotFoundException, which this raises as AWS would.
    """

    def __init__(self) -> None:
        self.client = boto3.client("lambda", region_name=REGION)
        self.invoked: list[tuple[str, str, dict[str, Any]]] = []

    def invoke(self, **kwargs: Any) -> Any:
        self.invoked.append(
            (kwargs["FunctionName"], kwargs["InvocationType"], json.loads(kwargs["Payload"]))
        )
        self.client.get_function(FunctionName=kwargs["FunctionName"])  # 404 when missing
        return self.client.invoke(**kwargs)


def make_function(name: str) -> None:
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
    )


def test_an_event_replay_reinvokes_its_function_and_a_refused_one_is_kept(aws):
    make_function(FUNCTION)
    aws["sqs"].send_message(QueueUrl=aws["events"], MessageBody=on_failure_record(push_event()))
    missing = FUNCTION_ARN.replace("redeploy_on_push", "gone")
    aws["sqs"].send_message(
        QueueUrl=aws["events"], MessageBody=on_failure_record(push_event(), missing)
    )
    queues = dl.DeadLetterQueues(aws["sqs"])
    lambda_client = RecordingLambda()
    letters = queues.read("events", aws["events"], hide_seconds=600)

    outcomes = dl.replay(
        queues,
        aws["events"],
        letters,
        facts=lambda _: FACTS,
        deliver=lambda x: dl.invoke_async(lambda_client, x.function, x.payload),
    )

    assert {o.letter.function: o.deleted for o in outcomes} == {
        FUNCTION: True,
        "spotops-dev-gone": False,
    }
    assert (FUNCTION, "Event", push_event()) in lambda_client.invoked
    gone = next(o for o in outcomes if o.letter.function == "spotops-dev-gone")
    assert gone.delivery is not None
    assert "ResourceNotFoundException" in gone.delivery.detail
    assert [x.function for x in queues.read("events", aws["events"])] == ["spotops-dev-gone"]


def test_an_event_the_rules_hold_is_neither_invoked_nor_deleted(aws):
    aws["sqs"].send_message(QueueUrl=aws["events"], MessageBody=on_failure_record(push_event(OLD)))
    queues = dl.DeadLetterQueues(aws["sqs"])
    invoked: list[dl.DeadLetter] = []

    (outcome,) = dl.replay(
        queues,
        aws["events"],
        queues.read("events", aws["events"], hide_seconds=600),
        facts=lambda _: FACTS,
        deliver=lambda x: invoked.append(x) or dl.Delivery(True, ""),  # type: ignore[func-returns-value]
    )

    assert invoked == []
    assert outcome.delivery is None
    assert waiting(aws, "events") == 1


# ---- through the command line ----------------------------------------------------------


@pytest.fixture
def factory(tmp_path: Path, aws: dict[str, Any]) -> mock.Mock:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dev.json").write_text(json.dumps({"parameters": {}}))
    fake = mock.Mock(spec=CLIFactory)
    fake.project_dir = tmp_path
    fake.load_config.side_effect = lambda stage: load_stage_config(tmp_path, stage)
    fake.stack_specs.return_value = STACKS
    session = mock.Mock(region=REGION, target=AWS)
    session.client.side_effect = lambda name: (
        aws["sqs"] if name == "sqs" else boto3.client(name, region_name=REGION)
    )
    fake.aws.return_value = session
    ops = StackInfo(
        "spotops-dev-ops",
        "CREATE_COMPLETE",
        {"SlackDeadLetterQueueUrl": aws["slack"], "EventsDeadLetterQueueUrl": aws["events"]},
        {},
    )
    fake.deployer.return_value.describe.side_effect = lambda name: (
        ops if name.endswith("-ops") else None
    )
    return fake


def run(factory: mock.Mock, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["dead-letters", *args], obj=factory, input=input)


def test_list_shows_count_age_kind_and_summary_and_removes_nothing(factory, aws):
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())
    aws["sqs"].send_message(QueueUrl=aws["events"], MessageBody=on_failure_record(push_event()))

    result = run(factory, "list", "--stage", "dev")

    assert result.exit_code == 0, result.output
    assert "slack: 1 waiting" in result.output
    assert "events: 1 waiting" in result.output
    assert "0m  slack    redeploy | 4 attempts | Deploying v1.2.3 | HTTP 503" in result.output
    assert f"push     {FUNCTION} | ECR Image Action" in result.output
    assert waiting(aws, "slack") == 1
    assert waiting(aws, "events") == 1
    assert dl.DeadLetterQueues(aws["sqs"]).count(aws["slack"]) == 1  # visible again


def test_list_json_is_one_object_per_message_for_keeping_a_copy(factory, aws):
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())
    result = run(factory, "list", "--queue", "SLACK", "--json")
    (line,) = result.output.splitlines()
    assert json.loads(line)["payload"] == {"text": "Deploying v1.2.3"}


def test_replay_through_the_stage_webhook_deletes_the_delivered_message(factory, aws, slack):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(
        Name="spotops/dev/slack-webhook", SecretString=json.dumps({"url": slack.url})
    )
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())

    result = run(factory, "replay", "--queue", "slack", "--yes")

    assert result.exit_code == 0, result.output
    assert "replayed and deleted: Slack answered 200" in result.output
    assert slack.texts() == ["Deploying v1.2.3"]
    assert waiting(aws, "slack") == 0


def test_a_failed_replay_exits_1_and_keeps_the_message(factory, aws, slack):
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(
        Name="spotops/dev/slack-webhook", SecretString=json.dumps({"url": slack.url})
    )
    slack.default = "500"
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())

    result = run(factory, "replay", "--queue", "slack", "--yes")

    assert result.exit_code == 1
    assert "replay FAILED, kept: Slack answered HTTP 500" in result.output
    assert "1 replay(s) failed" in result.output
    assert waiting(aws, "slack") == 1


def test_replay_declined_changes_nothing(factory, aws, slack):
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())
    result = run(factory, "replay", input="n\n")
    assert result.exit_code == 0
    assert "Nothing changed" in result.output
    assert slack.bodies == []
    assert waiting(aws, "slack") == 1


def test_purge_asks_first_and_a_no_keeps_every_message(factory, aws):
    aws["sqs"].send_message(QueueUrl=aws["events"], MessageBody=on_failure_record(push_event()))

    declined = run(factory, "purge", "--queue", "events", input="n\n")
    assert declined.exit_code == 0
    assert "Delete all 1 message(s)" in declined.output
    assert waiting(aws, "events") == 1

    done = run(factory, "purge", "--queue", "events", "--yes")
    assert done.exit_code == 0
    assert "Purged the events dead-letter queue (1 message(s))" in done.output
    assert waiting(aws, "events") == 0


def test_purge_without_a_queue_is_refused_with_exit_2(factory, aws):
    aws["sqs"].send_message(QueueUrl=aws["slack"], MessageBody=slack_body())
    result = run(factory, "purge", "--yes")
    assert result.exit_code == 2
    assert "--queue" in result.output
    assert waiting(aws, "slack") == 1


def test_error_if_the_ops_stack_is_not_deployed(factory):
    factory.deployer.return_value.describe.side_effect = lambda name: None
    result = run(factory, "list")
    assert result.exit_code == 1
    assert "no ops stack" in result.output
    assert "spotops deploy --stage dev" in result.output


def test_age_is_shown_in_days_for_old_messages():
    sent = datetime(2026, 12, 1, tzinfo=UTC)
    aged = dl.DeadLetter("slack", "m", "r", "slack", "", sent, "s")
    assert aged.age(sent + timedelta(days=3, hours=4)) == "3d04h"
    assert aged.age(sent + timedelta(minutes=59)) == "59m"
