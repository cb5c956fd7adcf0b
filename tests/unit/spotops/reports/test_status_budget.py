"""``spotops status``'s error budget rows: read by the functions' own reader from the ops
stack's objectives (GetMetricData stubbed as AWS documents it: moto has no PR() statistic)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from spotops.cli.render import print_status
from spotops.reports.budget import budget_rows, read_budgets
from spotops.reports.status import StatusReport

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LB = "app/spotops-dev/0123456789abcdef"
OPS_PARAMETERS = {
    "SloAvailabilityTarget": "99.5",
    "SloLatencyTarget": "99",
    "SloLatencyThresholdSeconds": "0.5",
    "SloWindowDays": "28",
    "LoadBalancerFullName": LB,
    "AppName": "spotops",
}


@pytest.fixture
def cloudwatch() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("cloudwatch", endpoint_url="http://127.0.0.1:1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answer(stubber: Stubber, hours: int, requests: float, errors: float, within: float) -> None:
    at = NOW - timedelta(hours=hours)

    def result(query_id: str, value: float) -> dict[str, Any]:
        return {"Id": query_id, "Timestamps": [at], "Values": [value], "StatusCode": "Complete"}

    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                result("requests", requests),
                result("elb5xx", 0),
                result("target5xx", errors),
                result("answered", requests),
                result("within0_5", within),
            ]
        },
        {"MetricDataQueries": ANY, "StartTime": at, "EndTime": NOW, "ScanBy": ANY},
    )


def test_status_rows_show_each_objective_its_budget_left_and_burn_rates(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    answer(stubber, 1, 10_000, 720, 98.0)  # 7.2% bad against 0.5%: 14.4x; 2% slow: 2x
    answer(stubber, 6, 60_000, 1_800, 99.4)  # 3% bad: 6x; 0.6% slow: 0.6x
    answer(stubber, 28 * 24, 1_000_000, 1_900, 99.88)  # 0.19% of 0.5%: 62% left; 88% left

    rows = budget_rows(read_budgets(lambda name: client, OPS_PARAMETERS, NOW))

    assert rows == [
        "availability 99.5% over 28 d: 62.0% left; burn rate 14.40x over 1 h, 6.00x over 6 h",
        "latency 99% within 0.5 s over 28 d: 88.0% left; burn rate 2.00x over 1 h, 0.60x over 6 h",
    ]


def test_an_unreadable_budget_is_shown_unknown_with_why(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    for _ in range(3):
        stubber.add_client_error("get_metric_data", "AccessDenied", http_status_code=403)

    rows = budget_rows(read_budgets(lambda name: client, OPS_PARAMETERS, NOW))

    assert rows == [
        "availability 99.5% over 28 d: budget unknown (GetMetricData failed (AccessDenied))",
        "latency 99% within 0.5 s over 28 d: budget unknown (GetMetricData failed (AccessDenied))",
    ]


def test_an_ops_stack_without_the_load_balancer_shows_unknown_without_a_call(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, _ = cloudwatch
    older = {k: v for k, v in OPS_PARAMETERS.items() if k != "LoadBalancerFullName"}

    rows = budget_rows(read_budgets(lambda name: client, older, NOW))

    assert rows[0] == (
        "availability 99.5% over 28 d: budget unknown (no load balancer to measure "
        "(SLO_LOAD_BALANCER is empty))"
    )


def test_invalid_objectives_are_one_row_naming_the_setting(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, _ = cloudwatch

    rows = budget_rows(
        read_budgets(lambda name: client, {**OPS_PARAMETERS, "SloLatencyTarget": "100"}, NOW)
    )

    assert rows == [
        "budget unknown: the ops stack's objectives are invalid: SLO_LATENCY_TARGET is "
        "invalid: the latency target must be above 0 and below 100 percent, got 100"
    ]


def test_an_overspent_budget_reads_exhausted() -> None:
    from chalicelib.slo import Budget, Objective

    (row,) = budget_rows([Budget(Objective("availability", 99.9), -0.4, 20.0, None)])

    assert row == (
        "availability 99.9% over 30 d: exhausted (-40.0%); burn rate 20.00x over 1 h, "
        "unknown over 6 h"
    )


def test_status_prints_the_budget_rows_under_their_heading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = StatusReport("us-east-1", [], budget=["availability 99.9% over 30 d: 62.0% left"])

    print_status(report)

    out = capsys.readouterr().out.splitlines()
    heading = out.index("Error budget (left over the window; burn rate 1x spends it exactly)")
    assert out[heading + 1] == "  availability 99.9% over 30 d: 62.0% left"
