"""End to end: ``spotops deploy --yes`` with the real templates (network, site, and the ops
package) against the moto server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from spotops.local.images import put_image

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path) -> Path:
    """A copy of the checkout's templates and profiles, so the run's record stays in tmp."""
    shutil.copytree(ROOT / "infra" / "cloudformation", tmp_path / "infra" / "cloudformation")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(
        ROOT / "ops_lambdas",
        tmp_path / "ops_lambdas",
        ignore=shutil.ignore_patterns("__pycache__", "deployments"),
    )
    return tmp_path


def _spotops(project: Path, emulator: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "spotops", "--project-dir", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def test_deploy_creates_every_stack_and_prints_the_site_url_last(emulator, tmp_path):
    done = _spotops(_project(tmp_path), emulator, "deploy", "--yes")

    assert done.returncode == 0, done.stderr
    cfn = boto3.client("cloudformation", endpoint_url=emulator, region_name="us-east-1")
    stacks = {s["StackName"]: s for s in cfn.describe_stacks()["Stacks"]}
    assert stacks["spotops-dev-network"]["StackStatus"] == "CREATE_COMPLETE"
    assert stacks["spotops-dev-site"]["StackStatus"] == "CREATE_COMPLETE"
    assert stacks["spotops-dev-ops"]["StackStatus"] == "CREATE_COMPLETE"
    site_url = next(
        o["OutputValue"]
        for o in stacks["spotops-dev-site"]["Outputs"]
        if o["OutputKey"] == "SiteUrl"
    )
    assert site_url.startswith("http")
    assert done.stdout.strip().splitlines()[-1].split() == ["SiteUrl", site_url]


def _bucket(cfn) -> str:
    (bootstrap,) = cfn.describe_stacks(StackName="spotops-bootstrap")["Stacks"]
    return next(
        o["OutputValue"] for o in bootstrap["Outputs"] if o["OutputKey"] == "ArtifactBucketName"
    )


@pytest.mark.parametrize("stage", ["seed", "prod"])
def test_every_profile_deploys_within_awss_limits(emulator, tmp_path, stage):
    """The `spotops deploy` subprocess makes every call through the strict layer
    (spotops.local.limits): an inline template over 51,200 bytes, or any other breach,
    would fail it although moto accepts it. (dev: the test above.)"""
    done = _spotops(_project(tmp_path), emulator, "deploy", "--yes", "--stage", stage)

    assert done.returncode == 0, done.stderr
    cfn = boto3.client("cloudformation", endpoint_url=emulator, region_name="us-east-1")
    statuses = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
    assert statuses == {
        "spotops-bootstrap": "CREATE_COMPLETE",
        f"spotops-{stage}-network": "CREATE_COMPLETE",
        f"spotops-{stage}-site": "CREATE_COMPLETE",
        f"spotops-{stage}-ops": "CREATE_COMPLETE",
    }
    # The site template (over the inline limit) went by URL, from the stage's prefix.
    s3 = boto3.client("s3", endpoint_url=emulator, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=_bucket(cfn), Prefix=f"spotops/{stage}/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    assert {k.split("/")[2] for k in keys} == {"ops", "templates"}
    assert any(k.startswith(f"spotops/{stage}/templates/site-") for k in keys), keys
    assert f"spotops-{stage}-site: template of" in " ".join(done.stderr.split())


def test_destroy_leaves_the_emulator_ready_for_the_next_deploy(emulator, tmp_path):
    """moto cannot delete the network stack by itself (DependencyViolation) and then keeps
    its exports, so a second deploy used to fail with "Export names must be unique"."""
    project = _project(tmp_path)
    assert _spotops(project, emulator, "deploy", "--yes").returncode == 0

    destroyed = _spotops(project, emulator, "destroy", "--yes")

    assert destroyed.returncode == 0, destroyed.stderr
    assert destroyed.stdout.split() == [
        "spotops-dev-ops",
        "spotops-dev-site",
        "spotops-dev-network",
    ]
    cfn = boto3.client("cloudformation", endpoint_url=emulator, region_name="us-east-1")
    # The app's artifact bucket stays for its other stages; this stage's objects are gone.
    assert [st["StackName"] for st in cfn.describe_stacks()["Stacks"]] == ["spotops-bootstrap"]
    assert cfn.list_exports()["Exports"] == []
    s3 = boto3.client("s3", endpoint_url=emulator, region_name="us-east-1")
    assert (
        s3.list_object_versions(Bucket=_bucket(cfn), Prefix="spotops/dev/").get("Versions", [])
        == []
    )
    again = _spotops(project, emulator, "deploy", "--yes")
    assert again.returncode == 0, again.stderr


def _rows(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    import json

    return {row["name"]: row["state"] for row in json.loads(done.stdout)["rows"]}


def test_doctor_before_and_verify_after_a_fresh_deploy_pass_as_a_user_runs_them(
    emulator, tmp_path, slack
):
    """The commands of "Your first deploy on AWS" in order, through the command line: doctor
    passes before anything exists, deploy, the webhook set, verify passes and its message
    reaches the webhook; then a broken account (a rule switched off) fails verify with exit 1
    and names the flow."""
    project = _project(tmp_path)

    before = _spotops(project, emulator, "doctor", "--json")
    assert before.returncode == 0, before.stdout + before.stderr
    assert "fail" not in _rows(before).values()
    assert _rows(before)["slack webhook"] == "skip"  # no ops stack yet

    assert _spotops(project, emulator, "deploy", "--yes").returncode == 0
    hook = subprocess.run(
        [sys.executable, "-m", "spotops", "--project-dir", str(project), "slack-webhook", "set"],
        input=slack.url + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ENDPOINT_URL": emulator, "NO_COLOR": "1"},
        timeout=60,
        check=False,
    )
    assert hook.returncode == 0, hook.stderr

    after = _spotops(project, emulator, "doctor", "--json")
    assert after.returncode == 0, after.stdout + after.stderr
    assert _rows(after)["slack webhook"] != "fail"

    verified = _spotops(project, emulator, "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    rows = _rows(verified)
    assert rows["event-rules"] == "ok"
    assert rows["functions"] == "emulator"  # run from the deployed zip: moto runs no Lambda
    assert any("spotops verify" in text for text in slack.texts())

    events = boto3.client("events", endpoint_url=emulator, region_name="us-east-1")
    rule = next(
        r["Name"]
        for r in events.list_rules()["Rules"]
        if r["Name"].startswith("spotops-dev") and r.get("ScheduleExpression")
    )
    events.disable_rule(Name=rule)
    broken = _spotops(project, emulator, "verify", "--no-slack")
    assert broken.returncode == 1
    assert broken.stdout.strip().splitlines()[-1].startswith("verify: event-rules fails")


def _stacks(emulator: str) -> dict[str, dict[str, str]]:
    """Every stack on the emulator, with its parameters."""
    cfn = boto3.client("cloudformation", endpoint_url=emulator, region_name="us-east-1")
    return {
        stack["StackName"]: {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        for stack in cfn.describe_stacks()["Stacks"]
    }


def test_deploy_image_by_tag_pins_its_digest_and_an_unknown_one_changes_no_stack(
    emulator, tmp_path
):
    """Issue 25, item 3: --image was checked only after the network stack had deployed."""
    project = _project(tmp_path)

    first = _spotops(project, emulator, "deploy", "--yes", "--image", "v1.0.0")

    assert first.returncode == 2, first.stderr
    assert "site stack does not exist yet" in first.stderr
    assert _stacks(emulator) == {}  # not even the artifact bucket's stack

    assert _spotops(project, emulator, "deploy", "--yes").returncode == 0
    ecr = boto3.client("ecr", endpoint_url=emulator, region_name="us-east-1")
    uri = ecr.describe_repositories(repositoryNames=["spotops-dev-site"])["repositories"][0][
        "repositoryUri"
    ]
    digest = put_image(ecr, "spotops-dev-site", "v1.0.0")
    before = _stacks(emulator)

    unknown = _spotops(
        project,
        emulator,
        "deploy",
        "--yes",
        "--image",
        "v9.9.9",
        "--param",
        "FlowLogRetentionDays=14",
    )

    assert unknown.returncode == 2, unknown.stderr
    assert "--image v9.9.9 does not exist in spotops-dev-site" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert (
        _stacks(emulator) == before
    )  # the network stack, deployed first, kept FlowLogRetentionDays 7

    by_tag = _spotops(project, emulator, "deploy", "--yes", "--image", "v1.0.0")

    assert by_tag.returncode == 0, by_tag.stderr
    assert _stacks(emulator)["spotops-dev-site"]["ImageUri"] == f"{uri}@{digest}"


def test_destroy_with_images_and_no_flag_refuses_before_deleting_anything(emulator, tmp_path):
    """Issue 25, item 5: it deleted the ops stack, then failed on the site stack's images."""
    project = _project(tmp_path)
    assert _spotops(project, emulator, "deploy", "--yes").returncode == 0
    ecr = boto3.client("ecr", endpoint_url=emulator, region_name="us-east-1")
    put_image(ecr, "spotops-dev-site", "v1.0.0")
    # As prod's RetainData sets it on AWS (moto's CloudFormation drops the attribute).
    elbv2 = boto3.client("elbv2", endpoint_url=emulator, region_name="us-east-1")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    protection = {"Key": "deletion_protection.enabled", "Value": "true"}
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=balancer["LoadBalancerArn"], Attributes=[protection]
    )
    before = _stacks(emulator)

    refused = _spotops(project, emulator, "destroy", "--yes")

    assert refused.returncode == 2, refused.stderr
    message = " ".join(refused.stderr.split())
    assert "Refused before deleting anything" in message
    assert "spotops-dev-site holds 1 image(s)" in message
    assert "--empty-repository" in message
    assert f"--load-balancer-arn {balancer['LoadBalancerArn']}" in message
    assert _stacks(emulator) == before  # every stack, ops included, still there
    assert len(ecr.list_images(repositoryName="spotops-dev-site")["imageIds"]) == 1

    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=balancer["LoadBalancerArn"], Attributes=[{**protection, "Value": "false"}]
    )
    cleared = _spotops(project, emulator, "destroy", "--yes", "--empty-repository")

    assert cleared.returncode == 0, cleared.stderr
    assert list(_stacks(emulator)) == ["spotops-bootstrap"]
