"""The scan alert rule, as a pure function."""

from __future__ import annotations

from chalicelib.scan.flow import describe_counts, scan_verdict, serious_findings

RUNNING = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def test_high_or_critical_in_a_running_image_alerts() -> None:
    assert scan_verdict({"HIGH": 1}, RUNNING, {RUNNING, OTHER}).alert
    assert scan_verdict({"CRITICAL": 4, "LOW": 9}, RUNNING, {RUNNING}).alert


def test_medium_and_below_never_alert() -> None:
    verdict = scan_verdict({"MEDIUM": 50, "LOW": 3, "UNDEFINED": 1}, RUNNING, {RUNNING})
    assert not verdict.alert
    assert verdict.reason == "no HIGH or CRITICAL findings"


def test_an_image_nobody_runs_never_alerts() -> None:
    assert not scan_verdict({"CRITICAL": 1}, OTHER, {RUNNING}).alert
    assert not scan_verdict({"CRITICAL": 1}, OTHER, set()).alert


def test_counts_are_described_most_severe_first() -> None:
    assert describe_counts({"LOW": 2, "CRITICAL": 1, "HIGH": 3}) == "CRITICAL 1, HIGH 3, LOW 2"
    assert serious_findings({"LOW": 2, "HIGH": 0, "CRITICAL": 1}) == {"CRITICAL": 1}
    assert describe_counts({}) == "none"
