"""The cost estimate: what the templates create, priced; figures worked out by hand."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from spotops.cli import render
from spotops.errors import ConfigError, UsageError
from spotops.reports.cost import (
    Inventory,
    Sidecar,
    VcpuPeak,
    estimate,
    inventory,
    load_price_table,
    peak_vcpu,
    task_split,
)
from spotops.stage.config import load_stage_config
from spotops.stage.templates import load_template

ROOT = Path(__file__).resolve().parents[4]
TEMPLATES = ROOT / "infra" / "cloudformation"

DEV_LIKE = Inventory(
    zones=2,
    tasks=1,
    on_demand_tasks=0,
    spot_tasks=1,
    public_task_addresses=1,
    alarms=6,
    alarm_metrics=6,
    dashboards=1,
    kms_keys=1,
    secrets=1,
    functions=4,
    tables=2,
    queues=2,
)
PROD_LIKE = Inventory(
    zones=3,
    task_cpu=512,
    task_memory=1024,
    tasks=3,
    on_demand_tasks=1.5,
    spot_tasks=1.5,
    public_task_addresses=0,
    nat_gateways=3,
    interface_endpoints=3,
    alarms=8,
    alarm_metrics=10,
    target_tracking_alarms=4,
    dashboards=1,
    kms_keys=1,
    container_insights_services=1,
    web_acls=1,
    waf_rules=3,
    secrets=1,
    functions=4,
    tables=2,
    queues=2,
    log_retention_days=90,
)


def _items(result) -> dict[str, float]:
    return {item.name: round(item.monthly, 6) for item in result.items}


def templates() -> dict[str, dict[str, Any]]:
    return {part: load_template(TEMPLATES / f"{part}.yaml") for part in ("network", "site", "ops")}


# ---- pricing an inventory -----------------------------------------------------------


def test_dev_like_stage_matches_the_hand_computed_figures(simple_prices):
    # 100 h/month. Task: (0.25 x 0.04 + 0.5 x 0.004) x 100 = 1.20; Spot at 30%.
    result = estimate(DEV_LIKE, {}, simple_prices)

    assert _items(result) == {
        "Fargate Spot": 0.36,
        "Application Load Balancer": 2.0,  # 0.02 x 100
        "ALB capacity units": 1.0,  # 1 LCU x 0.01 x 100
        "Public IPv4 addresses": 1.5,  # (2 load balancer + 1 task) x 0.005 x 100
        "Data transfer out": 1.0,  # 10 GB x 0.10
        "CloudWatch alarms": 0.6,  # 6 alarm metrics x 0.10
        "Custom metrics (ops toolkit)": 0.6,  # 2 x 0.30
        "CloudWatch dashboards": 3.0,
        "CloudWatch Logs ingestion": 2.0,  # 4 GB x 0.50
        "CloudWatch Logs storage": 0.012,  # 4 GB x 30/30 days x 0.1 compressed x 0.03
        "KMS keys": 1.0,
        "Secrets Manager": 0.4,
        "ECR storage": 0.1,
        "S3 storage (ops packages)": 0.02,
        "Lambda (ops functions)": 0.3,  # 1 M x 0.20 + 10,000 GB-s x 0.00001
        "X-Ray traces": 1.0,  # 0.2 M x 5
        "DynamoDB on demand": 1.2,  # 1 M writes x 1 + 2 M reads x 0.10
        "SQS (dead-letter queues)": 0.2,  # 0.5 M x 0.40
    }
    assert result.total == pytest.approx(16.292)
    # Alarms 0.6 + metrics 0.6 + dashboard 3 + logs 2.012 + transfer 1 + Lambda 0.3 +
    # X-Ray min(1, 0.1 M x 5) + SQS 0.2: what an otherwise empty account would not pay.
    assert result.free_tier == pytest.approx(8.212)


def test_production_like_stage_matches_the_hand_computed_figures(simple_prices):
    # Task: (0.5 x 0.04 + 1 x 0.004) x 100 = 2.40. 3 tasks: base 1 on demand, the other 2
    # split 1:3 -> 1.5 on demand, 1.5 Spot.
    items = _items(estimate(PROD_LIKE, {}, simple_prices))

    assert items["Fargate on-demand"] == 3.6  # 1.5 x 2.40
    assert items["Fargate Spot"] == 1.08  # 1.5 x 2.40 x 0.3
    assert items["NAT gateways"] == 15.0  # 3 x 0.05 x 100
    assert items["NAT data processed"] == 0.5  # 10 GB x 0.05
    assert items["Public IPv4 addresses"] == 3.0  # (3 load balancer + 3 NAT) x 0.005 x 100
    assert items["Interface endpoints"] == 9.0  # 3 services x 3 zones x 0.01 x 100
    assert items["CloudWatch alarms"] == 1.4  # (10 + 4 from target tracking) x 0.10
    assert items["Container Insights metrics"] == 9.0  # 30 metrics x 0.30
    assert items["CloudWatch Logs ingestion"] == 2.75  # (4 + 3 tasks x 0.5 GB) x 0.50
    assert items["WAF"] == 11.0  # 5 + 3 rules x 1 + 5 M requests x 0.60
    assert "Fargate public" not in items


def test_every_billable_line_is_shown_even_when_it_rounds_to_nothing(simple_prices):
    result = estimate(DEV_LIKE, {"sqs_requests_millions_per_month": 0}, simple_prices)

    assert _items(result)["SQS (dead-letter queues)"] == 0.0


def test_what_a_sidecar_reserves_is_counted_in_the_fargate_lines(simple_prices):
    # Task 2.40 (see above). The sidecar: (32/1024 x 0.04 + 64/1024 x 0.004) x 100 = 0.15 of
    # it, a 16th. On demand 1.5 x 2.40 = 3.60 of which 0.225; Spot 1.08 of which 0.0675.
    with_sidecar = estimate(
        replace(PROD_LIKE, sidecars=(Sidecar("xray-daemon", 32, 64),)), {}, simple_prices
    )
    without = estimate(PROD_LIKE, {}, simple_prices)

    # Fargate bills the task's size: the sidecar is part of it, not on top of it.
    assert with_sidecar.total == pytest.approx(without.total)
    assert with_sidecar.sidecar_monthly == pytest.approx(0.2925)
    assert without.sidecar_monthly == 0
    said = {
        item.name: re.search(
            r"; the xray-daemon sidecar reserves 32 CPU units / 64 MiB of each task "
            r"\(([\d.]+) of this line\)$",
            item.detail,
        )
        for item in with_sidecar.items
        if item.name.startswith("Fargate")
    }
    # Shown to the cent.
    assert float(said["Fargate on-demand"].group(1)) == pytest.approx(0.225, abs=0.0051)
    assert float(said["Fargate Spot"].group(1)) == pytest.approx(0.0675, abs=0.0051)
    assert "sidecar" not in " ".join(item.detail for item in without.items)


@pytest.mark.parametrize(
    ("usage", "says"),
    [({"alb_lcus": 1}, "Unknown cost assumption"), ({"alb_lcu": -1}, "must not be negative")],
)
def test_error_if_a_usage_assumption_is_unknown_or_negative(simple_prices, usage, says):
    with pytest.raises(ConfigError, match=says):
        estimate(DEV_LIKE, usage, simple_prices)


@pytest.mark.parametrize(
    ("count", "base", "od", "spot", "expected"),
    [
        (2, 0, 0, 1, (0.0, 2.0)),
        (3, 1, 1, 3, (1.5, 1.5)),
        (1, 2, 0, 1, (1.0, 0.0)),
        (4, 0, 1, 0, (4.0, 0.0)),
    ],
)
def test_task_split_follows_the_capacity_provider_strategy(count, base, od, spot, expected):
    assert task_split(count, base, od, spot) == expected


def test_error_if_the_strategy_has_no_weight_is_a_usage_error():
    with pytest.raises(UsageError, match="must not both be 0"):
        task_split(2, 0, 0, 0)


# ---- what the templates create ------------------------------------------------------


def _alarm(**properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def test_alarms_are_counted_by_the_metrics_they_are_billed_for():
    stat = {"MetricStat": {"Metric": {}, "Period": 60, "Stat": "Sum"}}
    template = {
        "Resources": {
            "Plain": _alarm(MetricName="CPUUtilization", Period=60),
            "Math": _alarm(Metrics=[stat, stat, {"Expression": "m1 - m2"}]),
            "Anomaly": _alarm(Metrics=[stat, {"Expression": "ANOMALY_DETECTION_BAND(m1, 3)"}]),
            "Fast": _alarm(MetricName="X", Period=10),
            "Scale": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {"PolicyType": "TargetTrackingScaling"},
            },
        }
    }

    found = inventory({"site": template}, {})

    assert found.alarms == 4
    assert found.alarm_metrics == 1 + 2 + 3  # plain, two read by the math, metric and bands
    assert found.high_resolution_alarm_metrics == 1
    assert found.target_tracking_alarms == 2  # one policy: a scale-out and a scale-in alarm


def test_the_real_templates_follow_the_stage_parameters():
    dev = inventory(templates(), load_stage_config(ROOT, "dev").parameters)
    prod = inventory(templates(), load_stage_config(ROOT, "prod").parameters)

    assert (dev.zones, dev.nat_gateways, dev.interface_endpoints) == (2, 0, 0)
    assert (prod.zones, prod.nat_gateways, prod.interface_endpoints) == (3, 3, 3)
    assert dev.public_task_addresses == dev.tasks == 1
    assert prod.public_task_addresses == 0
    assert dev.container_insights_services == 0
    assert prod.container_insights_services == 1
    # Container Insights' own two alarms exist only with it.
    assert prod.alarms - dev.alarms == 2
    assert prod.target_tracking_alarms == 4  # CPU and requests policies
    assert dev.target_tracking_alarms == 0
    assert dev.kms_keys == prod.kms_keys == 1
    assert dev.dashboards == 1
    assert dev.secrets >= 1
    assert dev.functions >= 4
    assert (prod.web_acls, prod.waf_rules) == (1, 3)


def test_the_xray_daemon_sidecar_is_counted_only_when_the_stage_asks_for_it():
    assert inventory(templates(), {}).sidecars == ()
    assert inventory(templates(), {"XRayDaemon": "disabled"}).sidecars == ()
    assert inventory(templates(), {"XRayDaemon": "enabled"}).sidecars == (
        Sidecar("xray-daemon", 32, 64),
    )


def test_a_single_nat_gateway_in_two_zones():
    found = inventory(templates(), {"NatMode": "single", "ZoneCount": "2"})

    assert (found.nat_gateways, found.zones, found.public_task_addresses) == (1, 2, 0)


def test_per_zone_nat_gateways_follow_the_zone_count():
    assert inventory(templates(), {"NatMode": "per-az", "ZoneCount": "2"}).nat_gateways == 2
    assert inventory(templates(), {"NatMode": "per-az", "ZoneCount": "3"}).nat_gateways == 3


# ---- the shipped figures ------------------------------------------------------------


def test_shipped_price_table_states_region_date_and_sources():
    prices = load_price_table()

    assert prices.region == "us-east-1"
    assert prices.taken_on == "2026-11-28"
    assert all(url.startswith("https://aws.amazon.com/") for url in prices.sources.values())
    assert prices.prices["fargate_vcpu_hour"] == 0.04048
    assert set(prices.assumption_notes) >= set(prices.assumptions) - {"logs_compression_ratio"}


def _stage_total(stage: str) -> float:
    config = load_stage_config(ROOT, stage)
    return estimate(
        inventory(templates(), config.parameters), config.estimate, load_price_table()
    ).total


def test_the_default_dev_profile_costs_at_most_45_dollars_with_every_line_priced():
    # $38.41 before the error-budget alerts (+5.40: 24 alarm metrics, 6 composite alarms).
    assert _stage_total("dev") <= 45


def test_the_readme_table_shows_what_spotops_cost_says():
    readme = (ROOT / "README.md").read_text()
    row = re.search(
        r"\*\*Total \(USD/month\)\*\* \| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\* \| \*\*([\d.]+)\*\*",
        readme,
    )
    assert row, "the cost table's total row is missing from README.md"
    shown = dict(zip(("dev", "seed", "prod"), (float(v) for v in row.groups()), strict=True))
    for stage, total in shown.items():
        assert round(_stage_total(stage), 2) == total, (
            f"README.md shows {total} for {stage}; `spotops cost --stage {stage}` says "
            f"{_stage_total(stage):.2f}: update the table"
        )


# ---- the peak vCPU, to compare with the account's Fargate quotas ----------------------


def _peak(**overrides: Any) -> VcpuPeak:
    # The prod profile at MaxTasks: 12 tasks of 512 CPU units, 1 on-demand base, then 1:3.
    arguments: dict[str, Any] = {
        "steady_tasks": 12,
        "steady_source": "MaxTasks",
        "task_cpu": 512,
        "strategy": "ROLLING",
        "maximum_percent": 200,
        "base": 1,
        "on_demand_weight": 1,
        "spot_weight": 3,
    }
    return peak_vcpu(**{**arguments, **overrides})


@pytest.mark.parametrize("strategy", ["CANARY", "LINEAR"])
def test_traffic_shifting_runs_both_revisions_whatever_maximum_percent_says(strategy):
    # 2 x 12 = 24 tasks x 0.5 vCPU. Base 1 on demand; the other 23 shared 1:3 are 5.75 and
    # 17.25 tasks, each rounded up because ECS may give either side the odd task.
    peak = _peak(strategy=strategy, maximum_percent=100)

    assert (peak.tasks, peak.vcpu) == (24, 12.0)
    assert (peak.on_demand_tasks, peak.on_demand_vcpu) == (7, 3.5)
    assert (peak.spot_tasks, peak.spot_vcpu) == (18, 9.0)


@pytest.mark.parametrize(
    ("steady", "percent", "tasks"),
    [
        (12, 200, 24),  # the template's MaximumPercent: as many new tasks as old
        (12, 150, 18),
        (4, 125, 5),  # exactly a whole task more
        (4, 124, 4),  # just short of it: ECS rounds down
        (100, 115, 115),  # 100 x 1.15 is 114.99... in floats
        (12, 100, 12),  # stop one, start one
        (12, 50, 12),  # below 100 ECS stops old tasks first: never fewer than the count
        (0, 200, 0),
    ],
)
def test_rolling_peaks_at_maximum_percent_rounded_down(steady, percent, tasks):
    assert _peak(steady_tasks=steady, maximum_percent=percent).tasks == tasks


@pytest.mark.parametrize(
    ("base", "weights", "on_demand", "spot"),
    [
        (6, (1, 3), 6, 0),  # the base is exactly the peak: all on demand
        (10, (0, 1), 6, 0),  # a base above the peak cannot add tasks
        (5, (0, 1), 5, 1),  # one task beyond the base, all Spot
        (0, (1, 1), 3, 3),  # an even share needs no rounding
        (0, (1, 0), 6, 0),
        (0, (0, 1), 0, 6),
        (1, (1, 1), 4, 3),  # 1 + 2.5 and 2.5: either side may get the odd task
    ],
)
def test_the_base_runs_on_demand_first_and_the_rest_by_weight(base, weights, on_demand, spot):
    peak = _peak(
        steady_tasks=3,
        task_cpu=256,
        base=base,
        on_demand_weight=weights[0],
        spot_weight=weights[1],
    )

    assert peak.tasks == 6
    assert (peak.on_demand_tasks, peak.spot_tasks) == (on_demand, spot)
    assert (peak.on_demand_vcpu, peak.spot_vcpu) == (on_demand / 4, spot / 4)


def test_error_if_the_peak_has_no_weight_is_a_usage_error():
    with pytest.raises(UsageError, match="must not both be 0"):
        _peak(on_demand_weight=0, spot_weight=0)


def test_the_profiles_peak_as_their_templates_and_parameters_say():
    def peak_of(stage: str, **overrides: str) -> VcpuPeak | None:
        parameters = {**load_stage_config(ROOT, stage).parameters, **overrides}
        return inventory(templates(), parameters).peak

    prod = peak_of("prod")
    assert prod == _peak()  # MaxTasks 12 at the template's MaximumPercent 200, ROLLING
    assert (prod.tasks, prod.vcpu, prod.on_demand_vcpu, prod.spot_vcpu) == (24, 12, 3.5, 9)
    assert peak_of("prod", DeploymentStrategy="CANARY") == _peak(strategy="CANARY")
    # Without autoscaling the service's DesiredCount is the most it runs.
    assert peak_of("prod", EnableAutoScaling="false") == _peak(
        steady_tasks=3, steady_source="DesiredCount"
    )
    for stage in ("dev", "seed"):
        small = peak_of(stage)
        assert small is not None
        assert (small.steady_source, small.tasks, small.vcpu) == ("DesiredCount", 2, 0.5)
        assert (small.on_demand_tasks, small.spot_tasks) == (0, 2)


def test_the_peak_follows_the_templates_maximum_percent():
    changed = templates()  # loaded afresh: the change stays in this test
    service = changed["site"]["Resources"]["Service"]["Properties"]
    service["DeploymentConfiguration"]["MaximumPercent"] = 150

    peak = inventory(changed, load_stage_config(ROOT, "prod").parameters).peak

    assert peak is not None
    assert (peak.maximum_percent, peak.tasks) == (150, 18)


def test_the_estimate_table_states_the_peak_and_the_quotas_to_compare_it_with(simple_prices):
    found = inventory(templates(), load_stage_config(ROOT, "prod").parameters)
    buffer = io.StringIO()
    Console(file=buffer, width=400).print(
        render.cost_table(estimate(found, {}, simple_prices), "prod")
    )
    shown = " ".join(buffer.getvalue().split())

    assert "Peak: 24 tasks x 0.5 vCPU = 12 vCPU (MaxTasks 12," in shown
    assert "up to 3.5 vCPU (7 tasks) on Fargate On-Demand" in shown
    assert "up to 9 vCPU (18 tasks) on Fargate Spot" in shown
    assert '"Fargate On-Demand vCPU resource count" (L-3032A538)' in shown
    assert '"Fargate Spot vCPU resource count" (L-36FBB829)' in shown
