"""The cost estimate, checked against figures computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from spotops.config import load_stage_config
from spotops.cost import estimate, load_price_table, task_split

ROOT = Path(__file__).resolve().parents[3]

DEV_LIKE = {
    "NatMode": "none",
    "TaskCpu": "256",
    "TaskMemory": "512",
    "DesiredCount": "2",
    "OnDemandBase": "0",
    "OnDemandWeight": "0",
    "SpotWeight": "1",
    "EnableAutoScaling": "false",
    "CreateInterfaceEndpoints": "false",
    "CreateWaf": "false",
}
PROD_LIKE = {
    "NatMode": "per-az",
    "TaskCpu": "512",
    "TaskMemory": "1024",
    "DesiredCount": "3",
    "OnDemandBase": "1",
    "OnDemandWeight": "1",
    "SpotWeight": "3",
    "EnableAutoScaling": "true",
    "MinTasks": "3",
    "MaxTasks": "12",
    "CreateInterfaceEndpoints": "true",
    "CreateWaf": "true",
}


def _items(result):
    return {item.name: round(item.monthly, 6) for item in result.items}


def test_dev_profile_matches_the_hand_computed_figures(simple_prices):
    # 100 h/month. Task: (0.25 x 0.04 + 0.5 x 0.004) x 100 = 1.20; Spot at 30%: 2 x 1.20 x 0.3.
    result = estimate(DEV_LIKE, {}, simple_prices)

    assert _items(result) == {
        "Fargate Spot": 0.72,
        "Application Load Balancer": 2.0,  # 0.02 x 100
        "ALB capacity units": 1.0,  # 1 LCU x 0.01 x 100
        "Public IPv4 addresses": 2.5,  # (3 ALB + 2 tasks) x 0.005 x 100
        "CloudWatch alarms": 0.8,  # 8 x 0.10
        "CloudWatch Logs ingestion": 2.0,  # 4 GB x 0.50
        "Secrets Manager": 0.4,
    }
    assert result.total == pytest.approx(9.42)


def test_production_profile_matches_the_hand_computed_figures(simple_prices):
    # Task: (0.5 x 0.04 + 1 x 0.004) x 100 = 2.40. 3 tasks: base 1 on demand, the other 2
    # split 1:3 -> 1.5 on demand, 1.5 Spot.
    result = estimate(PROD_LIKE, {}, simple_prices)

    assert _items(result) == {
        "Fargate on-demand": 3.6,  # 1.5 x 2.40
        "Fargate Spot": 1.08,  # 1.5 x 2.40 x 0.3
        "Application Load Balancer": 2.0,
        "ALB capacity units": 1.0,
        "NAT gateways": 15.0,  # 3 x 0.05 x 100
        "NAT data processed": 0.5,  # 10 GB x 0.05
        "Public IPv4 addresses": 3.0,  # (3 ALB + 3 NAT) x 0.005 x 100
        "Interface endpoints": 9.0,  # 3 services x 3 AZs x 0.01 x 100
        "Interface endpoint data": 0.1,  # 10 GB x 0.01
        "CloudWatch alarms": 0.8,
        "CloudWatch Logs ingestion": 2.0,
        "Secrets Manager": 0.4,
        "WAF": 11.0,  # 5 + 3 rules x 1 + 5 M requests x 0.60
    }
    assert result.total == pytest.approx(49.48)


def test_single_nat_mode_counts_one_gateway_and_no_task_addresses(simple_prices):
    result = estimate({**DEV_LIKE, "NatMode": "single"}, {"availability_zones": 2}, simple_prices)

    items = _items(result)
    assert items["NAT gateways"] == 5.0  # 1 x 0.05 x 100
    assert items["Public IPv4 addresses"] == 1.5  # 2 ALB + 1 NAT


def test_autoscaling_estimates_at_least_the_minimum(simple_prices):
    params = {**DEV_LIKE, "EnableAutoScaling": "true", "DesiredCount": "1", "MinTasks": "4"}

    assert _items(estimate(params, {}, simple_prices))["Fargate Spot"] == pytest.approx(1.44)


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


def test_error_if_the_strategy_has_no_weight():
    with pytest.raises(ValueError, match="must be positive"):
        task_split(2, 0, 0, 0)


def test_shipped_price_table_states_region_date_and_sources():
    prices = load_price_table()

    assert prices.region == "us-east-1"
    assert prices.taken_on == "2026-11-28"
    assert all(url.startswith("https://aws.amazon.com/") for url in prices.sources.values())
    assert prices.prices["fargate_vcpu_hour"] == 0.04048


def test_shipped_dev_and_seed_profiles_cost_what_the_readme_says():
    prices = load_price_table()
    dev = load_stage_config(ROOT, "dev")
    seed = load_stage_config(ROOT, "seed")

    # dev: 2 Spot tasks 2 x (0.25 x 0.04048 + 0.5 x 0.004445) x 730 x 0.3 = 5.406015;
    # ALB 16.425 + LCU 5.84; IPv4 (3 ALB + 2 tasks) x 3.65 = 18.25; alarms 0.80;
    # logs 2.50; secret 0.40.
    assert estimate(dev.parameters, dev.estimate, prices).total == pytest.approx(49.621015)
    # seed: the same plus 3 NAT gateways 98.55 + 20 GB 0.90, IPv4 (3 ALB + 3 NAT) = 21.90.
    assert estimate(seed.parameters, seed.estimate, prices).total == pytest.approx(152.721015)
