"""The rows doctor and verify answer with: a failing row always says what to do, and the
exit code follows the rows (warnings and emulator rows do not fail a run)."""

from __future__ import annotations

import json

import pytest

from spotops.proof.rows import ProofReport, Row, State


@pytest.mark.parametrize("state", [State.WARN, State.FAIL])
def test_a_row_that_asks_for_action_must_say_which(state: State) -> None:
    with pytest.raises(ValueError, match="without advice"):
        Row("quota", state, "32 of 6 vCPU")


@pytest.mark.parametrize("state", [State.OK, State.EMULATOR, State.SKIP])
def test_rows_that_ask_for_nothing_need_no_advice(state: State) -> None:
    assert Row("quota", state, "seen").advice == ""


@pytest.mark.parametrize(
    ("states", "code", "first"),
    [
        ([], 0, None),
        ([State.OK, State.WARN, State.EMULATOR, State.SKIP], 0, None),
        ([State.OK, State.FAIL, State.WARN, State.FAIL], 1, "row1"),
    ],
    ids=["no-rows", "warnings-pass", "first-failure-named"],
)
def test_the_exit_code_and_first_failure_follow_the_rows(
    states: list[State], code: int, first: str | None
) -> None:
    rows = [Row(f"row{i}", s, "seen", advice="do this") for i, s in enumerate(states)]
    report = ProofReport("verify", "dev", "region us-east-1", rows)
    assert report.exit_code == code
    assert (report.first_failure.name if report.first_failure else None) == first


def test_the_json_carries_every_row_and_the_exit_code() -> None:
    rows = [
        Row("quota", State.WARN, "5 of 6 vCPU", advice="ask for more", seconds=0.12345),
        Row("slack", State.SKIP, "--no-slack"),
    ]
    data = json.loads(ProofReport("doctor", "prod", "region eu-west-1", rows).to_json())
    assert data["exit_code"] == 0
    assert data["rows"][0] == {
        "name": "quota",
        "state": "warn",
        "detail": "5 of 6 vCPU",
        "advice": "ask for more",
        "runbook": "",
        "seconds": 0.123,
    }
    assert [row["state"] for row in data["rows"]] == ["warn", "skip"]
