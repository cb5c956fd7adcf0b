"""``spotops dead-letters``: what waits in the ops stack's two dead-letter queues, replaying
what is safe to replay, and purging.

The rules are those of ``runbooks/ops-dead-letters.md`` (Mitigation, step 3):

- a Slack message is re-posted as it was, through the stage's webhook;
- ``reconcile_images`` and other scheduled runs are never replayed: the next run is at most
  15 minutes away;
- a push (``ECR Image Action``) is replayed only when its image is still the newest one
  matching the function's ``TAG_PATTERN`` and the service does not run it yet: replaying an
  older push would deploy an older image;
- a deployment outcome (``ECS Deployment State Change``) is replayed only when its deployment
  is the service's primary one and no other is in progress: a replay releases the redeploy
  lock;
- anything else is kept for a person to read.

A message is deleted only after its replay was delivered (Slack answered 200, Lambda
accepted the asynchronous invocation with 202); a message not replayed, or whose replay
failed, is made visible again at once and stays.

The decisions (:func:`parse_letter`, :func:`decide_replay`, :func:`newest_matching`) are pure
functions over facts; :class:`DeadLetterQueues`, :func:`post_to_slack`, :func:`invoke_async`
and :func:`read_service_facts` are the edges that talk to AWS and Slack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from spotops.errors import NotDeployedError, UsageError, is_error

# The queue names the command takes, and the ops stack output holding each queue's URL.
QUEUE_OUTPUTS = {
    "slack": "SlackDeadLetterQueueUrl",
    "events": "EventsDeadLetterQueueUrl",
}
SLACK, PUSH, OUTCOME, SCHEDULE, OTHER = "slack", "push", "outcome", "schedule", "other"
# EventBridge's detail-type of each event kind the ops functions handle.
KIND_OF_DETAIL_TYPE = {
    "ECR Image Action": PUSH,
    "ECS Deployment State Change": OUTCOME,
    "Scheduled Event": SCHEDULE,
}
# How long a message read by `list` or `replay` stays hidden from anyone else. `list` makes
# what it read visible again before it ends; this only bounds a crash in between.
READ_VISIBILITY_SECONDS = 60
SUMMARY_WIDTH = 160
SLACK_TEXT_WIDTH = 60
RUNBOOK = "runbooks/ops-dead-letters.md"


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter queue, read into what a person and the rules need."""

    queue: str  # "slack" or "events"
    message_id: str
    receipt: str
    kind: str  # SLACK, PUSH, OUTCOME, SCHEDULE or OTHER
    function: str  # the function the event was for ("" for Slack); for Slack: the job
    sent_at: datetime | None
    summary: str
    # What a replay sends: the Slack message ({"text", "blocks"}) or the original event.
    payload: Mapping[str, Any] = field(default_factory=dict)
    receive_count: int = 0

    def age(self, now: datetime) -> str:
        if self.sent_at is None:
            return "?"
        seconds = max(0, int((now - self.sent_at).total_seconds()))
        if seconds < 3600:
            return f"{seconds // 60}m"
        if seconds < 86400:
            return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


@dataclass(frozen=True)
class ServiceFacts:
    """What the replay rules for pushes and outcomes look at."""

    newest_digest: str | None  # of the newest image matching TAG_PATTERN in the pushed repo
    running_digest: str | None  # of the image the service's task definition pins
    primary_deployment: str | None
    deployments_in_progress: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    replay: bool
    reason: str


def _cut(text: str, width: int = SUMMARY_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _function_name(arn: str) -> str:
    """``arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`` -> ``<name>``."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else (parts[-1] if arn else "")


def parse_letter(queue: str, message: Mapping[str, Any]) -> DeadLetter:
    """A raw SQS message (``receive_message``'s shape) of the ``queue`` named.

    Every shape ``ops-dead-letters.md`` describes is understood: the Slack queue's
    ``{"job", "reason", "attempts", "message"}``, a Lambda on-failure record
    (``requestContext``, ``requestPayload``, ``responsePayload``) and an EventBridge dead
    letter (the event itself, with ``TARGET_ARN`` and ``ERROR_CODE`` attributes). A body
    that is none of these is kept as ``other``, never guessed at.
    """
    attributes = message.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    sent_at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None
    message_id = str(message.get("MessageId", ""))
    receipt = str(message.get("ReceiptHandle", ""))
    receive_count = int(attributes.get("ApproximateReceiveCount", 0) or 0)

    def letter(
        kind: str, function: str, summary: str, payload: Mapping[str, Any] | None = None
    ) -> DeadLetter:
        return DeadLetter(
            queue,
            message_id,
            receipt,
            kind,
            function,
            sent_at,
            _cut(summary),
            dict(payload or {}),
            receive_count,
        )

    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return letter(OTHER, "", f"unreadable body: {message.get('Body')!r}")
    if queue == SLACK and isinstance(body.get("message"), dict):
        slack_message = body["message"]
        # The message's start tells messages apart; the reason, often the same for all, last.
        summary = (
            f"{body.get('job', '?')} | {body.get('attempts', '?')} attempts | "
            f"{_cut(str(slack_message.get('text', '')), SLACK_TEXT_WIDTH)} | "
            f"{body.get('reason', '?')}"
        )
        return letter(SLACK, str(body.get("job", "")), summary, slack_message)
    attrs = {
        k: str(v.get("StringValue", ""))
        for k, v in (message.get("MessageAttributes") or {}).items()
    }
    if isinstance(body.get("requestContext"), dict):  # a Lambda on-failure record
        context = body["requestContext"]
        error = body.get("responsePayload") or {}
        event = body.get("requestPayload") or {}
        function = _function_name(str(context.get("functionArn", "")))
        why = f"{context.get('condition', '?')} {error.get('errorType', '')}: " + str(
            error.get("errorMessage", "")
        )
    else:  # an EventBridge dead letter: the body is the event
        event = body
        function = _function_name(attrs.get("TARGET_ARN", ""))
        why = f"{attrs.get('ERROR_CODE', '?')}: {attrs.get('ERROR_MESSAGE', '')}"
    event = event if isinstance(event, dict) else {}
    detail_type = str(event.get("detail-type", ""))
    kind = KIND_OF_DETAIL_TYPE.get(detail_type, OTHER)
    summary = f"{function or '?'} | {detail_type or '?'} {event.get('time', '')} | {why}"
    return letter(kind, function, summary, event)


def _digest(image_or_digest: str | None) -> str | None:
    if not image_or_digest:
        return None
    return image_or_digest.rsplit("@", 1)[-1] if "@" in image_or_digest else None


def newest_matching(images: Iterable[Mapping[str, Any]], tag_pattern: str | None) -> str | None:
    """The digest of the most recently pushed image with a tag matching ``tag_pattern`` (every
    tagged image when there is no pattern): what the reconcile run would deploy."""
    pattern = re.compile(tag_pattern) if tag_pattern else None
    candidates = [
        image
        for image in images
        if any(pattern is None or pattern.search(tag) for tag in image.get("imageTags") or [])
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda image: image.get("imagePushedAt") or 0)
    return str(newest.get("imageDigest")) if newest.get("imageDigest") else None


def decide_replay(letter: DeadLetter, facts: ServiceFacts | None) -> Decision:
    """Whether ``letter`` may be replayed, and why (the runbook's rules, in one place)."""
    if letter.kind == SLACK:
        if not letter.payload.get("text") and not letter.payload.get("blocks"):
            return Decision(False, "the message has no text and no blocks: nothing to re-post")
        return Decision(True, "a Slack message is re-posted as it was")
    if letter.kind == SCHEDULE:
        return Decision(
            False, "a scheduled run is not replayed: the next one is at most 15 minutes away"
        )
    if letter.kind == OTHER or not letter.function:
        return Decision(
            False, f"no replay rule for this message in {RUNBOOK}: read it and decide by hand"
        )
    detail = letter.payload.get("detail") or {}
    if facts is None:
        return Decision(False, "the site stack is not deployed: cannot check the service")
    if letter.kind == PUSH:
        digest = str(detail.get("image-digest", ""))
        if not digest:
            return Decision(False, "the push event names no image digest")
        if digest != facts.newest_digest:
            return Decision(
                False,
                f"image {digest[:19]} is no longer the newest matching TAG_PATTERN "
                f"(newest: {(facts.newest_digest or 'none')[:19]}): replaying it would deploy "
                "an older image",
            )
        if digest == facts.running_digest:
            return Decision(False, f"the service already runs {digest[:19]}")
        return Decision(True, f"{digest[:19]} is the newest image and the service does not run it")
    # OUTCOME
    deployment = str(detail.get("deploymentId", ""))
    if not deployment or deployment != facts.primary_deployment:
        return Decision(
            False,
            f"deployment {deployment or '?'} is not the service's primary one "
            f"({facts.primary_deployment or 'none'}): read it; the redeploy lock expires after 1 h",
        )
    others = sorted(facts.deployments_in_progress - {deployment})
    if others:
        return Decision(False, f"another deployment is in progress ({', '.join(others)})")
    return Decision(True, f"deployment {deployment} is the service's latest and none other runs")


# ---- the edges -------------------------------------------------------------------------


def queue_urls(outputs: Mapping[str, str], queue: str | None, stage: str) -> dict[str, str]:
    """``{"slack": url, "events": url}`` (or the one ``queue`` asked for) from the ops stack's
    outputs."""
    names = [queue] if queue else list(QUEUE_OUTPUTS)
    for name in names:
        if name not in QUEUE_OUTPUTS:
            raise UsageError(f"Unknown queue {name!r}: use {' or '.join(QUEUE_OUTPUTS)}.")
    urls = {name: outputs.get(QUEUE_OUTPUTS[name], "") for name in names}
    missing = [QUEUE_OUTPUTS[n] for n, url in urls.items() if not url]
    if missing:
        raise NotDeployedError(
            f"The ops stack of stage {stage} has no output {', '.join(missing)}: deploy it with "
            f"`spotops deploy --stage {stage}`."
        )
    return urls


class DeadLetterQueues:
    """The two queues through boto3's SQS client."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def count(self, url: str) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def read(
        self, queue: str, url: str, *, hide_seconds: int = READ_VISIBILITY_SECONDS
    ) -> list[DeadLetter]:
        """Every visible message, each hidden for ``hide_seconds`` until :meth:`release` or
        :meth:`delete` (SQS hands out at most 10 per call)."""
        letters: dict[str, DeadLetter] = {}
        while True:
            page = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hide_seconds,
                WaitTimeSeconds=0,
                AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            messages = page.get("Messages", [])
            fresh = [m for m in messages if m.get("MessageId") not in letters]
            if not fresh:
                return sorted(
                    letters.values(),
                    key=lambda letter: letter.sent_at or datetime.min.replace(tzinfo=UTC),
                )
            for message in fresh:
                letter = parse_letter(queue, message)
                letters[letter.message_id] = letter

    def release(self, url: str, letters: Iterable[DeadLetter]) -> None:
        """Make messages read by :meth:`read` visible again at once: they stay."""
        for letter in letters:
            self._sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=letter.receipt, VisibilityTimeout=0
            )

    def delete(self, url: str, letter: DeadLetter) -> None:
        self._sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt)

    def purge(self, url: str) -> None:
        try:
            self._sqs.purge_queue(QueueUrl=url)
        except ClientError as exc:
            if is_error(exc, "AWS.SimpleQueueService.PurgeQueueInProgress", "PurgeQueueInProgress"):
                raise UsageError(
                    "SQS allows one purge per queue every 60 seconds: this queue was purged "
                    "less than a minute ago. Try again in a minute."
                ) from exc
            raise


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    detail: str


def post_to_slack(url: str, message: Mapping[str, Any], *, timeout: int = 10) -> Delivery:
    """Re-post a Slack message (``text`` and ``blocks``) to the webhook, as the functions post
    (slack_sdk). The URL is a secret: it never appears in the result."""
    from slack_sdk.webhook import WebhookClient

    if not url:
        return Delivery(
            False,
            "the Slack webhook is unset: set it first (runbooks/slack-webhook-missing.md)",
        )
    try:
        response = WebhookClient(url, timeout=timeout).send_dict(dict(message))
    except OSError as exc:
        return Delivery(False, f"Slack did not answer: {exc.__class__.__name__}")
    if response.status_code == 200:
        return Delivery(True, "Slack answered 200")
    return Delivery(
        False, f"Slack answered HTTP {response.status_code} {_cut(str(response.body), 80)}"
    )


def invoke_async(lambda_client: Any, function: str, event: Mapping[str, Any]) -> Delivery:
    """Invoke ``function`` with ``event`` asynchronously, as EventBridge does: a failure is
    retried by Lambda and comes back to the events queue as a new message."""
    try:
        answer = lambda_client.invoke(
            FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        return Delivery(False, f"Lambda refused the invocation: {code}")
    status = int(answer.get("StatusCode", 0))
    if status == 202:
        return Delivery(True, "Lambda accepted the invocation (202)")
    return Delivery(False, f"Lambda answered {status}")


def read_service_facts(
    ecs: Any,
    ecr: Any,
    lambda_client: Any,
    *,
    cluster: str,
    service: str,
    repository: str,
    function: str,
) -> ServiceFacts:
    """The facts :func:`decide_replay` needs for a push or an outcome of ``function``."""
    from spotops.stage.images import describe_service, image_of_service

    try:
        environment = lambda_client.get_function_configuration(FunctionName=function)
        tag_pattern = (environment.get("Environment") or {}).get("Variables", {}).get("TAG_PATTERN")
    except ClientError:
        tag_pattern = None
    images: list[Mapping[str, Any]] = []
    if repository:
        kwargs: dict[str, Any] = {"repositoryName": repository}
        try:
            while True:
                page = ecr.describe_images(**kwargs)
                images.extend(page.get("imageDetails", []))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if not is_error(exc, "RepositoryNotFoundException"):
                raise
    described = describe_service(ecs, cluster, service) or {}
    deployments = described.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    return ServiceFacts(
        newest_digest=newest_matching(images, tag_pattern),
        running_digest=_digest(image_of_service(ecs, described) if described else None),
        primary_deployment=str(primary["id"]) if primary else None,
        deployments_in_progress=frozenset(
            str(d["id"]) for d in deployments if d.get("rolloutState") == "IN_PROGRESS"
        ),
    )


@dataclass
class ReplayOutcome:
    letter: DeadLetter
    decision: Decision
    delivery: Delivery | None = None

    @property
    def deleted(self) -> bool:
        return self.delivery is not None and self.delivery.delivered


def replay(
    queues: DeadLetterQueues,
    url: str,
    letters: Iterable[DeadLetter],
    *,
    facts: Callable[[DeadLetter], ServiceFacts | None],
    deliver: Callable[[DeadLetter], Delivery],
) -> list[ReplayOutcome]:
    """Replay what the rules allow; delete a message only once its replay was delivered, and
    make every other one visible again."""
    outcomes = []
    for letter in letters:
        needs_facts = letter.kind in (PUSH, OUTCOME)
        decision = decide_replay(letter, facts(letter) if needs_facts else None)
        outcome = ReplayOutcome(letter, decision)
        if decision.replay:
            outcome.delivery = deliver(letter)
        if outcome.deleted:
            queues.delete(url, letter)
        else:
            queues.release(url, [letter])
        outcomes.append(outcome)
    return outcomes
