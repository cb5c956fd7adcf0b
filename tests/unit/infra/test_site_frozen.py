"""What a live CANARY or LINEAR site may not change: everything that would replace a target
group or a listener rule, derived from the template and compared with what its
``Metadata.spotops`` freezes (the refusals themselves: tests/unit/spotops/stage/test_checks.py)."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from spotops.errors import ConfigError
from spotops.stage.templates import (
    CREATE_ONLY_PROPERTIES,
    frozen_conditions,
    frozen_parameters,
    immutable_parameters,
    replacement_inputs,
)
from tests.support.templates import load

SHIFTED = ("AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::ElasticLoadBalancingV2::ListenerRule")


@pytest.fixture(scope="module")
def site() -> dict[str, Any]:
    return load("site")


@pytest.mark.parametrize("resource_type", sorted(CREATE_ONLY_PROPERTIES))
def test_the_create_only_properties_are_those_of_the_registry_schema(resource_type):
    # The CloudFormation registry schemas cfn-lint ships: AWS's own createOnlyProperties.
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    expected = {path.removeprefix("/properties/") for path in schema["createOnlyProperties"]}
    assert set(CREATE_ONLY_PROPERTIES[resource_type]) == expected


def test_every_parameter_that_replaces_a_target_group_or_rule_is_frozen_while_traffic_shifts(
    site,
):
    found = replacement_inputs(site, SHIFTED)
    frozen = {
        name
        for rule in frozen_parameters(site)
        if rule.while_ == "IsTrafficShifting"
        for name in rule.parameters
    }
    # Fixed on every stage already (NetworkStackName: the VpcId of both groups).
    fixed = set(immutable_parameters(site))

    assert found.parameters - fixed == frozen == {"ContainerPort"}
    assert found.parameters & fixed == {"NetworkStackName"}


def test_every_condition_that_replaces_or_removes_them_is_kept_while_traffic_shifts(site):
    found = replacement_inputs(site, SHIFTED)
    kept = {
        name
        for rule in frozen_conditions(site)
        if rule.while_ == "IsTrafficShifting"
        for name in rule.keep
    }

    # IsTrafficShifting: the alternate group and both rules exist only with it. HasDomain:
    # which listener the rules sit on, and whether the HTTPS listener exists.
    assert found.conditions == {"IsTrafficShifting", "HasDomain"}
    assert found.conditions <= kept


def _group(**properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": properties}


def test_inputs_are_followed_through_refs_subs_ifs_and_replaced_resources():
    template = {
        "Parameters": {name: {} for name in ("Port", "Vpc", "Stage", "Scheme", "Health")},
        "Resources": {
            "Group": _group(
                Port={"Ref": "Port"},
                VpcId={"Fn::ImportValue": {"Fn::Sub": "${Vpc}-VpcId"}},
                Name={"Fn::Sub": ["${Prefix}-${!Literal}", {"Prefix": {"Ref": "Stage"}}]},
                HealthCheckPath={"Ref": "Health"},  # may change in place
            ),
            "Balancer": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Scheme": {"Ref": "Scheme"}, "Subnets": [{"Ref": "Health"}]},
            },
            "Listener": {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Condition": "HasListener",
                "Properties": {"LoadBalancerArn": {"Ref": "Balancer"}, "Port": {"Ref": "Port"}},
            },
            "Rule": {
                "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
                "Properties": {
                    "ListenerArn": {"Fn::If": ["UseListener", {"Ref": "Listener"}, "arn"]},
                    "Priority": {"Ref": "Health"},
                },
            },
        },
    }

    found = replacement_inputs(template, SHIFTED)

    assert found.parameters == {"Port", "Vpc", "Stage", "Scheme"}
    assert found.conditions == {"UseListener", "HasListener"}


def test_a_create_only_property_naming_an_unknown_type_is_an_error():
    template = {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {}},
            "Group": _group(VpcId={"Ref": "Vpc"}),
        }
    }

    with pytest.raises(ConfigError, match=r"Cannot tell what replaces Vpc \(AWS::EC2::VPC\)"):
        replacement_inputs(template, SHIFTED)
