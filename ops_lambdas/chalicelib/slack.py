"""Slack messages (Block Kit with a plain-text fallback) and their delivery.

Delivery POSTs to the incoming-webhook URL with a small bounded loop:

* 200: delivered.
* 429: wait ``Retry-After`` seconds (or the backoff when absent), then retry.
* 5xx, timeouts, connection errors: exponential backoff with jitter, then retry.
* any other 4xx (``invalid_payload``, ``channel_not_found``...): no retry, it will not heal.
* at most ``max_attempts`` attempts and ``max_total_seconds`` in all (a wait that would end
  past the budget is not started).

A message that still is not delivered goes to the SQS dead-letter queue with the reason, so
nothing is dropped silently. The webhook URL is a secret: it never appears in a log line, a
reason or the dead-letter body.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from chalicelib.errors import ControlsError
from chalicelib.observability import count, logger

SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
CONTEXT_TEXT_LIMIT = 3000
MAX_BLOCKS = 50
FALLBACK_TEXT_LIMIT = 3000
_ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _chunks(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` chars, preferring line breaks."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        split = rest.rfind("\n", 0, limit)
        if split <= 0:
            split = limit
        pieces.append(rest[:split])
        rest = rest[split:].lstrip("\n")
    if rest:
        pieces.append(rest)
    return pieces


@dataclass(frozen=True)
class SlackMessage:
    """A webhook payload: Block Kit ``blocks`` and the plain-text ``text`` fallback."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The JSON body for the webhook."""
        return {"text": self.text, "blocks": self.blocks}


def build_message(
    title: str,
    body: str,
    *,
    facts: Sequence[tuple[str, str]] = (),
    runbook: str | None = None,
    footer: str | None = None,
) -> SlackMessage:
    """Build a Block Kit message cut to Slack's limits.

    Parameters
    ----------
    title:
        Header (plain text, cut to 150 chars).
    body:
        mrkdwn text; split over several sections of at most 3,000 chars each.
    facts:
        ``(label, value)`` pairs shown as one section.
    runbook:
        URL of the runbook to follow, shown as a link.
    footer:
        Small context line (job, stage, event id).

    Returns
    -------
    SlackMessage
        At most 50 blocks; when the body needs more, the last block says it was cut.

    Example
    -------
    >>> msg = build_message("Deploying", "deploying v1.2.3 (sha256:0123abcd)")
    >>> msg.text
    'Deploying: deploying v1.2.3 (sha256:0123abcd)'
    """
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=cut(title, HEADER_TEXT_LIMIT)))]
    tail: list[Block] = []
    if facts:
        fact_text = "\n".join(f"*{label}:* {value}" for label, value in facts)
        tail.append(SectionBlock(text=MarkdownTextObject(text=cut(fact_text, SECTION_TEXT_LIMIT))))
    if runbook:
        tail.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=cut(f":book: Runbook: <{runbook}>", SECTION_TEXT_LIMIT)
                )
            )
        )
    if footer:
        tail.append(ContextBlock(elements=[MarkdownTextObject(text=cut(footer, 300))]))

    room = MAX_BLOCKS - len(blocks) - len(tail) - 1  # one divider before the tail
    sections = [
        SectionBlock(text=MarkdownTextObject(text=piece))
        for piece in _chunks(body, SECTION_TEXT_LIMIT)
    ]
    if len(sections) > room:
        sections = sections[: room - 1]
        sections.append(SectionBlock(text=MarkdownTextObject(text="_(message cut to fit Slack)_")))
    blocks.extend(sections)
    if tail:
        blocks.append(DividerBlock())
        blocks.extend(tail)

    text = cut(f"{title}: {body}" if body else title, FALLBACK_TEXT_LIMIT)
    if runbook and len(text) + len(runbook) + 10 <= FALLBACK_TEXT_LIMIT:
        text = f"{text} Runbook: {runbook}"
    return SlackMessage(text=text, blocks=[block.to_dict() for block in blocks[:MAX_BLOCKS]])


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message."""

    delivered: bool
    attempts: int
    reason: str
    dead_lettered: bool = False


class _Answer:
    def __init__(self, status: int, retry_after: str | None, body: str) -> None:
        self.status = status
        self.retry_after = retry_after
        self.body = body


def _post(url: str, data: bytes, timeout: float) -> _Answer:
    request = urllib.request.Request(  # noqa: S310 - the URL is checked to be http(s)
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _Answer(response.status, None, response.read(200).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace") if exc.fp else ""
        return _Answer(exc.code, exc.headers.get("Retry-After"), body)


class SlackNotifier:
    """Posts messages to the Slack webhook; dead-letters what cannot be delivered.

    Parameters
    ----------
    webhook_url:
        Callable returning the webhook URL (Powertools-cached secret read); called per post.
    sqs, dlq_url:
        boto3 SQS client and the dead-letter queue URL.
    timeout, max_attempts, max_total_seconds, backoff_base_seconds:
        Per-request timeout, attempt bound, overall time bound and the backoff base.
    sleep, clock:
        Injected for tests.
    """

    def __init__(
        self,
        *,
        webhook_url: Callable[[], str],
        sqs: Any,
        dlq_url: str,
        timeout: float = 3.0,
        max_attempts: int = 4,
        max_total_seconds: float = 15.0,
        backoff_base_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._webhook_url = webhook_url
        self._sqs = sqs
        self._dlq_url = dlq_url
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_total = max_total_seconds
        self._backoff_base = backoff_base_seconds
        self._sleep = sleep
        self._clock = clock

    def _backoff(self, attempt: int) -> float:
        ceiling = self._backoff_base * (2 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

    def post(self, message: SlackMessage, *, job: str) -> DeliveryResult:
        """Deliver ``message``; never raises. Undeliverable messages go to the DLQ."""
        try:
            url = self._webhook_url()
        except ControlsError as exc:
            return self._dead_letter(message, job, attempts=0, reason=str(exc))
        data = json.dumps(message.payload()).encode()
        deadline = self._clock() + self._max_total
        reason = "not attempted"
        attempt = 0
        while attempt < self._max_attempts:
            attempt += 1
            remaining = deadline - self._clock()
            if remaining <= 0:
                reason = f"{reason}; time budget of {self._max_total}s spent"
                break
            delay: float | None
            try:
                answer = _post(url, data, timeout=min(self._timeout, remaining))
            except TimeoutError:
                reason, delay = "timed out", self._backoff(attempt)
            except urllib.error.URLError as exc:
                cause = exc.reason
                if isinstance(cause, TimeoutError):
                    reason = "timed out"
                else:
                    reason = f"connection error ({type(cause).__name__})"
                delay = self._backoff(attempt)
            except (OSError, http.client.HTTPException) as exc:
                reason, delay = f"connection error ({type(exc).__name__})", self._backoff(attempt)
            else:
                if 200 <= answer.status < 300:
                    logger.info("slack message delivered", extra={"attempts": attempt, "job": job})
                    return DeliveryResult(True, attempt, "delivered")
                if answer.status == 429:
                    reason = "HTTP 429 rate limited"
                    delay = _retry_after(answer.retry_after, self._backoff(attempt))
                elif answer.status >= 500:
                    reason, delay = f"HTTP {answer.status}", self._backoff(attempt)
                else:
                    reason = f"HTTP {answer.status} {cut(answer.body.strip(), 80)}".strip()
                    delay = None  # a client error will not heal by retrying
            logger.warning(
                "slack delivery attempt failed",
                extra={"attempt": attempt, "reason": reason, "job": job},
            )
            if delay is None or attempt >= self._max_attempts:
                break
            if self._clock() + delay > deadline:
                reason = f"{reason}; next retry would exceed the {self._max_total}s budget"
                break
            self._sleep(delay)
        return self._dead_letter(message, job, attempts=attempt, reason=reason)

    def _dead_letter(
        self, message: SlackMessage, job: str, *, attempts: int, reason: str
    ) -> DeliveryResult:
        count("SlackDeadLettered", job)
        body = json.dumps(
            {
                "job": job,
                "reason": reason,
                "attempts": attempts,
                "message": message.payload(),
            }
        )
        try:
            self._sqs.send_message(
                QueueUrl=self._dlq_url,
                MessageBody=body,
                MessageAttributes={
                    "job": {"DataType": "String", "StringValue": job},
                    "reason": {"DataType": "String", "StringValue": cut(reason, 256)},
                },
            )
        except Exception as exc:  # the last resort must not crash the caller
            logger.error(
                "slack message lost: delivery and dead-letter queue both failed",
                extra={"reason": reason, "dlq_error": type(exc).__name__, "job": job},
            )
            return DeliveryResult(False, attempts, reason, dead_lettered=False)
        logger.error(
            "slack message sent to dead-letter queue",
            extra={"reason": reason, "attempts": attempts, "job": job},
        )
        return DeliveryResult(False, attempts, reason, dead_lettered=True)


def _retry_after(header: str | None, fallback: float) -> float:
    if header is None:
        return fallback
    try:
        return max(0.0, float(header))
    except ValueError:
        return fallback
