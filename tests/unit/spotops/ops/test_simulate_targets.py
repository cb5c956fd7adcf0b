"""On AWS the emulator-only parts of ``spotops simulate`` refuse and touch nothing; the
verdict line says why."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from spotops.errors import UsageError
from spotops.ops.local_lambda import Invocation
from spotops.ops.simulate import verdict
from spotops.target import AWS


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: AWS.put_image(c, "shop-qa-site", "v1.0.0"), "spotops push"),
        (lambda c: AWS.start_image_scan(c, "shop-qa-site", "v1.0.0"), "scans each image"),
        (
            lambda c: AWS.settle_deployment(c, "shop-qa", "shop-qa-site", "failed", apply=False),
            "only on the local emulator",
        ),
    ],
)
def test_aws_refuses_what_only_a_stand_in_may_do_and_calls_nothing(call, named) -> None:
    client = mock.Mock()

    with pytest.raises(UsageError) as refused:
        call(client)

    assert refused.value.exit_code == 2
    assert named in str(refused.value)
    assert client.mock_calls == []


def test_aws_keeps_its_alarms_and_strategies_so_nothing_is_put_back() -> None:
    client = mock.Mock()

    assert AWS.place_alarm(client, {"AlarmName": "x"}, "ALARM") is None
    assert (
        AWS.restore_strategy(client, "c", "s", [{"capacityProvider": "FARGATE"}], apply=True)
        is None
    )
    assert client.mock_calls == []


def test_a_hook_verdict_names_the_failed_check_and_a_chaos_verdict_the_guard() -> None:
    logs = "\n".join(
        [
            "not json",
            json.dumps(
                {
                    "message": "smoke test failed",
                    "check": "/healthz",
                    "url": "http://127.0.0.1:9/healthz",
                    "error": "connection refused",
                }
            ),
            json.dumps(
                {
                    "message": "smoke tests failed: rolling back",
                    "hook_status": "FAILED",
                    "reason": "smoke tests failed: /healthz",
                }
            ),
        ]
    )
    hook = verdict(Invocation({"hookStatus": "FAILED"}, logs, {}))
    chaos = verdict(
        Invocation(
            {
                "status": "no-kill",
                "reason": "1 no-kill",
                "services": [{"service": "c/s", "reason": "lock: c/s is locked"}],
            },
            "",
            {},
        )
    )
    silent = verdict(Invocation({"hookStatus": "SUCCEEDED"}, "", {}))

    assert hook == (
        "FAILED",
        "http://127.0.0.1:9/healthz: connection refused; smoke tests failed: /healthz",
    )
    assert chaos == ("no-kill", "1 no-kill; c/s: lock: c/s is locked")
    assert silent == ("SUCCEEDED", "(the function gave no reason)")
