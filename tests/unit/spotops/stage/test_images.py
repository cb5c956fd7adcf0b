"""Image resolution: the image the service runs wins over anything older."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from spotops.errors import UsageError
from spotops.local.images import put_image
from spotops.stage.images import ImageResolver, SiteLocation, is_placeholder

REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/spotops-dev-site"
SITE = SiteLocation("spotops-dev", "spotops-dev-site", "spotops-dev-site", REPO)


class FakeEcs:
    def __init__(self, image: str | None = None, primary: str | None = None) -> None:
        self.definitions = {"td:7": image, "td:8": primary}
        self.image = image
        self.primary = primary

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        if self.image is None:
            return {"services": [], "failures": [{"reason": "MISSING"}]}
        deployments = [{"status": "ACTIVE", "taskDefinition": "td:7"}]
        if self.primary:
            deployments.insert(0, {"status": "PRIMARY", "taskDefinition": "td:8"})
        return {
            "services": [
                {
                    "status": "ACTIVE",
                    "taskDefinition": "td:8" if self.primary else "td:7",
                    "deployments": deployments,
                }
            ]
        }

    def describe_task_definition(self, taskDefinition: str) -> dict[str, Any]:
        return {
            "taskDefinition": {
                "containerDefinitions": [
                    {"name": "xray-daemon", "image": "public.ecr.aws/xray/aws-xray-daemon:3.x"},
                    {"name": "site", "image": self.definitions[taskDefinition]},
                ]
            }
        }


class FakeEcr:
    def __init__(self, images: list[dict[str, Any]] | None = None) -> None:
        self.images = images

    def describe_images(self, repositoryName: str, **_: Any) -> dict[str, Any]:
        if self.images is None:
            raise ClientError(
                {"Error": {"Code": "RepositoryNotFoundException", "Message": "none"}},
                "DescribeImages",
            )
        return {"imageDetails": self.images}


def _pushed(digest: str, day: int) -> dict[str, Any]:
    return {"imageDigest": digest, "imagePushedAt": datetime(2026, 11, day, tzinfo=UTC)}


def test_image_named_on_the_command_line_wins_pinned_by_its_digest():
    resolver = ImageResolver(FakeEcs(f"{REPO}@sha256:running"), FakeEcr([_pushed("sha256:v2", 3)]))

    choice = resolver.resolve(f"{REPO}:v2", SITE)

    assert choice.uri == f"{REPO}@sha256:v2"
    assert choice.source == "named with --image :v2"


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (f"{REPO}:latest", "mutable tag"),
        (f"{REPO}", "not in this stage's repository"),
        ("public.ecr.aws/nginx/nginx:1.27", "not in this stage's repository"),
        (f"{REPO}-other:v1", "not in this stage's repository"),
    ],
)
def test_error_if_the_named_image_is_mutable_or_elsewhere(image, says):
    resolver = ImageResolver(FakeEcs(f"{REPO}@sha256:running"), FakeEcr([_pushed("sha", 1)]))

    with pytest.raises(UsageError, match=says) as caught:
        resolver.resolve(image, SITE)
    assert caught.value.exit_code == 2


def test_error_if_the_named_image_does_not_exist():
    resolver = ImageResolver(FakeEcs(f"{REPO}@sha256:running"), FakeEcr([]))

    with pytest.raises(UsageError, match="does not exist in spotops-dev-site"):
        resolver.resolve(f"{REPO}@sha256:{'0' * 64}", SITE)


def test_error_if_an_image_is_named_before_the_repository_exists():
    resolver = ImageResolver(FakeEcs(None), FakeEcr(None))

    with pytest.raises(UsageError, match="Deploy without --image first"):
        resolver.resolve(f"{REPO}:v1", None)


def test_the_site_container_image_the_service_runs_now_is_passed_on():
    resolver = ImageResolver(
        FakeEcs(f"{REPO}@sha256:running"), FakeEcr([_pushed("sha256:newer", 27)])
    )

    choice = resolver.resolve(None, SITE)

    assert choice.uri == f"{REPO}@sha256:running"
    assert "running now" in choice.source


def test_a_rollout_in_progress_counts_as_what_runs_now():
    resolver = ImageResolver(
        FakeEcs(f"{REPO}@sha256:old", primary=f"{REPO}@sha256:new"), FakeEcr([])
    )

    assert resolver.resolve(None, SITE).uri == f"{REPO}@sha256:new"


def test_without_a_service_the_newest_pushed_image_is_used_by_digest():
    resolver = ImageResolver(
        FakeEcs(None),
        FakeEcr([_pushed("sha256:a", 20), _pushed("sha256:c", 27), _pushed("sha256:b", 25)]),
    )

    assert resolver.resolve(None, SITE).uri == f"{REPO}@sha256:c"


def test_the_bootstrap_placeholder_is_never_passed_back():
    resolver = ImageResolver(FakeEcs(f"{REPO}:bootstrap"), FakeEcr([]))

    choice = resolver.resolve(None, SITE)

    assert choice.uri == ""
    assert "0 tasks" in choice.source


def test_first_deploy_has_no_image():
    resolver = ImageResolver(FakeEcs(None), FakeEcr(None))

    assert resolver.resolve(None, None).uri == ""
    assert resolver.resolve(None, SITE).uri == ""


def test_placeholder_detection_looks_at_the_tag_only():
    assert is_placeholder(f"{REPO}:bootstrap")
    assert not is_placeholder(f"{REPO}@sha256:abc")
    assert not is_placeholder("registry:5000/bootstrap-tools:v1")


# ---- --image in each form the help names, against moto's ECR (issue 25, item 3) ----------


@pytest.fixture
def ecr_with_release():
    """A stage repository holding v1.0.0, also tagged with its commit, in moto's ECR."""
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        uri = ecr.create_repository(repositoryName="spotops-dev-site")["repository"][
            "repositoryUri"
        ]
        digest = put_image(ecr, "spotops-dev-site", "v1.0.0")
        manifest = ecr.batch_get_image(
            repositoryName="spotops-dev-site", imageIds=[{"imageTag": "v1.0.0"}]
        )["images"][0]["imageManifest"]
        ecr.put_image(repositoryName="spotops-dev-site", imageManifest=manifest, imageTag="3f9a2c1")
        put_image(ecr, "spotops-dev-site", "v0.9.0")  # another image: the lookup must choose
        site = SiteLocation("spotops-dev", "spotops-dev-site", "spotops-dev-site", uri)
        yield ImageResolver(mock.Mock(), ecr), site, uri, digest


@pytest.mark.parametrize(
    "named",
    [
        "v1.0.0",
        "3f9a2c1",
        "{digest}",
        "{uri}:v1.0.0",
        "{uri}@{digest}",
    ],
)
def test_every_form_of_image_resolves_to_the_digest_pinned_uri(ecr_with_release, named):
    resolver, site, uri, digest = ecr_with_release

    choice = resolver.resolve(named.format(uri=uri, digest=digest), site)

    assert choice.uri == f"{uri}@{digest}"


@pytest.mark.parametrize(
    ("named", "says"),
    [
        ("v9.9.9", "--image v9.9.9 does not exist in spotops-dev-site"),
        (f"sha256:{'0' * 64}", "does not exist in spotops-dev-site"),
        ("sha256:abc", "not a whole digest"),
        ("latest", "mutable tag"),
        ("public.ecr.aws/nginx/nginx:1.27", "not in this stage's repository"),
    ],
)
def test_error_if_the_named_image_is_not_one_of_the_repository(ecr_with_release, named, says):
    resolver, site, _, _ = ecr_with_release

    with pytest.raises(UsageError, match=re.escape(says)) as caught:
        resolver.resolve(named, site)

    assert caught.value.exit_code == 2
