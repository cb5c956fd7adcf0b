"""The redeploy job's pure decisions: when the first deployment also sets the desired count."""

from __future__ import annotations

import pytest

from chalicelib.redeploy import desired_count_change, is_bootstrap_image

URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/spotops-dev-site"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{URI}:bootstrap", True),
        ("localhost:4566/spotops-dev-site:bootstrap", True),  # a registry with a port
        (f"{URI}@{DIGEST}", False),
        (f"{URI}:v1.2.3", False),
        (f"{URI}:bootstrap-2", False),
        (f"{URI}:not-bootstrap", False),
        ("localhost:4566/bootstrap", False),  # the port is not a tag
        ("", False),
    ],
)
def test_bootstrap_image_is_the_placeholder_tag_only(image: str, expected: bool) -> None:
    assert is_bootstrap_image(image) is expected


def test_first_deploy_sets_the_initial_count() -> None:
    assert desired_count_change(0, f"{URI}:bootstrap", 2) == 2


@pytest.mark.parametrize(
    ("desired", "image", "initial", "why"),
    [
        (0, f"{URI}:bootstrap", 0, "INITIAL_DESIRED_COUNT unset: never change the count"),
        (0, f"{URI}@{DIGEST}", 2, "scaled to 0 on purpose while running a real image"),
        (0, f"{URI}:v1.2.3", 2, "scaled to 0 while running a tagged image"),
        (2, f"{URI}:bootstrap", 3, "already running tasks (someone set a count)"),
        (2, f"{URI}@{DIGEST}", 3, "an ordinary later push"),
        (None, f"{URI}:bootstrap", 2, "ECS did not say the count: never guess"),
    ],
)
def test_count_is_left_alone(desired: int | None, image: str, initial: int, why: str) -> None:
    assert desired_count_change(desired, image, initial) is None, why
