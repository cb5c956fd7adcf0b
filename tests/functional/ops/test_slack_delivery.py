"""Slack delivery against a real HTTP server on 127.0.0.1: retries, Retry-After, DLQ, and
the webhook's pace across messages.

The transport is slack_sdk's WebhookClient; every wait goes through the injected ``sleep``
(a list here), so the tests run fast and assert the waits. Each notifier gets a pacer of its
own unless the test says otherwise (the process's pacer would carry one test's 429 into the
next on the same port).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from chalicelib.controls import Controls
from chalicelib.errors import ControlsError
from chalicelib.slack import (
    TRUNCATED,
    SlackMessage,
    SlackNotifier,
    WebhookPacer,
    build_message,
)
from tests.support.ops_world import LogLines, World
from tests.support.slack_limits import slack_refusal
from tests.support.slack_stub import SlackStub

MESSAGE = build_message("Test", "hello from the tests", runbook="https://runbooks.example.com/x.md")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk sends through HTTPS_PROXY/HTTP_PROXY when set and ignores NO_PROXY, so a
    # developer's proxy would swallow the requests meant for the stub on 127.0.0.1.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


def notifier(world: World, url: str, sleeps: list[float], **kwargs: Any) -> SlackNotifier:
    options: dict[str, Any] = {
        "timeout": 0.3,
        "max_attempts": 3,
        "max_total_seconds": 30.0,
        "backoff_base_seconds": 0.01,
        "pacer": WebhookPacer(),
    }
    options.update(kwargs)
    return SlackNotifier(
        webhook_url=lambda: url,
        sqs=world.clients.sqs,
        dlq_url=world.dlq_url,
        sleep=sleeps.append,
        **options,
    )


def sleeps_as_clock(sleeps: list[float]) -> Any:
    """A clock that moves only by the injected sleeps: the budget sees exactly the waits."""
    return lambda: sum(sleeps)


def test_delivers_blocks_and_fallback_text(world: World, slack: SlackStub) -> None:
    result = notifier(world, slack.url, []).post(MESSAGE, job="test")

    assert result.delivered
    assert result.attempts == 1
    (body,) = slack.bodies
    assert body["text"].startswith("Test: hello from the tests")
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Test"},
    }
    assert world.dlq_messages() == []


def test_429_waits_retry_after_then_delivers(world: World, slack: SlackStub) -> None:
    slack.script.extend([("429", "7"), "200"])
    sleeps: list[float] = []

    result = notifier(world, slack.url, sleeps).post(MESSAGE, job="test")

    assert result.delivered
    assert result.attempts == 2
    assert sleeps == [7.0]  # exactly the header: no jitter added, no time.sleep
    assert len(slack.bodies) == 2


def test_429_without_seconds_in_retry_after_backs_off_instead(
    world: World, slack: SlackStub
) -> None:
    slack.script.extend([("429", "Wed, 21 Oct 2015 07:28:00 GMT"), "200"])
    sleeps: list[float] = []

    result = notifier(world, slack.url, sleeps, backoff_base_seconds=2).post(MESSAGE, job="test")

    assert result.delivered
    assert result.attempts == 2
    (wait,) = sleeps
    assert 1.0 <= wait <= 2.0  # the first backoff: [0.5, 1] of the base


def test_retry_after_beyond_the_time_budget_goes_to_the_dlq(world: World, slack: SlackStub) -> None:
    slack.script.append(("429", "120"))
    sleeps: list[float] = []

    result = notifier(world, slack.url, sleeps, max_total_seconds=10).post(MESSAGE, job="test")

    assert not result.delivered
    assert result.dead_lettered
    assert result.attempts == 1
    assert sleeps == []
    (dead,) = world.dlq_messages()
    assert dead["reason"] == "HTTP 429 rate limited; next retry would exceed the 10s budget"
    assert dead["attempts"] == 1


def test_budget_cuts_a_backoff_that_would_end_past_it(world: World, slack: SlackStub) -> None:
    slack.default = "500"
    sleeps: list[float] = []
    kit = notifier(
        world,
        slack.url,
        sleeps,
        max_attempts=4,
        max_total_seconds=5,
        backoff_base_seconds=4,
        clock=sleeps_as_clock(sleeps),
    )

    result = kit.post(MESSAGE, job="test")

    # first wait in [2, 4] fits; the second, in [4, 8], would end past 5 s: not started
    assert len(sleeps) == 1
    assert result.attempts == 2
    assert len(slack.bodies) == 2
    assert result.reason == "HTTP 500; next retry would exceed the 5s budget"
    assert world.dlq_messages()[0]["attempts"] == 2


def test_request_timeout_is_cut_to_what_is_left_of_the_budget(
    world: World, slack: SlackStub
) -> None:
    slack.default = "hang"
    started = time.monotonic()

    result = notifier(world, slack.url, [], timeout=5, max_total_seconds=0.3).post(
        MESSAGE, job="test"
    )

    assert time.monotonic() - started < 2  # not the 5 s request timeout
    assert result.attempts == 1
    assert result.reason == "timed out; next retry would exceed the 0.3s budget"


def test_5xx_backs_off_then_delivers(world: World, slack: SlackStub) -> None:
    slack.script.extend(["500", "500", "200"])
    sleeps: list[float] = []

    result = notifier(world, slack.url, sleeps).post(MESSAGE, job="test")

    assert result.delivered
    assert result.attempts == 3
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0] / 2  # backoff grows (with jitter in [0.5, 1] of the ceiling)


def test_persistent_5xx_goes_to_the_dlq_with_the_reason(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    slack.default = "500"
    sleeps: list[float] = []

    result = notifier(world, slack.url, sleeps).post(MESSAGE, job="test")

    assert result.attempts == 3
    assert len(slack.bodies) == 3
    assert len(sleeps) == 2  # no wait after the last attempt
    assert result.dead_lettered
    (dead,) = world.dlq_messages()
    assert dead == {
        "job": "test",
        "reason": "HTTP 500",
        "attempts": 3,
        "message": MESSAGE.payload(),
    }
    assert slack.url not in logs.text
    assert "T00000000" not in logs.text
    assert logs.text.count("slack delivery attempt failed; retrying") == 2


def test_hanging_webhook_times_out_and_goes_to_the_dlq(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    slack.default = "hang"

    result = notifier(world, slack.url, [], timeout=0.2, max_attempts=2).post(MESSAGE, job="t")

    assert result.dead_lettered
    assert result.attempts == 2
    assert world.dlq_messages()[0]["reason"] == "timed out"
    assert slack.url not in logs.text


def test_client_error_is_not_retried(world: World, slack: SlackStub) -> None:
    slack.default = "400"
    sleeps: list[float] = []

    result = notifier(world, slack.url, sleeps).post(MESSAGE, job="test")

    assert result.attempts == 1
    assert len(slack.bodies) == 1
    assert sleeps == []
    assert world.dlq_messages()[0]["reason"] == "HTTP 400 invalid_payload"


def test_a_message_over_slacks_limits_is_cut_delivered_and_its_full_text_logged(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    # Slack answers 400 to a message over its limits, and a 400 is not retried: before the
    # cap, a long alarm reason or list of findings (50 sections of 3,000 characters) went to
    # the dead-letter queue and on-call heard nothing.
    slack.check = slack_refusal
    body = "\n".join(f"finding {i:05d} " + "z" * 90 for i in range(1500))
    message = build_message(
        "Many findings", body, runbook="https://runbooks.example.com/x.md", footer="spotops-test"
    )

    result = notifier(world, slack.url, []).post(message, job="test")

    assert result.delivered, result
    assert world.dlq_messages() == []
    (sent,) = slack.bodies
    assert slack_refusal(sent) is None
    sections = [b["text"]["text"] for b in sent["blocks"] if b["type"] == "section"]
    assert sections[-2].endswith(TRUNCATED)
    assert "https://runbooks.example.com/x.md" in sections[-1]
    (logged,) = [r for r in logs.records() if "truncated to fit" in r["message"]]
    assert logged["full_text"].count("finding ") == 1500
    assert logged["job"] == "test"


def test_a_message_built_elsewhere_is_cut_to_slacks_limits_before_it_is_sent(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    slack.check = slack_refusal
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "w" * 3000}} for _ in range(60)
    ]

    result = notifier(world, slack.url, []).post(SlackMessage("t", blocks), job="test")

    assert result.delivered, result
    (sent,) = slack.bodies
    assert slack_refusal(sent) is None
    assert sent["blocks"][-1]["text"]["text"].endswith(TRUNCATED)
    (logged,) = [r for r in logs.records() if "truncated to fit" in r["message"]]
    assert logged["full_text"].count("w") == 180_000


def test_unreachable_webhook_is_retried_then_goes_to_the_dlq(world: World) -> None:
    from tests.support.net import free_port

    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/nothing-listens"
    sleeps: list[float] = []
    result = notifier(world, url, sleeps).post(MESSAGE, job="test")

    assert result.dead_lettered
    assert result.attempts == 3
    assert len(sleeps) == 2
    assert world.dlq_messages()[0]["reason"] == "connection error (ConnectionRefusedError)"


@pytest.mark.parametrize(
    ("script", "options"),
    [
        (["500"], {}),
        (["400"], {}),
        ([("429", "120")], {"max_total_seconds": 10}),
        (["hang"], {"timeout": 0.1, "max_attempts": 2}),
        (["500", "200"], {}),
    ],
)
def test_webhook_url_is_never_logged_even_at_debug(
    world: World,
    slack: SlackStub,
    logs: LogLines,
    caplog: pytest.LogCaptureFixture,
    script: list[Any],
    options: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, slack_sdk's included
    slack.default = script[-1]
    slack.script.extend(script[:-1])

    notifier(world, slack.url, [], **options).post(MESSAGE, job="test")

    for text in (caplog.text, logs.text, str(world.dlq_messages())):
        assert "T00000000" not in text
        assert "FAKEwebhookTOKEN" not in text


def test_dlq_failure_logs_the_message_as_lost_and_does_not_raise(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    slack.default = "400"
    world.dlq_url = world.dlq_url.rsplit("/", 1)[0] + "/no-such-queue"

    result = notifier(world, slack.url, []).post(MESSAGE, job="test")

    assert not result.delivered
    assert not result.dead_lettered
    assert result.reason == "HTTP 400 invalid_payload"
    (lost,) = [line for line in logs.lines if "slack message lost" in line]
    assert '"level":"ERROR"' in lost.replace(" ", "")
    assert "T00000000" not in logs.text


def _controls(world: World, secret: str) -> Controls:
    return Controls(
        ssm=world.clients.ssm,
        secretsmanager=world.clients.secretsmanager,
        kill_switch_parameter=world.kill_switch,
        kill_switch_cache_seconds=0,
        dry_run=False,
        dry_run_parameter=world.dry_run_parameter,
        webhook_secret_name=secret,
        secret_cache_seconds=0,
        stage="test",
    )


def test_webhook_url_comes_from_the_secret_plain_or_json(world: World, slack: SlackStub) -> None:
    assert _controls(world, world.secret_name).webhook_url() == slack.url
    world.clients.secretsmanager.create_secret(
        Name="ops/json-webhook", SecretString='{"url": "https://hooks.example.com/x"}'
    )
    assert _controls(world, "ops/json-webhook").webhook_url() == "https://hooks.example.com/x"


SET_IT = "set it with `spotops slack-webhook set --stage test` (runbooks/slack-webhook-missing.md)"


def test_missing_secret_dead_letters_saying_how_to_set_it(world: World, logs: LogLines) -> None:
    controls = _controls(world, "ops/does-not-exist")
    with pytest.raises(ControlsError) as raised:
        controls.webhook_url()
    assert str(raised.value) == (
        f"cannot read secret ops/does-not-exist (ResourceNotFoundException); {SET_IT}"
    )

    result = SlackNotifier(
        webhook_url=controls.webhook_url, sqs=world.clients.sqs, dlq_url=world.dlq_url
    ).post(MESSAGE, job="test")

    assert result.dead_lettered
    assert result.attempts == 0
    reason = world.dlq_messages()[0]["reason"]
    assert reason.startswith("cannot read secret ops/does-not-exist")
    assert reason.endswith(SET_IT)
    assert SET_IT in logs.text  # the dead-letter warning carries the fix too


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("hooks.example.com/services/T0/B0/not-a-url", "does not hold an http(s) URL"),
        ('{"channel": "#ops"}', "does not hold an http(s) URL"),
        ('{"url": "https://hooks.example.com/services/T0/B0/x"', "is not valid JSON"),
        ("", "does not hold an http(s) URL"),
    ],
)
def test_secret_without_a_url_says_how_to_set_it_and_never_echoes_it(
    world: World, secret: str, problem: str
) -> None:
    world.clients.secretsmanager.create_secret(Name="ops/bad-webhook", SecretString=secret or " ")

    with pytest.raises(ControlsError) as raised:
        _controls(world, "ops/bad-webhook").webhook_url()

    message = str(raised.value)
    assert message == f"secret ops/bad-webhook {problem}; {SET_IT}"
    assert "hooks.example.com" not in message


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T00000000/B00000000/FAKEwebhookTOKEN",
        "http://192.0.2.1/services/T00000000/B00000000/FAKEwebhookTOKEN",  # TEST-NET-1
        '{"url": "http://hooks.slack.com/services/T00000000/B00000000/FAKEwebhookTOKEN"}',
    ],
)
def test_a_plain_http_webhook_is_refused_before_any_request_and_dead_lettered(
    world: World, logs: LogLines, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    # The webhook URL is a bearer secret: plain http would send it, and the message, in clear
    # text. Only a loopback receiver (the tests' stub, make demo's) may be plain http.
    world.clients.secretsmanager.create_secret(Name="ops/http-webhook", SecretString=url)
    controls = _controls(world, "ops/http-webhook")

    result = SlackNotifier(
        webhook_url=controls.webhook_url,
        sqs=world.clients.sqs,
        dlq_url=world.dlq_url,
        timeout=0.3,
        max_attempts=2,
        max_total_seconds=1.0,
        sleep=lambda _: None,
    ).post(MESSAGE, job="test")

    assert not result.delivered
    assert result.dead_lettered
    assert result.attempts == 0  # no request was made
    (dead,) = world.dlq_messages()
    assert dead["reason"].startswith("the webhook URL in the secret uses plain http://")
    assert dead["reason"].endswith("set it again (runbooks/slack-webhook-missing.md)")
    for text in (dead["reason"], logs.text, caplog.text):
        assert "FAKEwebhookTOKEN" not in text


def test_a_plain_http_webhook_on_loopback_is_the_local_receiver_and_is_used(
    world: World, slack: SlackStub
) -> None:
    assert slack.url.startswith("http://127.0.0.1:")

    result = notifier(world, slack.url, []).post(MESSAGE, job="test")

    assert result.delivered
    assert len(slack.bodies) == 1


# ---- the webhook's pace across messages: one a second, nothing before a Retry-After ------------


class Clock:
    """Seconds that move only by the notifier's sleeps, or when the test moves them."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def paced(world: World, url: str, clock: Clock, **kwargs: Any) -> SlackNotifier:
    """A notifier on ``clock``, with the process's pacer of that clock unless one is given."""
    options: dict[str, Any] = {
        "timeout": 0.3,
        "max_attempts": 1,
        "max_total_seconds": 15.0,
        "backoff_base_seconds": 0.01,
    }
    options.update(kwargs)
    return SlackNotifier(
        webhook_url=lambda: url,
        sqs=world.clients.sqs,
        dlq_url=world.dlq_url,
        sleep=clock.sleep,
        clock=clock,
        **options,
    )


def test_the_next_message_waits_for_the_rest_of_the_webhooks_second(
    world: World, slack: SlackStub
) -> None:
    clock = Clock()
    kit = paced(world, slack.url, clock)

    assert kit.post(MESSAGE, job="test").delivered
    clock.now += 0.25
    assert kit.post(MESSAGE, job="test").delivered

    assert clock.sleeps == [0.75]
    assert len(slack.bodies) == 2


def test_a_message_exactly_one_second_later_is_sent_at_once(world: World, slack: SlackStub) -> None:
    clock = Clock()
    kit = paced(world, slack.url, clock)

    assert kit.post(MESSAGE, job="test").delivered
    clock.now += 1.0
    assert kit.post(MESSAGE, job="test").delivered

    assert clock.sleeps == []
    assert len(slack.bodies) == 2


def test_every_notifier_of_the_process_shares_the_webhooks_pace(
    world: World, slack: SlackStub
) -> None:
    # The default notifier and a severity channel's posting to the same webhook.
    clock = Clock()

    assert paced(world, slack.url, clock).post(MESSAGE, job="remediation").delivered
    assert paced(world, slack.url, clock).post(MESSAGE, job="remediation").delivered

    assert clock.sleeps == [1.0]


def test_after_a_long_429_nothing_is_sent_before_its_retry_after(
    world: World, slack: SlackStub, logs: LogLines
) -> None:
    # The storm's counterexample: a 429 asking for 30 s, past the message's 15 s budget.
    clock = Clock()
    kit = paced(world, slack.url, clock, max_attempts=4, pacer=WebhookPacer())
    slack.script.append(("429", "30"))

    first = kit.post(MESSAGE, job="remediation")
    clock.now += 2.0
    second = kit.post(MESSAGE, job="remediation")

    assert first.dead_lettered
    assert first.reason == "HTTP 429 rate limited; next retry would exceed the 15s budget"
    assert second.dead_lettered
    assert second.attempts == 0
    assert len(slack.bodies) == 1  # the second was never sent
    assert clock.sleeps == []  # and dead-lettered at once, not after waiting
    dead = world.dlq_messages()
    reasons = [letter["reason"] for letter in dead]
    assert reasons[1] == (
        "not sent: Slack rate-limited the webhook (HTTP 429) for 28.0s more (Retry-After), "
        "past the 15s budget"
    )
    assert [letter["message"] for letter in dead] == [MESSAGE.payload()] * 2
    assert "T00000000" not in logs.text + str(reasons)

    clock.now += 28.0  # exactly the Retry-After
    third = kit.post(MESSAGE, job="remediation")

    assert third.delivered
    assert clock.sleeps == []
    assert len(slack.bodies) == 2


def test_a_retry_after_within_the_budget_is_waited_by_the_next_message(
    world: World, slack: SlackStub
) -> None:
    # The last attempt met the 429 (no retry left): the next message waits the rest of it.
    clock = Clock()
    kit = paced(world, slack.url, clock, max_attempts=1, pacer=WebhookPacer())
    slack.script.append(("429", "5"))

    first = kit.post(MESSAGE, job="test")
    clock.now += 1.5
    second = kit.post(MESSAGE, job="test")

    assert first.dead_lettered
    assert first.reason == "HTTP 429 rate limited"
    assert second.delivered
    assert clock.sleeps == [3.5]
    assert len(slack.bodies) == 2


def test_a_message_with_no_budget_left_for_the_webhooks_second_is_dead_lettered_at_once(
    world: World, slack: SlackStub
) -> None:
    clock = Clock()
    kit = paced(world, slack.url, clock, max_total_seconds=0.5, pacer=WebhookPacer())

    assert kit.post(MESSAGE, job="test").delivered
    result = kit.post(MESSAGE, job="test")

    assert result.dead_lettered
    assert result.attempts == 0
    assert result.reason == (
        "not sent: the webhook takes one message a second, the next in 1.00s, past the 0.5s budget"
    )
    assert len(slack.bodies) == 1
    assert clock.sleeps == []
