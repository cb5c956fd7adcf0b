"""The site's alarms and strategy as the template declares them, resolved for one stack."""

from __future__ import annotations

from pathlib import Path

from spotops.ops.site_alarms import (
    DeployedStack,
    alarm_definitions,
    composite_alarm_definitions,
    composite_inputs,
    rule_children,
    service_strategy,
)
from spotops.stage.templates import load_template

SITE = load_template(Path(__file__).resolve().parents[4] / "infra" / "cloudformation" / "site.yaml")
BALANCER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop-alb/50dc6c"
GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-site/73e2d6"


def deployed(**parameters: str) -> DeployedStack:
    return DeployedStack(
        parameters={"AppName": "shop", "StageName": "qa", **parameters},
        physical={
            "LoadBalancer": BALANCER,
            "TargetGroup": GROUP,
            "AlternateTargetGroup": GROUP + "-alt",
            "Cluster": "shop-qa",
            "Service": "arn:aws:ecs:us-east-1:123456789012:service/shop-qa/shop-qa-site",
            "AlarmTopic": "arn:aws:sns:us-east-1:123456789012:shop-qa-alarms",
        },
        region="us-east-1",
        account="123456789012",
    )


def test_an_alarm_carries_its_metric_threshold_and_runbook_from_the_template() -> None:
    stack = deployed(RunbookBaseUrl="https://git.example.com/fork/runbooks")

    cpu = alarm_definitions(SITE, stack)["shop-qa-cpu-high"]

    assert (cpu["Namespace"], cpu["MetricName"], cpu["Statistic"]) == (
        "AWS/ECS",
        "CPUUtilization",
        "Average",
    )
    assert (cpu["Threshold"], cpu["ComparisonOperator"]) == (85, "GreaterThanThreshold")
    assert cpu["Dimensions"] == [
        {"Name": "ClusterName", "Value": "shop-qa"},
        {"Name": "ServiceName", "Value": "shop-qa-site"},
    ]
    assert cpu["AlarmDescription"].endswith(
        "Runbook: https://git.example.com/fork/runbooks/cpu-high.md"
    )
    assert cpu["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:shop-qa-alarms"]
    assert "Tags" not in cpu


def test_conditions_choose_the_alarms_and_their_shape() -> None:
    rolling = alarm_definitions(SITE, deployed(EnableContainerInsights="false"))
    canary = alarm_definitions(
        SITE, deployed(EnableContainerInsights="true", DeploymentStrategy="CANARY")
    )

    assert "shop-qa-ephemeral-storage-high" not in rolling
    assert "shop-qa-ephemeral-storage-high" in canary
    plain = rolling["shop-qa-unhealthy-hosts"]
    assert plain["MetricName"] == "UnHealthyHostCount"
    assert {"Name": "LoadBalancer", "Value": "app/shop-alb/50dc6c"} in plain["Dimensions"]
    assert {"Name": "TargetGroup", "Value": "targetgroup/shop-site/73e2d6"} in plain["Dimensions"]
    assert "Metrics" not in plain
    shifting = canary["shop-qa-unhealthy-hosts"]
    assert "MetricName" not in shifting
    assert [m["Id"] for m in shifting["Metrics"]] == ["primary", "alternate", "unhealthy"]


def test_the_service_strategy_takes_the_stack_parameters() -> None:
    assert service_strategy(SITE, deployed(OnDemandBase="1", OnDemandWeight="2")) == [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 2},
        {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1},
    ]


def test_the_burn_rate_alerts_are_composites_over_their_windows_by_name() -> None:
    stack = deployed(RunbookBaseUrl="https://git.example.com/fork/runbooks")
    # The emulator's stack lists no physical id for an alarm: a Ref is still its name.
    odd = DeployedStack(
        parameters=stack.parameters,
        physical={**stack.physical, "SloLatencyFastBurnLongAlarm": "Alarm-7XQ2"},
        region=stack.region,
        account=stack.account,
    )

    alerts = composite_alarm_definitions(SITE, odd)

    assert sorted(alerts) == [
        f"shop-qa-slo-{objective}-{alert}"
        for objective in ("availability", "latency")
        for alert in ("fast-burn", "slow-burn", "ticket")
    ]
    fast = alerts["shop-qa-slo-latency-fast-burn"]
    assert fast["AlarmRule"] == (
        'ALARM("shop-qa-slo-latency-fast-burn-long") AND '
        'ALARM("shop-qa-slo-latency-fast-burn-short")'
    )
    assert fast["AlarmDescription"].endswith(
        "Runbook: https://git.example.com/fork/runbooks/slo-latency.md"
    )
    assert (
        fast["AlarmActions"]
        == fast["OKActions"]
        == ["arn:aws:sns:us-east-1:123456789012:shop-qa-alarms"]
    )
    assert "Tags" not in fast
    # The windows stay metric alarms, each the input of exactly one alert.
    assert not set(alerts) & set(alarm_definitions(SITE, stack))
    inputs = composite_inputs(alerts)
    assert len(inputs) == 12
    assert inputs["shop-qa-slo-availability-ticket-short"] == "shop-qa-slo-availability-ticket"
    assert set(inputs) <= set(alarm_definitions(SITE, stack))


def test_rule_children_reads_names_and_arns_in_the_rules_order() -> None:
    rule = (
        'ALARM("a-long") AND (OK(arn:aws:cloudwatch:us-east-1:123456789012:alarm:b) '
        'OR NOT INSUFFICIENT_DATA("c"))'
    )

    assert rule_children(rule) == [
        "a-long",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:b",
        "c",
    ]
    assert composite_inputs({"x": {"AlarmRule": rule}}) == {"a-long": "x", "b": "x", "c": "x"}
