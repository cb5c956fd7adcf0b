"""The Dockerfile builds an image that runs the site as a non-root user, answers /healthz
and carries no compiler and no pip cache. Built with buildah on a Debian base made here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spotops.image.build import BUILDAH
from tests.e2e.image.conftest import buildah, ca_bundle_args
from tests.support.net import LOOPBACK, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[3]
GIT_COMMIT = "0123456789ab"  # what spotops push passes: the 12-character commit

pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]

BUILDAH_RUN = [*BUILDAH, "run", "--isolation", "chroot"]

# Compilers and the tool chain a wheels-only build never needs at run time.
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "x86_64-linux-gnu-gcc", "make", "ld")


@pytest.fixture(scope="module")
def site_image(local_base: str) -> Iterator[dict[str, Any]]:
    """The site image built by `make image`'s code path on the local base; its config."""
    name = f"localhost/spotops-site-test:{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spotops.image.build",
            "--engine=buildah",
            f"--tag={name}",
            f"--base-image={local_base}",
            f"--build-arg=GIT_COMMIT={GIT_COMMIT}",
            *ca_bundle_args(),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, f"image build failed:\n{done.stderr[-4000:]}"
    assert done.stdout.strip() == name
    print(f"built {name} in {time.monotonic() - started:.0f} s: {done.stderr.splitlines()[-1]}")
    inspected = json.loads(buildah("inspect", "--type", "image", name))
    try:
        yield inspected
    finally:
        buildah("rmi", name, check=False)


@pytest.fixture(scope="module")
def container(site_image: dict[str, Any]) -> Iterator[str]:
    """A working container of the site image, shared: no test changes it (a vfs container is
    a full copy of the image, so each one costs seconds)."""
    name = buildah("from", "--pull-never", site_image["FromImage"]).strip()
    try:
        yield name
    finally:
        buildah("rm", name, check=False)


def _config(image: dict[str, Any]) -> dict[str, Any]:
    return dict(image["Docker"]["config"])


def test_image_declares_a_non_root_user_the_command_and_a_health_check(
    site_image: dict[str, Any],
) -> None:
    config = _config(site_image)
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python", "-m", "website"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert f"GIT_COMMIT={GIT_COMMIT}" in config["Env"]


def test_runs_as_the_unprivileged_user(container: str) -> None:
    ids = buildah("run", "--isolation", "chroot", container, "--", "id", "-u").strip()
    assert ids == "10001"


def test_answers_healthz_and_version_and_its_health_check_passes(
    site_image: dict[str, Any], container: str
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            *BUILDAH_RUN,
            "--env",
            f"PORT={port}",
            "--env",
            "DRAIN_SECONDS=0",
            container,
            "--",
            *_config(site_image)["Cmd"],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=60)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
            assert json.loads(answer.read())["status"] == "ok"
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/version", timeout=5) as answer:
            assert json.loads(answer.read())["git_commit"] == GIT_COMMIT
        # The HEALTHCHECK command itself, as the engine would run it, inside the image.
        check = _config(site_image)["Healthcheck"]["Test"][1:]
        probe = subprocess.run(
            [*BUILDAH_RUN, "--env", f"PORT={port}", container, "--", *check],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
    finally:
        _stop(server)


def test_has_no_compiler_and_no_pip_cache(container: str) -> None:
    root = Path(buildah("mount", container).strip())
    # The image's links are absolute (/usr/bin/cc -> /etc/alternatives/cc): look at the link
    # itself, never at what it points to on this machine.
    try:
        found = [
            str(path.relative_to(root))
            for folder in ("usr/bin", "usr/local/bin", "bin")
            for name in COMPILERS
            if os.path.lexists(path := root / folder / name)
        ]
        assert found == [], f"build tools in the image: {found}"
        assert not (root / "usr/lib/gcc").exists(), "GCC's libraries are in the image"
        caches = [
            str(path.relative_to(root))
            for pattern in ("root/.cache", "home/*/.cache", "tmp/pip-*", "opt/venv/**/*.whl")
            for path in root.glob(pattern)
        ]
        assert caches == [], f"pip caches or wheels left in the image: {caches}"
        assert not (root / "build").exists(), "the build stage's folder is in the image"
        assert (root / "opt/venv/pyvenv.cfg").is_file()
        assert os.path.lexists(root / "opt/venv/bin/python")
        assert (root / "app/website/__init__.py").exists()
    finally:
        buildah("umount", container, check=False)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the container's process group: SIGTERM (the site drains), then SIGKILL."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
