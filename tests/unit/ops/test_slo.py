"""The error budget arithmetic against the SRE workbook's table, and the reader against
GetMetricData's documented response (botocore's Stubber: moto has no PR() statistics)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.errors import SettingsError
from chalicelib.slo import (
    AVAILABILITY,
    LATENCY,
    Budget,
    BudgetReader,
    Counts,
    Objective,
    budget_left,
    budget_line,
    budget_spent,
    burn_rate,
    load_slo_settings,
)

AVAIL = Objective(AVAILABILITY, 99.9, 30)
LAT = Objective(LATENCY, 99.9, 30, threshold_seconds=0.3)
LB = "app/spotops-dev/0123456789abcdef"
NOW = datetime(2026, 12, 7, 12, 0, 30, tzinfo=UTC)
END = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


# ---- the arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "hours", "spent"),
    [(14.4, 1, 0.02), (6, 6, 0.05), (1, 72, 0.10)],
    ids=["fast page 1 h", "slow page 6 h", "ticket 3 days"],
)
def test_burn_rates_spend_the_workbooks_share_of_a_30_day_budget(
    rate: float, hours: float, spent: float
) -> None:
    assert budget_spent(rate, hours, 30) == pytest.approx(spent)


def test_a_bad_fraction_of_14_4_budgets_burns_at_14_4_and_spends_2_percent_in_an_hour() -> None:
    hour = Counts(total=100_000, bad=1_440)  # 1.44% bad against a 0.1% budget

    rate = burn_rate(AVAIL, hour)

    assert rate == pytest.approx(14.4)
    assert budget_spent(rate, 1, AVAIL.window_days) == pytest.approx(0.02)


def test_budget_left_is_one_minus_the_windows_burn_and_goes_negative_when_overspent() -> None:
    assert budget_left(AVAIL, Counts(1_000_000, 380)) == pytest.approx(0.62)
    assert budget_left(AVAIL, Counts(1_000_000, 1_000)) == pytest.approx(0.0)
    overspent = Budget(AVAIL, left=budget_left(AVAIL, Counts(1_000_000, 1_400)))
    assert overspent.left == pytest.approx(-0.4)
    assert overspent.left_text() == "exhausted (-40%)"


def test_no_traffic_spends_nothing_and_divides_by_nothing() -> None:
    idle = Counts(total=0, bad=0)

    assert idle.bad_fraction == 0.0
    assert burn_rate(AVAIL, idle) == 0.0
    assert budget_left(AVAIL, idle) == 1.0


def test_bad_counts_beyond_the_total_cap_at_everything_bad() -> None:
    # The 5xx counts and RequestCount are separate metrics: a skew must not read as > 100%.
    assert Counts(total=10, bad=12).bad_fraction == 1.0
    assert burn_rate(AVAIL, Counts(10, 12)) == pytest.approx(1000)


@pytest.mark.parametrize("target", [0, 100, 100.5, -1])
def test_a_target_that_leaves_no_budget_or_no_objective_is_refused(target: float) -> None:
    with pytest.raises(ValueError, match="above 0 and below 100"):
        Objective(AVAILABILITY, target)


def test_budget_line_lists_each_objective_and_says_unknown_when_none_is_known() -> None:
    line = budget_line([Budget(AVAIL, left=0.62), Budget(LAT, left=0.884)])
    assert line == "Error budget left (30 d): availability 62%, latency 88%"
    unknown = [Budget.unknown(AVAIL, "x"), Budget.unknown(LAT, "y")]
    assert budget_line(unknown) == "Error budget left: budget unknown (x)"
    one = budget_line([Budget(AVAIL, left=0.5), Budget.unknown(LAT, "y")])
    assert one == "Error budget left (30 d): availability 50%, latency unknown"


def test_settings_default_to_the_templates_defaults() -> None:
    settings = load_slo_settings({})

    assert [o.describe() for o in settings.objectives] == [
        "availability 99.9% over 30 d",
        "latency 99.9% within 0.3 s over 30 d",
    ]
    assert settings.load_balancer == ""


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLO_AVAILABILITY_TARGET": "100"}, "SLO_AVAILABILITY_TARGET"),
        ({"SLO_LATENCY_TARGET": "nine"}, "SLO_LATENCY_TARGET"),
        ({"SLO_LATENCY_THRESHOLD_SECONDS": "0"}, "SLO_LATENCY_THRESHOLD_SECONDS"),
        ({"SLO_WINDOW_DAYS": "0"}, "SLO_WINDOW_DAYS"),
    ],
)
def test_a_bad_slo_setting_is_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_slo_settings(env)


# ---- the reader, against GetMetricData's documented response ------------------------------


@pytest.fixture
def cloudwatch() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("cloudwatch")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def result(
    query_id: str, *points: tuple[datetime, float], status: str = "Complete"
) -> dict[str, Any]:
    """One MetricDataResult as the API reference documents it."""
    return {
        "Id": query_id,
        "Label": query_id,
        "Timestamps": [at for at, _ in points],
        "Values": [value for _, value in points],
        "StatusCode": status,
    }


def window(
    hours: int,
    *,
    requests: float | None,
    elb5xx: float | None = None,
    target5xx: float | None = None,
    answered: float | None = None,
    within: float | None = None,
    status: str = "Complete",
) -> dict[str, Any]:
    at = END - timedelta(hours=hours)

    def points(value: float | None) -> tuple[tuple[datetime, float], ...]:
        return () if value is None else ((at, value),)

    return {
        "MetricDataResults": [
            result("requests", *points(requests), status=status),
            result("elb5xx", *points(elb5xx)),
            result("target5xx", *points(target5xx)),
            result("answered", *points(answered)),
            result("within0_3", *points(within)),
        ],
        "Messages": [],
    }


def expect(stubber: Stubber, hours: int, response: dict[str, Any]) -> None:
    stubber.add_response(
        "get_metric_data",
        response,
        {
            "MetricDataQueries": ANY,
            "StartTime": END - timedelta(hours=hours),
            "EndTime": END,
            "ScanBy": "TimestampAscending",
        },
    )


def test_reader_computes_budget_left_and_burn_rates_from_the_load_balancers_counts(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    expect(
        stubber,
        1,
        window(1, requests=10_000, elb5xx=100, target5xx=44, answered=9_900, within=99.0),
    )
    expect(stubber, 6, window(6, requests=60_000, target5xx=360, answered=60_000, within=99.4))
    expect(
        stubber,
        720,
        window(
            720, requests=1_000_000, elb5xx=80, target5xx=300, answered=1_000_000, within=99.988
        ),
    )

    avail, lat = BudgetReader(client, LB).read([AVAIL, LAT], NOW)

    assert avail.error is None
    assert avail.left == pytest.approx(0.62)
    assert avail.burn_1h == pytest.approx(14.4)
    assert avail.burn_6h == pytest.approx(6.0)
    assert lat.left == pytest.approx(0.88)
    assert lat.burn_1h == pytest.approx(10.0)  # 1% of 9,900 answered were slower than 0.3 s
    assert lat.burn_6h == pytest.approx(6.0)


def test_reader_asks_for_the_sums_and_the_percentile_rank_of_the_load_balancer(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    seen: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **_: seen.append(params),
    )
    for hours in (1, 6, 720):
        expect(stubber, hours, window(hours, requests=1, answered=1, within=100.0))

    BudgetReader(client, LB).read([AVAIL, LAT], NOW)

    month = {q["Id"]: q["MetricStat"] for q in seen[-1]["MetricDataQueries"]}
    assert {i: (s["Metric"]["MetricName"], s["Stat"]) for i, s in month.items()} == {
        "requests": ("RequestCount", "Sum"),
        "elb5xx": ("HTTPCode_ELB_5XX_Count", "Sum"),
        "target5xx": ("HTTPCode_Target_5XX_Count", "Sum"),
        "answered": ("TargetResponseTime", "SampleCount"),
        "within0_3": ("TargetResponseTime", "PR(:0.3)"),
    }
    assert {s["Period"] for s in month.values()} == {30 * 24 * 3600}
    assert all(
        s["Metric"]["Dimensions"] == [{"Name": "LoadBalancer", "Value": LB}]
        and s["Metric"]["Namespace"] == "AWS/ApplicationELB"
        for s in month.values()
    )


def test_an_idle_hour_burns_nothing_when_the_month_has_traffic(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    expect(stubber, 1, window(1, requests=None))
    expect(stubber, 6, window(6, requests=None))
    expect(stubber, 720, window(720, requests=5_000, elb5xx=1, answered=5_000, within=100.0))

    avail, lat = BudgetReader(client, LB).read([AVAIL, LAT], NOW)

    assert (avail.left, avail.burn_1h, avail.burn_6h) == (pytest.approx(0.8), 0.0, 0.0)
    assert (lat.left, lat.burn_1h) == (1.0, 0.0)


def test_a_month_without_any_data_is_unknown_not_healthy(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    for hours in (1, 6, 720):
        expect(stubber, hours, window(hours, requests=None))

    avail, lat = BudgetReader(client, LB).read([AVAIL, LAT], NOW)

    assert avail.left is None
    assert avail.error == "no RequestCount data over 30 d"
    assert lat.error == "no TargetResponseTime data over 30 d"
    assert avail.left_text() == "unknown"


def test_a_failed_read_is_unknown_and_names_the_error(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    expect(stubber, 1, window(1, requests=1))
    expect(stubber, 6, window(6, requests=1))
    stubber.add_client_error("get_metric_data", "AccessDenied", http_status_code=403)

    avail, lat = BudgetReader(client, LB).read([AVAIL, LAT], NOW)

    assert avail.left is None
    assert lat.left is None
    assert avail.error == "GetMetricData failed (AccessDenied)"


def test_partial_data_is_unknown(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    expect(stubber, 1, window(1, requests=1))
    expect(stubber, 6, window(6, requests=1))
    expect(stubber, 720, window(720, requests=1, status="PartialData"))

    avail, _ = BudgetReader(client, LB).read([AVAIL, LAT], NOW)

    assert avail.error == "GetMetricData returned PartialData for RequestCount Sum over 720 h"


def test_a_failed_burn_window_leaves_the_budget_known_and_that_rate_unknown(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudwatch
    stubber.add_client_error("get_metric_data", "Throttling", http_status_code=400)
    expect(stubber, 6, window(6, requests=100))
    expect(stubber, 720, window(720, requests=1_000_000, elb5xx=500))

    (avail,) = BudgetReader(client, LB).read([AVAIL], NOW)

    assert avail.left == pytest.approx(0.5)
    assert (avail.burn_1h, avail.burn_6h) == (None, 0.0)


def test_samples_without_their_percentile_rank_are_unknown(cloudwatch: tuple[Any, Stubber]) -> None:
    client, stubber = cloudwatch
    for hours in (1, 6, 720):
        expect(stubber, hours, window(hours, requests=10, answered=10, within=None))

    (lat,) = BudgetReader(client, LB).read([LAT], NOW)

    assert lat.error == "TargetResponseTime PR(:0.3) missing over 720 h"


def test_no_load_balancer_means_every_budget_is_unknown_without_a_call(
    cloudwatch: tuple[Any, Stubber],
) -> None:
    client, _ = cloudwatch

    budgets = BudgetReader(client, "").read([AVAIL, LAT], NOW)

    assert [b.error for b in budgets] == [
        "no load balancer to measure (SLO_LOAD_BALANCER is empty)"
    ] * 2
