"""``push`` logic with a fake command runner and moto's in-process ECR (no registry)."""

from __future__ import annotations

import base64
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from spotops.errors import DirtyTreeError, ImageTagExistsError, PushError
from spotops.image.build import BuildEngine, choose_engine
from spotops.image.push import (
    Pusher,
    describe_changes,
    ecr_login,
    git_tag,
    uncommitted_changes,
)
from spotops.local.images import put_image
from tests.support.fakes import FakeRunner

REPO = "spotops-dev-site"


def _which(*present: str):
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_docker_is_chosen_when_its_engine_answers():
    runner = FakeRunner()

    engine = choose_engine(runner, _which("docker", "buildah"))

    assert engine.name == "docker"
    assert "docker info" in engine.reason
    assert runner.commands() == ["docker info"]


def test_buildah_is_chosen_when_docker_does_not_answer_and_says_why():
    runner = FakeRunner({("docker", "info"): (1, "", "Cannot connect to the Docker daemon\nmore")})

    engine = choose_engine(runner, _which("docker", "buildah"))

    assert engine.name == "buildah"
    assert "Cannot connect to the Docker daemon" in engine.reason


def test_buildah_is_chosen_when_docker_is_not_installed():
    engine = choose_engine(FakeRunner(), _which("buildah"))

    assert engine == BuildEngine(
        "buildah", "docker is not installed, and buildah is installed (no daemon needed)"
    )


def test_error_if_neither_docker_nor_buildah_can_build():
    with pytest.raises(PushError, match="install buildah"):
        choose_engine(FakeRunner(), _which())


def test_tag_is_the_short_commit_of_a_clean_tree(tmp_path):
    runner = FakeRunner({("git", "rev-parse"): (0, "0123abcd4567\n", "")})

    assert git_tag(runner, tmp_path, allow_dirty=False) == "0123abcd4567"
    assert runner.calls[0].cwd == tmp_path


def test_error_if_the_tree_is_dirty():
    runner = FakeRunner(
        {
            ("git", "rev-parse"): (0, "0123abcd4567\n", ""),
            ("git", "status"): (0, " M site/x.py\n?? y\n", ""),
        }
    )

    with pytest.raises(DirtyTreeError, match="2 uncommitted change") as caught:
        git_tag(runner, Path("."), allow_dirty=False)
    assert caught.value.exit_code == 2


def test_a_dirty_tree_is_pushed_under_a_dirty_tag_when_allowed():
    runner = FakeRunner(
        {
            ("git", "rev-parse"): (0, "0123abcd4567\n", ""),
            ("git", "status"): (0, " M site/x.py\n", ""),
        }
    )

    assert git_tag(runner, Path("."), allow_dirty=True) == "0123abcd4567-dirty"


def test_error_outside_a_git_checkout():
    runner = FakeRunner({("git", "rev-parse"): (128, "", "fatal: not a git repository")})

    with pytest.raises(PushError, match="not a git repository"):
        git_tag(runner, Path("."), allow_dirty=False)


@pytest.fixture
def ecr():
    with mock_aws():
        client = boto3.client("ecr", region_name="us-east-1")
        client.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE")
        yield client


def _put(ecr, tag: str, marker: str = "x") -> str:
    return put_image(ecr, REPO, tag, seed=marker)


def test_ecr_login_is_decoded_from_the_token(ecr):
    data = ecr.get_authorization_token()["authorizationData"][0]

    login = ecr_login(ecr)

    assert (
        base64.b64decode(data["authorizationToken"]).decode()
        == f"{login.username}:{login.password}"
    )
    assert login.username == "AWS"
    assert login.password
    assert login.registry == "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_push_logs_in_builds_pushes_and_returns_the_digest_ecr_recorded(ecr, tmp_path):
    uri = ecr.describe_repositories()["repositories"][0]["repositoryUri"]
    pushed: list[str] = []

    def registry(args: list[str]) -> None:  # what a real push does to the registry
        if args[:2] == ["docker", "push"]:
            pushed.append(_put(ecr, "abc123", "a"))

    runner = FakeRunner(on_call=registry)
    messages: list[str] = []

    result = Pusher(ecr, runner, messages.append).push(
        repository_name=REPO,
        repository_uri=uri,
        tag="abc123",
        engine=BuildEngine("docker", "ok"),
        context=tmp_path,
    )

    assert [c.args[:2] for c in runner.calls] == [
        ["docker", "login"],
        ["docker", "build"],
        ["docker", "push"],
    ]
    login = runner.calls[0]
    assert login.args[-1] == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert login.input_text == ecr_login(ecr).password  # on stdin, never in argv
    assert login.input_text not in login.args
    build = runner.calls[1].args
    assert build[-3:] == ["-t", f"{uri}:abc123", str(tmp_path)]
    # The commit reaches the image, so / and /version can say what a task runs.
    assert "--build-arg=GIT_COMMIT=abc123" in build
    assert "--build-arg=IMAGE_TAG=abc123" in build
    assert result.digest == pushed[0]
    assert result.pinned == f"{uri}@{pushed[0]}"
    assert any("Building" in m for m in messages)


def test_buildah_builds_and_pushes_from_the_same_store_to_the_docker_transport(tmp_path):
    engine = BuildEngine("buildah", "no docker")

    store = ["buildah", "--storage-driver", "vfs"]
    assert engine.push("r/site:abc") == [*store, "push", "r/site:abc", "docker://r/site:abc"]
    build = engine.build("r/site:abc", tmp_path, {"GIT_COMMIT": "abc"})
    assert build[:4] == [*store, "bud"]
    assert "--build-arg=GIT_COMMIT=abc" in build


def test_error_before_building_when_an_immutable_tag_exists(ecr, tmp_path):
    uri = ecr.describe_repositories()["repositories"][0]["repositoryUri"]
    digest = _put(ecr, "abc123")
    runner = FakeRunner()

    with pytest.raises(ImageTagExistsError) as caught:
        Pusher(ecr, runner).push(
            repository_name=REPO,
            repository_uri=uri,
            tag="abc123",
            engine=BuildEngine("docker", "ok"),
            context=tmp_path,
        )

    assert runner.calls == []
    assert f"{uri}:abc123 is already in ECR (digest {digest})" in str(caught.value)
    assert f"spotops deploy --image {uri}@{digest}" in str(caught.value)


def test_error_names_the_failing_step_with_the_tools_message(ecr, tmp_path):
    uri = ecr.describe_repositories()["repositories"][0]["repositoryUri"]
    runner = FakeRunner({("docker", "build"): (1, "", "COPY failed: file not found\n")})

    with pytest.raises(PushError, match="Image build failed \\(exit 1\\): COPY failed"):
        Pusher(ecr, runner).push(
            repository_name=REPO,
            repository_uri=uri,
            tag="abc123",
            engine=BuildEngine("docker", "ok"),
            context=tmp_path,
        )


def test_a_dirty_tree_error_names_the_files_that_make_it_dirty():
    runner = FakeRunner(
        {
            ("git", "rev-parse"): (0, "0123abcd4567\n", ""),
            ("git", "status"): (0, "?? config/qa.json\n M site/website/app.py\n", ""),
        }
    )

    with pytest.raises(DirtyTreeError) as caught:
        git_tag(runner, Path("."), allow_dirty=False)

    message = str(caught.value)
    assert (
        "2 uncommitted change(s): config/qa.json (untracked), site/website/app.py (modified)"
        in message
    )
    assert "--allow-dirty" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("?? config/qa.json", ("config/qa.json", "untracked")),
        (" M site/app.py", ("site/app.py", "modified")),
        ("M  site/app.py", ("site/app.py", "modified")),
        ("A  new.py", ("new.py", "added")),
        (" D gone.py", ("gone.py", "deleted")),
        ("R  old.py -> new.py", ("new.py", "renamed")),
        ("UU both.py", ("both.py", "unmerged")),
        ('?? "with space.txt"', ('"with space.txt"', "untracked")),
    ],
)
def test_each_porcelain_line_is_read_as_its_path_and_kind(line, expected):
    assert uncommitted_changes(line + "\n") == [expected]


def test_a_long_list_names_five_files_and_counts_the_rest():
    changes = [(f"f{i}.py", "modified") for i in range(7)]

    described = describe_changes(changes)

    assert described.endswith("f4.py (modified) and 2 more")
    assert "f5.py" not in described
    assert describe_changes(changes[:5]).endswith("f4.py (modified)")  # exactly five: no "more"
