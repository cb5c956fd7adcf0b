"""Figures are medians with their range; wrk's report is read as wrk writes it."""

from __future__ import annotations

import math

import pytest

from benchmarks.figures import Figure
from benchmarks.report import Options, PartResult, render, verdict
from benchmarks.wrk import parse

WRK_REPORT = """Running 6s test @ http://127.0.0.1:41234/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.53ms  410.22us  12.01ms   91.02%
    Req/Sec    10.50k   412.33    11.02k    70.00%
  Latency Distribution
     50%    1.48ms
     75%    1.62ms
     90%    1.80ms
     99%  850.00us
  62694 requests in 6.00s, 25.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  10449.00
Transfer/sec:      4.18MB
"""


def test_a_figure_is_the_median_with_the_lowest_and_highest_run() -> None:
    figure = Figure.of([5.0, 1.0, 3.0, 4.0], "us")

    assert (figure.median, figure.low, figure.high, figure.runs) == (3.5, 1.0, 5.0, 4)
    assert figure.text() == "3.5 us (1.0-5.0)"
    assert Figure.of([1.234], "x").text(2) == "1.23x"


def test_error_if_a_figure_has_no_run() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        Figure.of([], "ms")


def test_wrk_report_is_read_with_its_units() -> None:
    result = parse(WRK_REPORT)

    assert result.requests == 62694
    assert math.isclose(result.seconds, 6.0)
    assert math.isclose(result.requests_per_s, 10449.0)
    assert math.isclose(result.p50_ms, 1.48)
    assert math.isclose(result.p99_ms, 0.85)
    assert (result.socket_errors, result.non_2xx_3xx, result.failed) == (3, 4, 7)


def test_error_if_wrk_said_nothing_readable() -> None:
    with pytest.raises(RuntimeError, match="cannot read"):
        parse("unable to connect to 127.0.0.1:1 Connection refused")


def test_the_table_shows_goals_missed_and_failures_loudly() -> None:
    result = PartResult(
        "site",
        rows=[("CPU per request", "100.0 us")],
        problems=["3 requests failed"],
        goals_missed=["1.30x bare"],
    )

    table = render([result])

    assert "CPU per request  100.0 us" in table
    assert "OVER GOAL: 1.30x bare" in table
    assert "!! FAILED: 3 requests failed" in table


def test_a_short_run_is_not_judged_against_a_goal() -> None:
    assert verdict(1.1, 1.2, Options()) == "within the 1.2x goal"
    assert verdict(1.3, 1.2, Options()) == "OVER the 1.2x goal"
    assert verdict(1.3, 1.2, Options(short=True)).startswith("(short mode")
