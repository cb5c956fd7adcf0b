"""Which URLs may be loaded without asking, and how Locust's results are read and judged."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from loadtest.__main__ import UsageError, confirm, duration, main
from loadtest.summary import Thresholds, read_stats
from loadtest.target import Target, TargetError, is_local, parse_url, resolve

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/,600,0,3,3.5,1,40,733.0,20.0,0.0,3,3,4,4,5,7,9,12,30,40,40
GET,404,100,2,2,2.1,1,9,58.0,3.3,0.07,2,2,2,2,3,4,5,6,9,9,9
,Aggregated,700,2,3,3.3,1,40,636.0,23.3,0.07,3,3,4,4,5,6,8,11,30,40,40
"""  # noqa: E501 - Locust's own header line


def write_record(project: Path, stage: str, site_url: str) -> None:
    (project / ".spotops").mkdir()
    record = {"stage": stage, "stacks": {f"spotops-{stage}-site": {"SiteUrl": site_url}}}
    (project / ".spotops" / f"deployed-{stage}.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.9.9.9", True),
        ("http://localhost:8081/", True),
        ("http://[::1]:8080", True),
        ("http://10.0.0.5:8080", False),
        ("https://example.com", False),
        ("http://127.0.0.1.example.com", False),
    ],
)
def test_this_machine_is_only_loopback(url: str, local: bool) -> None:
    assert is_local(url) is local


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8080", "ftp://x", "http://", "http://h/?q=1", "http://h:99999"]
)
def test_error_if_the_url_is_not_a_site_base_url(url: str) -> None:
    with pytest.raises(TargetError):
        parse_url(url)


def test_the_stages_recorded_site_url_needs_no_confirmation(tmp_path: Path) -> None:
    write_record(tmp_path, "dev", "http://spotops-dev-1.us-east-1.elb.amazonaws.com")

    own = resolve("http://spotops-dev-1.us-east-1.elb.amazonaws.com/", tmp_path, "dev")
    other_stage = resolve("http://spotops-dev-1.us-east-1.elb.amazonaws.com", tmp_path, "prod")
    elsewhere = resolve("https://spotops-dev-1.us-east-1.elb.amazonaws.com", tmp_path, "dev")
    local = resolve("http://127.0.0.1:8080", tmp_path, "dev")

    assert own.needs_confirmation is False
    assert other_stage.needs_confirmation is True  # nothing recorded for prod
    assert elsewhere.needs_confirmation is True  # another scheme, another port
    assert local.needs_confirmation is False


def _args(**overrides: object) -> argparse.Namespace:
    values = {"yes": False, "stage": "dev", "users": 5, "duration": "30s"}
    values.update(overrides)
    return argparse.Namespace(**values)


def test_someone_elses_server_is_loaded_only_after_a_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target("https://example.com", local=False, stage_url=None)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")

    with pytest.raises(UsageError, match="not confirmed"):
        confirm(target, _args())
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    confirm(target, _args())
    confirm(target, _args(yes=True))


def test_without_a_terminal_a_foreign_url_needs_yes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    # 203.0.113.0/24 is reserved for documentation: refused before anything is sent.
    code = main(["--url", "http://203.0.113.10:8080", "--users", "1", "--duration", "1s"])

    assert code == 2
    assert "Pass --yes" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "run_time"), [("90", "90s"), ("2m", "2m"), ("1h30m", "1h30m")])
def test_durations_are_locusts(given: str, run_time: str) -> None:
    assert duration(given) == run_time


@pytest.mark.parametrize("given", ["", "soon", "1d", "m"])
def test_error_if_a_duration_is_not_one(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(given)


def test_locusts_csv_is_read_per_request_and_overall(tmp_path: Path) -> None:
    path = tmp_path / "stats_stats.csv"
    path.write_text(STATS)

    summary = read_stats(path)

    assert [row.name for row in summary.rows] == ["/", "404"]
    total = summary.total
    assert (total.requests, total.failures, total.p50_ms, total.p95_ms, total.p99_ms) == (
        700,
        2,
        3,
        6,
        11,
    )
    assert total.error_rate_pct == pytest.approx(0.2857, abs=1e-3)
    assert "all" in summary.table()


def test_thresholds_are_judged_on_the_whole_run(tmp_path: Path) -> None:
    path = tmp_path / "stats_stats.csv"
    path.write_text(STATS)
    summary = read_stats(path)

    assert summary.broken(Thresholds()) == []
    assert summary.broken(Thresholds(max_error_rate_pct=0.5, max_p99_ms=11)) == []
    assert summary.broken(Thresholds(max_error_rate_pct=0.1, max_p99_ms=10)) == [
        "error rate 0.29% > 0.1%",
        "p99 11 ms > 10 ms",
    ]
