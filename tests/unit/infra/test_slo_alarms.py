"""The error-budget (burn-rate) alerts of infra/cloudformation/site.yaml.

The alarms' expressions are read from the rendered template and run by
tests/support/metric_math.py over synthetic per-minute traffic, so what is tested is what
ships. The workbook is Google's SRE workbook, "Alerting on SLOs", multiwindow multi-burn-rate
alerts (table 5-8).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from spotops.reports.cost import estimate, inventory, load_price_table
from spotops.stage.config import load_stage_config, schema_problems
from spotops.stage.limits import template_breaches, template_measures
from tests.support.metric_math import Minute, SiteAlarms, Traffic, steady
from tests.support.templates import REPO, RUNBOOK_LINK, Resolver, load, parameter_values

PROFILES = ("dev", "seed", "prod")
OBJECTIVES = ("availability", "latency")
# (alert, budget share consumed, long window, short window, in hours; the page/ticket split)
WORKBOOK = {
    "fast-burn": (0.02, 1, 5 / 60),
    "slow-burn": (0.05, 6, 0.5),
    "ticket": (0.10, 72, 6),
}
PREFIX = "spotops-dev-slo-"
HOUR, DAY = 60, 1440


@pytest.fixture(scope="module")
def site() -> dict[str, Any]:
    return load("site")


def alarms(site: dict[str, Any], **values: str) -> SiteAlarms:
    return SiteAlarms.render(Resolver(site, StageName="dev", **values), prefix=PREFIX)


def stage_values(stage: str) -> dict[str, str]:
    return dict(load_stage_config(REPO, stage).parameters)


def burn_rate(budget_share: float, window_hours: float, objective_days: float = 30) -> float:
    """The rate that consumes ``budget_share`` of an objective's budget in ``window_hours``."""
    return budget_share * objective_days * 24 / window_hours


# ---- the arithmetic ----------------------------------------------------------------------


def test_the_burn_rates_are_the_workbooks_table():
    assert burn_rate(0.02, 1) == pytest.approx(14.4)
    assert burn_rate(0.05, 6) == pytest.approx(6)
    assert burn_rate(0.10, 72) == pytest.approx(1)


def test_each_alert_is_long_and_short_window_at_the_workbooks_rate(site):
    found = alarms(site)
    for objective in OBJECTIVES:
        for alert, (share, long_hours, short_hours) in WORKBOOK.items():
            name = f"{PREFIX}{objective}-{alert}"
            composite = found.composite[name]
            long, short = (found.metric[f"{name}-{w}"] for w in ("long", "short"))
            assert composite.children == (long.name, short.name)
            assert composite.all_of
            assert long.window_minutes == long_hours * 60, long.name
            assert short.window_minutes == round(short_hours * 60), short.name
            for window in (long, short):
                assert float(window.properties["Threshold"]) == pytest.approx(
                    burn_rate(share, long_hours)
                )
    # The one window CloudWatch cannot hold in one period we rely on: 3 days as 3 daily
    # datapoints, all breaching (infra/README.md).
    ticket = found.metric[f"{PREFIX}availability-ticket-long"]
    assert (ticket.period_minutes, ticket.evaluation_periods) == (DAY, 3)
    assert ticket.properties["DatapointsToAlarm"] == "3"


# ---- synthetic traffic -------------------------------------------------------------------

QUIET = {"requests": 100, "target_5xx": 0}  # 100 requests a minute, no error


def availability(found: SiteAlarms, traffic: Traffic, minutes: range) -> dict[str, int | None]:
    return {
        alert: found.first_alarm(f"{PREFIX}availability-{alert}", traffic, minutes)
        for alert in WORKBOOK
    }


def test_a_five_minute_blip_does_not_page(site):
    found = alarms(site)  # 99.9 %: 0.1 % of requests may fail
    # 10 % errors for 5 minutes: 50 of the hour's 6,000 requests, 0.83 %, a rate of 8.3.
    traffic = Traffic(
        steady(2 * HOUR, **QUIET) + steady(5, requests=100, target_5xx=10) + steady(HOUR, **QUIET)
    )
    minutes = range(len(traffic.minutes))
    assert availability(found, traffic, minutes) == dict.fromkeys(WORKBOOK)
    # The 5-minute window tripped in the blip's first minute (10 of 500 requests, rate 20:
    # it rolls a deployment back); the hour never did.
    short = f"{PREFIX}availability-fast-burn-short"
    assert found.first_alarm(short, traffic, minutes) == 2 * HOUR


def test_a_fast_burn_pages_within_the_hour_and_clears_minutes_after_it_stops(site):
    found = alarms(site)
    # After 7 quiet hours, 2 % of requests fail for 90 minutes (a rate of 20): 1.44 % of the hour's
    # requests have failed after 44 minutes of it.
    burning = steady(90, requests=100, elb_5xx=1, target_5xx=1)
    traffic = Traffic(steady(7 * HOUR, **QUIET) + burning + steady(HOUR, **QUIET))
    minutes = range(len(traffic.minutes))
    fast = f"{PREFIX}availability-fast-burn"
    paged = found.first_alarm(fast, traffic, minutes)
    assert paged == 7 * HOUR + 43  # 44 minutes in (minute 0 is the first)
    stopped = 7 * HOUR + 90  # the first minute without errors
    # The hour's window stays over 14.4 for the rest of the hour, but the 5-minute one drops
    # under it once fewer than 7.2 of its 500 requests failed: the page clears at once.
    assert found.in_alarm(fast, traffic, stopped)
    assert found.first_alarm(fast, traffic, range(stopped + 1, len(minutes))) is None
    assert found.in_alarm(f"{fast}-long", traffic, stopped + 4)
    # 1.8 % of the budget in 6 hours is not a slow burn; a ticket needs 3 days.
    assert availability(found, traffic, minutes)["slow-burn"] is None
    assert availability(found, traffic, minutes)["ticket"] is None


def test_a_slow_burn_only_tickets(site):
    found = alarms(site)
    # After 3 quiet days, 0.2 % of requests fail for 4 days: a rate of 2.
    start = 3 * DAY
    traffic = Traffic(steady(start, requests=1000) + steady(4 * DAY, requests=1000, target_5xx=2))
    every_ten_minutes = range(0, 7 * DAY, 10)
    first = availability(found, traffic, every_ten_minutes)
    assert first["fast-burn"] is None
    assert first["slow-burn"] is None
    # Each of the last 3 days must burn at rate 1: the oldest one is half in the burn after
    # 2.5 days, when 2.5 / 30 x 2 = 16.7 % of the budget is gone (10 % or more, as asked).
    assert first["ticket"] == start + 3600


def test_a_burn_at_eight_times_the_rate_pages_the_slow_burn_but_not_the_fast_one(site):
    found = alarms(site)
    # After a quiet day, 0.8 % errors (rate 8) for 8 hours: never 14.4 times too fast.
    start = DAY
    traffic = Traffic(steady(start, requests=1000) + steady(8 * HOUR, requests=1000, target_5xx=8))
    first = availability(found, traffic, range(0, start + 8 * HOUR, 5))
    assert first["fast-burn"] is None
    # 6 hours at rate 8 x 3/4 = 6: after 4.5 hours, 5 % of the budget (8 x 4.5 / 720).
    assert first["slow-burn"] == start + 270
    assert first["ticket"] is None


def test_no_traffic_is_no_burn(site):
    found = alarms(site)
    traffic = Traffic(steady(2 * HOUR, requests=0))
    assert availability(found, traffic, range(2 * HOUR)) == dict.fromkeys(WORKBOOK)


def test_the_target_parameter_reaches_the_expression(site):
    # 0.5 % errors for 2 hours: a rate of 5 against 99.9 % ... and of 0.5 against 99.0 %.
    traffic = Traffic(steady(2 * HOUR, requests=1000, elb_5xx=5))
    minutes = range(2 * HOUR)
    strict = alarms(site, SloAvailabilityTarget="99.9")
    loose = alarms(site, SloAvailabilityTarget="99.0")
    rate_at_hour = strict.metric[f"{PREFIX}availability-fast-burn-long"].value(traffic, 60, 120)
    assert rate_at_hour == pytest.approx(5)
    assert loose.metric[f"{PREFIX}availability-fast-burn-long"].value(
        traffic, 60, 120
    ) == pytest.approx(0.5)
    # 2 % errors page at 99.9 (rate 20) and not at 99.0 (rate 2).
    burning = Traffic(steady(2 * HOUR, requests=1000, target_5xx=20))
    assert strict.first_alarm(f"{PREFIX}availability-fast-burn", burning, minutes) is not None
    assert loose.first_alarm(f"{PREFIX}availability-fast-burn", burning, minutes) is None
    assert loose.first_alarm(f"{PREFIX}availability-fast-burn", traffic, minutes) is None


def test_the_window_parameter_scales_the_rates_to_the_same_budget_shares(site):
    # A 7-day objective has a quarter... 7/30 of the 30-day budget: the same 2 % in an hour
    # is a burn rate of 14.4 x 7/30 = 3.36. 0.4 % errors (rate 4) page it, and not a 30-day one.
    traffic = Traffic(steady(2 * HOUR, requests=1000, target_5xx=4))
    minutes = range(2 * HOUR)
    name = f"{PREFIX}availability-fast-burn"
    assert alarms(site, SloWindowDays="7").first_alarm(name, traffic, minutes) is not None
    assert alarms(site, SloWindowDays="30").first_alarm(name, traffic, minutes) is None


def slow_requests(requests: int, slow: int, seconds: float = 2.0) -> Minute:
    return Minute(requests=requests, latencies=((0.05, requests - slow), (seconds, slow)))


def test_the_latency_alert_counts_requests_over_the_threshold(site):
    # 5 % of requests take 2 s: a rate of 50 against 99.9 % within 0.3 s.
    traffic = Traffic([slow_requests(100, 5)] * (2 * HOUR))
    minutes = range(2 * HOUR)
    name = f"{PREFIX}latency-fast-burn"
    assert alarms(site).first_alarm(name, traffic, minutes) is not None
    # The same requests are within a 3-second threshold: the parameter reaches PR(:t).
    relaxed = alarms(site, SloLatencyThresholdSeconds="3")
    assert relaxed.first_alarm(name, traffic, minutes) is None
    stat = relaxed.metric[f"{name}-long"].properties["Metrics"][0]["MetricStat"]["Stat"]
    assert stat == "PR(:3)"


def test_a_latency_blip_does_not_page(site):
    quiet = [slow_requests(100, 0)] * (2 * HOUR)
    blip = [slow_requests(100, 10)] * 5  # 50 slow of the hour's 6,000: rate 8.3
    traffic = Traffic(quiet + blip + quiet)
    name = f"{PREFIX}latency-fast-burn"
    assert alarms(site).first_alarm(name, traffic, range(len(traffic.minutes))) is None


# ---- what every profile ships ------------------------------------------------------------

ALERTS = [f"{o}-{a}" for o in OBJECTIVES for a in WORKBOOK]


@pytest.mark.parametrize("stage", PROFILES)
def test_every_profile_carries_the_alerts_to_the_alarm_topic_with_runbooks(site, stage):
    resolver = Resolver(site, **stage_values(stage))
    rendered = {
        logical_id: resolver.value(resource["Properties"])
        for logical_id, resource in site["Resources"].items()
        if logical_id.startswith("Slo") and resolver.exists(logical_id)
    }
    by_name = {props["AlarmName"]: props for props in rendered.values()}
    prefix = f"spotops-{stage}-slo-"
    alerts = {f"{prefix}{a}" for a in ALERTS}
    windows = {f"{a}-{w}" for a in alerts for w in ("long", "short")}
    assert set(by_name) == alerts | windows
    for name, props in by_name.items():
        runbook = RUNBOOK_LINK.search(
            site["Resources"][next(k for k, v in rendered.items() if v is props)]["Properties"][
                "AlarmDescription"
            ]["Fn::Sub"]
        )
        assert runbook
        assert runbook.group("file") in {"slo-availability.md", "slo-latency.md"}
        assert len(props["AlarmDescription"]) <= 1024
        if name in alerts:  # the alert: to the topic like every alarm, alarm and OK
            assert props["AlarmActions"] == ["<AlarmTopic>"] == props["OKActions"]
        else:  # a window: its alert speaks for it
            assert "AlarmActions" not in props
            assert "OKActions" not in props


@pytest.mark.parametrize("strategy", ["ROLLING", "CANARY", "LINEAR"])
def test_the_fast_burn_windows_roll_a_deployment_back(site, strategy):
    resolver = Resolver(site, StageName="dev", DeploymentStrategy=strategy, ImageUri="i@sha256:0")
    deployment = resolver.value(site["Resources"]["Service"]["Properties"])[
        "DeploymentConfiguration"
    ]["Alarms"]
    assert deployment["Rollback"] == "true"
    slo = [n for n in deployment["AlarmNames"] if n.startswith(PREFIX)]
    assert slo == [f"{PREFIX}availability-fast-burn-short", f"{PREFIX}latency-fast-burn-short"]
    # ECS documents metric alarms: both are (the composite alert is not named).
    found = alarms(site)
    assert set(slo) <= set(found.metric)
    depends = site["Resources"]["Service"]["DependsOn"]
    assert {"SloAvailabilityFastBurnShortAlarm", "SloLatencyFastBurnShortAlarm"} <= set(depends)


def test_prod_is_stricter_than_dev():
    dev, prod = stage_values("dev"), stage_values("prod")
    for name in ("SloAvailabilityTarget", "SloLatencyTarget"):
        assert float(prod[name]) > float(dev[name])
    assert float(prod["SloLatencyThresholdSeconds"]) < float(dev["SloLatencyThresholdSeconds"])
    profiles = json.loads((REPO / "spotops" / "data" / "profiles.json").read_text())
    for stage in PROFILES:
        assert {
            k: str(v) for k, v in profiles[stage]["parameters"].items() if k.startswith("Slo")
        } == {k: v for k, v in stage_values(stage).items() if k.startswith("Slo")}


# ---- the config schema and the template agree on the ranges -----------------------------

RANGES = {
    "SloAvailabilityTarget": (90, 99.99),
    "SloLatencyTarget": (90, 99.99),
    "SloLatencyThresholdSeconds": (0.01, 30),
    "SloWindowDays": (7, 90),
}


@pytest.mark.parametrize(("name", "bounds"), RANGES.items())
def test_the_schema_takes_the_limits_and_refuses_past_them(site, name, bounds):
    low, high = bounds
    parameter = site["Parameters"][name]
    assert (float(parameter["MinValue"]), float(parameter["MaxValue"])) == (low, high)
    for value in (low, high):
        assert schema_problems({"parameters": {name: value}}, "config/x.json") == []
    for value in (low - 0.001, high + 0.001):
        problems = schema_problems({"parameters": {name: value}}, "config/x.json")
        assert len(problems) == 1, problems
        assert name in problems[0], problems
    assert schema_problems({"parameters": {name: "high"}}, "config/x.json")


def test_the_defaults_are_the_contracts(site):
    defaults = {name: str(site["Parameters"][name]["Default"]) for name in RANGES}
    assert defaults == {
        "SloAvailabilityTarget": "99.9",
        "SloLatencyTarget": "99.9",
        "SloLatencyThresholdSeconds": "0.3",
        "SloWindowDays": "30",
    }


# ---- limits, dashboard, cost -------------------------------------------------------------


@pytest.mark.parametrize("stage", PROFILES)
def test_the_site_template_stays_within_cloudformations_limits(site, stage):
    values = stage_values(stage)
    assert template_breaches(site, values, subject="site") == []
    counts = {m.limit.key: m.measured for m in template_measures(site, values, subject="site")}
    assert counts["resources"] < 500
    assert counts["parameters"] < 200
    assert counts["outputs"] < 200
    body = (REPO / "infra" / "cloudformation" / "site.yaml").read_bytes()
    assert len(body) < 1_000_000


def test_the_dashboard_has_a_widget_per_objective(site):
    # The body as CloudFormation substitutes it: parameters by value, resources left out.
    text = site["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    values = parameter_values(site, SloLatencyThresholdSeconds="0.5")
    body = re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values.get(m.group(1), ""), text)
    widgets = {w["properties"]["title"]: w["properties"] for w in json.loads(body)["widgets"]}
    availability = next(p for t, p in widgets.items() if t.startswith("Availability objective"))
    latency = next(p for t, p in widgets.items() if t.startswith("Latency objective"))
    assert availability["annotations"]["horizontal"][0]["value"] == 99.9
    expression = availability["metrics"][0][0]["expression"]
    assert "FILL(elb5xx, 0) + FILL(target5xx, 0)" in expression
    assert latency["metrics"][0][-1]["stat"] == "PR(:0.5)"


def _without_slo(template: dict[str, Any]) -> dict[str, Any]:
    resources = {k: v for k, v in template["Resources"].items() if not k.startswith("Slo")}
    service = json.loads(json.dumps(resources["Service"]))
    service["DependsOn"] = [d for d in service["DependsOn"] if not d.startswith("Slo")]
    return {**template, "Resources": {**resources, "Service": service}}


@pytest.mark.parametrize("stage", PROFILES)
def test_the_alerts_cost_five_dollars_forty_a_month_in_every_profile(site, stage):
    config = load_stage_config(REPO, stage)
    prices = load_price_table()
    network, ops = load("network"), load("ops")

    def priced(site_template: dict[str, Any]) -> tuple[Any, float]:
        found = inventory(
            {"network": network, "site": site_template, "ops": ops}, config.parameters
        )
        return found, estimate(found, config.estimate, prices).total

    with_slo, total = priced(site)
    without, total_before = priced(_without_slo(site))
    # 6 windows x 3 metrics (availability) + 6 x 1 (latency) alarm metrics at $0.10, and the
    # 6 composite alerts at $0.50 (CloudWatch's list prices, spotops/data/prices.json).
    assert with_slo.alarm_metrics - without.alarm_metrics == 24
    assert with_slo.composite_alarms - without.composite_alarms == 6
    assert replace(with_slo, alarm_metrics=0, composite_alarms=0, alarms=0) == replace(
        without, alarm_metrics=0, composite_alarms=0, alarms=0
    )
    assert total - total_before == pytest.approx(5.40)


def test_the_runbooks_exist_for_both_objectives():
    for objective in OBJECTIVES:
        page = Path(REPO / "runbooks" / f"slo-{objective}.md").read_text()
        assert page.startswith(f"# slo-{objective}\n")
