"""Deploy the network and site stacks into the moto server and check them through the APIs.

moto (5.2.5) checks the wiring - refs, imports, exports, outputs, names, conditions - and keeps
some properties. It drops many others while still reporting CREATE_COMPLETE; for each such
property the docstring of the test names the template test in tests/unit/infra/ that covers
it instead. It also evaluates neither AllowedValues nor Rules: bad input is covered by
test_nat_mode_allows_only_none_single_and_per_az and
test_bad_input_is_refused_with_a_message_naming_the_parameter, plus the constraints check below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.templates import TEMPLATES, template_source

pytestmark = [
    pytest.mark.emulator,
    # moto warns for every resource type it drops; the docstrings below say which matter.
    pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning"),
]

APP, STAGE = "spotops", "dev"
NETWORK_STACK = f"{APP}-{STAGE}-network"
SITE_STACK = f"{APP}-{STAGE}-site"
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{APP}-{STAGE}-site@sha256:{'a' * 64}"

Client = Callable[[str], Any]


@pytest.fixture
def client(emulator: str) -> Client:
    """Build boto3 clients for the emulator; botocore must not retry moto's HTTP 500s."""
    config = Config(retries={"max_attempts": 1})

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=emulator, region_name="us-east-1", config=config)

    return make


def create_stack(client: Client, name: str, template: str, **parameters: str) -> dict[str, str]:
    """Create a stack from infra/cloudformation/<template>.yaml; return its outputs."""
    cloudformation = client("cloudformation")
    cloudformation.create_stack(
        StackName=name,
        **template_source(client("s3"), template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": "spotops:app", "Value": APP}, {"Key": "spotops:stage", "Value": STAGE}],
    )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture
def network(client: Client) -> dict[str, str]:
    return create_stack(client, NETWORK_STACK, "network")


@pytest.fixture
def site(client: Client, network: dict[str, str]) -> dict[str, str]:
    return create_stack(client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK)


# ---- network ------------------------------------------------------------------------


def test_network_has_a_vpc_with_three_public_and_three_private_subnets_over_three_zones(
    client, network
):
    """moto drops EnableDnsHostnames:
    test_vpc_has_dns_hostnames_for_fargate_and_endpoints."""
    ec2 = client("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[network["VpcId"]])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert {"Key": "spotops:stage", "Value": STAGE} in vpc["Tags"]
    public = network["PublicSubnetIds"].split(",")
    private = network["PrivateSubnetIds"].split(",")
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert {s["SubnetId"] for s in found} == set(public) | set(private)
    assert len(found) == 6
    zones = {s["SubnetId"]: s["AvailabilityZone"] for s in found}
    assert len({zones[s] for s in public}) == 3
    assert {zones[s] for s in public} == {zones[s] for s in private}


def test_without_nat_tasks_run_in_public_subnets_with_public_ips(client, network):
    assert network["TaskSubnetIds"] == network["PublicSubnetIds"]
    assert network["TaskAssignPublicIp"] == "ENABLED"
    ec2 = client("ec2")
    assert ec2.describe_nat_gateways()["NatGateways"] == []
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert [(e["ServiceName"], e["VpcEndpointType"]) for e in endpoints] == [
        ("com.amazonaws.us-east-1.s3", "Gateway")
    ]


def test_per_az_nat_gives_each_private_subnet_its_own_gateway(client):
    """moto lists no subnet associations on route tables created by CloudFormation:
    test_public_subnets_route_to_the_internet_gateway and test_nat_gateways_follow_nat_mode."""
    outputs = create_stack(
        client, NETWORK_STACK, "network", NatMode="per-az", CreateInterfaceEndpoints="true"
    )
    assert outputs["TaskSubnetIds"] == outputs["PrivateSubnetIds"]
    assert outputs["TaskAssignPublicIp"] == "DISABLED"
    ec2 = client("ec2")
    gateways = ec2.describe_nat_gateways()["NatGateways"]
    assert {g["SubnetId"] for g in gateways} == set(outputs["PublicSubnetIds"].split(","))
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])
    nat_routes = [
        route["NatGatewayId"]
        for table in tables["RouteTables"]
        for route in table["Routes"]
        if route.get("NatGatewayId")
    ]
    # One private route table per zone, each to a different gateway.
    assert sorted(nat_routes) == sorted(g["NatGatewayId"] for g in gateways)
    services = {e["ServiceName"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    assert services == {
        f"com.amazonaws.us-east-1.{s}" for s in ("s3", "ecr.api", "ecr.dkr", "logs")
    }


def test_flow_logs_go_to_a_log_group_with_retention(client, network):
    flow_logs = client("ec2").describe_flow_logs()["FlowLogs"]
    assert [(f["ResourceId"], f["TrafficType"]) for f in flow_logs] == [(network["VpcId"], "ALL")]
    groups = client("logs").describe_log_groups(logGroupNamePrefix="/vpc/")["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        (f"/vpc/{APP}-{STAGE}/flow-logs", 14)
    ]


def test_nat_mode_constraint_is_published_with_the_template(client):
    """moto does not enforce AllowedValues on create (NatMode=bogus is accepted), but it
    publishes them as CloudFormation does; enforcement is covered by
    test_nat_mode_allows_only_none_single_and_per_az."""
    summary = client("cloudformation").get_template_summary(
        TemplateBody=(TEMPLATES / "network.yaml").read_text()
    )
    nat_mode = next(p for p in summary["Parameters"] if p["ParameterKey"] == "NatMode")
    assert nat_mode["ParameterConstraints"]["AllowedValues"] == ["none", "single", "per-az"]


# ---- site ---------------------------------------------------------------------------


def test_site_exports_every_contract_output(client, site):
    exports = {e["Name"]: e["Value"] for e in client("cloudformation").list_exports()["Exports"]}
    for name in (
        "SiteUrl",
        "RepositoryUri",
        "RepositoryName",
        "ClusterName",
        "ServiceName",
        "AlarmTopicArn",
        "LoadBalancerDnsName",
        "LogGroupName",
        "TaskDefinitionFamily",
        "TaskRoleArn",
        "TaskExecutionRoleArn",
    ):
        assert exports[f"{SITE_STACK}-{name}"] == site[name]
    assert site["SiteUrl"] == f"http://{site['LoadBalancerDnsName']}"
    assert site["ClusterName"] == f"{APP}-{STAGE}"
    assert site["ServiceName"] == f"{APP}-{STAGE}-site"


def test_load_balancer_is_public_in_the_three_public_subnets(client, network, site):
    """Attributes (drop_invalid_header_fields, idle timeout) and tags are dropped by moto:
    test_load_balancer_drops_invalid_headers_and_sets_an_idle_timeout."""
    elbv2 = client("elbv2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    assert balancer["DNSName"] == site["LoadBalancerDnsName"]
    assert balancer["Scheme"] == "internet-facing"
    subnets = {z["SubnetId"] for z in balancer["AvailabilityZones"]}
    assert subnets == set(network["PublicSubnetIds"].split(","))
    (group,) = client("ec2").describe_security_groups(GroupIds=balancer["SecurityGroups"])[
        "SecurityGroups"
    ]
    assert sorted(p["FromPort"] for p in group["IpPermissions"]) == [80, 443]


def test_without_a_domain_http_forwards_to_the_target_group(client, site):
    """The HTTPS branch cannot run in moto: it drops the ACM certificate, so the HTTPS
    listener gets no certificate ARN and moto fails. Covered by
    test_certificate_https_listener_and_alias_exist_only_with_a_domain and
    test_http_forwards_without_a_domain_and_redirects_to_https_with_one."""
    elbv2 = client("elbv2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    (group,) = elbv2.describe_target_groups()["TargetGroups"]
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    assert listener["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}
    ]


def test_target_group_checks_readiness_on_ip_targets(client, site):
    """moto keeps the health check but drops TargetGroupAttributes (it reports the default
    deregistration delay of 300 s):
    test_deregistration_delay_is_well_under_the_spot_two_minute_warning."""
    (group,) = client("elbv2").describe_target_groups()["TargetGroups"]
    assert group["TargetType"] == "ip"
    assert group["Port"] == 8080
    assert group["HealthCheckPath"] == "/readyz"
    assert group["HealthCheckIntervalSeconds"] == 10
    assert group["Matcher"] == {"HttpCode": "200"}


def test_cluster_and_service_exist_and_run_nothing_before_the_first_image(client, site):
    """moto drops the cluster's capacity providers and Container Insights, and the service's
    capacity provider strategy, deployment configuration, network configuration and load
    balancers: test_cluster_has_fargate_and_spot_and_container_insights,
    test_capacity_provider_strategy_comes_from_the_parameters,
    test_circuit_breaker_and_deployment_alarms_roll_back,
    test_service_has_grace_period_network_and_optional_exec."""
    ecs = client("ecs")
    (cluster,) = ecs.describe_clusters(clusters=[site["ClusterName"]])["clusters"]
    assert cluster["status"] == "ACTIVE"
    (service,) = ecs.describe_services(cluster=site["ClusterName"], services=[site["ServiceName"]])[
        "services"
    ]
    assert service["desiredCount"] == 0
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert containers["site"]["image"] == f"{site['RepositoryUri']}:bootstrap"
    assert containers["site"]["readonlyRootFilesystem"] is True
    assert containers["site"]["stopTimeout"] == 120
    assert containers["site"]["healthCheck"]["command"][:2] == ["CMD", "python"]
    assert list(containers) == ["site"]  # no X-Ray daemon unless XRayDaemon asks for it
    # No image yet: no digest for /version (an empty value the site reads as "none").
    assert {"name": "IMAGE_DIGEST", "value": ""} in containers["site"]["environment"]


def test_with_the_xray_daemon_the_task_runs_it_beside_the_site(client, network):
    """The emulator takes the task definition's other list too (it fails on an AWS::NoValue
    element, which is why the template chooses a whole list)."""
    site = create_stack(
        client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK, XRayDaemon="enabled"
    )
    ecs = client("ecs")
    (service,) = ecs.describe_services(cluster=site["ClusterName"], services=[site["ServiceName"]])[
        "services"
    ]
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert list(containers) == ["site", "xray-daemon"]
    assert containers["xray-daemon"]["image"] == "public.ecr.aws/xray/aws-xray-daemon:3.6.6"
    assert containers["xray-daemon"]["essential"] is False
    assert {"name": "AWS_XRAY_DAEMON_ADDRESS", "value": "127.0.0.1:2000"} in containers["site"][
        "environment"
    ]
    assert {"name": "IMAGE_DIGEST", "value": ""} in containers["site"]["environment"]


def test_with_an_image_the_service_runs_the_desired_count_of_it(client, network):
    site = create_stack(
        client,
        SITE_STACK,
        "site",
        NetworkStackName=NETWORK_STACK,
        ImageUri=IMAGE,
        EnableAutoScaling="false",
    )
    ecs = client("ecs")
    (service,) = ecs.describe_services(cluster=site["ClusterName"], services=[site["ServiceName"]])[
        "services"
    ]
    assert service["desiredCount"] == 2
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["containerDefinitions"][0]["image"] == IMAGE
    # The digest the image is pinned by, for /version and the smoke-test hook's comparison.
    environment = task["containerDefinitions"][0]["environment"]
    assert {"name": "IMAGE_DIGEST", "value": f"sha256:{'a' * 64}"} in environment


def test_repository_has_immutable_tags(client, site):
    """moto drops scan on push, encryption and the lifecycle policy:
    test_repository_scans_on_push_with_immutable_tags_encryption_and_lifecycle."""
    (repository,) = client("ecr").describe_repositories(repositoryNames=[site["RepositoryName"]])[
        "repositories"
    ]
    assert repository["repositoryUri"] == site["RepositoryUri"]
    assert repository["imageTagMutability"] == "IMMUTABLE"


def test_alarm_topic_and_log_group_exist(client, site):
    """moto drops every CloudWatch alarm and the dashboard:
    test_every_alarm_links_a_runbook_that_exists,
    test_every_alarm_notifies_the_topic_on_alarm_and_ok,
    test_dashboard_covers_traffic_latency_errors_health_resources_and_capacity."""
    topics = [t["TopicArn"] for t in client("sns").list_topics()["Topics"]]
    assert topics == [site["AlarmTopicArn"]]
    groups = client("logs").describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        (f"/ecs/{APP}-{STAGE}/site", 30)
    ]


def test_with_autoscaling_the_stack_leaves_the_desired_count_alone(client, network):
    """The service is created without DesiredCount (the scaler owns it): moto starts it at 0,
    AWS at 1 and then MinTasks. What CloudFormation sends is asserted by
    test_without_an_image_the_service_runs_nothing_and_points_at_bootstrap."""
    site = create_stack(client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK, ImageUri=IMAGE)
    ecs = client("ecs")
    (service,) = ecs.describe_services(cluster=site["ClusterName"], services=[site["ServiceName"]])[
        "services"
    ]
    assert service["desiredCount"] == 0


def test_two_zones_give_two_subnets_of_each_kind_and_the_site_uses_them(client):
    network = create_stack(client, NETWORK_STACK, "network", ZoneCount="2", NatMode="per-az")
    assert len(network["PublicSubnetIds"].split(",")) == 2
    assert len(network["PrivateSubnetIds"].split(",")) == 2
    assert len(client("ec2").describe_nat_gateways()["NatGateways"]) == 2
    create_stack(client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK, NatMode="per-az")
    (balancer,) = client("elbv2").describe_load_balancers()["LoadBalancers"]
    assert {z["SubnetId"] for z in balancer["AvailabilityZones"]} == set(
        network["PublicSubnetIds"].split(",")
    )


def test_retained_data_uses_the_same_names_as_a_disposable_stage(client, network):
    """DeletionPolicy and the load balancer's deletion protection are dropped by moto:
    test_production_keeps_its_data_and_a_test_stage_leaves_nothing_behind."""
    site = create_stack(
        client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK, RetainData="true"
    )
    assert site["RepositoryName"] == f"{APP}-{STAGE}-site"
    assert site["LogGroupName"] == f"/ecs/{APP}-{STAGE}/site"
    resources = client("cloudformation").list_stack_resources(StackName=SITE_STACK)
    logical = {r["LogicalResourceId"] for r in resources["StackResourceSummaries"]}
    assert {"RetainedRepository", "RetainedLogGroup"} <= logical
    assert not {"Repository", "LogGroup"} & logical


def test_the_site_follows_a_nat_mode_change_of_a_live_network(client, network):
    """moto does not refuse to change an export in use; that refusal is covered by
    test_no_export_the_site_imports_changes_with_a_network_parameter."""
    create_stack(client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK)
    cloudformation = client("cloudformation")
    for name, template in ((NETWORK_STACK, "network"), (SITE_STACK, "site")):
        parameters = {"NatMode": "single"}
        if template == "site":
            parameters["NetworkStackName"] = NETWORK_STACK
        cloudformation.update_stack(
            StackName=name,
            **template_source(client("s3"), template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        assert stack["StackStatus"] == "UPDATE_COMPLETE", stack.get("StackStatusReason")
    outputs = cloudformation.describe_stacks(StackName=NETWORK_STACK)["Stacks"][0]["Outputs"]
    assert {o["OutputKey"]: o["OutputValue"] for o in outputs}["TaskAssignPublicIp"] == "DISABLED"


# ---- progressive delivery (DeploymentStrategy CANARY / LINEAR) -------------------------


def _rules(client: Client) -> dict[str, dict[str, Any]]:
    """The HTTP listener's rules by priority (the default rule left out)."""
    elbv2 = client("elbv2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    return {rule["Priority"]: rule for rule in rules if not rule["IsDefault"]}


def _roles(client: Client, logical_id: str) -> list[dict[str, Any]]:
    roles = client("iam").list_roles()["Roles"]
    return [role for role in roles if f"-{logical_id}-" in role["RoleName"]]


def test_a_canary_site_gets_an_alternate_group_listener_rules_and_the_ecs_roles(client, network):
    """moto drops the service's deployment configuration (strategy, canary settings, the
    lifecycle hook) and its load balancer settings (the alternate target group and rules ECS
    is given): test_canary_and_linear_shift_traffic_without_a_circuit_breaker,
    test_traffic_shifting_has_an_alternate_group_and_rules_on_the_serving_listener,
    test_the_hook_calls_the_ops_function_with_where_and_how_to_send_test_traffic. It also
    drops alarms (test_unhealthy_hosts_is_the_larger_count_of_both_groups_when_traffic_shifts)
    and the ManagedPolicyArns of a role it creates
    (test_the_traffic_shift_role_is_ecs_with_the_aws_load_balancer_policy_only)."""
    site = create_stack(
        client,
        SITE_STACK,
        "site",
        NetworkStackName=NETWORK_STACK,
        ImageUri=IMAGE,
        DeploymentStrategy="CANARY",
    )
    elbv2 = client("elbv2")
    groups = {g["TargetGroupArn"]: g for g in elbv2.describe_target_groups()["TargetGroups"]}
    assert len(groups) == 2
    for group in groups.values():
        assert (group["TargetType"], group["Port"], group["HealthCheckPath"]) == (
            "ip",
            8080,
            "/readyz",
        )
    rules = _rules(client)
    assert set(rules) == {"10", "20"}
    (header,) = rules["10"]["Conditions"]
    assert header["Field"] == "http-header"
    assert header["HttpHeaderConfig"] == {
        "HttpHeaderName": "X-Spotops-Test-Traffic",
        "Values": [STAGE],
    }
    (forward,) = rules["20"]["Actions"]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in forward["ForwardConfig"]["TargetGroups"]}
    assert set(weights) == set(groups)
    assert sorted(weights.values()) == [0, 100]
    (test_forward,) = rules["10"]["Actions"]
    production = next(arn for arn, weight in weights.items() if weight == 100)
    assert test_forward["TargetGroupArn"] == production

    iam = client("iam")
    (shift,) = _roles(client, "TrafficShiftRole")
    (trust,) = shift["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    (hook,) = _roles(client, "SmokeTestHookRole")
    assert iam.list_role_policies(RoleName=hook["RoleName"])["PolicyNames"] == [
        "invoke-deployment-hook"
    ]
    assert site["SiteUrl"] == f"http://{site['LoadBalancerDnsName']}"


def test_a_live_rolling_site_can_switch_to_linear(client, network):
    """The allowed direction: the rules, the alternate group and the role are added to a live
    stack. The way back is refused by spotops before any change set
    (tests/integration/cli/test_deploy_strategy.py); moto would let it through."""
    create_stack(client, SITE_STACK, "site", NetworkStackName=NETWORK_STACK, ImageUri=IMAGE)
    assert _rules(client) == {}
    cloudformation = client("cloudformation")
    cloudformation.update_stack(
        StackName=SITE_STACK,
        **template_source(client("s3"), "site"),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in {
                "NetworkStackName": NETWORK_STACK,
                "ImageUri": IMAGE,
                "DeploymentStrategy": "LINEAR",
            }.items()
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=SITE_STACK)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE", stack.get("StackStatusReason")
    assert set(_rules(client)) == {"10", "20"}
    assert len(client("elbv2").describe_target_groups()["TargetGroups"]) == 2
    assert len(_roles(client, "TrafficShiftRole")) == 1
