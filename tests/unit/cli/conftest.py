"""Fixtures for the command line's unit tests: no network, no AWS (fakes in tests/support)."""

from __future__ import annotations

import pytest

from spotops.cost import PriceTable
from tests.support.fakes import FakeCloudFormation


@pytest.fixture
def simple_prices() -> PriceTable:
    """A small price table with round figures, so expected costs can be worked by hand."""
    return PriceTable.from_dict(
        {
            "region": "us-east-1",
            "taken_on": "2026-11-28",
            "hours_per_month": 100,
            "prices": {
                "fargate_vcpu_hour": 0.04,
                "fargate_gb_hour": 0.004,
                "fargate_spot_discount": 0.7,
                "alb_hour": 0.02,
                "alb_lcu_hour": 0.01,
                "nat_gateway_hour": 0.05,
                "nat_gateway_gb": 0.05,
                "public_ipv4_hour": 0.005,
                "cloudwatch_alarm_month": 0.1,
                "logs_ingestion_gb": 0.5,
                "interface_endpoint_az_hour": 0.01,
                "interface_endpoint_gb": 0.01,
                "secrets_manager_secret_month": 0.4,
                "waf_web_acl_month": 5,
                "waf_rule_month": 1,
                "waf_million_requests": 0.6,
            },
            "assumptions": {
                "availability_zones": 3,
                "alb_lcu": 1,
                "nat_gb_per_month": 10,
                "log_ingestion_gb_per_month": 4,
                "alarms": 8,
                "interface_endpoint_services": 3,
                "interface_endpoint_gb_per_month": 10,
                "secrets": 1,
                "waf_rules": 3,
                "requests_millions_per_month": 5,
            },
        }
    )


@pytest.fixture
def fake_cfn() -> FakeCloudFormation:
    return FakeCloudFormation()
