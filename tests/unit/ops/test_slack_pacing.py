"""Slack takes one message a second per webhook, and a 429's Retry-After holds for the
webhook: the pacing rule (pure), the pacer that keeps each webhook's pace, and the retry
handlers waiting for it (no network)."""

from __future__ import annotations

import pytest
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState

from chalicelib.slack import (
    MIN_POST_INTERVAL_SECONDS,
    WebhookPacer,
    _Delivery,
    pacing_wait,
)

URL = "http://127.0.0.1:9/services/T0/B0/x"
OTHER = "http://127.0.0.1:9/services/T0/B1/y"
T = 1_796_205_600.0  # an epoch of the size the delivery model's clock reads


# ---- the rule -------------------------------------------------------------------------------


def test_the_interval_is_one_second() -> None:
    assert MIN_POST_INTERVAL_SECONDS == 1.0


@pytest.mark.parametrize("last", [100.0, T])
def test_at_exactly_one_second_after_the_last_post_the_webhook_is_free(last: float) -> None:
    assert pacing_wait(last + 1.0, last_post=last, retry_after_until=None) == 0.0
    assert pacing_wait(last + 5.0, last_post=last, retry_after_until=None) == 0.0


def test_within_the_second_the_wait_is_what_is_left_of_it() -> None:
    assert pacing_wait(100.0, last_post=100.0, retry_after_until=None) == 1.0
    assert pacing_wait(100.25, last_post=100.0, retry_after_until=None) == 0.75
    assert pacing_wait(100.999, last_post=100.0, retry_after_until=None) == pytest.approx(0.001)
    assert pacing_wait(100.999, last_post=100.0, retry_after_until=None) > 0


@pytest.mark.parametrize("start", [100.0, T])
def test_at_exactly_the_retry_after_the_webhook_is_free(start: float) -> None:
    until = start + 30.0  # a 429 at ``start`` said Retry-After: 30
    assert pacing_wait(until, last_post=start, retry_after_until=until) == 0.0
    assert pacing_wait(until + 0.5, last_post=start, retry_after_until=until) == 0.0


def test_before_the_retry_after_has_passed_the_wait_is_what_is_left_of_it() -> None:
    assert pacing_wait(100.0, last_post=100.0, retry_after_until=130.0) == 30.0
    assert pacing_wait(129.5, last_post=100.0, retry_after_until=130.0) == 0.5
    assert pacing_wait(129.999, last_post=100.0, retry_after_until=130.0) > 0


def test_the_later_of_the_two_holds() -> None:
    # A Retry-After shorter than the second does not shorten it, nor the other way round.
    assert pacing_wait(100.0, last_post=100.0, retry_after_until=100.2) == 1.0
    assert pacing_wait(100.5, last_post=100.0, retry_after_until=103.0) == 2.5


def test_a_webhook_never_posted_to_is_free_and_a_wait_is_never_negative() -> None:
    assert pacing_wait(100.0, last_post=None, retry_after_until=None) == 0.0
    assert pacing_wait(100.0, last_post=10.0, retry_after_until=20.0) == 0.0


# ---- the pacer ------------------------------------------------------------------------------


def test_the_pacer_keeps_each_webhook_apart() -> None:
    pacer = WebhookPacer()
    pacer.answered(URL, 100.0, retry_after=30.0)

    assert pacer.wait(URL, 100.0) == 30.0
    assert pacer.rate_limited_for(URL, 110.0) == 20.0
    assert pacer.wait(OTHER, 100.0) == 0.0
    assert pacer.wait(URL, 130.0) == 0.0


def test_a_later_answer_never_shortens_a_retry_after() -> None:
    pacer = WebhookPacer()
    pacer.answered(URL, 100.0, retry_after=30.0)
    pacer.answered(URL, 101.0, retry_after=1.0)
    pacer.answered(URL, 102.0)

    assert pacer.wait(URL, 102.0) == 28.0
    assert pacer.wait(URL, 130.0) == 0.0


def test_one_pacer_per_clock_in_the_process() -> None:
    def clock() -> float:
        return 0.0

    def other_clock() -> float:
        return 0.0

    assert WebhookPacer.for_clock(clock) is WebhookPacer.for_clock(clock)
    assert WebhookPacer.for_clock(clock) is not WebhookPacer.for_clock(other_clock)


# ---- retries wait for the webhook too -------------------------------------------------------

REQUEST = HttpRequest(method="POST", url=URL, headers={})


def _delivery(sleeps: list[float], pacer: WebhookPacer, *, backoff: float) -> _Delivery:
    return _Delivery(
        URL,
        job="test",
        timeout=3.0,
        max_attempts=4,
        total_seconds=60.0,
        backoff_base=backoff,
        sleep=sleeps.append,
        clock=lambda: sum(sleeps),
        pacer=pacer,
    )


def _retry(delivery: _Delivery, state: RetryState, response: HttpResponse) -> bool:
    state.next_attempt_requested = False
    for handler in delivery.client.retry_handlers:
        if handler.can_retry(state=state, request=REQUEST, response=response, error=None):
            handler.prepare_for_next_attempt(
                state=state, request=REQUEST, response=response, error=None
            )
            break
    return state.next_attempt_requested


def test_a_retry_after_a_5xx_waits_at_least_the_webhooks_second() -> None:
    sleeps: list[float] = []
    pacer = WebhookPacer()
    delivery = _delivery(sleeps, pacer, backoff=0.01)

    assert _retry(delivery, RetryState(), HttpResponse(status_code=500, headers={}))
    assert sleeps == [1.0]  # not the 0.005-0.01 s of the backoff


def test_a_retry_after_a_429_waits_exactly_the_retry_after_and_the_pacer_keeps_it() -> None:
    sleeps: list[float] = []
    pacer = WebhookPacer()
    delivery = _delivery(sleeps, pacer, backoff=0.5)

    response = HttpResponse(status_code=429, headers={"Retry-After": ["7"]})
    assert _retry(delivery, RetryState(), response)
    assert sleeps == [7.0]
    assert pacer.rate_limited_for(URL, 0.0) == 7.0  # the next message would wait for it too
