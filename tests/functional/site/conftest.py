"""Fixtures that start the real site (see ``tests/support/siteproc.py``) and clean up after it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.support.net import free_port
from tests.support.siteproc import SiteProcess, launch, site_env, wait_until_serving


@pytest.fixture
def start_site() -> Iterator[Callable[..., SiteProcess]]:
    """Start sites with env overrides; wait until each listens; kill leftovers at the end."""
    started: list[SiteProcess] = []

    def start(**overrides: str) -> SiteProcess:
        port = free_port()
        site = launch(port, site_env(port, **overrides))
        started.append(site)
        wait_until_serving(site)
        return site

    yield start
    for site in started:
        if site.process.poll() is None:
            site.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                site.process.wait(timeout=10)


@pytest.fixture(scope="module")
def site() -> Iterator[SiteProcess]:
    """One site shared by the read-only tests of a module."""
    port = free_port()
    running = launch(port, site_env(port))
    try:
        wait_until_serving(running)
        yield running
    finally:
        running.process.kill()
        running.process.wait(timeout=10)
