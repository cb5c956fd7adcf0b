"""Progressive delivery in infra/cloudformation/site.yaml: DeploymentStrategy ROLLING,
CANARY and LINEAR, the alternate target group and listener rules ECS shifts traffic with,
the smoke-test lifecycle hook, and what watches the site while the two target groups swap.

The local emulator drops the service's deployment configuration and load balancer settings,
so the rendered resources are asserted here, and the template is linted (cfn-lint, checkov)
once per strategy, with and without a domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.templates import (
    CHECKOV,
    Resolver,
    load,
    render_with_values,
    run_cfn_lint,
    run_checkov,
)

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/spotops-dev-site@sha256:" + "a" * 64
DOMAIN = {"DomainName": "www.example.com", "HostedZoneId": "Z0123456789ABC"}
HOOK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:spotops-dev-deployment_hook"
TEST_HEADER = "X-Spotops-Test-Traffic"
SHIFTING_ONLY = (
    "AlternateTargetGroup",
    "TestListenerRule",
    "ProductionListenerRule",
    "TrafficShiftRole",
)


@pytest.fixture(scope="module")
def site() -> dict[str, Any]:
    return load("site")


def render(site: dict[str, Any], **values: str) -> Resolver:
    return Resolver(site, **values)


def service(resolver: Resolver) -> dict[str, Any]:
    return resolver.value(resolver.template["Resources"]["Service"]["Properties"])


def props(resolver: Resolver, logical_id: str) -> dict[str, Any]:
    assert resolver.exists(logical_id), logical_id
    return resolver.value(resolver.template["Resources"][logical_id]["Properties"])


# ---- parameters ----------------------------------------------------------------------


def test_the_strategy_parameters_have_their_defaults_and_a_group(site):
    params = site["Parameters"]
    assert params["DeploymentStrategy"]["AllowedValues"] == ["ROLLING", "CANARY", "LINEAR"]
    assert params["SmokeTestHook"]["AllowedValues"] == ["enabled", "disabled"]
    defaults = {
        "DeploymentStrategy": "ROLLING",
        "BakeTimeInMinutes": 10,
        "CanaryPercent": 10,
        "CanaryBakeTimeInMinutes": 5,
        "LinearStepPercent": 25,
        "LinearStepBakeTimeInMinutes": 3,
        "SmokeTestHook": "enabled",
    }
    assert {name: params[name]["Default"] for name in defaults} == defaults
    # Within ECS's own bounds (canary 0.1-100, linear steps 3-100, bakes up to a day), and
    # tighter where the deploy workflow must follow a whole deployment (at most 135 minutes:
    # tests/unit/ci/test_deploy_session.py): 10 linear steps, bakes of at most an hour.
    assert (params["CanaryPercent"]["MinValue"], params["CanaryPercent"]["MaxValue"]) == (0.1, 100)
    assert params["LinearStepPercent"]["MinValue"] == 10
    bounds = {
        "BakeTimeInMinutes": (0, 60),
        "CanaryBakeTimeInMinutes": (0, 60),
        "LinearStepBakeTimeInMinutes": (0, 6),
    }
    for name, bound in bounds.items():
        assert (params[name]["MinValue"], params[name]["MaxValue"]) == bound, name
    groups = site["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (group,) = [g for g in groups if "DeploymentStrategy" in g["Parameters"]]
    assert set(group["Parameters"]) == set(defaults)
    # The autoscaling trade-off is said where the choice is made.
    assert "requests-per-task" in params["DeploymentStrategy"]["Description"]


# ---- the service's deployment configuration -------------------------------------------


@pytest.mark.parametrize("strategy", ["ROLLING", "CANARY", "LINEAR"])
def test_the_strategy_reaches_the_service_and_the_alarms_roll_back_for_every_one(site, strategy):
    deployment = service(render(site, DeploymentStrategy=strategy, ImageUri=IMAGE))[
        "DeploymentConfiguration"
    ]
    assert deployment["Strategy"] == strategy
    assert deployment["Alarms"] == {
        "Enable": "true",
        "Rollback": "true",
        "AlarmNames": [
            "spotops-dev-target-5xx",
            "spotops-dev-unhealthy-hosts",
            "spotops-dev-slo-availability-fast-burn-short",
            "spotops-dev-slo-latency-fast-burn-short",
        ],
    }
    assert deployment["MaximumPercent"] == "200"


def test_rolling_keeps_the_circuit_breaker_and_nothing_of_traffic_shifting(site):
    resolver = render(site, DeploymentStrategy="ROLLING", ImageUri=IMAGE)
    deployment = service(resolver)["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": "true", "Rollback": "true"}
    for key in ("BakeTimeInMinutes", "CanaryConfiguration", "LinearConfiguration"):
        assert key not in deployment, key
    assert "LifecycleHooks" not in deployment
    (balancer,) = service(resolver)["LoadBalancers"]
    assert "AdvancedConfiguration" not in balancer
    for logical_id in (*SHIFTING_ONLY, "SmokeTestHookRole"):
        assert not resolver.exists(logical_id), logical_id


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            "CANARY",
            {"CanaryConfiguration": {"CanaryPercent": "10", "CanaryBakeTimeInMinutes": "5"}},
        ),
        (
            "LINEAR",
            {"LinearConfiguration": {"StepPercent": "25", "StepBakeTimeInMinutes": "3"}},
        ),
    ],
)
def test_canary_and_linear_shift_traffic_without_a_circuit_breaker(site, strategy, expected):
    deployment = service(render(site, DeploymentStrategy=strategy, ImageUri=IMAGE))[
        "DeploymentConfiguration"
    ]
    # The circuit breaker is a ROLLING feature; AWS refuses it with the others.
    assert "DeploymentCircuitBreaker" not in deployment
    assert deployment["BakeTimeInMinutes"] == "10"
    shaping = {
        k: v for k, v in deployment.items() if k in {"CanaryConfiguration", "LinearConfiguration"}
    }
    assert shaping == expected


@pytest.mark.parametrize("strategy", ["CANARY", "LINEAR"])
@pytest.mark.parametrize(("domain", "listener"), [({}, "HttpListener"), (DOMAIN, "HttpsListener")])
def test_traffic_shifting_has_an_alternate_group_and_rules_on_the_serving_listener(
    site, strategy, domain, listener
):
    resolver = render(site, DeploymentStrategy=strategy, ImageUri=IMAGE, **domain)
    for logical_id in SHIFTING_ONLY:
        assert resolver.exists(logical_id), logical_id
    (balancer,) = service(resolver)["LoadBalancers"]
    assert balancer["TargetGroupArn"] == "<TargetGroup>"
    assert balancer["AdvancedConfiguration"] == {
        "AlternateTargetGroupArn": "<AlternateTargetGroup>",
        "ProductionListenerRule": "<ProductionListenerRule>",
        "TestListenerRule": "<TestListenerRule>",
        "RoleArn": "<TrafficShiftRole.Arn>",
    }
    production = props(resolver, "ProductionListenerRule")
    test = props(resolver, "TestListenerRule")
    assert production["ListenerArn"] == test["ListenerArn"] == f"<{listener}>"
    assert production["Conditions"] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}
    ]
    assert production["Actions"] == [
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": "<TargetGroup>", "Weight": "100"},
                    {"TargetGroupArn": "<AlternateTargetGroup>", "Weight": "0"},
                ]
            },
        }
    ]
    # The test rule is tried first (lower number) and only matches the stage's header.
    assert int(test["Priority"]) < int(production["Priority"])
    assert test["Conditions"] == [
        {
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": TEST_HEADER, "Values": ["dev"]},
        }
    ]
    assert test["Actions"] == [{"Type": "forward", "TargetGroupArn": "<TargetGroup>"}]


def test_the_alternate_target_group_is_configured_as_the_target_group(site):
    resources = site["Resources"]
    assert resources["AlternateTargetGroup"]["Properties"] == resources["TargetGroup"]["Properties"]
    # Named by CloudFormation, like TargetGroup: a new ContainerPort must be able to replace it.
    assert "Name" not in resources["AlternateTargetGroup"]["Properties"]


def test_the_traffic_shift_role_is_ecs_with_the_aws_load_balancer_policy_only(site):
    role = props(render(site, DeploymentStrategy="CANARY"), "TrafficShiftRole")
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
    ]
    assert "Policies" not in role


# ---- the smoke-test hook --------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "hooked"),
    [
        ({"DeploymentStrategy": "ROLLING", "ImageUri": IMAGE}, False),
        ({"DeploymentStrategy": "CANARY", "ImageUri": IMAGE}, True),
        ({"DeploymentStrategy": "LINEAR", "ImageUri": IMAGE}, True),
        ({"DeploymentStrategy": "CANARY", "ImageUri": IMAGE, "SmokeTestHook": "disabled"}, False),
        # First deploy: the ops stack and its function come after this stack, and ECS runs
        # hooks on the service's first deployment too.
        ({"DeploymentStrategy": "CANARY", "ImageUri": ""}, False),
    ],
)
def test_the_hook_exists_only_when_traffic_shifts_with_the_hook_on_and_an_image(
    site, values, hooked
):
    resolver = render(site, **values)
    deployment = service(resolver)["DeploymentConfiguration"]
    assert ("LifecycleHooks" in deployment) is hooked
    assert resolver.exists("SmokeTestHookRole") is hooked


@pytest.mark.parametrize(
    ("domain", "base_url"),
    [({}, "http://<LoadBalancer.DNSName>"), (DOMAIN, "https://www.example.com")],
)
def test_the_hook_calls_the_ops_function_with_where_and_how_to_send_test_traffic(
    site, domain, base_url
):
    resolver = render(site, DeploymentStrategy="CANARY", ImageUri=IMAGE, **domain)
    (hook,) = service(resolver)["DeploymentConfiguration"]["LifecycleHooks"]
    assert hook == {
        "TargetType": "AWS_LAMBDA",
        "HookTargetArn": HOOK_ARN,
        "RoleArn": "<SmokeTestHookRole.Arn>",
        "LifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
        "TimeoutConfiguration": {"TimeoutInMinutes": "5", "Action": "ROLLBACK"},
        # Exactly what the deployment_hook function reads from hookDetails.
        "HookDetails": {
            "baseUrl": base_url,
            "testHeader": TEST_HEADER,
            "testHeaderValue": "dev",
        },
    }
    # The header the hook sends is the one the test listener rule matches.
    (condition,) = props(resolver, "TestListenerRule")["Conditions"]
    assert condition["HttpHeaderConfig"] == {
        "HttpHeaderName": hook["HookDetails"]["testHeader"],
        "Values": [hook["HookDetails"]["testHeaderValue"]],
    }


def test_the_hook_role_may_invoke_exactly_the_hook_function(site):
    resolver = render(site, DeploymentStrategy="LINEAR", ImageUri=IMAGE)
    role = props(resolver, "SmokeTestHookRole")
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == HOOK_ARN
    # The longest names still make a valid function name (64 characters at most).
    longest = Resolver(
        site, AppName="a" * 20, StageName="s" * 12, DeploymentStrategy="CANARY", ImageUri=IMAGE
    )
    arn = props(longest, "SmokeTestHookRole")["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert len(arn["Resource"].rsplit(":", 1)[1]) <= 64


def test_the_hook_names_a_function_the_ops_toolkit_defines():
    import json

    from tests.support.templates import REPO

    config = json.loads((REPO / "ops_lambdas" / ".chalice" / "config.json").read_text())
    # Chalice names each function <app_name>-<stage>-<name>; spotops sets the stage.
    assert "deployment_hook" in config["lambda_functions"]


# ---- what watches the site while the groups swap ----------------------------------------


@pytest.mark.parametrize("strategy", ["ROLLING", "CANARY", "LINEAR"])
def test_5xx_and_latency_alarms_watch_the_load_balancer_not_a_target_group(site, strategy):
    resolver = render(site, DeploymentStrategy=strategy, ImageUri=IMAGE)
    for logical_id, name in (
        ("Target5xxAlarm", "spotops-dev-target-5xx"),
        ("TargetResponseTimeP99Alarm", "spotops-dev-target-response-time-p99"),
    ):
        alarm = props(resolver, logical_id)
        assert alarm["AlarmName"] == name
        assert alarm["Dimensions"] == [
            {"Name": "LoadBalancer", "Value": "<LoadBalancer.LoadBalancerFullName>"}
        ]


def test_unhealthy_hosts_is_one_target_group_with_rolling(site):
    alarm = props(render(site, DeploymentStrategy="ROLLING"), "UnhealthyHostsAlarm")
    assert alarm["AlarmName"] == "spotops-dev-unhealthy-hosts"
    assert "Metrics" not in alarm
    assert (alarm["MetricName"], alarm["Statistic"]) == ("UnHealthyHostCount", "Maximum")
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["TargetGroup"] == (
        "<TargetGroup.TargetGroupFullName>"
    )


@pytest.mark.parametrize("strategy", ["CANARY", "LINEAR"])
def test_unhealthy_hosts_is_the_larger_count_of_both_groups_when_traffic_shifts(site, strategy):
    alarm = props(render(site, DeploymentStrategy=strategy), "UnhealthyHostsAlarm")
    assert alarm["AlarmName"] == "spotops-dev-unhealthy-hosts"
    for single in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period"):
        assert single not in alarm, single
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    (result,) = [m for m in metrics.values() if m["ReturnData"] == "true"]
    assert result["Expression"] == "MAX([primary, alternate])"
    groups = set()
    for metric_id in ("primary", "alternate"):
        stat = metrics[metric_id]["MetricStat"]
        assert metrics[metric_id]["ReturnData"] == "false"
        assert stat["Metric"]["MetricName"] == "UnHealthyHostCount"
        assert stat["Stat"] == "Maximum"
        groups.add({d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}["TargetGroup"])
    assert groups == {
        "<TargetGroup.TargetGroupFullName>",
        "<AlternateTargetGroup.TargetGroupFullName>",
    }
    # Same evaluation as the single-metric alarm.
    assert (alarm["EvaluationPeriods"], alarm["Threshold"]) == ("3", "1")


@pytest.mark.parametrize(
    ("strategy", "on_requests"), [("ROLLING", True), ("CANARY", False), ("LINEAR", False)]
)
def test_requests_per_target_scaling_only_with_rolling_and_cpu_always(site, strategy, on_requests):
    resolver = render(site, DeploymentStrategy=strategy, ImageUri=IMAGE)
    assert resolver.exists("CpuScalingPolicy")
    assert resolver.exists("RequestCountScalingPolicy") is on_requests
    if on_requests:
        label = props(resolver, "RequestCountScalingPolicy")[
            "TargetTrackingScalingPolicyConfiguration"
        ]["PredefinedMetricSpecification"]["ResourceLabel"]
        # With ROLLING TargetGroup is always the service's group.
        assert label.endswith("/<TargetGroup.TargetGroupFullName>")


def test_nothing_but_the_unhealthy_alarm_and_the_dashboard_host_widget_names_a_target_group(site):
    """Every other reference to TargetGroup is wiring (listeners, rules, service), not a
    metric: a metric keyed on one group would watch the idle one after every other
    CANARY or LINEAR deployment."""
    resolver = render(site, DeploymentStrategy="CANARY", ImageUri=IMAGE)
    for logical_id, resource in site["Resources"].items():
        if resource["Type"] not in {
            "AWS::CloudWatch::Alarm",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
        } or not resolver.exists(logical_id):
            continue
        text = str(props(resolver, logical_id))
        if "TargetGroup" in text:
            assert logical_id == "UnhealthyHostsAlarm", logical_id
            assert "AlternateTargetGroup" in text


# ---- lint, per strategy and domain ------------------------------------------------------

VARIANTS = {
    f"{strategy.lower()}-{'domain' if domain else 'http'}": {
        "DeploymentStrategy": strategy,
        "ImageUri": IMAGE,
        **domain,
    }
    for strategy in ("ROLLING", "CANARY", "LINEAR")
    for domain in ({}, DOMAIN)
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("site-variants")
    return {
        label: render_with_values("site", directory, label, **values)
        for label, values in VARIANTS.items()
    }


def test_every_variant_is_clean_under_cfn_lint_and_our_rules(rendered):
    # One run over every variant: each file is the template with those parameter values.
    found = run_cfn_lint(*rendered.values())
    assert [(m["Filename"], m["Rule"]["Id"], m["Message"]) for m in found] == []


@pytest.mark.skipif(not CHECKOV.exists(), reason="no .venv-checkov (make lint-templates makes it)")
def test_every_variant_is_clean_under_checkov(rendered):
    report = run_checkov(*rendered.values())
    assert report["summary"]["parsing_errors"] == 0
    assert report["results"]["failed_checks"] == []
    scanned = {Path(c["file_path"]).name for c in report["results"]["passed_checks"]}
    assert scanned == {path.name for path in rendered.values()}


def test_the_variants_differ_where_they_should(rendered):
    """The rendered files really are different stacks (a rendering that ignored the values
    would lint the default six times)."""
    import json

    def resolved(label: str) -> Resolver:
        template = json.loads(rendered[label].read_text())
        return Resolver(template)

    assert not resolved("rolling-http").exists("AlternateTargetGroup")
    assert resolved("canary-domain").exists("SmokeTestHookRole")
    assert resolved("linear-http").value({"Ref": "DeploymentStrategy"}) == "LINEAR"
    assert resolved("linear-domain").value({"Fn::If": ["HasDomain", "y", "n"]}) == "y"
