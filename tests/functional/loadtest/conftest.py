"""The real site, started once for the module (see ``tests/support/siteproc.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.net import free_port
from tests.support.siteproc import SiteProcess, launch, site_env, wait_until_serving


@pytest.fixture(scope="module")
def site() -> Iterator[SiteProcess]:
    port = free_port()
    running = launch(port, site_env(port))
    try:
        wait_until_serving(running)
        yield running
    finally:
        running.process.kill()
        running.process.wait(timeout=10)
