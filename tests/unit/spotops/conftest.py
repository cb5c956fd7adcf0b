"""Fixtures for the command line's unit tests: no network, no AWS (fakes in tests/support)."""

from __future__ import annotations

import pytest

from spotops.reports.cost import PriceTable
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
                "interface_endpoint_az_hour": 0.01,
                "interface_endpoint_gb": 0.01,
                "data_transfer_out_gb": 0.1,
                "cloudwatch_alarm_metric_month": 0.1,
                "cloudwatch_high_resolution_alarm_metric_month": 0.3,
                "cloudwatch_composite_alarm_month": 0.5,
                "cloudwatch_custom_metric_month": 0.3,
                "cloudwatch_dashboard_month": 3,
                "logs_ingestion_gb": 0.5,
                "logs_storage_gb_month": 0.03,
                "kms_key_month": 1,
                "secrets_manager_secret_month": 0.4,
                "ecr_storage_gb_month": 0.1,
                "s3_storage_gb_month": 0.02,
                "waf_web_acl_month": 5,
                "waf_rule_month": 1,
                "waf_million_requests": 0.6,
                "lambda_million_requests": 0.2,
                "lambda_gb_second": 0.00001,
                "xray_million_traces": 5,
                "dynamodb_million_write_units": 1,
                "dynamodb_million_read_units": 0.1,
                "sqs_million_requests": 0.4,
            },
            "assumptions": {
                "alb_lcu": 1,
                "nat_gb_per_month": 10,
                "interface_endpoint_gb_per_month": 10,
                "data_transfer_out_gb_per_month": 10,
                "log_ingestion_gb_per_month": 4,
                "logs_compression_ratio": 0.1,
                "container_insights_metrics_per_service": 30,
                "container_insights_log_gb_per_task": 0.5,
                "custom_metrics": 2,
                "ecr_storage_gb": 1,
                "s3_storage_gb": 1,
                "requests_millions_per_month": 5,
                "ops_invocations_per_month": 1000000,
                "ops_gb_seconds_per_month": 10000,
                "xray_traces_millions_per_month": 0.2,
                "dynamodb_write_millions_per_month": 1,
                "dynamodb_read_millions_per_month": 2,
                "sqs_requests_millions_per_month": 0.5,
            },
            "free_tier": {
                "alarm_metrics": 10,
                "custom_metrics": 10,
                "dashboards": 3,
                "logs_gb": 5,
                "data_transfer_out_gb": 100,
                "lambda": 1,
                "xray_traces_millions": 0.1,
                "sqs_requests_millions": 1,
            },
        }
    )


@pytest.fixture
def fake_cfn() -> FakeCloudFormation:
    return FakeCloudFormation()
