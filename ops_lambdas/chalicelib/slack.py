"""Slack messages (Block Kit with a plain-text fallback) and their delivery.

Delivery goes through ``slack_sdk``'s :class:`~slack_sdk.webhook.WebhookClient` (already in the
zip for Block Kit) and its retry handlers, with our own bounds around them:

* 2xx: delivered.
* 429: wait ``Retry-After`` seconds, then retry (``RateLimitErrorRetryHandler``). The built-in
  one adds up to 1 s of jitter, fails on a non-integer header and calls ``time.sleep``; ours
  waits exactly the header (the backoff when it is absent or not a number of seconds).
* 5xx (``ServerErrorRetryHandler``, widened from 500/503 to every 5xx: a 502 or 504 from the
  edge heals like a 500), timeouts and connection errors (``ConnectionErrorRetryHandler``,
  widened to every ``OSError``/``HTTPException``: a read timeout is a bare ``TimeoutError``,
  not the ``URLError`` the built-in one expects): exponential backoff with jitter, through the
  SDK's ``BackoffRetryIntervalCalculator`` with a jitter in [0.5, 1] of the ceiling rather
  than its additive 0-1 s, which would dwarf a 0.5 s base.
* every retry also waits for the webhook's pace (below): never sooner than a second after
  the attempt that failed.
* any other 4xx (``invalid_payload``, ``channel_not_found``...): no handler, so no retry; it
  will not heal.
* at most ``max_attempts`` attempts and ``max_total_seconds`` in all, waits included. The SDK
  counts retries in ``RetryState.current_attempt`` (zero-origin, shared by every handler), so
  each handler gets ``max_retry_count = max_attempts - 1`` and the attempts made are
  ``current_attempt + 1``. The SDK has no overall deadline: our handlers check it in
  ``prepare_for_next_attempt``, which is also where the SDK sleeps; they wait through the
  injected ``sleep`` and, when the wait would end at or past the deadline, do not start it and
  leave ``next_attempt_requested`` unset, which makes the client give up. Each request's
  timeout is cut to what is left of the budget.

Every message is cut to what Slack accepts before it is sent (:func:`fit`; Slack answers 400
to a message over its limits, and a 400 is not retried): at most 50 blocks, 3,000 characters
a section text, 150 a header, and the blocks together at most :data:`BLOCKS_CHARS_LIMIT`
characters as JSON (Slack refuses ``msg_blocks_too_long`` at about 13,200 characters of
blocks, whatever the other limits say); the plain-text fallback at most 3,000 of Slack's
40,000 (the preview: the blocks carry the message). A cut section, or the last block when
sections were dropped, ends in :data:`TRUNCATED`, and the full text is logged when the
message is posted.

The webhook URL must be ``https://`` (:func:`webhook_url_problem`): the URL is a bearer secret,
and plain ``http://`` would send it, and the message, in clear text. The one exception is a
loopback host (``127.0.0.1``, ``::1``, ``localhost``), where the tests' Slack stand-in and
``make demo``'s receiver listen: on Lambda, loopback is the function's own sandbox, so
nothing leaves it. Any other ``http://`` URL is refused before a request is made, and the
message is dead-lettered with the reason.

Slack takes one message a second per webhook, and a 429's ``Retry-After`` holds for the
webhook, not for the one message that met it; so posts to one webhook are paced across
messages, within the process (a warm container lives for many events and posts several
messages per event): :func:`pacing_wait` is the rule, a :class:`WebhookPacer` per clock keeps
each webhook's last post and the end of its last ``Retry-After``, and every attempt, a retry
included, waits for both, through the injected ``sleep``: at least
:data:`MIN_POST_INTERVAL_SECONDS` after the previous post to that webhook ended, and nothing
before its ``Retry-After`` has passed. The wait counts in the message's budget: a message that
cannot be sent within it because of the wait is dead-lettered at once, without a request, with
the reason. (Containers do not share it: each function paces its own posts.)

A message that still is not delivered goes to the SQS dead-letter queue with the reason, so
nothing is dropped silently. The webhook URL is a secret: it never appears in a log line, a
reason or the dead-letter body. The SDK would log it (and the body) at INFO and DEBUG, because
it tests its logger's own level, which is NOTSET unless set; so the client gets a logger that
is switched off, and we log each attempt ourselves. (The client also sends through
``HTTPS_PROXY``/``HTTP_PROXY`` when set, ignoring ``NO_PROXY``; Lambda sets neither.)
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk.errors import SlackRequestError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    Jitter,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.webhook import WebhookClient

from chalicelib.errors import ControlsError
from chalicelib.observability import count, logger
from chalicelib.runbooks import SLACK_WEBHOOK_MISSING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
CONTEXT_TEXT_LIMIT = 3000
FOOTER_TEXT_LIMIT = 300
MAX_BLOCKS = 50
FALLBACK_TEXT_LIMIT = 3000  # Slack takes 40,000 characters of text; a notification needs few
MESSAGE_TEXT_LIMIT = 40_000  # Slack: characters of text in one message
# The blocks as JSON (json.dumps, the way slack_sdk sends them). Slack refuses a message whose
# blocks hold about 13,200 characters (msg_blocks_too_long) though no documented limit is hit,
# so stay well under 13,000.
BLOCKS_CHARS_LIMIT = 12_000
TRUNCATED = "… (truncated, full text in the function's log)"
LOGGED_TEXT_LIMIT = 200_000  # a CloudWatch Logs event holds 256 KB
_ELLIPSIS = "…"
_MIN_CUT_TEXT = 200  # a section cut shorter than this is dropped (the marker says so)


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def truncate(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, ending in :data:`TRUNCATED` when cut.

    Example
    -------
    >>> len(truncate("x" * 5000, 3000))
    3000
    """
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED[: max(limit, 0)]


def blocks_chars(blocks: Sequence[dict[str, Any]]) -> int:
    """The size Slack's block limit is held to: the blocks as JSON, in characters."""
    return len(json.dumps(list(blocks), ensure_ascii=False))


def webhook_url_problem(url: str) -> str | None:
    """Why the webhook must not be posted to, or ``None``: ``https://`` only, plain
    ``http://`` only to a loopback host (a local receiver). Never names the URL (a secret).

    Example
    -------
    >>> webhook_url_problem("http://webhooks.example.com/x") is not None
    True
    >>> webhook_url_problem("http://127.0.0.1:8080/services/T0/B0/x") is None
    True
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is None or parts.scheme not in ("https", "http") or not host:
        return "the webhook URL in the secret is not an https:// URL"
    if parts.scheme == "http" and not _loopback(host):
        return (
            "the webhook URL in the secret uses plain http://, which would send the webhook "
            "and the message in clear text: Slack webhooks are https://hooks.slack.com/"
            "services/... (plain http only to 127.0.0.1, a local receiver)"
        )
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def escape(text: str) -> str:
    """``text`` safe inside mrkdwn: ``&``, ``<`` and ``>`` become the entities Slack asks
    for, so text from AWS cannot make a link, mention someone or ``<!channel>``. Free text
    that must not be formatted at all goes in ``build_message(details=...)`` (plain text).

    Example
    -------
    >>> escape("<!channel> 5xx > 10 & rising")
    '&lt;!channel&gt; 5xx &gt; 10 &amp; rising'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    """A webhook payload: Block Kit ``blocks`` and the plain-text ``text`` fallback.

    ``full_text`` is set only when something was cut to fit Slack: everything the message
    was built from, logged when it is posted (never sent).
    """

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    full_text: str = ""

    @property
    def truncated(self) -> bool:
        return bool(self.full_text)

    def payload(self) -> dict[str, Any]:
        """The JSON body for the webhook."""
        return {"text": self.text, "blocks": self.blocks}


def _marker_block() -> dict[str, Any]:
    return SectionBlock(text=MarkdownTextObject(text=TRUNCATED)).to_dict()


def _block_text(block: dict[str, Any]) -> str | None:
    text = block.get("text")
    return str(text.get("text", "")) if isinstance(text, dict) else None


def _with_text(block: dict[str, Any], text: str) -> dict[str, Any]:
    return {**block, "text": {**block["text"], "text": text}}


def _assemble(
    head: list[dict[str, Any]], middle: list[dict[str, Any]], tail: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """``head + middle + tail`` within :data:`MAX_BLOCKS` and :data:`BLOCKS_CHARS_LIMIT`,
    keeping head and tail whole (the title, the runbook link, the footer) and as much of the
    middle, in order, as fits: the last section kept may be cut, ending in
    :data:`TRUNCATED`; when nothing could be cut so, a last section says it. Returns the
    blocks and whether anything was cut (pure)."""
    whole = head + middle + tail
    if len(whole) <= MAX_BLOCKS and blocks_chars(whole) <= BLOCKS_CHARS_LIMIT:
        return whole, False
    marker = _marker_block()
    room = MAX_BLOCKS - len(head) - len(tail) - 1  # one block kept for the marker
    kept: list[dict[str, Any]] = []
    for block in middle:
        if len(kept) >= room:
            break
        if blocks_chars(head + kept + [block, marker] + tail) <= BLOCKS_CHARS_LIMIT:
            kept.append(block)
            continue
        text = _block_text(block)
        if text is not None:
            # The longest cut of this section (ending in the marker) that still fits.
            low, high = 0, len(text)
            while low < high:
                middle_len = (low + high + 1) // 2
                trial = _with_text(block, text[:middle_len] + TRUNCATED)
                if blocks_chars(head + kept + [trial] + tail) <= BLOCKS_CHARS_LIMIT:
                    low = middle_len
                else:
                    high = middle_len - 1
            if low >= _MIN_CUT_TEXT:
                return head + kept + [_with_text(block, text[:low] + TRUNCATED)] + tail, True
        break
    return head + kept + [marker] + tail, True


def build_message(
    title: str,
    body: str,
    *,
    facts: Sequence[tuple[str, str]] = (),
    runbook: str | None = None,
    footer: str | None = None,
    details: str | None = None,
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
    details:
        Text shown exactly as given (``plain_text`` sections after the body, split like it):
        what came from outside (an alarm's reason) and must not be formatted by Slack.

    Returns
    -------
    SlackMessage
        Within Slack's limits (at most 50 blocks, 3,000 characters a section, the blocks at
        most :data:`BLOCKS_CHARS_LIMIT` characters as JSON): the title, the facts, the
        runbook link and the footer are always kept; the body and details as far as they fit,
        the cut marked :data:`TRUNCATED`. When anything was cut, ``full_text`` holds it all
        (logged by :meth:`SlackNotifier.post`).

    Example
    -------
    >>> msg = build_message("Deploying", "deploying v1.2.3 (sha256:0123abcd)")
    >>> msg.text
    'Deploying: deploying v1.2.3 (sha256:0123abcd)'
    """
    head: list[Block] = [HeaderBlock(text=PlainTextObject(text=cut(title, HEADER_TEXT_LIMIT)))]
    tail: list[Block] = []
    fact_text = "\n".join(f"*{label}:* {value}" for label, value in facts)
    fact_limit = min(SECTION_TEXT_LIMIT, BLOCKS_CHARS_LIMIT // 4)
    if facts:
        # Facts are short by design; a long value is cut, never the runbook link after them.
        tail.append(SectionBlock(text=MarkdownTextObject(text=truncate(fact_text, fact_limit))))
    if runbook:
        tail.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=cut(f":book: Runbook: <{runbook}>", SECTION_TEXT_LIMIT)
                )
            )
        )
    if footer:
        tail.append(
            ContextBlock(elements=[MarkdownTextObject(text=cut(footer, FOOTER_TEXT_LIMIT))])
        )
    if tail:
        tail.insert(0, DividerBlock())

    sections: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=piece))
        for piece in _chunks(body, SECTION_TEXT_LIMIT)
    ]
    sections += [
        SectionBlock(text=PlainTextObject(text=piece, emoji=False))
        for piece in _chunks(details or "", SECTION_TEXT_LIMIT)
    ]
    blocks, cut_blocks = _assemble(
        [b.to_dict() for b in head], [b.to_dict() for b in sections], [b.to_dict() for b in tail]
    )

    summary = " ".join(part for part in (body, escape(details or "")) if part)
    # The fallback is the notification's preview; the blocks carry the message.
    text = cut(f"{title}: {summary}" if summary else title, FALLBACK_TEXT_LIMIT)
    if runbook and len(text) + len(runbook) + 10 <= FALLBACK_TEXT_LIMIT:
        text = f"{text} Runbook: {runbook}"
    full = ""
    if cut_blocks or (facts and len(fact_text) > fact_limit):  # TRUNCATED is shown: log it all
        parts = [title, body, details or "", fact_text, footer or ""]
        full = "\n\n".join(part for part in parts if part)
    return SlackMessage(text=text, blocks=blocks, full_text=full)


def fit(message: SlackMessage) -> SlackMessage:
    """``message`` within Slack's limits, whoever built it (:func:`build_message` already
    fits, and comes back unchanged): each section text at most 3,000 characters, a header
    at most 150, then :func:`_assemble` over all the blocks (the first kept as the head);
    the fallback text at most :data:`FALLBACK_TEXT_LIMIT`. A cut block ends in
    :data:`TRUNCATED` (a header in an ellipsis), and ``full_text`` keeps everything (pure).
    """
    blocks: list[dict[str, Any]] = []
    cut_any = False
    for block in message.blocks:
        text = _block_text(block)
        limit = HEADER_TEXT_LIMIT if block.get("type") == "header" else SECTION_TEXT_LIMIT
        if text is not None and len(text) > limit:
            shortened = cut(text, limit) if block.get("type") == "header" else truncate(text, limit)
            block = _with_text(block, shortened)
            cut_any = True
        blocks.append(block)
    assembled, cut_blocks = _assemble(blocks[:1], blocks[1:], [])
    text = cut(message.text, FALLBACK_TEXT_LIMIT)
    if not (cut_any or cut_blocks or text != message.text):
        return message
    full = message.full_text or "\n\n".join(
        [message.text] + [t for t in (_block_text(b) for b in message.blocks) if t]
    )
    return SlackMessage(text=text, blocks=assembled, full_text=full)


MIN_POST_INTERVAL_SECONDS = 1.0  # Slack: one message per second per webhook


def pacing_wait(
    now: float,
    *,
    last_post: float | None,
    retry_after_until: float | None,
    interval: float = MIN_POST_INTERVAL_SECONDS,
) -> float:
    """Seconds to wait before the next post to a webhook (pure): until ``interval`` after
    its last post, and until its last 429's ``Retry-After`` has passed; 0 when both have.

    Example
    -------
    >>> pacing_wait(100.5, last_post=100.0, retry_after_until=None)
    0.5
    >>> pacing_wait(101.0, last_post=100.0, retry_after_until=None)
    0.0
    >>> pacing_wait(101.0, last_post=100.0, retry_after_until=130.0)
    29.0
    """
    earliest = max(
        last_post + interval if last_post is not None else -math.inf,
        retry_after_until if retry_after_until is not None else -math.inf,
    )
    return max(0.0, earliest - now)


@dataclass
class _Pace:
    last_post: float | None = None  # when the last request to the webhook ended
    retry_after_until: float | None = None  # when its last 429's Retry-After ends


class WebhookPacer:
    """Each webhook's last post and the end of its last ``Retry-After``, on one clock.

    :meth:`for_clock` gives the process's pacer of a clock: every :class:`SlackNotifier` on
    that clock (the default, and one per severity channel) shares it, so posts to one webhook
    are paced across messages, notifiers and events. Webhooks are keyed by URL, which never
    leaves this object.
    """

    def __init__(self) -> None:
        self._paces: dict[str, _Pace] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_clock(cls, clock: Callable[[], float]) -> WebhookPacer:
        """The process's pacer of ``clock`` (times of different clocks do not compare)."""
        with _PACERS_LOCK:
            pacer = _PACERS.get(clock)
            if pacer is None:
                pacer = _PACERS[clock] = cls()
            return pacer

    def wait(self, url: str, now: float) -> float:
        """Seconds to wait, from ``now``, before posting to ``url`` (:func:`pacing_wait`)."""
        with self._lock:
            pace = self._paces.get(url, _Pace())
            return pacing_wait(
                now, last_post=pace.last_post, retry_after_until=pace.retry_after_until
            )

    def rate_limited_for(self, url: str, now: float) -> float:
        """Seconds, from ``now``, until ``url``'s last ``Retry-After`` has passed (0 if it has)."""
        with self._lock:
            until = self._paces.get(url, _Pace()).retry_after_until
        return max(0.0, until - now) if until is not None else 0.0

    def answered(self, url: str, now: float, *, retry_after: float | None = None) -> None:
        """A request to ``url`` ended at ``now``: answered (``retry_after`` seconds of a 429
        when it said so), or failed."""
        with self._lock:
            pace = self._paces.setdefault(url, _Pace())
            pace.last_post = now if pace.last_post is None else max(pace.last_post, now)
            if retry_after is not None:
                until = now + retry_after
                if pace.retry_after_until is None or until > pace.retry_after_until:
                    pace.retry_after_until = until


# The process's pacers, one per clock: a warm container keeps them from event to event.
_PACERS: dict[Callable[[], float], WebhookPacer] = {}
_PACERS_LOCK = threading.Lock()


def _retry_after(headers: Any) -> float | None:
    """A 429's ``Retry-After`` in seconds; ``None`` when absent or not a number of seconds
    (headers as urllib gives them, or as slack_sdk's retry handlers do: lists of values)."""
    for name, values in (headers or {}).items():
        if name.lower() != "retry-after" or not values:
            continue
        value = values[0] if isinstance(values, list | tuple) else values
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message."""

    delivered: bool
    attempts: int
    reason: str
    dead_lettered: bool = False


# slack_sdk's client logs the webhook URL at INFO/DEBUG unless its logger's own level is above
# DEBUG, and every connection error at ERROR; this one is off (we log each attempt ourselves).
_SDK_LOGGER = logging.getLogger(f"{__name__}.slack_sdk")
_SDK_LOGGER.setLevel(logging.CRITICAL + 1)
_SDK_LOGGER.propagate = False


class _ProportionalJitter(Jitter):
    """Each wait is a random point in [0.5, 1] of the exponential ceiling."""

    def recalculate(self, duration: float) -> float:
        return duration * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto


def _http_reason(status: int, body: str) -> str:
    """The reason for a non-2xx answer; Slack's body names the client error (never the URL)."""
    if status == 429:
        return "HTTP 429 rate limited"
    if status >= 500:
        return f"HTTP {status}"
    return f"HTTP {status} {cut(body.strip(), 80)}".strip()


def _error_reason(error: BaseException | None) -> str:
    """The reason for a request that got no answer. Only type names: messages may carry the URL."""
    cause = error.reason if isinstance(error, URLError) else error
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, OSError | http.client.HTTPException):
        return f"connection error ({type(cause).__name__})"
    if isinstance(error, URLError):  # a reason that is a string, not an exception
        return "connection error (URLError)"
    if isinstance(error, SlackRequestError):
        return "webhook URL is not http(s)"
    return f"unexpected error ({type(error).__name__})"


class _Delivery:
    """One message's delivery: a ``WebhookClient`` whose retry handlers share this budget."""

    def __init__(
        self,
        url: str,
        *,
        job: str,
        timeout: float,
        max_attempts: int,
        total_seconds: float,
        backoff_base: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        pacer: WebhookPacer | None = None,
    ) -> None:
        self.job = job
        self.url = url
        self.pacer = pacer if pacer is not None else WebhookPacer()
        self._timeout = timeout
        self._total = total_seconds
        self._sleep = sleep
        self._clock = clock
        self.deadline = clock() + self._total
        self.attempts = 1
        self.cut: str | None = None
        retries = max(0, max_attempts - 1)
        backoff = BackoffRetryIntervalCalculator(
            backoff_factor=backoff_base, jitter=_ProportionalJitter()
        )
        handlers: list[RetryHandler] = [
            _RateLimitRetry(self, max_retry_count=retries, interval_calculator=backoff),
            _ServerErrorRetry(self, max_retry_count=retries, interval_calculator=backoff),
            _ConnectionErrorRetry(
                self,
                max_retry_count=retries,
                interval_calculator=backoff,
                error_types=[OSError, http.client.HTTPException],
            ),
        ]
        self.client = WebhookClient(
            url,
            # annotated int, but it only goes to urlopen, which takes seconds as a float
            timeout=min(self._timeout, self._total),  # type: ignore[arg-type]
            logger=_SDK_LOGGER,
            retry_handlers=handlers,
        )

    def wait_then_retry(
        self, state: RetryState, *, delay: float, reason: str, retry_after: float | None = None
    ) -> None:
        """Wait ``delay``, or longer when the webhook's pace says so, and ask the client for
        another attempt, if the budget allows. The attempt that failed is the webhook's last
        post (``retry_after``: the seconds its 429 asked for).

        Not setting ``state.next_attempt_requested`` is how a handler makes the client stop:
        it then returns the last answer (HTTP error) or raises the last exception.
        """
        attempt = state.current_attempt + 1
        now = self._clock()
        self.pacer.answered(self.url, now, retry_after=retry_after)
        delay = max(delay, self.pacer.wait(self.url, now))
        if now + delay >= self.deadline:
            self.cut = f"next retry would exceed the {self._total:g}s budget"
            return
        logger.warning(
            "slack delivery attempt failed; retrying",
            extra={"attempt": attempt, "reason": reason, "wait_seconds": delay, "job": self.job},
        )
        self._sleep(delay)
        remaining = self.deadline - self._clock()
        if remaining <= 0:  # the sleep overran
            self.cut = f"time budget of {self._total:g}s spent"
            return
        self.client.timeout = min(self._timeout, remaining)  # type: ignore[assignment] # a float
        self.attempts = state.increment_current_attempt() + 1
        state.next_attempt_requested = True

    def wait_for_the_webhook(self) -> str | None:
        """Before the first attempt: wait until the webhook may be posted to again
        (:func:`pacing_wait`). Returns why the message cannot be sent within its budget,
        without waiting, or ``None`` once the wait is over."""
        now = self._clock()
        wait = self.pacer.wait(self.url, now)
        if wait <= 0:
            return None
        if now + wait >= self.deadline:
            limited = self.pacer.rate_limited_for(self.url, now)
            if limited >= wait:
                return (
                    f"not sent: Slack rate-limited the webhook (HTTP 429) for {limited:.1f}s "
                    f"more (Retry-After), past the {self._total:g}s budget"
                )
            return (
                f"not sent: the webhook takes one message a second, the next in {wait:.2f}s, "
                f"past the {self._total:g}s budget"
            )
        logger.info(
            "slack webhook paced; waiting before posting",
            extra={"wait_seconds": round(wait, 3), "job": self.job},
        )
        self._sleep(wait)
        remaining = self.deadline - self._clock()
        if remaining <= 0:  # the sleep overran
            return f"not sent: time budget of {self._total:g}s spent waiting for the webhook"
        self.client.timeout = min(self._timeout, remaining)  # type: ignore[assignment] # a float
        return None


class _WithinBudget(RetryHandler):
    """Waits through :meth:`_Delivery.wait_then_retry` (injected sleep, deadline) instead of
    the ``time.sleep`` in slack_sdk's ``prepare_for_next_attempt``."""

    def __init__(self, delivery: _Delivery, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._delivery = delivery

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        return self.interval_calculator.calculate_sleep_duration(state.current_attempt)

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            reason = _error_reason(error)
        else:
            reason = _http_reason(
                response.status_code, (response.data or b"").decode(errors="replace")
            )
        retry_after = None
        if response is not None and response.status_code == 429:
            retry_after = _retry_after(response.headers)
        self._delivery.wait_then_retry(
            state, delay=self._delay(state, response), reason=reason, retry_after=retry_after
        )


class _RateLimitRetry(_WithinBudget, RateLimitErrorRetryHandler):
    """429: wait exactly ``Retry-After`` seconds; the backoff when it is absent or a date."""

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        seconds = _retry_after(response.headers if response is not None else {})
        return seconds if seconds is not None else super()._delay(state, response)


class _ServerErrorRetry(_WithinBudget, ServerErrorRetryHandler):
    """Every 5xx, not only the built-in 500 and 503."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


class _ConnectionErrorRetry(_WithinBudget, ConnectionErrorRetryHandler):
    """Timeouts and connection errors (the error types are given by :class:`_Delivery`)."""


class SlackNotifier:
    """Posts messages to the Slack webhook; dead-letters what cannot be delivered.

    Parameters
    ----------
    webhook_url:
        Callable returning the webhook URL (Powertools-cached secret read); called per post.
    sqs, dlq_url:
        boto3 SQS client and the dead-letter queue URL.
    timeout:
        Timeout of one request, in seconds (cut to what is left of the budget).
    max_attempts:
        Attempts per message, the first included.
    max_total_seconds:
        Time budget per message, waits included; a wait that would end at or past it is not
        started.
    backoff_base_seconds:
        Ceiling of the first backoff after a 5xx, timeout or connection error; it doubles per
        retry, and each wait is a random point in [0.5, 1] of the ceiling.
    sleep, clock:
        Injected for tests; every wait goes through ``sleep``.
    pacer:
        Paces posts to each webhook (:class:`WebhookPacer`); by default the process's pacer
        of ``clock``, shared by every notifier on it.

    Example
    -------
    >>> notifier = SlackNotifier(  # doctest: +SKIP
    ...     webhook_url=controls.webhook_url, sqs=sqs, dlq_url=dlq_url
    ... )
    >>> notifier.post(build_message("Deployed", "v1.2.3"), job="redeploy")  # doctest: +SKIP
    DeliveryResult(delivered=True, attempts=1, reason='delivered', dead_lettered=False)
    """

    def __init__(
        self,
        *,
        webhook_url: Callable[[], str],
        sqs: SQSClient,
        dlq_url: str,
        timeout: float = 3.0,
        max_attempts: int = 4,
        max_total_seconds: float = 15.0,
        backoff_base_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pacer: WebhookPacer | None = None,
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
        self._pacer = pacer if pacer is not None else WebhookPacer.for_clock(clock)

    def post(self, message: SlackMessage, *, job: str) -> DeliveryResult:
        """Deliver ``message``; never raises. Undeliverable messages go to the DLQ.

        Parameters
        ----------
        message:
            The payload, from :func:`build_message`.
        job:
            The job posting it: a log key, the metric dimension and a DLQ message attribute.

        Returns
        -------
        DeliveryResult
            ``delivered`` with the attempts made, or the reason of the last failure and
            whether the message reached the dead-letter queue.
        """
        message = fit(message)
        if message.truncated:
            # What was cut to fit Slack is here, in the function's log, as the message says.
            logger.warning(
                "slack message truncated to fit Slack's limits; the full text follows",
                extra={
                    "job": job,
                    "full_text": truncate(message.full_text, LOGGED_TEXT_LIMIT),
                    "full_text_characters": len(message.full_text),
                    "blocks_characters": blocks_chars(message.blocks),
                },
            )
        try:
            url = self._webhook_url()
        except ControlsError as exc:
            return self._dead_letter(message, job, attempts=0, reason=str(exc))
        problem = webhook_url_problem(url)
        if problem is not None:
            reason = f"{problem}; set it again (runbooks/{SLACK_WEBHOOK_MISSING})"
            return self._dead_letter(message, job, attempts=0, reason=reason)
        delivery = _Delivery(
            url,
            job=job,
            timeout=self._timeout,
            max_attempts=self._max_attempts,
            total_seconds=self._max_total,
            backoff_base=self._backoff_base,
            sleep=self._sleep,
            clock=self._clock,
            pacer=self._pacer,
        )
        held_back = delivery.wait_for_the_webhook()
        if held_back is not None:
            return self._dead_letter(message, job, attempts=0, reason=held_back)
        try:
            response = delivery.client.send_dict(message.payload())
        except Exception as exc:  # every failure is a reason and a dead letter, never a crash
            self._pacer.answered(url, self._clock())
            reason = _error_reason(exc)
        else:
            retry_after = _retry_after(response.headers) if response.status_code == 429 else None
            self._pacer.answered(url, self._clock(), retry_after=retry_after)
            if 200 <= response.status_code < 300:
                logger.info(
                    "slack message delivered", extra={"attempts": delivery.attempts, "job": job}
                )
                return DeliveryResult(True, delivery.attempts, "delivered")
            reason = _http_reason(response.status_code, response.body)
        if delivery.cut:
            reason = f"{reason}; {delivery.cut}"
        return self._dead_letter(message, job, attempts=delivery.attempts, reason=reason)

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
