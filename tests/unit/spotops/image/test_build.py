"""spotops/image/build.py: the one build command line `make image` and `spotops push` use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spotops.image import build as image_build
from spotops.image.build import build_command, push_command

REPO = Path(__file__).resolve().parents[4]
SITE = REPO / "site"


def test_buildah_builds_with_vfs_chroot_and_the_docker_format() -> None:
    command = build_command("buildah", "repo:abc", SITE, {"GIT_COMMIT": "abc", "IMAGE_TAG": "abc"})
    assert command[:7] == [
        "buildah",
        "--storage-driver",
        "vfs",
        "bud",
        "--isolation",
        "chroot",
        "--format",
    ]
    assert command[7] == "docker"  # keeps the Dockerfile's HEALTHCHECK (OCI drops it)
    assert command[command.index("--platform") + 1] == "linux/amd64"
    assert "--build-arg=GIT_COMMIT=abc" in command
    assert command[-3:] == ["-t", "repo:abc", str(SITE)]
    assert command[command.index("-f") + 1] == str(SITE / "Dockerfile")


def test_docker_builds_with_the_same_arguments() -> None:
    args = {"GIT_COMMIT": "abc", "BASE_IMAGE": "python:3.11-slim-bookworm"}
    command = build_command("docker", "repo:abc", SITE, args)
    assert command[:2] == ["docker", "build"]
    assert command[2:] == build_command("buildah", "repo:abc", SITE, args)[8:]


def test_extra_options_come_before_the_context() -> None:
    command = build_command("buildah", "i", SITE, {}, extra=["--volume", "/a:/b:ro"])
    assert command[-3:] == ["--volume", "/a:/b:ro", str(SITE)]


def test_push_uses_the_same_storage_as_the_build() -> None:
    assert push_command("buildah", "r/x:1") == [
        "buildah",
        "--storage-driver",
        "vfs",
        "push",
        "r/x:1",
        "docker://r/x:1",
    ]
    assert push_command("docker", "r/x:1") == ["docker", "push", "r/x:1"]


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="podman"):
        build_command("podman", "i", SITE, {})


def test_main_builds_the_site_tagged_with_the_commit(capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[list[str]] = []

    def run(command: list[str]) -> int:
        ran.append(command)
        return 0

    code = image_build.main(
        ["--engine=buildah", "--base-image=localhost/base:1", "--project-dir", str(REPO)],
        run=run,
        ask=lambda c: "220 MB",
    )
    assert code == 0
    (command,) = ran
    tag = image_build.commit_tag(REPO)
    assert capsys.readouterr().out.strip() == f"spotops-site:{tag}"
    assert "--build-arg=BASE_IMAGE=localhost/base:1" in command
    assert f"--build-arg=GIT_COMMIT={tag.removesuffix('-dirty')}" in command
    assert f"--build-arg=IMAGE_TAG={tag}" in command
    assert command[-1] == str(SITE)


def test_main_mounts_a_ca_bundle_only_with_buildah(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("")
    ran: list[list[str]] = []
    code = image_build.main(
        ["--engine=buildah", f"--ca-bundle={bundle}", "--tag=x"],
        run=lambda c: ran.append(c) or 0,
        ask=lambda c: "",
    )
    assert code == 0
    assert f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro" in ran[0]
    assert image_build.main(["--engine=docker", f"--ca-bundle={bundle}"], run=lambda c: 0) == 2


def test_a_failed_build_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert image_build.main(["--engine=docker", "--tag=x"], run=lambda c: 7) == 1
    assert "exit 7" in capsys.readouterr().err


def test_a_bad_build_arg_is_a_usage_error() -> None:
    assert image_build.main(["--engine=docker", "--build-arg=NOVALUE"], run=lambda c: 0) == 2


def test_make_image_runs_this_module() -> None:
    done = subprocess.run(
        ["make", "-n", "image", "IMAGE=x:1", "BASE_IMAGE=localhost/b:1", "IMAGE_ENGINE=buildah"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    line = " ".join(done.stdout.replace("\\\n", " ").split())
    assert ".venv/bin/python -m spotops.image.build --engine=buildah --tag=x:1 " in line
    assert "--base-image=localhost/b:1" in line
