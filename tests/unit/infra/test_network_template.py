"""Template tests for infra/cloudformation/network.yaml: the properties that matter."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.support.templates import (
    TEMPLATES,
    evaluate,
    load,
    parameter_values,
    resources_of_type,
    run_cfn_lint,
)

CONTRACT_PARAMETERS = {
    "AppName",
    "StageName",
    "VpcCidr",
    "NatMode",
    "CreateInterfaceEndpoints",
    "FlowLogRetentionDays",
    "ZoneCount",
    "RetainData",
}
CONTRACT_OUTPUTS = {
    "VpcId",
    "PublicSubnetIds",
    "PrivateSubnetIds",
    "TaskSubnetIds",
    "TaskAssignPublicIp",
}


@pytest.fixture(scope="module")
def network() -> dict[str, Any]:
    return load("network")


def subnets(network: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        name: resource
        for name, resource in resources_of_type(network, "AWS::EC2::Subnet").items()
        if name.startswith(kind)
    }


def test_has_the_contract_parameters_with_their_defaults(network):
    params = network["Parameters"]
    assert set(params) >= CONTRACT_PARAMETERS
    assert params["NatMode"]["Default"] == "none"
    assert params["CreateInterfaceEndpoints"]["Default"] == "false"
    assert params["AppName"]["Default"] == "spotops"
    assert params["StageName"]["Default"] == "dev"
    assert params["ZoneCount"]["Default"] == "3"
    assert params["RetainData"]["Default"] == "false"


def test_nat_mode_allows_only_none_single_and_per_az(network):
    assert list(network["Parameters"]["NatMode"]["AllowedValues"]) == ["none", "single", "per-az"]


def test_cfn_lint_refuses_an_unknown_nat_mode_as_cloudformation_would():
    found = run_cfn_lint(TEMPLATES / "network.yaml", parameters={"NatMode": "bogus"})
    assert [m["Rule"]["Id"] for m in found] == ["E2900"]
    assert "'bogus' is not one of ['none', 'single', 'per-az']" in found[0]["Message"]


def test_every_parameter_describes_its_default(network):
    for name, param in network["Parameters"].items():
        assert "Default is" in param["Description"], name


@pytest.mark.parametrize("kind", ["Public", "Private"])
def test_one_subnet_of_each_kind_per_zone_the_third_only_with_three_zones(network, kind):
    found = subnets(network, kind)
    assert len(found) == 3
    zones = sorted(r["Properties"]["AvailabilityZone"]["Fn::Select"][0] for r in found.values())
    assert zones == [0, 1, 2]
    for resource in found.values():
        assert resource["Properties"]["AvailabilityZone"]["Fn::Select"][1] == {"Fn::GetAZs": ""}
        assert resource["Properties"]["MapPublicIpOnLaunch"] is False
    assert {name: r.get("Condition") for name, r in found.items()} == {
        f"{kind}Subnet1": None,
        f"{kind}Subnet2": None,
        f"{kind}Subnet3": "HasThreeZones",
    }


@pytest.mark.parametrize(("zones", "expected"), [("2", 2), ("3", 3)])
def test_subnet_lists_follow_the_zone_count(network, zones, expected):
    params = parameter_values(network, ZoneCount=zones)
    three = evaluate(network["Conditions"]["HasThreeZones"], params)
    for output in ("PublicSubnetIds", "PrivateSubnetIds"):
        condition, if_three, if_two = network["Outputs"][output]["Value"]["Fn::If"]
        assert condition == "HasThreeZones"
        assert len((if_three if three else if_two)["Fn::Join"][1]) == expected


@pytest.mark.parametrize("vpc_cidr", ["10.0.0.0/16", "172.20.0.0/16"])
def test_the_six_subnet_cidrs_are_inside_the_vpc_and_do_not_overlap(network, vpc_cidr):
    params = parameter_values(network, VpcCidr=vpc_cidr)
    cidrs = [
        ipaddress.ip_network(evaluate(r["Properties"]["CidrBlock"], params))
        for r in resources_of_type(network, "AWS::EC2::Subnet").values()
    ]
    vpc = ipaddress.ip_network(vpc_cidr)
    assert len(cidrs) == 6
    assert all(cidr.subnet_of(vpc) for cidr in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])


def test_public_subnets_route_to_the_internet_gateway(network):
    route = network["Resources"]["PublicDefaultRoute"]["Properties"]
    assert route["DestinationCidrBlock"] == "0.0.0.0/0"
    assert route["GatewayId"] == {"Ref": "InternetGateway"}
    associations = resources_of_type(network, "AWS::EC2::SubnetRouteTableAssociation")
    public = {
        a["Properties"]["SubnetId"]["Ref"]
        for a in associations.values()
        if a["Properties"]["RouteTableId"] == {"Ref": "PublicRouteTable"}
    }
    assert public == set(subnets(network, "Public"))


def test_nat_gateways_follow_nat_mode(network):
    conditions = network["Conditions"]
    assert conditions["HasNat"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "NatMode"}, "none"]}]}
    assert conditions["HasNatPerAz"] == {"Fn::Equals": [{"Ref": "NatMode"}, "per-az"]}
    assert conditions["HasNatPerAzInThirdZone"] == {
        "Fn::And": [{"Condition": "HasNatPerAz"}, {"Condition": "HasThreeZones"}]
    }
    gateways = resources_of_type(network, "AWS::EC2::NatGateway")
    assert {name: r["Condition"] for name, r in gateways.items()} == {
        "NatGateway1": "HasNat",
        "NatGateway2": "HasNatPerAz",
        "NatGateway3": "HasNatPerAzInThirdZone",
    }
    routes = network["Resources"]
    assert routes["PrivateDefaultRoute1"]["Properties"]["NatGatewayId"] == {"Ref": "NatGateway1"}
    assert routes["PrivateDefaultRoute3"]["Properties"]["NatGatewayId"] == {
        "Fn::If": ["HasNatPerAz", {"Ref": "NatGateway3"}, {"Ref": "NatGateway1"}]
    }


def test_s3_gateway_endpoint_is_always_there_and_serves_every_route_table(network):
    endpoint = network["Resources"]["S3GatewayEndpoint"]
    assert "Condition" not in endpoint
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
    condition, with_three, with_two = endpoint["Properties"]["RouteTableIds"]["Fn::If"]
    assert condition == "HasThreeZones"
    tables = {t["Ref"] for t in with_three}
    assert tables == set(resources_of_type(network, "AWS::EC2::RouteTable"))
    assert tables - {t["Ref"] for t in with_two} == {"PrivateRouteTable3"}


def test_interface_endpoints_for_ecr_and_logs_are_optional(network):
    interface = {
        name: r
        for name, r in resources_of_type(network, "AWS::EC2::VPCEndpoint").items()
        if r["Properties"]["VpcEndpointType"] == "Interface"
    }
    services = {r["Properties"]["ServiceName"]["Fn::Sub"] for r in interface.values()}
    assert services == {
        "com.amazonaws.${AWS::Region}.ecr.api",
        "com.amazonaws.${AWS::Region}.ecr.dkr",
        "com.amazonaws.${AWS::Region}.logs",
    }
    assert all(r["Condition"] == "ShouldCreateInterfaceEndpoints" for r in interface.values())


def test_flow_logs_capture_all_traffic_with_a_retention(network):
    flow_log = network["Resources"]["VpcFlowLog"]["Properties"]
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["ResourceId"] == {"Ref": "Vpc"}
    for name in ("FlowLogGroup", "RetainedFlowLogGroup"):
        group = network["Resources"][name]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "FlowLogRetentionDays"}


def test_outputs_follow_the_contract(network):
    outputs = network["Outputs"]
    assert set(outputs) >= CONTRACT_OUTPUTS
    for name, output in outputs.items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


@pytest.mark.parametrize(
    ("nat_mode", "subnet_kind", "public_ip"),
    [
        ("none", "Public", "ENABLED"),
        ("single", "Private", "DISABLED"),
        ("per-az", "Private", "DISABLED"),
    ],
)
def test_tasks_run_in_public_subnets_only_without_nat(network, nat_mode, subnet_kind, public_ip):
    params = parameter_values(network, NatMode=nat_mode)
    has_nat = evaluate(network["Conditions"]["HasNat"], params)
    outputs = network["Outputs"]
    condition, if_true, if_false = outputs["TaskSubnetIds"]["Value"]["Fn::If"]
    assert condition == "HasNat"
    condition, with_three, _ = (if_true if has_nat else if_false)["Fn::If"]
    assert condition == "HasThreeZones"
    assert [ref["Ref"] for ref in with_three["Fn::Join"][1]] == sorted(
        subnets(network, subnet_kind)
    )
    condition, if_true, if_false = outputs["TaskAssignPublicIp"]["Value"]["Fn::If"]
    assert (if_true if has_nat else if_false) == public_ip


def test_vpc_has_dns_hostnames_for_fargate_and_endpoints(network):
    properties = network["Resources"]["Vpc"]["Properties"]
    assert properties["EnableDnsHostnames"] is True
    assert properties["EnableDnsSupport"] is True


def test_every_resource_has_a_one_line_description(network):
    for name, resource in network["Resources"].items():
        assert resource.get("Metadata", {}).get("Description"), name


@pytest.mark.parametrize(("retain", "policy"), [("true", "Retain"), ("false", "Delete")])
def test_production_keeps_its_flow_logs_and_a_test_stage_leaves_nothing(network, retain, policy):
    from tests.support.templates import Resolver

    resolver = Resolver(network, RetainData=retain)
    groups = [
        resource
        for name, resource in resources_of_type(network, "AWS::Logs::LogGroup").items()
        if resolver.exists(name)
    ]
    assert len(groups) == 1
    assert groups[0]["DeletionPolicy"] == groups[0]["UpdateReplacePolicy"] == policy
    flow_log = resolver.value(network["Resources"]["VpcFlowLog"]["Properties"])
    assert flow_log["LogGroupName"] in {"<FlowLogGroup>", "<RetainedFlowLogGroup>"}
