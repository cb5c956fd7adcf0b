"""infra/cloudformation/ci-role.yaml: the GitHub OIDC deploy role.

Trust: only this repository's main branch (or one environment), audience STS. Permissions:
no wildcard action, never on its own role, and exactly what CloudFormation's handlers need
for the resource types of the network, site and ops stacks (recomputed here from the
registry schemas cfn-lint ships, so a template that gains a resource type fails this test
until the role can deploy it), plus what the workflow calls itself.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.decode import decode
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.support.templates import TEMPLATES

REPO = TEMPLATES.parents[1]
ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
REPOSITORY = "octo-org/spotops"
STAGE_ROLES = "arn:aws:iam::123456789012:role/spotops-dev-*"

# Handler permissions (create, read, update, delete) of our resource types that the role
# does not get, each with why. Everything else in the resource type's own service is needed.
NOT_GRANTED = {
    # Not IAM actions at all: API names whose IAM action is another one (listed in brackets).
    "s3:DeleteBucketAnalyticsConfiguration": "API name [s3:PutAnalyticsConfiguration]",
    "s3:DeleteBucketCors": "API name [s3:PutBucketCORS]",
    "s3:DeleteBucketEncryption": "API name [s3:PutEncryptionConfiguration]",
    "s3:DeleteBucketLifecycle": "API name [s3:PutLifecycleConfiguration]",
    "s3:DeleteBucketMetricsConfiguration": "API name [s3:PutMetricsConfiguration]",
    "s3:DeleteBucketReplication": "API name [s3:PutReplicationConfiguration]",
    "s3:PutBucketReplication": "API name [s3:PutReplicationConfiguration]",
    "s3:PutObjectLockConfiguration": "API name [s3:PutBucketObjectLockConfiguration]",
    # Account-wide settings no template sets.
    "ecs:PutAccountSetting": "account-wide ECS setting",
    "ecs:PutAccountSettingDefault": "account-wide ECS setting",
    "logs:PutResourcePolicy": "account-wide CloudWatch Logs resource policy",
    "logs:DeleteResourcePolicy": "account-wide CloudWatch Logs resource policy",
    # Data, never configuration: CI must not read the webhook or touch the ledger's items.
    "secretsmanager:GetSecretValue": "the Slack webhook stays unreadable to CI",
    "dynamodb:BatchWriteItem": "table items",
    "dynamodb:DeleteItem": "table items",
    "dynamodb:GetItem": "table items",
    "dynamodb:PutItem": "table items",
    "dynamodb:Query": "table items",
    "dynamodb:Scan": "table items",
    "dynamodb:UpdateItem": "table items",
    "s3:DeleteObject": "CloudFormation never deletes our objects (spotops destroy does)",
    # Writes for features the templates do not use.
    "secretsmanager:GetRandomPassword": "GenerateSecretString",
    "secretsmanager:ReplicateSecretToRegions": "ReplicaRegions",
    "secretsmanager:RemoveRegionsFromReplication": "ReplicaRegions",
    "dynamodb:ImportTable": "ImportSourceSpecification",
    "dynamodb:DescribeImport": "ImportSourceSpecification",
    "dynamodb:CreateTableReplica": "global tables",
    "dynamodb:AssociateTableReplica": "global tables",
    "dynamodb:EnableKinesisStreamingDestination": "KinesisStreamSpecification",
    "dynamodb:DisableKinesisStreamingDestination": "KinesisStreamSpecification",
    "dynamodb:UpdateKinesisStreamingDestination": "KinesisStreamSpecification",
    "dynamodb:PutResourcePolicy": "ResourcePolicy",
    "dynamodb:DeleteResourcePolicy": "ResourcePolicy",
    "dynamodb:UpdateContributorInsights": "ContributorInsightsSpecification",
    "ec2:AcceptAddressTransfer": "Elastic IP transfers",
    "ec2:AssignPrivateNatGatewayAddress": "private NAT gateways",
    "ec2:UnassignPrivateNatGatewayAddress": "private NAT gateways",
    "ec2:AssociateNatGatewayAddress": "secondary NAT addresses",
    "ec2:DisassociateNatGatewayAddress": "secondary NAT addresses",
    "ec2:AttachVpnGateway": "VPN gateways",
    "ec2:DetachVpnGateway": "VPN gateways",
    "ec2:AssociateSubnetCidrBlock": "IPv6 subnets",
    "ec2:DisassociateSubnetCidrBlock": "IPv6 subnets",
    "ec2:CreateVpcEncryptionControl": "VPC encryption controls",
    "ec2:DescribeVpcEncryptionControls": "VPC encryption controls (unknown to parliament)",
    "ec2:ModifyVpcTenancy": "dedicated tenancy",
    "ecs:StopServiceDeployment": "stopping deployments is ECS's rollback, not CloudFormation's",
    "elasticloadbalancing:ModifyCapacityReservation": "LCU reservations",
    "elasticloadbalancing:ModifyIpPools": "IPAM pools",
    "lambda:AssociateRuntimeAlias": "Lambda managed instances",
    "lambda:PassCapacityProvider": "Lambda managed instances",
    "lambda:PutFunctionScalingConfig": "Lambda managed instances",
    "lambda:GetFunctionScalingConfig": "Lambda managed instances",
    "lambda:PutFunctionCodeSigningConfig": "code signing",
    "lambda:DeleteFunctionCodeSigningConfig": "code signing",
    "lambda:PutFunctionRecursionConfig": "RecursiveLoop",
    "lambda:PutRuntimeManagementConfig": "RuntimeManagementConfig",
    "lambda:PutFunctionConcurrency": "ReservedConcurrentExecutions",
    "lambda:DeleteFunctionConcurrency": "ReservedConcurrentExecutions",
    "lambda:PublishVersion": "versions (AutoPublishAlias, SnapStart)",
    "logs:AssociateKmsKey": "log group KmsKeyId",
    "logs:DisassociateKmsKey": "log group KmsKeyId",
    "logs:CreateLogDelivery": "vended log delivery",
    "logs:PutDataProtectionPolicy": "DataProtectionPolicy",
    "logs:DeleteDataProtectionPolicy": "DataProtectionPolicy",
    "logs:PutIndexPolicy": "FieldIndexPolicies",
    "logs:DeleteIndexPolicy": "FieldIndexPolicies",
    "logs:PutBearerTokenAuthentication": "BearerTokenAuthenticationEnabled",
    "logs:PutLogGroupDeletionProtection": "DeletionProtectionEnabled",
    "s3:CreateBucketMetadataTableConfiguration": "S3 metadata tables",
    "s3:DeleteBucketMetadataTableConfiguration": "S3 metadata tables",
    "s3:GetBucketMetadataTableConfiguration": "S3 metadata tables",
    "s3:UpdateBucketMetadataAnnotationTableConfiguration": "S3 metadata tables",
    "s3:UpdateBucketMetadataInventoryTableConfiguration": "S3 metadata tables",
    "s3:UpdateBucketMetadataJournalTableConfiguration": "S3 metadata tables",
    "s3:GetBucketAbac": "bucket ABAC",
    "s3:PutBucketAbac": "bucket ABAC",
    "s3:PutAccelerateConfiguration": "AccelerateConfiguration",
    "s3:PutAnalyticsConfiguration": "AnalyticsConfigurations",
    "s3:PutBucketAcl": "ACLs are disabled (BucketOwnerEnforced)",
    "s3:PutObjectAcl": "ACLs are disabled (BucketOwnerEnforced)",
    "s3:PutBucketCORS": "CorsConfiguration",
    "s3:PutBucketLogging": "LoggingConfiguration",
    "s3:PutBucketNotification": "NotificationConfiguration",
    "s3:PutBucketObjectLockConfiguration": "ObjectLockConfiguration",
    "s3:PutBucketWebsite": "WebsiteConfiguration",
    "s3:DeleteBucketWebsite": "WebsiteConfiguration",
    "s3:PutIntelligentTieringConfiguration": "IntelligentTieringConfigurations",
    "s3:PutInventoryConfiguration": "InventoryConfigurations",
    "s3:PutMetricsConfiguration": "MetricsConfigurations",
    "s3:PutReplicationConfiguration": "ReplicationConfiguration",
    "sns:PutDataProtectionPolicy": "DataProtectionPolicy",
    "wafv2:PutPermissionPolicy": "sharing rule groups",
    "application-autoscaling:PutScheduledAction": "ScheduledActions",
    "application-autoscaling:DeleteScheduledAction": "ScheduledActions",
    "ecr:SetRepositoryPolicy": "RepositoryPolicyText",
    "ecr:DeleteRepositoryPolicy": "RepositoryPolicyText",
    "iam:PutRolePermissionsBoundary": "PermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary": "PermissionsBoundary",
}

# Granted beyond the resource types' own services, each with why.
ALSO_GRANTED = {
    # What the workflow calls itself (spotops deploy, spotops push, the rollout wait).
    "cloudformation:CreateChangeSet": "spotops deploy",
    "cloudformation:DescribeChangeSet": "spotops deploy",
    "cloudformation:ExecuteChangeSet": "spotops deploy",
    "cloudformation:DeleteChangeSet": "spotops deploy (an empty change set)",
    "cloudformation:DescribeStacks": "outputs: deploy, push, wait, smoke",
    "cloudformation:DescribeStackEvents": "spotops deploy streams them",
    "cloudformation:TagResource": "stack tags spotops:app/stage",
    "s3:PutObject": "the template and ops package uploads",
    "s3:GetObject": "CloudFormation reads a template by URL, Lambda the zip",
    "s3:GetObjectVersion": "Lambda reads the zip",
    "ecr:GetAuthorizationToken": "registry login",
    "ecr:BatchCheckLayerAvailability": "image push",
    "ecr:InitiateLayerUpload": "image push",
    "ecr:UploadLayerPart": "image push",
    "ecr:CompleteLayerUpload": "image push",
    "ecr:PutImage": "image push",
    "ecr:BatchGetImage": "image push",
    "ecr:GetDownloadUrlForLayer": "image push",
    "ecr:DescribeImages": "push checks the tag; deploy finds the image",
    "ssm:GetParameter": "deploy reads AWS's public Powertools layer parameter",
    # Cross-service needs of the handlers, for what the templates use.
    "iam:PassRole": "task, execution, function, flow-log, traffic-shift and hook roles",
    "iam:CreateServiceLinkedRole": "first ECS, ELB, autoscaling use in an account",
    "kms:CreateGrant": "ECR's KMS encryption",
    "kms:RetireGrant": "ECR's KMS encryption",
    "elasticloadbalancing:SetWebACL": "WAF association with the load balancer",
    "ec2:DescribeIpamPools": "the load balancer handler reads it",
    "cloudwatch:GetMetricData": "target tracking policies",
}

# The writes that name no resource, so cannot be scoped (documented in the template).
UNSCOPED_WRITES = {
    "acm:RequestCertificate",
    "ecs:DeregisterTaskDefinition",
    "elasticloadbalancing:SetWebACL",
    "kms:CreateKey",
    "sns:SetSubscriptionAttributes",
    "sns:Unsubscribe",
}

_SUB = re.compile(r"\$\{([^}]+)\}")


def _resolver(template: dict[str, Any], params: dict[str, str]) -> Any:
    pseudo = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": PARTITION,
        "AWS::StackName": "spotops-dev-ci",
    }
    values = {
        **{k: str(v.get("Default", "")) for k, v in template["Parameters"].items()},
        **params,
        **pseudo,
    }
    conditions: dict[str, bool] = {}

    def ref(name: str) -> str:
        if name in values:
            return values[name]
        kind = template["Resources"][name]["Type"]
        if kind == "AWS::IAM::OIDCProvider":
            return f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
        return f"<{name}>"

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref":
                    return ref(arg)
                if key == "Fn::Sub":
                    return _SUB.sub(lambda m: ref(m.group(1)), arg)
                if key == "Fn::If":
                    return resolve(arg[1] if conditions[arg[0]] else arg[2])
                if key == "Fn::Equals":
                    return resolve(arg[0]) == resolve(arg[1])
                if key == "Fn::Not":
                    return not resolve(arg[0])
                if key == "Fn::GetAtt":
                    return f"<{arg}>"
            return {key: resolve(value) for key, value in node.items()}
        return node

    for name, expression in template.get("Conditions", {}).items():
        conditions[name] = bool(resolve(expression))
    return resolve


def rendered(**params: str) -> dict[str, Any]:
    """The template with every intrinsic resolved for ``params``."""
    template, errors = decode(str(TEMPLATES / "ci-role.yaml"))
    assert not errors, errors
    assert template is not None
    resolve = _resolver(template, {"GitHubRepository": REPOSITORY, **params})
    resources = {
        name: resolve(resource)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or resolve({"Fn::If": [resource["Condition"], 1, 0]})
    }
    return {"Resources": resources, "Parameters": template["Parameters"]}


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield name, statement
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, statement


def granted(template: dict[str, Any]) -> set[str]:
    return {action for _, s in statements(template) for action in s["Action"]}


def _trust(template: dict[str, Any]) -> dict[str, Any]:
    statements = template["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert len(statements["Statement"]) == 1
    return dict(statements["Statement"][0])


# ---- trust ----------------------------------------------------------------------------


def test_trust_is_this_repositorys_main_branch_for_sts_only() -> None:
    trust = _trust(rendered())
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Principal"] == {
        "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    }
    # StringEquals only: no StringLike, so no wildcard can widen the subject.
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:{REPOSITORY}:ref:refs/heads/main",
        }
    }


def test_an_environment_replaces_the_branch_as_the_only_trusted_subject() -> None:
    trust = _trust(rendered(GitHubEnvironment="production"))
    assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        f"repo:{REPOSITORY}:environment:production"
    )


@pytest.mark.parametrize("create", ["true", "false"])
def test_the_oidc_provider_is_optional_and_the_role_trusts_it_either_way(create: str) -> None:
    template = rendered(CreateOidcProvider=create)
    provider = template["Resources"].get("GitHubOidcProvider")
    if create == "true":
        assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
        assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    else:
        assert provider is None
    assert _trust(template)["Principal"]["Federated"].endswith(
        ":oidc-provider/token.actions.githubusercontent.com"
    )


@pytest.mark.parametrize("bad", ["*", "octo-org/*", "octo-org/spotops:*", "octo-org"])
def test_the_repository_parameter_refuses_wildcards(bad: str) -> None:
    pattern = rendered()["Parameters"]["GitHubRepository"]["AllowedPattern"]
    assert re.fullmatch(pattern, REPOSITORY)
    assert not re.fullmatch(pattern, bad)


@pytest.mark.parametrize("bad", ["*", "prod*", "a:b"])
def test_the_environment_parameter_refuses_wildcards(bad: str) -> None:
    pattern = rendered()["Parameters"]["GitHubEnvironment"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, "production")
    assert not re.fullmatch(pattern, bad)


# ---- permissions ---------------------------------------------------------------------------


def test_no_wildcard_action_and_no_negation() -> None:
    template = rendered()
    found = list(statements(template))
    assert found
    for policy, statement in found:
        assert statement["Effect"] == "Allow", policy
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), policy
        assert isinstance(statement["Action"], list)
        wild = [action for action in statement["Action"] if "*" in action or "?" in action]
        assert wild == [], f"{policy}/{statement['Sid']}: {wild}"


def test_only_actions_that_name_no_resource_are_granted_on_star() -> None:
    on_star = {
        statement["Sid"]: set(statement["Action"])
        for _, statement in statements(rendered())
        if "*" in statement["Resource"]
    }
    assert set(on_star) == {"NoResourceLevel", "RegistryLogin"}
    writes = {
        action
        for action in on_star["NoResourceLevel"]
        if not action.split(":")[1].startswith(("Describe", "Get", "List"))
    }
    assert writes == UNSCOPED_WRITES


def test_the_role_cannot_change_itself() -> None:
    template = rendered()
    role = template["Resources"]["DeployRole"]["Properties"]
    own_arn = f"arn:aws:iam::{ACCOUNT}:role{role['Path']}{role['RoleName']}"
    for _, statement in statements(template):
        if any(action.startswith("iam:") for action in statement["Action"]):
            for resource in statement["Resource"]:
                assert not fnmatch.fnmatchcase(own_arn, resource), (statement["Sid"], resource)


def test_stage_roles_are_passed_only_to_the_services_that_run_them() -> None:
    passing = [s for _, s in statements(rendered()) if "iam:PassRole" in s["Action"]]
    assert len(passing) == 1
    assert passing[0]["Action"] == ["iam:PassRole"]
    assert passing[0]["Resource"] == [STAGE_ROLES]
    assert sorted(passing[0]["Condition"]["StringEquals"]["iam:PassedToService"]) == [
        "ecs-tasks.amazonaws.com",
        "ecs.amazonaws.com",
        "lambda.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
    ]


def test_managed_policies_fit_iams_size_limit_with_the_longest_names() -> None:
    template = rendered(AppName="a" * 20, StageName="s" * 12)
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    assert len(policies) <= 10  # managed policies per role (IAM's default quota)
    for policy in policies:
        document = json.dumps(policy["Properties"]["PolicyDocument"], separators=(",", ":"))
        # IAM counts characters without white space; a longer partition name adds a little.
        assert len(document.replace("arn:aws:", "arn:aws-us-gov:")) <= 6144
        assert policy["Properties"]["Roles"] == ["<DeployRole>"]


# ---- exactly what the stacks need -------------------------------------------------------


def _own_service(resource_type: str) -> str:
    service = resource_type.split("::")[1]
    return {
        "ElasticLoadBalancingV2": "elasticloadbalancing",
        "ApplicationAutoScaling": "application-autoscaling",
        "CertificateManager": "acm",
    }.get(service, service.lower())


@pytest.fixture(scope="module")
def stack_resource_types(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Resource types of the bootstrap, network and site templates and of the built ops
    package."""
    out = tmp_path_factory.mktemp("ops-package")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "spotops",
            "package",
            "--offline",
            "--stage",
            "dev",
            "--out",
            str(out),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    types = {r["Type"] for r in json.loads((out / "ops.json").read_text())["Resources"].values()}
    for name in ("bootstrap", "network", "site"):
        template, errors = decode(str(TEMPLATES / f"{name}.yaml"))
        assert not errors
        assert template is not None
        types |= {resource["Type"] for resource in template["Resources"].values()}
    return types


def _handler_permissions(types: set[str]) -> dict[str, set[str]]:
    """Own-service handler permissions (create/read/update/delete) -> the types needing them."""
    needed: dict[str, set[str]] = {}
    for kind in types:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema
        for handler in ("create", "read", "update", "delete"):
            for action in schema.get("handlers", {}).get(handler, {}).get("permissions", []):
                if action.split(":")[0] == _own_service(kind):
                    needed.setdefault(action, set()).add(kind)
    return needed


def test_the_role_grants_every_handler_permission_the_stacks_need(
    stack_resource_types: set[str],
) -> None:
    needed = _handler_permissions(stack_resource_types)
    missing = {
        action: sorted(kinds)
        for action, kinds in needed.items()
        if action not in granted(rendered()) and action not in NOT_GRANTED
    }
    assert missing == {}, f"ci-role.yaml lacks what CloudFormation needs: {missing}"


def test_the_role_grants_nothing_the_stacks_and_the_workflow_do_not_need(
    stack_resource_types: set[str],
) -> None:
    needed = set(_handler_permissions(stack_resource_types)) - set(NOT_GRANTED)
    extra = granted(rendered()) - needed - set(ALSO_GRANTED)
    assert extra == set(), f"ci-role.yaml grants what no stack or step needs: {sorted(extra)}"
    # Every documented extra is really granted (the lists stay true).
    assert set(ALSO_GRANTED) <= granted(rendered())
    assert not set(NOT_GRANTED) & granted(rendered())


def test_every_taggable_resource_carries_the_stage_tags() -> None:
    for name in ("GitHubOidcProvider", "DeployRole"):
        tags = {t["Key"]: t["Value"] for t in rendered()["Resources"][name]["Properties"]["Tags"]}
        assert tags == {"spotops:app": "spotops", "spotops:stage": "dev"}
