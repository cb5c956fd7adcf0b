"""Browser fixtures: Debian's chromium, installed where missing and we may, else skipped."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

CHROMIUM = "/usr/bin/chromium"


def _install_chromium() -> str | None:
    """apt-get install chromium when running as root; return why not otherwise."""
    if not shutil.which("apt-get"):
        return "chromium is missing and apt-get is not available"
    if os.geteuid() != 0:
        return "chromium is missing and installing it needs root (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {result.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a chromium binary, or skip with the reason."""
    if not os.path.exists(CHROMIUM):
        reason = _install_chromium()
        if reason:
            pytest.skip(reason)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not executable")
    return CHROMIUM
