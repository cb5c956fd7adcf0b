"""Template tests for infra/cloudformation/site.yaml: the properties that matter.

Many of these properties are dropped by the local emulator (see
tests/integration/infra/test_stacks_in_emulator.py), so this is where they are checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.templates import (
    RUNBOOK_LINK,
    RUNBOOKS,
    TEMPLATES,
    Resolver,
    evaluate,
    failed_rule_assertions,
    load,
    resources_of_type,
    sub_text,
)

CONTRACT_DEFAULTS = {
    "ImageUri": "",
    "ContainerPort": 8080,
    "TaskCpu": 256,
    "TaskMemory": 512,
    "DesiredCount": 2,
    "OnDemandBase": 0,
    "OnDemandWeight": 0,
    "SpotWeight": 1,
    "DomainName": "",
    "HostedZoneId": "",
    "CreateWaf": "false",
    "AccessLogBucketName": "",
}
CONTRACT_PARAMETERS = {
    "AppName",
    "StageName",
    "NetworkStackName",
    "EnableAutoScaling",
    "MinTasks",
    "MaxTasks",
    "EnableExecuteCommand",
    "LogRetentionDays",
    "RunbookBaseUrl",
    "NatMode",
    "EnableContainerInsights",
    "AlarmEmail",
    "RetainData",
    *CONTRACT_DEFAULTS,
}
CONTRACT_OUTPUTS = {
    "SiteUrl",
    "RepositoryUri",
    "RepositoryName",
    "ClusterName",
    "ServiceName",
    "AlarmTopicArn",
    "LoadBalancerDnsName",
    "LogGroupName",
    # What the ops stack is packaged and scoped with.
    "TaskDefinitionFamily",
    "TaskRoleArn",
    "TaskExecutionRoleArn",
    # The ops functions read the error budget from the load balancer's metrics (part F).
    "LoadBalancerFullName",
}
REQUIRED_RUNBOOKS = {
    "alb-5xx.md",
    "target-5xx.md",
    "unhealthy-hosts.md",
    "target-response-time-p99.md",
    "cpu-high.md",
    "memory-high.md",
    "ephemeral-storage-high.md",
    "running-tasks-below-desired.md",
    "network-anomaly.md",
    "slo-availability.md",
    "slo-latency.md",
}


@pytest.fixture(scope="module")
def site() -> dict[str, Any]:
    return load("site")


@pytest.fixture(scope="module")
def resources(site) -> dict[str, Any]:
    return site["Resources"]


class ArnResolver(Resolver):
    """A :class:`Resolver` whose target groups are ARN-shaped, so the dashboard can cut
    ``targetgroup/<name>/<id>`` out of them as it does in AWS."""

    def _resource(self, logical_id: str, attribute: str | None = None) -> str:
        value = super()._resource(logical_id, attribute)
        if attribute is None and "TargetGroup" in logical_id:
            return f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{value}/1"
        return value


def properties(resources: dict[str, Any], name: str) -> dict[str, Any]:
    return resources[name]["Properties"]


def containers(resources: dict[str, Any], *, daemon: bool = False) -> list[dict[str, Any]]:
    """The task's containers without (the default) or with the X-Ray daemon sidecar."""
    condition, with_daemon, without = properties(resources, "TaskDefinition")[
        "ContainerDefinitions"
    ]["Fn::If"]
    assert condition == "HasXRayDaemon"
    return with_daemon if daemon else without


def container(resources: dict[str, Any], name: str, *, daemon: bool = False) -> dict[str, Any]:
    return next(c for c in containers(resources, daemon=daemon) if c["Name"] == name)


# ---- interface ----------------------------------------------------------------------


def test_has_the_contract_parameters_with_their_defaults(site):
    params = site["Parameters"]
    assert set(params) >= CONTRACT_PARAMETERS
    for name, default in CONTRACT_DEFAULTS.items():
        assert params[name]["Default"] == default, name


def test_every_parameter_describes_its_default(site):
    for name, param in site["Parameters"].items():
        assert "Default is" in param["Description"] or "(the default)" in param["Description"], name


def test_switches_allow_only_true_and_false(site):
    for name in ("EnableAutoScaling", "CreateWaf", "EnableExecuteCommand"):
        assert list(site["Parameters"][name]["AllowedValues"]) == ["true", "false"], name


def test_outputs_follow_the_contract(site):
    outputs = site["Outputs"]
    assert set(outputs) == CONTRACT_OUTPUTS
    for name, output in outputs.items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


def test_site_url_is_https_on_the_domain_else_http_on_the_load_balancer(site):
    condition, with_domain, without = site["Outputs"]["SiteUrl"]["Value"]["Fn::If"]
    assert condition == "HasDomain"
    assert sub_text(with_domain) == "https://${DomainName}"
    assert sub_text(without) == "http://${LoadBalancer.DNSName}"


def test_network_values_are_imported_from_the_network_stack_by_name(site):
    text = (TEMPLATES / "site.yaml").read_text()
    # The emulator's YAML loader breaks on `!ImportValue` with a mapping under it.
    assert "!ImportValue" not in text
    assert text.count('"Fn::ImportValue": !Sub "${NetworkStackName}-') >= 5
    # Never the exports that change with NatMode (CloudFormation refuses to change an
    # export in use): the site reads NatMode itself.
    assert "-TaskSubnetIds" not in text
    assert "-TaskAssignPublicIp" not in text


def test_no_hard_coded_partition_in_arns():
    for path in TEMPLATES.glob("*.yaml"):
        assert "arn:aws:" not in path.read_text(), path.name


def test_every_resource_has_a_one_line_description(site):
    for name, resource in site["Resources"].items():
        assert resource.get("Metadata", {}).get("Description"), name


# ---- bad input ----------------------------------------------------------------------


def test_rules_exist_for_bad_weights_and_a_half_configured_domain(site):
    assert set(site["Rules"]) == {
        "WeightsNotAllZero",
        "DomainNameNeedsHostedZoneId",
        "HostedZoneIdNeedsDomainName",
    }
    for rule in site["Rules"].values():
        for assertion in rule["Assertions"]:
            assert assertion["AssertDescription"]


def test_defaults_pass_every_rule(site):
    assert failed_rule_assertions(site) == []
    assert (
        failed_rule_assertions(site, DomainName="www.example.com", HostedZoneId="Z0123456789ABC")
        == []
    )
    assert failed_rule_assertions(site, OnDemandWeight="1", SpotWeight="0") == []


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"OnDemandWeight": "0", "SpotWeight": "0"}, ["OnDemandWeight", "SpotWeight"]),
        ({"DomainName": "www.example.com"}, ["HostedZoneId", "DomainName"]),
        ({"HostedZoneId": "Z0123456789ABC"}, ["DomainName", "HostedZoneId"]),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_parameter(site, overrides, named):
    failed = failed_rule_assertions(site, **overrides)
    assert len(failed) == 1
    assert all(parameter in failed[0] for parameter in named)


# ---- load balancer ------------------------------------------------------------------


def test_load_balancer_drops_invalid_headers_and_sets_an_idle_timeout(resources):
    attributes = {
        a["Key"]: a["Value"]
        for a in properties(resources, "LoadBalancer")["LoadBalancerAttributes"]
        if "Key" in a
    }
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert 1 <= int(attributes["idle_timeout.timeout_seconds"]) <= 60
    assert properties(resources, "LoadBalancer")["Scheme"] == "internet-facing"


def test_access_logs_go_to_the_bucket_only_when_one_is_named(resources):
    attributes = properties(resources, "LoadBalancer")["LoadBalancerAttributes"]
    conditional = [a["Fn::If"] for a in attributes if "Fn::If" in a]
    assert {c[0] for c in conditional} == {"HasAccessLogBucket"}
    assert {"Key": "access_logs.s3.bucket", "Value": {"Ref": "AccessLogBucketName"}} in [
        c[1] for c in conditional
    ]


def test_tasks_take_traffic_from_the_load_balancer_only(resources):
    ingress = properties(resources, "TaskIngressFromLoadBalancer")
    assert ingress["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    assert ingress["FromPort"] == ingress["ToPort"] == {"Ref": "ContainerPort"}
    assert "SecurityGroupIngress" not in properties(resources, "TaskSecurityGroup")
    public_ports = {
        rule["FromPort"]
        for rule in properties(resources, "LoadBalancerSecurityGroup")["SecurityGroupIngress"]
    }
    assert public_ports == {80, 443}


def test_target_group_checks_readiness_quickly_on_ip_targets(resources):
    target_group = properties(resources, "TargetGroup")
    assert target_group["TargetType"] == "ip"
    assert target_group["HealthCheckPath"] == "/readyz"
    assert target_group["HealthCheckIntervalSeconds"] <= 15
    assert target_group["Port"] == {"Ref": "ContainerPort"}


def test_deregistration_delay_is_well_under_the_spot_two_minute_warning(resources):
    attributes = {
        a["Key"]: a["Value"] for a in properties(resources, "TargetGroup")["TargetGroupAttributes"]
    }
    delay = int(attributes["deregistration_delay.timeout_seconds"])
    assert delay < 120
    # Draining plus a graceful stop must fit in the 2-minute Spot warning.
    assert delay <= 60


def test_http_forwards_without_a_domain_and_redirects_to_https_with_one(resources):
    listener = properties(resources, "HttpListener")
    assert listener["Port"] == 80
    condition, with_domain, without = listener["DefaultActions"]["Fn::If"]
    assert condition == "HasDomain"
    assert with_domain == [
        {
            "Type": "redirect",
            "RedirectConfig": {
                "Protocol": "HTTPS",
                "Port": "443",
                "Host": "#{host}",
                "Path": "/#{path}",
                "Query": "#{query}",
                "StatusCode": "HTTP_301",
            },
        }
    ]
    assert without == [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}]


def test_certificate_https_listener_and_alias_exist_only_with_a_domain(site, resources):
    assert site["Conditions"]["HasDomain"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]
    }
    for name in ("Certificate", "HttpsListener", "AliasRecord"):
        assert resources[name]["Condition"] == "HasDomain", name
    certificate = properties(resources, "Certificate")
    assert certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"][0]["HostedZoneId"] == {"Ref": "HostedZoneId"}
    https = properties(resources, "HttpsListener")
    assert https["Protocol"] == "HTTPS"
    assert "TLS13" in https["SslPolicy"]
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "Certificate"}}]
    assert https["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}
    ]
    alias = properties(resources, "AliasRecord")["AliasTarget"]
    assert alias["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}


def test_waf_uses_the_aws_managed_rule_groups_when_asked(resources):
    assert resources["WebAcl"]["Condition"] == "ShouldCreateWaf"
    assert resources["WebAclAssociation"]["Condition"] == "ShouldCreateWaf"
    groups = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in properties(resources, "WebAcl")["Rules"]
    }
    assert groups == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }


# ---- image --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Repository", "RetainedRepository"])
def test_repository_scans_on_push_with_immutable_tags_encryption_and_lifecycle(resources, name):
    import json

    repository = properties(resources, name)
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    policy = json.loads(
        evaluate(
            repository["LifecyclePolicy"]["LifecyclePolicyText"],
            {"ImageRetentionCount": "30", "ReleaseImageRetentionCount": "200"},
        )
    )
    selections = [rule["selection"] for rule in policy["rules"]]
    assert {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    } in selections
    assert {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30} in selections


def test_without_an_image_the_service_runs_nothing_and_points_at_bootstrap(site, resources):
    assert site["Conditions"]["HasImage"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ImageUri"}, ""]}]
    }
    assert container(resources, "site")["Image"] == {
        "Fn::If": [
            "HasImage",
            {"Ref": "ImageUri"},
            {
                "Fn::If": [
                    "ShouldRetainData",
                    {"Fn::Sub": "${RetainedRepository.RepositoryUri}:bootstrap"},
                    {"Fn::Sub": "${Repository.RepositoryUri}:bootstrap"},
                ]
            },
        ]
    }
    assert properties(resources, "Service")["DesiredCount"] == {
        "Fn::If": [
            "ShouldAutoScale",
            {"Ref": "AWS::NoValue"},
            {"Fn::If": ["HasImage", {"Ref": "DesiredCount"}, 0]},
        ]
    }


# ---- ECS ----------------------------------------------------------------------------


def test_cluster_has_fargate_and_spot_and_container_insights_by_switch(site, resources):
    cluster = properties(resources, "Cluster")
    assert set(cluster["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    assert {
        "Name": "containerInsights",
        "Value": {"Fn::If": ["ShouldEnableContainerInsights", "enabled", "disabled"]},
    } in cluster["ClusterSettings"]
    assert site["Parameters"]["EnableContainerInsights"]["Default"] == "true"


@pytest.mark.parametrize("strategy", ["ROLLING", "CANARY"])
def test_alarms_on_container_insights_metrics_exist_only_with_it(site, strategy):
    resolver = Resolver(site, DeploymentStrategy=strategy)
    for name, alarm in resources_of_type(site, "AWS::CloudWatch::Alarm").items():
        props = resolver.value(alarm["Properties"])
        namespaces = {props.get("Namespace")} | {
            m["MetricStat"]["Metric"]["Namespace"]
            for m in props.get("Metrics", [])
            if "MetricStat" in m
        }
        if "ECS/ContainerInsights" in namespaces:
            assert alarm.get("Condition") == "ShouldEnableContainerInsights", name


def test_capacity_provider_strategy_comes_from_the_parameters(resources):
    strategy = properties(resources, "Service")["CapacityProviderStrategy"]
    assert strategy == [
        {
            "CapacityProvider": "FARGATE",
            "Base": {"Ref": "OnDemandBase"},
            "Weight": {"Ref": "OnDemandWeight"},
        },
        {"CapacityProvider": "FARGATE_SPOT", "Base": 0, "Weight": {"Ref": "SpotWeight"}},
    ]


def test_circuit_breaker_and_deployment_alarms_roll_back(site, resources):
    deployment = properties(resources, "Service")["DeploymentConfiguration"]
    # The default (ROLLING): CANARY and LINEAR are in the progressive delivery tests below.
    assert Resolver(site).value(deployment["DeploymentCircuitBreaker"]) == {
        "Enable": "true",
        "Rollback": "true",
    }
    assert deployment["Alarms"]["Enable"] is True
    assert deployment["Alarms"]["Rollback"] is True
    alarm_names = {
        sub_text(a["Properties"]["AlarmName"])
        for a in resources_of_type({"Resources": resources}, "AWS::CloudWatch::Alarm").values()
    }
    named = [sub_text(name) for name in deployment["Alarms"]["AlarmNames"]]
    assert named
    assert set(named) <= alarm_names
    # Named by string, so the service must wait for them explicitly.
    assert {"Target5xxAlarm", "UnhealthyHostsAlarm"} <= set(resources["Service"]["DependsOn"])


def test_service_has_grace_period_network_and_optional_exec(resources):
    service = properties(resources, "Service")
    assert service["HealthCheckGracePeriodSeconds"] >= 30
    assert service["EnableExecuteCommand"] == {
        "Fn::If": ["ShouldEnableExecuteCommand", True, False]
    }
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == {"Fn::If": ["HasNat", "DISABLED", "ENABLED"]}
    condition, private, public = network["Subnets"]["Fn::If"]
    assert condition == "HasNat"
    assert private["Fn::Split"][1] == {
        "Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-PrivateSubnetIds"}
    }
    assert public["Fn::Split"][1] == {
        "Fn::ImportValue": {"Fn::Sub": "${NetworkStackName}-PublicSubnetIds"}
    }
    # ROLLING (the default): one target group; CANARY and LINEAR are tested below.
    assert Resolver(load("site")).value(service["LoadBalancers"]) == [
        {"ContainerName": "site", "ContainerPort": "8080", "TargetGroupArn": "<TargetGroup>"}
    ]


def test_site_container_is_locked_down_and_stops_gracefully(resources):
    site = container(resources, "site")
    # Read-only unless ECS Exec is on: its agent cannot run on a read-only root.
    assert site["ReadonlyRootFilesystem"] == {"Fn::If": ["ShouldEnableExecuteCommand", False, True]}
    assert site["User"].split(":")[0] not in {"0", "root"}
    assert site["StopTimeout"] == 120
    assert {"SourceVolume": "tmp", "ContainerPath": "/tmp", "ReadOnly": False} in site[
        "MountPoints"
    ]
    command = site["HealthCheck"]["Command"]
    assert command[:3] == ["CMD", "python", "-c"]
    assert "/healthz" in sub_text(command[3])
    assert site["LogConfiguration"]["LogDriver"] == "awslogs"
    assert site["LogConfiguration"]["Options"]["awslogs-group"] == {
        "Fn::If": ["ShouldRetainData", {"Ref": "RetainedLogGroup"}, {"Ref": "LogGroup"}]
    }


def test_task_definition_sizes_come_from_parameters(resources):
    task = properties(resources, "TaskDefinition")
    assert task["Cpu"] == {"Ref": "TaskCpu"}
    assert task["Memory"] == {"Ref": "TaskMemory"}
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    for name in ("LogGroup", "RetainedLogGroup"):
        assert properties(resources, name)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ---- the X-Ray daemon sidecar (XRayDaemon) ------------------------------------------


def _environment(site_container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in site_container["Environment"]}


def test_the_xray_daemon_is_off_unless_asked_for(site):
    parameter = site["Parameters"]["XRayDaemon"]
    assert parameter["Default"] == "disabled"
    assert list(parameter["AllowedValues"]) == ["enabled", "disabled"]
    assert Resolver(site).condition("HasXRayDaemon") is False
    assert Resolver(site, XRayDaemon="enabled").condition("HasXRayDaemon") is True
    assert Resolver(site, XRayDaemon="disabled").condition("HasXRayDaemon") is False


def test_without_the_daemon_the_task_runs_the_site_alone(resources):
    (only,) = containers(resources)
    assert only["Name"] == "site"
    assert "AWS_XRAY_DAEMON_ADDRESS" not in _environment(only)


def test_with_the_daemon_it_is_a_small_non_essential_read_only_sidecar(resources):
    assert [c["Name"] for c in containers(resources, daemon=True)] == ["site", "xray-daemon"]
    xray = container(resources, "xray-daemon", daemon=True)
    assert xray["Image"] == {"Ref": "XRayDaemonImage"}
    assert xray["Essential"] is False
    assert xray["PortMappings"] == [{"ContainerPort": 2000, "Protocol": "udp"}]
    assert xray["ReadonlyRootFilesystem"] is True
    assert xray["User"] != "0"
    # What spotops cost counts as the sidecar's share of each task.
    assert (xray["Cpu"], xray["MemoryReservation"]) == (32, 64)
    assert xray["LogConfiguration"]["Options"]["awslogs-stream-prefix"] == "xray"
    site_env = _environment(container(resources, "site", daemon=True))
    assert site_env["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:2000"


def test_the_site_container_is_the_same_with_or_without_the_daemon(resources):
    alone = dict(container(resources, "site"))
    beside = dict(container(resources, "site", daemon=True))
    beside["Environment"] = [
        e for e in beside["Environment"] if e["Name"] != "AWS_XRAY_DAEMON_ADDRESS"
    ]
    assert beside == alone


def test_the_daemon_image_is_pinned_to_a_release(site):
    image = site["Parameters"]["XRayDaemonImage"]["Default"]
    # Not the moving 3.x tag: the newest release of github.com/aws/aws-xray-daemon.
    assert image == "public.ecr.aws/xray/aws-xray-daemon:3.6.6"


@pytest.mark.parametrize(
    ("switch", "expected"),
    [("disabled", None), ("enabled", ["arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"])],
)
def test_the_task_role_may_write_to_xray_only_with_the_daemon(site, resources, switch, expected):
    role = Resolver(site, XRayDaemon=switch).value(properties(resources, "TaskRole"))
    assert role.get("ManagedPolicyArns") == expected


# ---- autoscaling --------------------------------------------------------------------


def test_autoscaling_waits_for_an_image_and_the_switch(site, resources):
    # Without an image the service runs 0 tasks; a scaler would lift it to MinTasks.
    assert site["Conditions"]["ShouldAutoScale"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "EnableAutoScaling"}, "true"]},
            {"Condition": "HasImage"},
        ]
    }
    scaling = {
        name: r
        for name, r in resources.items()
        if r["Type"].startswith("AWS::ApplicationAutoScaling::")
    }
    assert len(scaling) == 3
    conditions = {name: r["Condition"] for name, r in scaling.items()}
    # Requests per target also waits for ROLLING (see the progressive delivery tests).
    assert conditions.pop("RequestCountScalingPolicy") == "ShouldScaleOnRequests"
    assert site["Conditions"]["ShouldScaleOnRequests"]["Fn::And"][0] == {
        "Condition": "ShouldAutoScale"
    }
    assert set(conditions.values()) == {"ShouldAutoScale"}


def test_target_tracking_on_cpu_and_requests_per_task_with_cooldowns(resources):
    target = properties(resources, "ScalableTarget")
    assert target["MinCapacity"] == {"Ref": "MinTasks"}
    assert target["MaxCapacity"] == {"Ref": "MaxTasks"}
    metrics = {}
    for resource in resources_of_type(
        {"Resources": resources}, "AWS::ApplicationAutoScaling::ScalingPolicy"
    ).values():
        config = resource["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        metrics[config["PredefinedMetricSpecification"]["PredefinedMetricType"]] = config
        assert config["ScaleInCooldown"] > config["ScaleOutCooldown"] > 0
    assert set(metrics) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


# ---- alarms -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alarms(site) -> dict[str, Any]:
    return resources_of_type(site, "AWS::CloudWatch::Alarm")


def test_every_alarm_links_a_runbook_that_exists(alarms):
    linked = set()
    for name, alarm in alarms.items():
        found = RUNBOOK_LINK.search(sub_text(alarm["Properties"]["AlarmDescription"]))
        assert found, name
        assert (RUNBOOKS / found.group("file")).is_file(), name
        linked.add(found.group("file"))
        # The alarm name ends in the runbook's name: the runbook's H1. An objective's alerts
        # and their windows share its runbook: <app>-<stage>-slo-<objective>-<alert>[-<window>].
        alarm_name = sub_text(alarm["Properties"]["AlarmName"])
        runbook = found.group("file")[:-3]
        if runbook.startswith("slo-"):
            assert alarm_name.startswith("${AppName}-${StageName}-" + runbook + "-"), name
        else:
            assert alarm_name.endswith("-" + runbook), name
    assert linked == REQUIRED_RUNBOOKS


def test_every_runbook_names_its_alarm_as_the_title(alarms):
    for alarm in alarms.values():
        file = RUNBOOK_LINK.search(sub_text(alarm["Properties"]["AlarmDescription"])).group("file")
        first_line = (RUNBOOKS / file).read_text().splitlines()[0]
        assert first_line == f"# {file[:-3]}"


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(alarms):
    for name, alarm in alarms.items():
        if name.startswith("Slo"):
            continue  # an SLO alert's windows: its composite alarm notifies (test_slo_alarms.py)
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], name


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources):
    assert properties(resources, "AlarmTopic")["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = properties(resources, "AlarmTopicKey")
    assert key["EnableKeyRotation"] is True
    principals = [s["Principal"] for s in key["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals


@pytest.mark.parametrize("strategy", ["ROLLING", "CANARY"])
def test_dashboard_covers_traffic_latency_errors_health_resources_and_capacity(
    site, resources, strategy
):
    import json

    body = ArnResolver(site, DeploymentStrategy=strategy).value(
        properties(resources, "Dashboard")["DashboardBody"]
    )
    widgets = json.loads(body)["widgets"]
    metrics = {
        m[1] for w in widgets for m in w["properties"]["metrics"] if len(m) > 1 and m[0] != "..."
    }
    assert {
        "RequestCount",
        "TargetResponseTime",
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_4XX_Count",
        "HealthyHostCount",
        "CPUUtilization",
        "MemoryUtilization",
        "NetworkRxBytes",
        "EphemeralStorageUtilized",
        "RunningTaskCount",
        "ResourceCount",
    } <= metrics


# ---- what real AWS would refuse or get wrong (issue 10) ------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ImageUri": "", "EnableAutoScaling": "true"}, "0"),
        ({"ImageUri": "r@sha256:1", "EnableAutoScaling": "false", "DesiredCount": "3"}, "3"),
        # The scaler owns the count: a value here would reset it on every deploy.
        ({"ImageUri": "r@sha256:1", "EnableAutoScaling": "true", "DesiredCount": "3"}, None),
    ],
)
def test_deploys_leave_the_desired_count_to_the_scaler(site, overrides, expected):
    from tests.support.templates import NO_VALUE, Resolver

    value = Resolver(site, **overrides).value(
        site["Resources"]["Service"]["Properties"]["DesiredCount"]
    )
    assert (None if value is NO_VALUE else value) == expected


def test_the_load_balancer_reaches_only_the_tasks(resources):
    group = properties(resources, "LoadBalancerSecurityGroup")
    # Without inline egress AWS adds allow-all; a rule that matches nothing replaces it.
    (placeholder,) = group["SecurityGroupEgress"]
    assert placeholder["CidrIp"] == "255.255.255.255/32"
    assert placeholder["IpProtocol"] == "icmp"
    assert (placeholder["FromPort"], placeholder["ToPort"]) == (252, 86)
    egress = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress"
        and r["Properties"]["GroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    ]
    assert egress == [properties(resources, "LoadBalancerEgressToTasks")]
    assert egress[0]["DestinationSecurityGroupId"] == {"Ref": "TaskSecurityGroup"}
    assert egress[0]["FromPort"] == egress[0]["ToPort"] == {"Ref": "ContainerPort"}


def _lifecycle(resources: dict[str, Any], name: str, **counts: str) -> list[dict[str, Any]]:
    import json

    text = properties(resources, name)["LifecyclePolicy"]["LifecyclePolicyText"]
    values = {"ImageRetentionCount": "30", "ReleaseImageRetentionCount": "200", **counts}
    return sorted(json.loads(evaluate(text, values))["rules"], key=lambda r: r["rulePriority"])


@pytest.mark.parametrize("name", ["Repository", "RetainedRepository"])
def test_commit_pushes_can_never_expire_a_release_image(site, resources, name):
    rules = _lifecycle(resources, name)
    release = next(r for r in rules if r["selection"].get("tagPatternList") == ["v*"])
    counted = [r for r in rules if r["selection"]["countType"] == "imageCountMoreThan"]
    # ECR never lets a lower-priority rule expire an image a higher one matched, so release
    # images are governed by their own rule only, and it comes before every other count.
    assert release["rulePriority"] == min(r["rulePriority"] for r in counted)
    commit = next(r for r in rules if r["selection"]["tagStatus"] == "any")
    assert commit["rulePriority"] == max(r["rulePriority"] for r in rules)
    params = site["Parameters"]
    assert (
        params["ReleaseImageRetentionCount"]["Default"] > params["ImageRetentionCount"]["Default"]
    )
    assert params["ReleaseImageRetentionCount"]["MinValue"] >= 10


@pytest.mark.parametrize("name", ["Repository", "RetainedRepository"])
def test_dirty_pushes_cannot_push_out_the_commit_image_the_service_runs(resources, name):
    rules = _lifecycle(resources, name)
    dirty = next(r for r in rules if r["selection"].get("tagPatternList") == ["*-dirty"])
    commit = next(r for r in rules if r["selection"]["tagStatus"] == "any")
    assert dirty["rulePriority"] < commit["rulePriority"]


@pytest.mark.parametrize(
    ("retain", "policy", "protection"), [("true", "Retain", "true"), ("false", "Delete", "false")]
)
def test_production_keeps_its_data_and_a_test_stage_leaves_nothing_behind(
    site, retain, policy, protection
):
    from tests.support.templates import Resolver

    resolver = Resolver(site, RetainData=retain)
    kept = {
        resource["Type"]: resource
        for logical_id, resource in site["Resources"].items()
        if resource["Type"] in {"AWS::ECR::Repository", "AWS::Logs::LogGroup"}
        and resolver.exists(logical_id)
    }
    assert set(kept) == {"AWS::ECR::Repository", "AWS::Logs::LogGroup"}
    for resource in kept.values():
        assert resource["DeletionPolicy"] == policy
        assert resource["UpdateReplacePolicy"] == policy
    assert kept["AWS::ECR::Repository"]["Properties"].get("EmptyOnDelete", False) is (
        retain == "false"
    )
    attributes = {
        a["Key"]: a["Value"]
        for a in resolver.value(properties(site["Resources"], "LoadBalancer"))[
            "LoadBalancerAttributes"
        ]
    }
    assert attributes["deletion_protection.enabled"] == protection


def test_alarms_can_reach_an_email_address_without_the_ops_stack(site, resources):
    assert site["Parameters"]["AlarmEmail"]["Default"] == ""
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_the_execution_role_pulls_only_this_repository_and_writes_only_this_log_group(
    resources,
):
    role = properties(resources, "TaskExecutionRole")
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["EcrLogin"]["Resource"] == "*"
    assert statements["EcrLogin"]["Action"] == "ecr:GetAuthorizationToken"
    assert statements["PullSiteImage"]["Resource"] == {
        "Fn::If": [
            "ShouldRetainData",
            {"Fn::GetAtt": ["RetainedRepository", "Arn"]},
            {"Fn::GetAtt": ["Repository", "Arn"]},
        ]
    }
    assert statements["WriteSiteLogs"]["Resource"] == {
        "Fn::If": [
            "ShouldRetainData",
            {"Fn::GetAtt": ["RetainedLogGroup", "Arn"]},
            {"Fn::GetAtt": ["LogGroup", "Arn"]},
        ]
    }


@pytest.mark.parametrize(
    ("image", "digest"),
    [
        (f"123456789012.dkr.ecr.us-east-1.amazonaws.com/r@sha256:{'b' * 64}", f"sha256:{'b' * 64}"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/r:v1.2.3", ""),  # a tag: no digest
        ("", ""),  # the first deploy, before any image
    ],
)
@pytest.mark.parametrize("daemon", [False, True])
def test_the_site_reports_the_digest_its_image_is_pinned_by(
    site, resources, image: str, digest: str, daemon: bool
):
    """/version's image_digest is what the smoke-test hook compares with the revision under
    test; the image cannot carry it, so the task definition does."""
    environment = _environment(container(resources, "site", daemon=daemon))
    assert Resolver(site, ImageUri=image).value(environment["IMAGE_DIGEST"]) == digest
