"""How doctor and verify print: every row with its advice and runbook, then the verdict naming
the first failure and its runbook (what on-call opens next)."""

from __future__ import annotations

import pytest

from spotops.cli import render
from spotops.proof.rows import ProofReport, Row, State


def test_a_failing_run_names_its_first_failure_and_runbook_last(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = ProofReport(
        "verify",
        "dev",
        "region us-east-1",
        [
            Row("rules", State.OK, "4 rules enabled", seconds=0.4),
            Row(
                "alarm-topic",
                State.FAIL,
                "subscription pending",
                advice="confirm the subscription",
                runbook="runbooks/dead-letter-queue.md",
            ),
            Row("slack", State.FAIL, "webhook answered 404", advice="set the webhook"),
            Row("site", State.EMULATOR, "local site answered"),
        ],
    )
    render.print_proof(report)
    out = capsys.readouterr().out
    assert "confirm the subscription (runbooks/dead-letter-queue.md)" in out
    assert "set the webhook" in out
    last = out.strip().splitlines()[-1]
    assert last == (
        "verify: alarm-topic fails (1 ok, 2 fail, 1 emulator); "
        "runbook runbooks/dead-letter-queue.md."
    )


def test_a_clean_run_says_nothing_fails_with_its_tally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = ProofReport(
        "doctor",
        "prod",
        "region eu-west-1",
        [
            Row("quota", State.WARN, "10 of 12 vCPU", advice="ask for more"),
            Row("slack", State.SKIP, "not asked"),
        ],
    )
    render.print_proof(report)
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "doctor: nothing fails (1 warn, 1 skip)."
    )
