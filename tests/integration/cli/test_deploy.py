"""``spotops deploy`` / ``status`` / ``destroy`` against the moto server."""

from __future__ import annotations

import pytest

from spotops.local.images import put_image

pytestmark = pytest.mark.emulator

NETWORK = "spotops-dev-network"
SITE = "spotops-dev-site"


def _stack(cfn, name):
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def _parameters(stack):
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def _service_image(ecs, cluster="spotops-dev", service=SITE):
    arn = ecs.describe_services(cluster=cluster, services=[service])["services"][0][
        "taskDefinition"
    ]
    definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return definition["containerDefinitions"][0]["image"]


def test_can_deploy_all_stacks_and_print_the_site_url_last(spotops, aws):
    result = spotops("deploy", "--yes")

    assert result.exit_code == 0, result.output
    cfn = aws("cloudformation")
    assert _stack(cfn, NETWORK)["StackStatus"] == "CREATE_COMPLETE"
    site = _stack(cfn, SITE)
    assert site["StackStatus"] == "CREATE_COMPLETE"
    params = _parameters(site)
    assert params["NetworkStackName"] == NETWORK
    assert params["ImageUri"] == ""  # first deploy: no image yet
    tags = {t["Key"]: t["Value"] for t in site["Tags"]}
    assert tags == {"spotops:app": "spotops", "spotops:stage": "dev"}
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("SiteUrl")
    assert lines[-1].split()[-1].startswith("http://subnet-")
    assert any(line.startswith("RepositoryUri") for line in lines)
    assert "Estimated monthly cost" in result.stderr


def test_deploy_again_is_up_to_date(spotops):
    assert spotops("deploy", "--yes").exit_code == 0

    again = spotops("deploy", "--yes")

    assert again.exit_code == 0, again.output
    assert f"{NETWORK}: up to date" in again.stderr
    assert f"{SITE}: up to date" in again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("SiteUrl")


def test_changing_a_parameter_updates_the_stack(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0

    result = spotops("deploy", "--yes", "--param", "NatMode=single")

    assert result.exit_code == 0, result.output
    network = _stack(aws("cloudformation"), NETWORK)
    assert network["StackStatus"] == "UPDATE_COMPLETE"
    assert _parameters(network)["NatMode"] == "single"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in network["Outputs"]}
    assert outputs["TaskAssignPublicIp"] == "DISABLED"
    assert "UPDATE change set" in result.stderr


def test_deploy_never_rolls_the_site_back_to_an_older_image(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0
    ecr, ecs, cfn = aws("ecr"), aws("ecs"), aws("cloudformation")
    repo_uri = ecr.describe_repositories(repositoryNames=[SITE])["repositories"][0]["repositoryUri"]
    old = f"{repo_uri}@{put_image(ecr, SITE, 'aaa1111', seed='old')}"
    assert spotops("deploy", "--yes", "--image", old).exit_code == 0
    assert _parameters(_stack(cfn, SITE))["ImageUri"] == old
    # The redeploy Lambda moves the service to a newer image outside CloudFormation.
    new = f"{repo_uri}@{put_image(ecr, SITE, 'bbb2222', seed='new')}"
    registered = ecs.register_task_definition(
        family=SITE,
        containerDefinitions=[{"name": "site", "image": new, "memory": 512, "essential": True}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="spotops-dev", service=SITE, taskDefinition=registered)
    # A later push whose rollout did not happen (e.g. the circuit breaker rolled it back).
    put_image(ecr, SITE, "ccc3333", seed="unreleased")

    # An infrastructure change that makes CloudFormation render the task definition again.
    result = spotops("deploy", "--yes", "--param", "TaskMemory=1024")

    assert result.exit_code == 0, result.output
    assert "running now in" in result.stderr
    # The image parameter CloudFormation renders the task definition from is the new image,
    # not the older one the stack was last deployed with. (moto 5.2.5 re-registers a task
    # definition updated by CloudFormation without its container details, so the rendered
    # definition itself cannot be checked here.)
    site = _stack(cfn, SITE)
    assert _parameters(site)["ImageUri"] == new
    assert _parameters(site)["TaskMemory"] == "1024"
    assert _service_image(ecs) == new


def test_first_deploy_with_images_in_the_repository_uses_the_newest(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0
    ecr = aws("ecr")
    repo_uri = ecr.describe_repositories(repositoryNames=[SITE])["repositories"][0]["repositoryUri"]
    digest = put_image(ecr, SITE, "ccc3333", seed="pushed")

    result = spotops("deploy", "--yes")

    assert result.exit_code == 0, result.output
    image = _parameters(_stack(aws("cloudformation"), SITE))["ImageUri"]
    assert image == f"{repo_uri}@{digest}"


def test_status_shows_stacks_service_image_and_alarms(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0
    cloudwatch = aws("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="spotops-dev-alb-5xx",
        MetricName="HTTPCode_ELB_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName="spotops-dev-alb-5xx", StateValue="ALARM", StateReason="5xx above 1"
    )

    result = spotops("status")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{NETWORK}" in out
    assert "CREATE_COMPLETE" in out
    assert f"Service {SITE} (cluster spotops-dev): ACTIVE" in out
    assert "image: " in out
    assert ":bootstrap" in out
    assert "spotops-dev-alb-5xx: 5xx above 1" in out
    assert out.strip().splitlines()[-1].startswith("SiteUrl")


def test_status_of_a_stage_never_deployed_fails_clearly(spotops):
    result = spotops("status")

    assert result.exit_code == 1
    assert "Stage dev has no stacks in us-east-1" in result.stderr


def test_destroy_deletes_stacks_in_reverse_order_and_empties_the_repository(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0
    ecr = aws("ecr")
    put_image(ecr, SITE, "ddd4444", seed="doomed")

    result = spotops("destroy", "--yes", "--empty-repository")

    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [SITE, NETWORK]
    assert "Deleted 1 image(s)" in result.stderr
    names = [s["StackName"] for s in aws("cloudformation").describe_stacks()["Stacks"]]
    assert names == ["spotops-bootstrap"]  # the app's artifact bucket serves other stages


def test_destroy_asks_first_and_keeps_everything_when_refused(spotops, aws):
    assert spotops("deploy", "--yes").exit_code == 0

    result = spotops("destroy", input="n\n")

    assert result.exit_code == 0
    message = " ".join(result.stderr.split())
    assert "on the local emulator at http://127.0.0.1:" in message
    assert "Nothing changed" in message
    assert len(aws("cloudformation").describe_stacks()["Stacks"]) == 3  # with the bootstrap
