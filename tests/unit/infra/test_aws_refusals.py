"""What real AWS refuses and neither the local emulator nor cfn-lint checks, one test class
per kind of refusal, on the templates as they are:

* **An export in use cannot change.** CloudFormation refuses to update a stack whose export
  another stack imports when the new value differs ("Cannot update export ... as it is in
  use by ..."), so every export the site imports must keep its value for every value of the
  network's changeable parameters.
* **A custom-named resource cannot be replaced.** CloudFormation creates the replacement
  before deleting the original, so a resource with a fixed name fails a change to any of its
  create-only properties ("CloudFormation cannot update a stack when a custom-named resource
  requires replacing"). Same for two resources that take turns holding one name.
* **Names have limits.** Every name the templates build from AppName and StageName must fit
  its service's limit for the longest values those parameters allow (a load balancer or
  target group name over 32 characters fails mid-creation).

Parameters listed under ``Metadata.spotops.immutable-parameters`` are the exception: spotops
refuses to change them on a live stack before any change set
(tests/unit/spotops/stage/test_checks.py).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.support.templates import (
    TEMPLATES,
    Resolver,
    immutable_parameters,
    load,
    references,
)

# Every template; ops.yaml is a merge template (it completes Chalice's resources), so only its
# names are checked here; the whole ops template is checked in tests/integration/ops.
ALL_TEMPLATES = sorted(path.stem for path in TEMPLATES.glob("*.yaml"))
WHOLE_TEMPLATES = [name for name in ALL_TEMPLATES if name != "ops"]

# ---- what the site imports ----------------------------------------------------------

_IMPORT = re.compile(r"\$\{NetworkStackName\}-(\w+)")


def imported_exports(site: dict[str, Any]) -> set[str]:
    """The network outputs the site imports, by output name."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Fn::ImportValue":
                    text = value["Fn::Sub"] if isinstance(value, dict) else value
                    found.update(_IMPORT.findall(text))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(site["Resources"])
    walk(site["Outputs"])
    return found


def changeable_values(template: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of the values a live stack may switch between: each parameter with
    AllowedValues that spotops lets change."""
    frozen = immutable_parameters(template)
    choices = {
        name: [str(v) for v in spec["AllowedValues"]]
        for name, spec in template["Parameters"].items()
        if "AllowedValues" in spec and name not in frozen
    }
    names = sorted(choices)
    combinations = itertools.product(*(choices[name] for name in names))
    return [dict(zip(names, combo, strict=True)) for combo in combinations]


class TestAnExportInUseNeverChanges:
    def test_the_network_declares_which_parameters_are_fixed_once_it_exists(self):
        assert immutable_parameters(load("network")) >= {"VpcCidr", "ZoneCount", "RetainData"}

    def test_the_site_imports_only_from_the_network_and_only_stable_exports(self):
        site, network = load("site"), load("network")
        imported = imported_exports(site)
        assert imported >= {"VpcId", "PublicSubnetIds"}
        assert imported <= set(network["Outputs"])
        for name in imported:
            assert "Export" in network["Outputs"][name], name

    def test_no_export_the_site_imports_changes_with_a_network_parameter(self):
        site, network = load("site"), load("network")
        imported = sorted(imported_exports(site))
        combinations = changeable_values(network)
        assert {"NatMode", "CreateInterfaceEndpoints"} <= set(combinations[0])
        baseline = {
            name: Resolver(network).value(network["Outputs"][name]["Value"]) for name in imported
        }
        for values in combinations:
            resolver = Resolver(network, **values)
            for name in imported:
                assert resolver.value(network["Outputs"][name]["Value"]) == baseline[name], (
                    f"export {name} changes with {values}: CloudFormation would refuse the "
                    "network update while the site imports it"
                )


# ---- custom names and replacement ---------------------------------------------------

# The property that gives each resource type its (account- or region-unique) name.
NAME_PROPERTY = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::Service": "ServiceName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "PolicyName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::EC2::SecurityGroup": "GroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::KMS::Alias": "AliasName",
}


def create_only(resource_type: str) -> set[str]:
    """Top-level properties whose change replaces the resource (AWS's resource schema, as
    cfn-lint ships it)."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    return {path.split("/")[2] for path in schema.get("createOnlyProperties", [])}


class ReplacementGraph:
    """Which parameters can replace each resource: those its create-only properties (and the
    resources they refer to, transitively) depend on. Imports count as stable, which
    TestAnExportInUseNeverChanges proves."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.resources = template["Resources"]
        self._memo: dict[str, set[str]] = {}

    def parameters_of(self, node: Any, seen: frozenset[str] = frozenset()) -> set[str]:
        names, conditions = references(node)
        found = {n for n in names if n in self.template["Parameters"]}
        for resource in names & set(self.resources):
            found |= self.replaced_by(resource, seen)
        for condition in conditions:
            found |= self.parameters_of(self.template["Conditions"][condition], seen)
        return found

    def replaced_by(self, logical_id: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if logical_id in self._memo:
            return self._memo[logical_id]
        if logical_id in seen:
            return set()
        resource = self.resources[logical_id]
        properties = resource.get("Properties", {})
        try:
            replacing = create_only(resource["Type"])
        except Exception:  # a type with no schema (a custom resource): not ours to judge
            replacing = set()
        found: set[str] = set()
        for name in replacing & set(properties):
            found |= self.parameters_of(properties[name], seen | {logical_id})
        self._memo[logical_id] = found
        return found


def custom_named(template: dict[str, Any]) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if NAME_PROPERTY.get(resource["Type"]) in resource.get("Properties", {})
    }


class TestACustomNamedResourceIsNeverReplaced:
    @pytest.mark.parametrize("name", WHOLE_TEMPLATES)
    def test_no_changeable_parameter_replaces_a_custom_named_resource(self, name):
        template = load(name)
        graph = ReplacementGraph(template)
        frozen = immutable_parameters(template)
        problems = [
            f"{logical_id} ({resource['Type']}) is custom-named and replaced when "
            f"{', '.join(sorted(graph.replaced_by(logical_id) - frozen))} changes"
            for logical_id, resource in custom_named(template).items()
            if graph.replaced_by(logical_id) - frozen
        ]
        assert problems == []

    @pytest.mark.parametrize("name", WHOLE_TEMPLATES)
    def test_resources_sharing_a_name_swap_only_on_a_fixed_parameter(self, name):
        # Two resources holding one name under opposite conditions (the retained and the
        # disposable repository): flipping the condition creates one before deleting the
        # other, and the name is taken.
        template = load(name)
        graph = ReplacementGraph(template)
        frozen = immutable_parameters(template)
        by_name: dict[str, list[str]] = {}
        resolver = Resolver(template)
        for logical_id, resource in custom_named(template).items():
            value = resource["Properties"][NAME_PROPERTY[resource["Type"]]]
            by_name.setdefault(f"{resource['Type']} {resolver.value(value)}", []).append(logical_id)
        for shared, holders in by_name.items():
            if len(holders) < 2:
                continue
            for logical_id in holders:
                condition = template["Resources"][logical_id].get("Condition")
                assert condition, f"{shared}: {holders} would all exist at once"
                depends = graph.parameters_of({"Condition": condition})
                assert depends <= frozen, f"{shared} changes hands when {depends - frozen} does"

    def test_the_target_group_is_named_by_cloudformation_so_a_new_port_can_replace_it(self):
        resources = load("site")["Resources"]
        assert "Name" not in resources["TargetGroup"]["Properties"]
        assert "Port" in create_only("AWS::ElasticLoadBalancingV2::TargetGroup")


class TestWhatEcsRewritesIsNeverReplacedUnderIt:
    """With CANARY or LINEAR, ECS rewrites the listener rules' actions on every deployment
    and leaves the tasks in either target group. CloudFormation neither knows nor checks
    this: replacing a rule brings back the template's actions (everything to TargetGroup)
    while the tasks may sit in AlternateTargetGroup, and deleting the rules and the
    alternate group (back to ROLLING) does the same. spotops refuses those changes on a live
    stack (``Metadata.spotops.frozen-conditions``, tests/unit/spotops/stage/test_checks.py)."""

    # A new ContainerPort replaces both target groups, as it replaces TargetGroup with
    # ROLLING: the service moves to the new groups in a new deployment (the documented
    # behaviour of every strategy, see infra/README.md).
    EVERY_STRATEGY = frozenset({"ContainerPort"})

    @staticmethod
    def frozen_while_shifting(template: dict[str, Any]) -> set[str]:
        from spotops.stage.templates import TemplateLogic, frozen_conditions

        logic = TemplateLogic(template, {})
        return {
            parameter
            for rule in frozen_conditions(template)
            if rule.while_ == "IsTrafficShifting"
            for condition in rule.keep
            for parameter in logic.parameters_of(condition)
        }

    def test_leaving_traffic_shifting_is_refused(self):
        site = load("site")
        assert "DeploymentStrategy" in self.frozen_while_shifting(site)
        for logical_id in ("AlternateTargetGroup", "ProductionListenerRule", "TestListenerRule"):
            assert site["Resources"][logical_id]["Condition"] == "IsTrafficShifting"

    @pytest.mark.parametrize(
        "logical_id",
        ["AlternateTargetGroup", "TargetGroup", "ProductionListenerRule", "TestListenerRule"],
    )
    def test_no_changeable_parameter_replaces_it_while_traffic_shifts(self, logical_id):
        site = load("site")
        allowed = (
            immutable_parameters(site) | self.frozen_while_shifting(site) | self.EVERY_STRATEGY
        )
        assert ReplacementGraph(site).replaced_by(logical_id) - allowed == set()

    def test_the_alarm_names_the_service_rolls_back_on_never_change_hands(self):
        # Each deployment alarm is one resource whose properties follow the strategy: two
        # resources taking turns with one AlarmName would delete the alarm (the old one is
        # deleted by name after the new one is written).
        site = load("site")
        names = [
            Resolver(site).value(r["Properties"]["AlarmName"])
            for r in site["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        ]
        assert len(names) == len(set(names))
        for logical_id in ("Target5xxAlarm", "UnhealthyHostsAlarm"):
            assert "Condition" not in site["Resources"][logical_id], logical_id


# ---- name lengths -------------------------------------------------------------------

# AWS's limits, from each service's API reference.
NAME_LIMITS = {
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "Name"): 32,
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "Name"): 32,
    ("AWS::ECS::Cluster", "ClusterName"): 255,
    ("AWS::ECS::Service", "ServiceName"): 255,
    ("AWS::ECS::TaskDefinition", "Family"): 255,
    ("AWS::ECR::Repository", "RepositoryName"): 256,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::SNS::Topic", "TopicName"): 256,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    ("AWS::CloudWatch::Dashboard", "DashboardName"): 255,
    ("AWS::ApplicationAutoScaling::ScalingPolicy", "PolicyName"): 256,
    ("AWS::WAFv2::WebACL", "Name"): 128,
    ("AWS::EC2::SecurityGroup", "GroupName"): 255,
    ("AWS::EC2::SecurityGroup", "GroupDescription"): 255,
    ("AWS::IAM::Role", "RoleName"): 64,
    ("AWS::S3::Bucket", "BucketName"): 63,
    ("AWS::Lambda::Function", "FunctionName"): 64,
    ("AWS::Serverless::Function", "FunctionName"): 64,
    ("AWS::DynamoDB::Table", "TableName"): 255,
    ("AWS::SQS::Queue", "QueueName"): 80,
    ("AWS::SSM::Parameter", "Name"): 1011,
    ("AWS::SecretsManager::Secret", "Name"): 512,
    ("AWS::Events::Rule", "Name"): 64,
    ("AWS::KMS::Alias", "AliasName"): 256,
}
STACK_NAME_LIMIT = 128
_REPEAT = re.compile(r"\{(\d+)(?:,(\d+))?\}")


def longest(pattern: str) -> int:
    """The longest value a simple ``^[class]...{m,n}$`` AllowedPattern accepts."""
    body = pattern.removeprefix("^").removesuffix("$")
    total = 0
    for piece in re.findall(r"\[[^\]]*\](?:\{\d+(?:,\d+)?\})?", body):
        repeat = _REPEAT.search(piece)
        total += int(repeat.group(2) or repeat.group(1)) if repeat else 1
    return total


def longest_names(template: dict[str, Any]) -> dict[str, str]:
    params = template["Parameters"]
    return {
        name: "a" * longest(params[name]["AllowedPattern"])
        for name in ("AppName", "StageName")
        if name in params
    }


def generated_names(template: dict[str, Any], **values: str) -> list[tuple[str, str, str, int]]:
    """``(logical id, property, value, limit)`` for every limited name the template sets."""
    # The bootstrap stack is the app's, shared by its stages: it has no StageName.
    part = f"{values['StageName']}-network" if "StageName" in values else "bootstrap"
    resolver = Resolver(template, stack_name=f"{values['AppName']}-{part}", **values)
    # Names that hold the region (the artifact bucket's) must fit in the longest one.
    resolver.pseudo["AWS::Region"] = LONGEST_REGION
    found = []
    for logical_id, resource in template["Resources"].items():
        # ops.yaml completes Chalice's functions under their logical IDs without a Type.
        resource_type = resource.get("Type", "AWS::Serverless::Function")
        for (rtype, prop), limit in NAME_LIMITS.items():
            if resource_type == rtype and prop in resource.get("Properties", {}):
                found.append(
                    (logical_id, prop, resolver.value(resource["Properties"][prop]), limit)
                )
    return found


# The longest region names AWS has (14 characters): ap-southeast-5, ap-southeast-7.
LONGEST_REGION = "ap-southeast-5"


class TestEveryGeneratedNameFitsItsLimit:
    def test_the_longest_names_the_parameters_allow(self):
        site = load("site")
        assert longest_names(site) == {"AppName": "a" * 20, "StageName": "a" * 12}

    @pytest.mark.parametrize("name", ALL_TEMPLATES)
    def test_every_name_fits_for_the_longest_app_and_stage(self, name):
        template = load(name)
        longest_values = longest_names(template)
        names = generated_names(template, **longest_values)
        assert names, "no names found: the limits table no longer matches the template"
        too_long = [
            f"{logical_id}.{prop} = {value!r} ({len(value)} > {limit})"
            for logical_id, prop, value, limit in names
            if len(value) > limit
        ]
        assert too_long == []

    def test_the_stack_names_fit(self):
        longest_values = longest_names(load("site"))
        for part in ("network", "site", "ops"):
            stack = f"{longest_values['AppName']}-{longest_values['StageName']}-{part}"
            assert len(stack) <= STACK_NAME_LIMIT

    def test_the_load_balancer_and_target_group_are_named_by_cloudformation(self):
        resources = load("site")["Resources"]
        for logical_id in ("LoadBalancer", "TargetGroup"):
            assert "Name" not in resources[logical_id]["Properties"], logical_id


def test_templates_checked_here_include_the_three_stacks():
    assert {"network", "site", "ops"} <= set(ALL_TEMPLATES)
