"""Block Kit messages stay within Slack's limits and always carry a plain-text fallback;
the retry policy around slack_sdk's handlers decides retries and waits (no network)."""

from __future__ import annotations

import json

import pytest
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState

from chalicelib.runbooks import runbook_url
from chalicelib.slack import (
    BLOCKS_CHARS_LIMIT,
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    TRUNCATED,
    SlackMessage,
    _Delivery,
    blocks_chars,
    build_message,
    cut,
    fit,
    webhook_url_problem,
)
from tests.support.slack_limits import slack_refusal


def _section_texts(blocks: list[dict[str, object]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]  # type: ignore[index]


def test_short_message_has_header_body_facts_runbook_and_footer() -> None:
    message = build_message(
        "deploying v1.2.3",
        "deploying `v1.2.3`",
        facts=[("Deployment", "ecs-svc/1")],
        runbook="https://example.com/runbooks/redeploy.md",
        footer="spotops-dev · redeploy",
    )

    types = [block["type"] for block in message.blocks]
    assert types == ["header", "section", "divider", "section", "section", "context"]
    assert message.text.startswith("deploying v1.2.3: deploying `v1.2.3`")
    assert "https://example.com/runbooks/redeploy.md" in message.text
    assert "*Deployment:* ecs-svc/1" in _section_texts(message.blocks)


def test_long_body_is_split_into_sections_of_at_most_3000_chars() -> None:
    body = "\n".join(f"line {i:04d} " + "x" * 80 for i in range(100))  # ~9 kB: fits
    message = build_message("title", body)

    sections = _section_texts(message.blocks)
    assert len(sections) > 1
    assert all(len(text) <= SECTION_TEXT_LIMIT for text in sections)
    assert "".join(sections).replace("\n", "") == body.replace("\n", "")
    assert len(message.text) <= 3000
    assert not message.truncated


def test_huge_body_is_cut_to_slacks_limits_and_says_so() -> None:
    message = build_message("t" * 500, "y" * 400_000, runbook="https://example.com/r.md")

    assert len(message.blocks) <= MAX_BLOCKS
    assert blocks_chars(message.blocks) <= BLOCKS_CHARS_LIMIT
    assert len(message.blocks[0]["text"]["text"]) <= 150
    assert _section_texts(message.blocks)[-2].endswith(TRUNCATED)
    assert "https://example.com/r.md" in str(message.blocks[-1])
    assert message.full_text.count("y") == 400_000


# ---- Slack's limits, at exactly the limits ----------------------------------------------


def _largest_whole_body(title: str = "t", **kwargs: object) -> int:
    """The longest body of "q" that build_message sends whole."""
    low, high = 0, BLOCKS_CHARS_LIMIT
    while low < high:
        mid = (low + high + 1) // 2
        if build_message(title, "q" * mid, **kwargs).truncated:  # type: ignore[arg-type]
            high = mid - 1
        else:
            low = mid
    return low


def test_blocks_of_exactly_the_limit_go_whole_and_one_character_more_is_truncated() -> None:
    n = _largest_whole_body(runbook="https://example.com/r.md", footer="spotops-dev · chaos")

    whole = build_message(
        "t", "q" * n, runbook="https://example.com/r.md", footer="spotops-dev · chaos"
    )
    over = build_message(
        "t", "q" * (n + 1), runbook="https://example.com/r.md", footer="spotops-dev · chaos"
    )

    assert blocks_chars(whole.blocks) == BLOCKS_CHARS_LIMIT  # exactly at the limit
    assert not whole.truncated
    assert "".join(_section_texts(whole.blocks)).count("q") == n
    assert TRUNCATED not in json.dumps(whole.blocks)
    assert over.truncated
    assert blocks_chars(over.blocks) <= BLOCKS_CHARS_LIMIT
    assert _section_texts(over.blocks)[-2].endswith(TRUNCATED)  # then the runbook, the footer
    assert over.full_text.count("q") == n + 1
    assert [b["type"] for b in over.blocks][-3:] == ["divider", "section", "context"]


def test_a_section_of_exactly_3000_characters_is_one_block_and_3001_are_two() -> None:
    exact = build_message("t", "x" * SECTION_TEXT_LIMIT)
    one_more = build_message("t", "x" * (SECTION_TEXT_LIMIT + 1))

    assert [len(t) for t in _section_texts(exact.blocks)] == [3000]
    assert [len(t) for t in _section_texts(one_more.blocks)] == [3000, 1]  # split, not cut
    assert not exact.truncated
    assert not one_more.truncated


def test_a_header_of_exactly_150_characters_is_kept_and_151_are_cut() -> None:
    assert build_message("h" * 150, "b").blocks[0]["text"]["text"] == "h" * 150
    assert build_message("h" * 151, "b").blocks[0]["text"]["text"] == "h" * 149 + "…"


def test_exactly_50_blocks_are_sent_as_they_are_and_51_are_cut_to_50() -> None:
    def message(count: int) -> SlackMessage:
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"b{i}"}} for i in range(count)
        ]
        return SlackMessage(text="t", blocks=blocks)

    fifty, fifty_one = message(MAX_BLOCKS), message(MAX_BLOCKS + 1)

    assert fit(fifty) is fifty
    cut_down = fit(fifty_one)
    assert len(cut_down.blocks) == MAX_BLOCKS
    assert _section_texts(cut_down.blocks)[-1] == TRUNCATED
    assert _section_texts(cut_down.blocks)[:-1] == [f"b{i}" for i in range(MAX_BLOCKS - 1)]
    assert "b50" in cut_down.full_text


def test_a_message_of_141k_characters_fits_slack_keeping_title_facts_runbook_and_footer() -> None:
    # What an alarm with a long reason, or a long list of findings, could build before: 50
    # blocks of 3,000 characters.
    body = "\n".join(f"finding {i:05d} " + "z" * 90 for i in range(1400))
    details = "d" * 9000
    facts = [("Service", "spotops-dev/site"), ("Digest", "sha256:" + "a" * 64)]
    message = build_message(
        "title", body, facts=facts, runbook="https://example.com/r.md", footer="f", details=details
    )

    assert len(body) + len(details) > 141_000
    assert slack_refusal(message.payload()) is None
    assert blocks_chars(message.blocks) <= BLOCKS_CHARS_LIMIT
    assert all(len(t) <= SECTION_TEXT_LIMIT for t in _section_texts(message.blocks))
    assert len(message.text) <= 3000
    texts = _section_texts(message.blocks)
    assert "*Service:* spotops-dev/site" in texts[-2]
    assert "https://example.com/r.md" in texts[-1]
    assert message.blocks[-1]["type"] == "context"
    assert any(t.endswith(TRUNCATED) for t in texts)
    assert body in message.full_text
    assert details in message.full_text


def test_long_facts_are_truncated_and_the_runbook_link_is_kept() -> None:
    message = build_message("t", "b", facts=[("Reason", "r" * 5000)], runbook="https://e.x/r.md")

    texts = _section_texts(message.blocks)
    assert texts[-2].endswith(TRUNCATED)
    assert len(texts[-2]) <= SECTION_TEXT_LIMIT
    assert "https://e.x/r.md" in texts[-1]
    assert message.truncated


def test_cut_marks_the_cut() -> None:
    assert cut("abcdef", 4) == "abc…"
    assert cut("abc", 4) == "abc"


def test_runbook_url_joins_base_and_file() -> None:
    assert runbook_url("https://x.example/runbooks/", "/deploy-failed.md") == (
        "https://x.example/runbooks/deploy-failed.md"
    )


# ---- retry policy: slack_sdk's handlers with our bounds --------------------------------------

REQUEST = HttpRequest(method="POST", url="http://127.0.0.1:9/services/T0/B0/x", headers={})


def _delivery(sleeps: list[float], *, max_attempts: int = 4, total: float = 60.0) -> _Delivery:
    return _Delivery(
        REQUEST.url,
        job="test",
        timeout=3.0,
        max_attempts=max_attempts,
        total_seconds=total,
        backoff_base=2.0,
        sleep=sleeps.append,
        clock=lambda: sum(sleeps),
    )


def _retry(
    delivery: _Delivery,
    state: RetryState,
    *,
    status: int | None = None,
    headers: dict[str, str | list[str]] | None = None,
    error: Exception | None = None,
) -> bool:
    """Run the failure through the handlers as WebhookClient does; whether it retries."""
    response = None if status is None else HttpResponse(status_code=status, headers=headers or {})
    state.next_attempt_requested = False
    for handler in delivery.client.retry_handlers:
        if handler.can_retry(state=state, request=REQUEST, response=response, error=error):
            handler.prepare_for_next_attempt(
                state=state, request=REQUEST, response=response, error=error
            )
            break
    return state.next_attempt_requested


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_every_5xx_is_retried_with_backoff(status: int) -> None:
    sleeps: list[float] = []
    delivery = _delivery(sleeps)
    state = RetryState()

    assert _retry(delivery, state, status=status)
    assert 1.0 <= sleeps[0] <= 2.0  # [0.5, 1] of the base
    assert _retry(delivery, state, status=status)
    assert 2.0 <= sleeps[1] <= 4.0  # the ceiling doubles
    assert delivery.attempts == 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_other_4xx_are_not_retried(status: int) -> None:
    sleeps: list[float] = []
    delivery = _delivery(sleeps)

    assert not _retry(delivery, RetryState(), status=status)
    assert sleeps == []
    assert delivery.attempts == 1


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("7", 7.0, 7.0),
        ("2.5", 2.5, 2.5),
        ("-3", 1.0, 1.0),  # no wait asked, but the webhook takes one message a second
        ("nan", 1.0, 2.0),
        ("soon", 1.0, 2.0),
    ],
)
def test_429_waits_retry_after_seconds_or_backs_off(value: str, low: float, high: float) -> None:
    sleeps: list[float] = []

    assert _retry(_delivery(sleeps), RetryState(), status=429, headers={"retry-after": value})
    (wait,) = sleeps
    assert low <= wait <= high


@pytest.mark.parametrize(
    "error", [TimeoutError("timed out"), ConnectionRefusedError(111, "refused"), OSError()]
)
def test_timeouts_and_connection_errors_are_retried(error: Exception) -> None:
    sleeps: list[float] = []

    assert _retry(_delivery(sleeps), RetryState(), error=error)
    assert len(sleeps) == 1


def test_max_attempts_counts_the_first_attempt() -> None:
    sleeps: list[float] = []
    delivery = _delivery(sleeps, max_attempts=2)
    state = RetryState()

    assert _retry(delivery, state, status=500)
    assert not _retry(delivery, state, status=500)
    assert delivery.attempts == 2
    assert delivery.cut is None


def test_a_wait_ending_past_the_budget_is_not_started() -> None:
    sleeps: list[float] = []
    delivery = _delivery(sleeps, total=10.0)

    assert not _retry(delivery, RetryState(), status=429, headers={"Retry-After": "10"})
    assert sleeps == []
    assert delivery.cut == "next retry would exceed the 10s budget"
    assert delivery.attempts == 1


def test_the_next_request_timeout_is_cut_to_the_budget_left() -> None:
    sleeps: list[float] = []
    delivery = _delivery(sleeps, total=10.0)

    assert _retry(delivery, RetryState(), status=429, headers={"Retry-After": "8"})
    assert delivery.client.timeout == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://webhooks.example.com/x", False),
        ("http://127.0.0.1:4567/services/T0/B0/x", False),  # the tests' stub, make demo's
        ("http://localhost:4567/services/T0/B0/x", False),
        ("http://[::1]:4567/services/T0/B0/x", False),
        ("http://webhooks.example.com/x", True),
        ("http://10.0.0.5/services/T0/B0/x", True),
        ("ftp://webhooks.example.com/x", True),
        ("https:///services", True),
    ],
)
def test_the_webhook_must_be_https_except_a_loopback_receiver(url: str, refused: bool) -> None:
    problem = webhook_url_problem(url)

    assert (problem is not None) is refused
    if problem is not None:
        assert "T0/B0" not in problem
