"""The site image, proven: a Debian base made here with debootstrap, the Dockerfile built on
it with buildah (``make image``'s code path), the image run and probed.

What the test needs (buildah, debootstrap) it installs with apt-get when it runs as root;
where it cannot, it skips and says why. No registry is involved: the base is made from
Debian's packages, the build's pip reads PyPI.

It takes about 3 minutes on a 2-core machine (debootstrap alone over a minute), so the
default run (``make test``) leaves it out and says so; ``make test-image`` runs it (``-m
image``), as does ``SPOTOPS_IMAGE_TEST=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spotops.image.build import BUILDAH

# The base: Debian 12 with its own Python 3.11, which is what the Dockerfile's default
# python:3.11-slim-bookworm is built from. The Dockerfile calls `python` and `python -m venv`.
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")
TOOLS = {"buildah": "buildah", "debootstrap": "debootstrap"}  # command -> Debian package
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_LEFT_OUT = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: builds and runs the site image with buildah (root, a few minutes)"
    )


def _image_tests_wanted(config: pytest.Config) -> bool:
    # A -m expression that names the marker decides by itself (-m image, -m "not image").
    return "image" in (config.option.markexpr or "") or os.environ.get("SPOTOPS_IMAGE_TEST") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the image tests out unless asked for (-m, or SPOTOPS_IMAGE_TEST=1)."""
    if _image_tests_wanted(config):
        return
    image = [item for item in items if item.get_closest_marker("image")]
    if image:
        config.hook.pytest_deselected(items=image)
        items[:] = [item for item in items if not item.get_closest_marker("image")]
        config.stash[_LEFT_OUT] = len(image)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} image test(s) left out of the default run (about 3 minutes): "
            "run them with `make test-image`."
        )


def buildah(*args: str, timeout: float = 600, check: bool = True) -> str:
    """Run one buildah command on the vfs store; return its stdout."""
    done = subprocess.run(
        [*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _install_tools() -> str | None:
    """Install what is missing with apt-get; return why it cannot be done, else None."""
    missing = [package for command, package in TOOLS.items() if shutil.which(command) is None]
    if not missing:
        return None
    if os.geteuid() != 0:
        return f"{', '.join(missing)} missing and installing needs root (apt-get install)"
    if shutil.which("apt-get") is None:
        return f"{', '.join(missing)} missing and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # stale package lists: update once, then try again
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def image_tools() -> None:
    """buildah and debootstrap present and usable as root, or skip saying why."""
    if os.geteuid() != 0:
        pytest.skip("the image test needs root: debootstrap and rootful buildah (vfs, chroot)")
    reason = _install_tools()
    if reason:
        pytest.skip(reason)
    version = subprocess.run(["buildah", "--version"], capture_output=True, text=True)
    if version.returncode != 0:
        pytest.skip(f"buildah does not run here: {version.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def local_base(image_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Debian base image made here (debootstrap), imported into buildah; its name."""
    work = tmp_path_factory.mktemp("base")
    rootfs = work / "rootfs"
    done = subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            SUITE,
            str(rootfs),
            MIRROR,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        log_file = rootfs / "debootstrap" / "debootstrap.log"
        log = log_file.read_text(errors="replace")[-500:] if log_file.exists() else ""
        pytest.skip(
            f"debootstrap of Debian {SUITE} from {MIRROR} failed, so there is no base to build "
            f"on: {(done.stderr or done.stdout).strip()[-300:]} {log}"
        )
    # What a slim base leaves out: downloaded packages and package lists.
    for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    archive = work / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True, timeout=600)
    shutil.rmtree(rootfs, ignore_errors=True)
    name = f"localhost/spotops-test-base:{uuid.uuid4().hex[:12]}"
    container = buildah("from", "scratch").strip()
    try:
        buildah("add", container, str(archive), "/")
        buildah(
            "config",
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env",
            "LANG=C.UTF-8",
            "--cmd",
            "python3",
            container,
        )
        buildah("commit", "--format", "docker", container, name)
    finally:
        buildah("rm", container, check=False)
        archive.unlink(missing_ok=True)
    try:
        yield name
    finally:
        buildah("rmi", name, check=False)


def ca_bundle_args() -> list[str]:
    """Let the build's pip trust what this machine trusts (a TLS-inspecting proxy's CA)."""
    return [f"--ca-bundle={CA_BUNDLE}"] if CA_BUNDLE.is_file() else []
